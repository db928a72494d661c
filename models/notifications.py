"""Which customer messages an accepted event sends (DESIGN.md §4 "what else happens", §6).

Pure: the workflow asks after each accepted event and queues what comes back; the delivery
activity resolves addresses, renders the templates and sends.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from models import events as ev
from models.closeout import Channel
from models.documents import RenderableKind
from models.lifecycle import JobState, Stage

SmsChoice = Literal["no", "yes", "if_enabled"]


class Notification(BaseModel):
    purpose: str
    email: bool = True
    # "if_enabled": by SMS too when SMS is on in the settings and the client has a phone.
    sms: SmsChoice = "if_enabled"
    to_email: str | None = None  # default: the client's email
    sms_phone: str | None = None  # default: the client's phone
    bcc_actor: bool = False  # a copy to the person who sent it
    message: str = ""
    # Office alerts go to the office staff, not the customer.
    to_office: bool = False
    # A document of the job rendered as the event left it, attached to the email.
    attach: RenderableKind | None = None
    # A request for quote to a supplier: the PO number of the job's request it sends.
    po_number: str | None = None


# Purposes added with closeout and invoicing: a workflow started before them sends neither.
DOCUMENT_PURPOSES = frozenset({"invoice", "closeout"})


def for_event(event: ev._Event, before: JobState, after: JobState) -> list[Notification]:
    match event:
        case ev.QuoteSent(sms=sms):
            to = after.quote.sent_to if after.quote else None
            return [
                Notification(
                    purpose="quote", to_email=to, sms="yes" if sms else "no", attach="quote"
                )
            ]
        case ev.InvoiceSent():
            billing = after.invoice.billing_email if after.invoice else None
            return [Notification(purpose="invoice", sms="no", to_email=billing, attach="invoice")]
        case ev.JobScheduled():
            return [Notification(purpose="appointment")]
        case ev.TechDispatched(notify_customer=True):
            return [Notification(purpose="on_my_way")]
        case ev.PartsDelivered() if (
            before.stage == Stage.awaiting_parts and after.stage == Stage.ready_to_schedule
        ):
            return [Notification(purpose="parts_eta")]
        case ev.CustomerUpdateSent(
            message=message, to_email=to, bcc_me=bcc_me, sms=sms, sms_phone=phone
        ):
            return [
                Notification(
                    purpose="customer_update",
                    to_email=to,
                    sms="yes" if sms else "no",
                    sms_phone=phone,
                    bcc_actor=bcc_me,
                    message=message,
                )
            ]
        case ev.SupplierQuoteRequested(supplier_email=to, po_number=po_number):
            return [
                Notification(
                    purpose="supplier_quote_request", to_email=to, sms="no", po_number=po_number
                )
            ]
        case ev.QuoteApproved(ip_address=str()) | ev.QuoteDeclined(ip_address=str()):
            # The customer answered on their quote page: the office hears of it at once.
            return [
                Notification(
                    purpose="quote_answered",
                    sms="no",
                    to_office=True,
                    message=_answer(event, after),
                )
            ]
    return []


def _answer(event: ev.QuoteApproved | ev.QuoteDeclined, after: JobState) -> str:
    if isinstance(event, ev.QuoteDeclined):
        return f"The customer declined the quote online: {event.reason}"
    quote = after.quote
    option = quote.option(quote.chosen) if quote is not None else None
    chose = f", choosing {option.name}" if option is not None and option.key != "quote" else ""
    return f"{event.signature_name} approved the quote online{chose}. The job is approved."


def for_closeout(state: JobState, channel: Channel) -> Notification:
    """The closeout notification by the configured channel: the email carries the work
    receipt, the SMS the portal link. A customer the channel cannot reach (SMS only, no phone)
    gets the email instead, so no completed job goes unannounced."""
    email = channel in ("email", "both")
    sms = channel in ("sms", "both")
    if sms and not state.client.phone:
        sms, email = False, True
    if email and not state.client.email and state.client.phone:
        sms, email = True, False
    return Notification(
        purpose="closeout", email=email, sms="yes" if sms else "no", attach="work_receipt"
    )


def for_reminder(kind: str, state: JobState) -> list[Notification]:
    match kind:
        case "quote_follow_up":
            return [Notification(purpose="quote_follow_up")]
        case "appointment_reminder":
            return [Notification(purpose="appointment_reminder")]
        case "payment_reminder":
            billing = state.invoice.billing_email if state.invoice else None
            return [Notification(purpose="payment_reminder", sms="no", to_email=billing)]
        case "parts_overdue":
            return [Notification(purpose="parts_overdue", sms="no", to_office=True)]
    return []  # quote_stale and stuck raise flags only
