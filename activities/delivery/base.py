"""What every delivery backend does, and the two ways a send can fail."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class PermanentFailure(Exception):
    """The provider refused the message for good (bad number, rejected address): not retried."""


class UncertainFailure(Exception):
    """The request reached the provider but no answer came back (a read timeout): it may have
    the message. Not retried, so it is never sent twice; marked `unknown` for a person."""


class TransientFailure(Exception):
    """Timeouts, 5xx, 429: the activity raises and Temporal retries with backoff."""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str = "application/pdf"


@dataclass(frozen=True)
class Email:
    idempotency_key: str
    sender: str
    to: list[str]
    subject: str
    body: str
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)


@dataclass(frozen=True)
class Sms:
    idempotency_key: str
    to: str
    body: str


class EmailBackend(Protocol):
    name: str

    async def send_email(self, email: Email) -> str | None:
        """Send; return the provider's message id. Raise Permanent- or TransientFailure."""
        ...


class SmsBackend(Protocol):
    name: str

    async def send_sms(self, sms: Sms) -> str | None: ...


class Outbox:
    """The default: nothing leaves the building; messages are captured and shown in the UI."""

    name = "outbox"

    async def send_email(self, email: Email) -> str | None:
        return None

    async def send_sms(self, sms: Sms) -> str | None:
        return None
