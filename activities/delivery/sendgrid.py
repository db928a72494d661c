"""Email through SendGrid's v3 API with the `sendgrid` library (base URL configurable).

SendGrid has no idempotency key on its send call: a request it took is a message, and a second
request is a second message. So each mail carries Jobline's key twice, to be recognised later:
in `custom_args` (SendGrid's event webhook and activity search show it) and as an
`X-Jobline-Key` header (in the delivered message itself).
"""

from __future__ import annotations

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
    Header,
    Mail,
)

from activities.delivery.base import (
    Email,
    HandingOver,
    PermanentFailure,
    ProviderThreads,
    TransientFailure,
    UncertainFailure,
    no_record,
)
from activities.delivery.rate import RateLimiter
from core.config import Settings

KEY_HEADER = "X-Jobline-Key"


def is_transient(status: int) -> bool:
    return status == 429 or status >= 500 or status == 408


class SendGridBackend:
    name = "sendgrid"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = SendGridAPIClient(settings.sendgrid_api_key, host=settings.sendgrid_base_url)
        self.client.client.timeout = settings.provider_timeout
        self.threads = ProviderThreads(self.name)
        self.limiter = RateLimiter(
            settings.email_rate_per_second, self.name, settings.provider_timeout
        )

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
        mail.add_custom_arg(CustomArg("idempotency_key", email.idempotency_key))
        mail.add_header(Header(KEY_HEADER, email.idempotency_key))
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

    def _send(self, body: dict[str, object]) -> str | None:
        response = self.client.send(body)
        return response.headers.get("X-Message-Id") if response.headers else None

    async def send_email(self, email: Email, handing_over: HandingOver = no_record) -> str | None:
        body = self.mail(email).get()  # built (attachments encoded) before the message is marked
        try:
            return await self.threads.call(handing_over, lambda: self._send(body), self.limiter)
        except HTTPError as error:
            body_text = (
                error.body.decode(errors="replace") if isinstance(error.body, bytes) else error.body
            )
            reason = f"SendGrid {error.status_code}: {str(body_text)[:300]}"
            if error.status_code == 429:  # not taken: wait as asked, and so does every delivery
                raise self.limiter.busy(reason, (error.headers or {}).get("Retry-After")) from None
            if is_transient(error.status_code):
                raise TransientFailure(reason) from None
            raise PermanentFailure(reason) from None
        except urllib.error.URLError as failed:  # could not connect: nothing was sent
            raise TransientFailure(f"SendGrid: {type(failed).__name__}: {failed}") from None
        except TimeoutError as slow:  # sent, but no answer: SendGrid may have it
            raise UncertainFailure(f"SendGrid: no answer in time: {slow}") from None
        except OSError as dropped:
            # urllib raised every error of sending the request as a URLError (above): this one
            # came while waiting for the answer, so SendGrid may have the mail.
            raise UncertainFailure(
                f"SendGrid: the connection dropped before the answer: {type(dropped).__name__}: "
                f"{dropped}"
            ) from None
