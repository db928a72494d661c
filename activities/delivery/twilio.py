"""SMS through Twilio with the `twilio` library (base URL configurable)."""

from __future__ import annotations

import asyncio

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from activities.delivery.base import PermanentFailure, Sms, TransientFailure, UncertainFailure
from core.config import Settings


class TwilioBackend:
    name = "twilio"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        http = TwilioHttpClient(timeout=settings.provider_timeout, max_retries=None)
        self.client = Client(
            settings.twilio_account_sid, settings.twilio_auth_token, http_client=http
        )
        self.client.api.base_url = settings.twilio_base_url.rstrip("/")

    def _send(self, sms: Sms) -> str | None:
        message = self.client.messages.create(
            to=sms.to, from_=self.settings.twilio_from_number, body=sms.body
        )
        return message.sid

    async def send_sms(self, sms: Sms) -> str | None:
        try:
            return await asyncio.to_thread(self._send, sms)
        except TwilioRestException as error:
            reason = f"Twilio {error.status}" + (f" (code {error.code})" if error.code else "")
            reason += f": {error.msg}"
            if error.status == 429 or error.status >= 500:
                raise TransientFailure(reason) from None
            raise PermanentFailure(reason) from None
        except requests.exceptions.ReadTimeout as slow:
            raise UncertainFailure(f"Twilio: no answer in time: {slow}") from None
        except OSError as failed:  # requests' ConnectionError and ConnectTimeout are OSErrors
            raise TransientFailure(f"Twilio: {type(failed).__name__}: {failed}") from None
