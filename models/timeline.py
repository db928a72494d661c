"""One line of plain English per event, for the job's timeline.

The workflow writes each line once, plainly (it knows neither the company's zone nor its
currency); pages describe the same event again with the company's `Style`, so people read
times in the company's zone and money with its symbol, from the same words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from models import events as ev


def _plain_window(start: datetime, end: datetime) -> str:
    return f"{start.isoformat()} to {end.isoformat()}"


@dataclass(frozen=True)
class Style:
    """How amounts, windows and people read: plainly (stored summaries) or for the company."""

    money: Callable[[Decimal], str] = str
    window: Callable[[datetime, datetime], str] = _plain_window
    person: Callable[[str], str] = str


PLAIN = Style()


def describe(event: ev._Event, style: Style = PLAIN) -> str:
    match event:
        case ev.JobCreated(title=title, source=source, priority=priority):
            return f"Job created ({source.replace('_', ' ')}, {priority}): {title}"
        case ev.OwnerAssigned(owner=owner):
            return f"Owner set to {style.person(owner)}"
        case ev.QuoteDrafted(lines=list() as lines, discount=discount, tax_rate=rate):
            subtotal = sum((line.amount for line in lines), start=lines[0].amount * 0)
            if discount is None and not rate:
                return f"Quote drafted: {len(lines)} line(s), total {style.money(subtotal)}"
            return f"Quote drafted: {len(lines)} line(s), subtotal {style.money(subtotal)}"
        case ev.QuoteDrafted(options=list() as options):
            names = ", ".join(o.name for o in options)
            return f"Quote drafted with {len(options)} options: {names}"
        case ev.QuoteSent(to_email=to):
            return f"Quote sent{' to ' + to if to else ''}"
        case ev.QuoteApproved(signature_name=str() as name, ip_address=ip):
            chose = f", option {event.option}" if event.option else ""
            online = f" online from {ip}" if ip else ""
            return f"Quote approved{online}, signed {name!r}{chose}"
        case ev.QuoteApproved(option=str() as option) | ev.ApprovalGranted(option=str() as option):
            return f"{event.type.replace('_', ' ').capitalize()}, option {option}"
        case ev.QuoteDeclined(reason=reason, ip_address=str() as ip):
            return f"Quote declined online from {ip}: {reason}"
        case ev.SupplierQuoteRequested(supplier=supplier, po_number=po, lines=parts):
            return f"Request for quote {po} sent to {supplier}: {len(parts)} line(s)"
        case ev.CommunicationLogged(po_number=str() as po, summary=summary):
            return f"Supplier answer to {po}: {summary[:200]}"
        case ev.QuoteDeclined(reason=reason) | ev.ApprovalDenied(reason=reason):
            return f"{event.type.replace('_', ' ').capitalize()}: {reason}"
        case ev.JobCanceled(reason=reason):
            return f"Job canceled: {reason}"
        case ev.PartsOrdered(parts=parts):
            return "Parts ordered: " + ", ".join(f"{p.quantity}x {p.sku}" for p in parts)
        case ev.PartsDelivered(skus=skus):
            return "Parts delivered: " + ", ".join(skus)
        case ev.JobScheduled(technician=tech, window_start=start, window_end=end):
            return f"Scheduled with {style.person(tech)}, {style.window(start, end)}"
        case ev.JobIncomplete(reason=reason, notes=notes):
            return f"Job incomplete ({reason.replace('_', ' ')}){': ' + notes if notes else ''}"
        case ev.PaymentRecorded(amount=amount, method=method, paid_on_site=on_site):
            return f"Payment {style.money(amount)} by {method}{' on site' if on_site else ''}"
        case ev.NoteAdded(text=text):
            return f"Note: {text[:200]}"
        case ev.CommunicationLogged(channel=channel, direction=direction, summary=summary):
            return f"{direction.capitalize()} {channel}: {summary[:200]}"
        case _:
            return event.type.replace("_", " ").capitalize()
