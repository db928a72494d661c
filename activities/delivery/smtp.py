"""Email over SMTP with aiosmtplib.

The session runs as far as it can before the message is marked `sending`: connection, TLS,
login, MAIL FROM and every RCPT TO. Only DATA hands the message over, so a server that is down,
busy or refuses the recipients leaves the message `queued` for the retry, however the worker
fares. Each message carries a Message-ID made from its key: a receiving server or mail client
can tell a second copy from a new message.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

import aiosmtplib

from activities.delivery.base import (
    Email,
    HandingOver,
    PermanentFailure,
    TransientFailure,
    UncertainFailure,
    no_record,
)
from activities.delivery.rate import RateLimiter
from core.config import Settings

# "Busy, try later" answers (too many connections or messages, local trouble, too many
# recipients / no room): backed off like an HTTP 429, every delivery of the worker with it.
BUSY = frozenset({421, 451, 452})


def message_id(idempotency_key: str, sender: str) -> str:
    """`<key@sender's domain>`: the same key always gives the same Message-ID."""
    local = re.sub(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]", ".", idempotency_key).strip(".")
    domain = parseaddr(sender)[1].rpartition("@")[2] or "jobline"
    return f"<{local}@{domain}>"


class _Session(aiosmtplib.SMTP):
    """An SMTP session that lets the caller record the hand-over just before DATA."""

    def __init__(self, handing_over: HandingOver, **options: Any) -> None:
        super().__init__(**options)
        self._handing_over = handing_over
        self.handed_over = False

    async def data(self, message: str | bytes, *args: Any, **kwargs: Any) -> Any:
        await self._handing_over()
        self.handed_over = True
        return await super().data(message, *args, **kwargs)


class SmtpBackend:
    name = "smtp"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.limiter = RateLimiter(
            settings.email_rate_per_second, self.name, settings.provider_timeout
        )

    def message(self, email: Email) -> EmailMessage:
        message = EmailMessage()
        message["From"] = email.sender
        message["To"] = ", ".join(email.to)
        if email.cc:
            message["Cc"] = ", ".join(email.cc)
        message["Subject"] = email.subject
        message["Message-ID"] = message_id(email.idempotency_key, email.sender)
        message.set_content(email.body)
        for attachment in email.attachments:
            main, sub = attachment.mime_type.split("/", 1)
            message.add_attachment(
                attachment.content, maintype=main, subtype=sub, filename=attachment.filename
            )
        return message

    async def send_email(self, email: Email, handing_over: HandingOver = no_record) -> str | None:
        s = self.settings
        message = self.message(email)
        session = _Session(
            handing_over,
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username or None,
            password=s.smtp_password or None,
            start_tls=s.smtp_starttls,
            use_tls=s.smtp_tls,
            timeout=s.provider_timeout,
        )
        # The turn is taken before connecting: a session is never held open waiting for it.
        await self.limiter.turn()
        try:
            async with session:
                errors, _ = await session.send_message(
                    message, recipients=[*email.to, *email.cc, *email.bcc]
                )
        except aiosmtplib.SMTPRecipientsRefused as refused:
            reason = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in refused.recipients)
            # 4xx (421 busy, 450 mailbox unavailable, greylisting) is "try again later".
            if all(500 <= r.code < 600 for r in refused.recipients):
                raise PermanentFailure(f"SMTP refused every recipient: {reason}") from None
            if any(r.code in BUSY for r in refused.recipients):
                raise self.limiter.busy(f"SMTP refused every recipient for now: {reason}") from None
            raise TransientFailure(f"SMTP refused every recipient for now: {reason}") from None
        except aiosmtplib.SMTPResponseException as response:
            # An answer, before or after DATA: the server said what it did with the message.
            if 500 <= response.code < 600:
                raise PermanentFailure(f"SMTP {response.code}: {response.message}") from None
            if response.code in BUSY:
                raise self.limiter.busy(f"SMTP {response.code}: {response.message}") from None
            raise TransientFailure(f"SMTP {response.code}: {response.message}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as failed:
            reason = f"SMTP: {type(failed).__name__}: {failed}"
            if session.handed_over:  # DATA went out, its answer did not come back
                raise UncertainFailure(f"{reason} (after the message was sent)") from None
            raise TransientFailure(reason) from None
        del errors  # refusals of some recipients only: the others have the message
        return str(message["Message-ID"])
