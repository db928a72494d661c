"""Email over SMTP with aiosmtplib."""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import parseaddr

import aiosmtplib

from activities.delivery.base import Email, PermanentFailure, TransientFailure
from core.config import Settings


def message_id(idempotency_key: str, sender: str) -> str:
    """`<key@sender's domain>`: the same key always gives the same Message-ID."""
    local = re.sub(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]", ".", idempotency_key).strip(".")
    domain = parseaddr(sender)[1].rpartition("@")[2] or "jobline"
    return f"<{local}@{domain}>"


class SmtpBackend:
    name = "smtp"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def message(self, email: Email) -> EmailMessage:
        message = EmailMessage()
        message["From"] = email.sender
        message["To"] = ", ".join(email.to)
        if email.cc:
            message["Cc"] = ", ".join(email.cc)
        message["Subject"] = email.subject
        # The same key gives the same Message-ID, so a receiving server can spot a duplicate.
        message["Message-ID"] = message_id(email.idempotency_key, email.sender)
        message.set_content(email.body)
        for attachment in email.attachments:
            main, sub = attachment.mime_type.split("/", 1)
            message.add_attachment(
                attachment.content, maintype=main, subtype=sub, filename=attachment.filename
            )
        return message

    async def send_email(self, email: Email) -> str | None:
        s = self.settings
        message = self.message(email)
        try:
            errors, _ = await aiosmtplib.send(
                message,
                recipients=[*email.to, *email.cc, *email.bcc],
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username or None,
                password=s.smtp_password or None,
                start_tls=s.smtp_starttls,
                use_tls=s.smtp_tls,
                timeout=s.provider_timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as refused:
            reason = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in refused.recipients)
            # 4xx (421 busy, 450 mailbox unavailable, greylisting) is "try again later".
            if all(500 <= r.code < 600 for r in refused.recipients):
                raise PermanentFailure(f"SMTP refused every recipient: {reason}") from None
            raise TransientFailure(f"SMTP refused every recipient for now: {reason}") from None
        except aiosmtplib.SMTPResponseException as response:
            if 500 <= response.code < 600:
                raise PermanentFailure(f"SMTP {response.code}: {response.message}") from None
            raise TransientFailure(f"SMTP {response.code}: {response.message}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as failed:
            raise TransientFailure(f"SMTP: {type(failed).__name__}: {failed}") from None
        del errors  # refusals of some recipients only: the others have the message
        return str(message["Message-ID"])
