"""Email through SendGrid's v3 API with the `sendgrid` library (base URL configurable)."""

from __future__ import annotations

import asyncio
import base64
import urllib.error

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    Attachment,
    Bcc,
    Cc,
    CustomArg,
    Disposition,
    FileContent,
    FileName,
    FileType,
    Mail,
)

from activities.delivery.base import Email, PermanentFailure, TransientFailure, UncertainFailure
from core.config import Settings


def is_transient(status: int) -> bool:
    return status == 429 or status >= 500 or status == 408


class SendGridBackend:
    name = "sendgrid"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = SendGridAPIClient(settings.sendgrid_api_key, host=settings.sendgrid_base_url)
        self.client.client.timeout = settings.provider_timeout

    def mail(self, email: Email) -> Mail:
        mail = Mail(
            from_email=email.sender,
            to_emails=email.to,
            subject=email.subject,
            plain_text_content=email.body,
        )
        for address in email.cc:
            mail.add_cc(Cc(address))
        for address in email.bcc:
            mail.add_bcc(Bcc(address))
        # Lets SendGrid's event webhook and activity search tie the message to Jobline's key.
        mail.add_custom_arg(CustomArg("idempotency_key", email.idempotency_key))
        for attachment in email.attachments:
            mail.add_attachment(
                Attachment(
                    FileContent(base64.b64encode(attachment.content).decode()),
                    FileName(attachment.filename),
                    FileType(attachment.mime_type),
                    Disposition("attachment"),
                )
            )
        return mail

    def _send(self, mail: Mail) -> str | None:
        response = self.client.send(mail)
        return response.headers.get("X-Message-Id") if response.headers else None

    async def send_email(self, email: Email) -> str | None:
        try:
            return await asyncio.to_thread(self._send, self.mail(email))
        except HTTPError as error:
            body = (
                error.body.decode(errors="replace") if isinstance(error.body, bytes) else error.body
            )
            reason = f"SendGrid {error.status_code}: {str(body)[:300]}"
            if is_transient(error.status_code):
                raise TransientFailure(reason) from None
            raise PermanentFailure(reason) from None
        except urllib.error.URLError as failed:  # could not connect: nothing was sent
            raise TransientFailure(f"SendGrid: {type(failed).__name__}: {failed}") from None
        except TimeoutError as slow:  # sent, but no answer: SendGrid may have it
            raise UncertainFailure(f"SendGrid: no answer in time: {slow}") from None
        except OSError as failed:
            raise TransientFailure(f"SendGrid: {type(failed).__name__}: {failed}") from None
