"""SMS through Twilio with the `twilio` library (base URL configurable).

Twilio's Messages API takes no idempotency key (its `I-Twilio-Idempotency-Token` is on the
webhooks it sends, not on the requests it takes): a request it took is an SMS, and a second
request a second SMS. Nothing in the request lets a retry be recognised, so an SMS whose request
may have reached Twilio is never sent again by Jobline; it is marked `unknown` instead.
"""

from __future__ import annotations

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
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
from core.config import Settings


def _answer_lost(error: requests.exceptions.ConnectionError) -> bool:
    """A connection that broke after the request went out (urllib3's ProtocolError: reset or
    closed while the answer was awaited), as opposed to one that never opened."""
    return bool(error.args) and isinstance(error.args[0], ProtocolError)


class TwilioBackend:
    name = "twilio"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        http = TwilioHttpClient(timeout=settings.provider_timeout, max_retries=None)
        self.client = Client(
            settings.twilio_account_sid, settings.twilio_auth_token, http_client=http
        )
        self.client.api.base_url = settings.twilio_base_url.rstrip("/")
        self.threads = ProviderThreads(self.name)

    def _send(self, sms: Sms) -> str | None:
        message = self.client.messages.create(
            to=sms.to, from_=self.settings.twilio_from_number, body=sms.body
        )
        return message.sid

    async def send_sms(self, sms: Sms, handing_over: HandingOver = no_record) -> str | None:
        try:
            return await self.threads.call(handing_over, lambda: self._send(sms))
        except TwilioRestException as error:
            reason = f"Twilio {error.status}" + (f" (code {error.code})" if error.code else "")
            reason += f": {error.msg}"
            if error.status == 429 or error.status >= 500:
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
