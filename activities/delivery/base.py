"""What every delivery backend does, and the ways a send can fail.

A backend does everything it can before the message leaves (builds the request, connects, has
the recipients accepted) and awaits `handing_over()` immediately before the one step that hands
the message to the provider. The caller commits `sending` there, so a worker that dies before
that step leaves the message `queued` (safe to send again) and only one that dies during it, or
before the answer is recorded, leaves it in doubt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

T = TypeVar("T")
HandingOver = Callable[[], Awaitable[None]]


async def no_record() -> None:
    """For a backend called on its own (a test, a script): nothing to record."""


class PermanentFailure(Exception):
    """The provider refused the message for good (bad number, rejected address): not retried."""


class UncertainFailure(Exception):
    """The message was handed over but no answer came back (a read timeout, a dropped
    connection): the provider may have it. Not retried, so it is never sent twice; marked
    `unknown` for a person."""


class TransientFailure(Exception):
    """Timeouts before the hand-over, 5xx, 429: the activity raises and Temporal retries."""


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

    async def send_email(self, email: Email, handing_over: HandingOver = no_record) -> str | None:
        """Send; return the provider's message id. Awaits `handing_over()` once, immediately
        before the message leaves. Raises Permanent-, Transient- or UncertainFailure."""
        ...


class SmsBackend(Protocol):
    name: str

    async def send_sms(self, sms: Sms, handing_over: HandingOver = no_record) -> str | None: ...


class Turns(Protocol):
    """A rate limiter's turns (activities/delivery/rate.py)."""

    async def turn(self) -> None: ...


class ProviderThreads:
    """Threads of a backend's own for its blocking client library (sendgrid, twilio).

    On the event loop's shared executor a call could wait behind other work while its message
    already said `sending`; a worker killed then left a message in doubt that never left. Here a
    caller takes a free thread first, then its turn from the rate limiter, then marks the
    message, and the call starts at once.
    """

    def __init__(self, name: str, size: int = 64) -> None:
        self.size = size
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"send-{name}")
        self._free: asyncio.Semaphore | None = None

    async def call(
        self,
        handing_over: HandingOver,
        send: Callable[[], T],
        turns: Turns | None = None,
    ) -> T:
        if self._free is None:
            self._free = asyncio.Semaphore(self.size)
        async with self._free:
            if turns is not None:
                await turns.turn()
            await handing_over()
            return await asyncio.get_running_loop().run_in_executor(self._executor, send)


class Outbox:
    """The default: nothing leaves the building; messages are captured and shown in the UI."""

    name = "outbox"

    async def send_email(self, email: Email, handing_over: HandingOver = no_record) -> str | None:
        return None

    async def send_sms(self, sms: Sms, handing_over: HandingOver = no_record) -> str | None:
        return None
