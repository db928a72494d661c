"""SMS through Twilio with the `twilio` library (base URL configurable).

Twilio's Messages API takes no idempotency key (its `I-Twilio-Idempotency-Token` is on the
webhooks it sends, not on the requests it takes): a request it took is an SMS, and a second
request a second SMS. Nothing in the request lets a retry be recognised, so an SMS whose request
may have reached Twilio is never sent again by Jobline; it is marked `unknown` instead.
"""

from __future__ import annotations

import threading
from typing import Any

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from urllib3.exceptions import ProtocolError

from activities.delivery.base import (
    HandingOver,
    PermanentFailure,
    ProviderThreads,
    Sms,
    TransientFailure,
    UncertainFailure,
    no_record,
)
from activities.delivery.rate import RateLimiter
from core.config import Settings


def _answer_lost(error: requests.exceptions.ConnectionError) -> bool:
    """A connection that broke after the request went out (urllib3's ProtocolError: reset or
    closed while the answer was awaited), as opposed to one that never opened."""
    return bool(error.args) and isinstance(error.args[0], ProtocolError)


class _HttpClient(TwilioHttpClient):
    """Keeps each thread's last response, for the headers a TwilioRestException does not carry
    (`Retry-After` on a 429)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.last = threading.local()

    def request(self, *args: Any, **kwargs: Any) -> Response:
        self.last.response = None
        response = super().request(*args, **kwargs)
        self.last.response = response
        return response

    def header(self, name: str) -> str | None:
        response: Response | None = getattr(self.last, "response", None)
        if response is None or not response.headers:
            return None
        value = response.headers.get(name)  # requests' headers: case-insensitive
        return str(value) if value is not None else None


class TwilioBackend:
    name = "twilio"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.http = http = _HttpClient(timeout=settings.provider_timeout, max_retries=None)
        self.client = Client(
            settings.twilio_account_sid, settings.twilio_auth_token, http_client=http
        )
        self.client.api.base_url = settings.twilio_base_url.rstrip("/")
        self.threads = ProviderThreads(self.name)
        self.limiter = RateLimiter(
            settings.sms_rate_per_second, self.name, settings.provider_timeout
        )

    def _send(self, sms: Sms) -> str | None:
        try:
            message = self.client.messages.create(
                to=sms.to, from_=self.settings.twilio_from_number, body=sms.body
            )
        except TwilioRestException as error:
            # Read in the thread that made the request: its Retry-After, if any.
            error.retry_after = self.http.header("Retry-After")  # type: ignore[attr-defined]
            raise
        return message.sid

    async def send_sms(self, sms: Sms, handing_over: HandingOver = no_record) -> str | None:
        try:
            return await self.threads.call(handing_over, lambda: self._send(sms), self.limiter)
        except TwilioRestException as error:
            reason = f"Twilio {error.status}" + (f" (code {error.code})" if error.code else "")
            reason += f": {error.msg}"
            if error.status == 429 or error.code == 20429:  # not taken: wait, as every delivery
                raise self.limiter.busy(reason, getattr(error, "retry_after", None)) from None
            if error.status >= 500:
                raise TransientFailure(reason) from None
            raise PermanentFailure(reason) from None
        except requests.exceptions.ReadTimeout as slow:
            raise UncertainFailure(f"Twilio: no answer in time: {slow}") from None
        except requests.exceptions.ConnectionError as failed:
            if _answer_lost(failed):
                raise UncertainFailure(
                    f"Twilio: the connection dropped before the answer: {failed}"
                ) from None
            raise TransientFailure(f"Twilio: {type(failed).__name__}: {failed}") from None
        except OSError as failed:  # requests' other errors (a connect timeout) are OSErrors
            raise TransientFailure(f"Twilio: {type(failed).__name__}: {failed}") from None
