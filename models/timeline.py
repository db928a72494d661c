"""One line of plain English per event, for the job's timeline."""

from __future__ import annotations

from models import events as ev


def describe(event: ev._Event) -> str:
    match event:
        case ev.JobCreated(title=title, source=source, priority=priority):
            return f"Job created ({source.replace('_', ' ')}, {priority}): {title}"
        case ev.OwnerAssigned(owner=owner):
            return f"Owner set to {owner}"
        case ev.QuoteDrafted(lines=lines):
            total = sum((line.amount for line in lines), start=lines[0].amount * 0)
            return f"Quote drafted: {len(lines)} line(s), total {total}"
        case ev.QuoteSent(to_email=to):
            return f"Quote sent{' to ' + to if to else ''}"
        case ev.QuoteDeclined(reason=reason) | ev.ApprovalDenied(reason=reason):
            return f"{event.type.replace('_', ' ').capitalize()}: {reason}"
        case ev.JobCanceled(reason=reason):
            return f"Job canceled: {reason}"
        case ev.PartsOrdered(parts=parts):
            return "Parts ordered: " + ", ".join(f"{p.quantity}x {p.sku}" for p in parts)
        case ev.PartsDelivered(skus=skus):
            return "Parts delivered: " + ", ".join(skus)
        case ev.JobScheduled(technician=tech, window_start=start, window_end=end):
            return f"Scheduled with {tech}, {start.isoformat()} to {end.isoformat()}"
        case ev.JobIncomplete(reason=reason, notes=notes):
            return f"Job incomplete ({reason.replace('_', ' ')}){': ' + notes if notes else ''}"
        case ev.PaymentRecorded(amount=amount, method=method, paid_on_site=on_site):
            return f"Payment {amount} by {method}{' on site' if on_site else ''}"
        case ev.NoteAdded(text=text):
            return f"Note: {text[:200]}"
        case ev.CommunicationLogged(channel=channel, direction=direction, summary=summary):
            return f"{direction.capitalize()} {channel}: {summary[:200]}"
        case _:
            return event.type.replace("_", " ").capitalize()
