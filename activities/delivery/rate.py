"""How fast a worker hands messages to a provider, and how it backs off when told to slow down.

Each backend has one `RateLimiter` (a worker process has one backend per channel, so the limit
is the worker's: with several workers, give each the provider's limit divided by their number).
A delivery takes a turn from it before the message is marked `sending`, so a wait never widens
the window in which a dead worker leaves a message in doubt. A turn that would come later than
the activity can wait for (its start-to-close timeout, less the provider's own time) is not
taken: the attempt ends with `RateLimited`, the row untouched, and Temporal tries again when the
turn would have come.

A provider that answers "too many" (HTTP 429, SMTP 421/451/452) did not take the message: it is
`ProviderBusy`, retried after the provider's `Retry-After` (else an exponential back-off), and the
limiter pauses every delivery of the process for that long.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.attempts import attempt
from activities.delivery.base import TransientFailure

log = logging.getLogger("jobline.delivery")
# Exponential back-off when the provider says "too many" without saying for how long.
BACKOFF_FIRST = 2.0
BACKOFF_MOST = 300.0
# Room kept in the activity's start-to-close timeout beside the provider's own time.
TIMEOUT_MARGIN = 5.0


class RetryLater(ApplicationError, TransientFailure):
    """A transient failure that tells Temporal when to retry (`next_retry_delay`)."""

    def __init__(self, message: str, delay: float) -> None:
        # No `type`: it would be prefixed to the message, which is what the outbox row records.
        super().__init__(
            message,
            next_retry_delay=timedelta(seconds=max(delay, 0.001)),
            # Flow control, not an error: the worker logs it at DEBUG, with no traceback (a storm
            # makes thousands); the backend logs each "too many" once, and the row records it.
            category=ApplicationErrorCategory.BENIGN,
        )
        self.delay = delay

    @property
    def type(self) -> str | None:  # the failure's type in Temporal's history and UI
        return type(self).__name__


class ProviderBusy(RetryLater):
    """The provider refused for now because of its rate (429 and the like): not handed over,
    retried after `delay` seconds."""


class RateLimited(RetryLater):
    """This worker's own limit had no turn free within the time the attempt may wait: the
    message was not handed over, nor marked, nor counted; retried after `delay` seconds."""


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a `Retry-After` header: delay-seconds or an HTTP date (None: absent or not
    understood)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff(number: int | None = None) -> float:
    """The wait after the `number`th "too many" without a Retry-After (this attempt's number by
    default): 2, 4, 8 … seconds up to 5 minutes, with up to 10% jitter so that messages refused
    together do not all come back together."""
    number = attempt() if number is None else number
    delay = min(BACKOFF_MOST, BACKOFF_FIRST * 2 ** max(0, number - 1))
    return delay * (1 + random.random() / 10)  # noqa: S311 (jitter, not a secret)


def busy(reason: str, header: str | None = None) -> ProviderBusy:
    """The failure for a provider's "too many", waiting what it asked for (plus a little jitter,
    never less) or the back-off."""
    asked = retry_after(header)
    if asked is None:
        return ProviderBusy(reason, backoff())
    return ProviderBusy(f"{reason} (retry after {asked:g} s)", asked + random.random() / 4)  # noqa: S311


def turn_budget(provider_timeout: float) -> float | None:
    """How long this activity attempt may wait for a turn and still hand the message over and
    get the answer within its start-to-close timeout (None outside an activity or without one)."""
    if not activity.in_activity():
        return None
    info = activity.info()
    if info.start_to_close_timeout is None:
        return None
    elapsed = (datetime.now(UTC) - info.started_time).total_seconds()
    left = info.start_to_close_timeout.total_seconds() - max(0.0, elapsed)
    return max(0.0, left - provider_timeout - TIMEOUT_MARGIN)


class RateLimiter:
    """Turns at most `rate` per second (None: no limit), spaced evenly (a burst of one), shared
    by every delivery of the event loop; `pause(s)` holds all turns for s seconds.

    asyncio-safe: a turn is reserved without an await between reading and moving the schedule,
    so concurrent callers get distinct, ordered turns.
    """

    def __init__(self, rate: float | None, name: str = "", provider_timeout: float = 0.0) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"a rate must be positive, not {rate}")
        self.rate = rate
        self.name = name
        self.provider_timeout = provider_timeout
        self._interval = 1.0 / rate if rate else 0.0
        self._next = 0.0  # monotonic time of the next free turn
        self._paused_until = 0.0

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - time.monotonic())

    def pause(self, seconds: float) -> None:
        """Every turn waits until `seconds` from now (a longer pause already set stays)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def busy(self, reason: str, header: str | None = None) -> ProviderBusy:
        """The provider's "too many": the failure to raise, after pausing every turn for as
        long as it says to wait."""
        failure = busy(reason, header)
        self.pause(failure.delay)
        log.warning("%s: every delivery of this worker waits %.1f s", reason, failure.delay)
        return failure

    def next_turn_in(self) -> float:
        now = time.monotonic()
        return max(now, self._next, self._paused_until) - now

    async def turn(self) -> None:
        """A turn for one hand-over in this activity attempt: waits at most as long as leaves
        the provider its time within the attempt's timeout (`turn_budget`)."""
        await self.acquire(turn_budget(self.provider_timeout))

    async def acquire(self, within: float | None = None) -> None:
        """Wait for a turn. `within`: the longest wait allowed; a turn further off raises
        `RateLimited` (nothing reserved) with the wait it would have been."""
        deadline = None if within is None else time.monotonic() + within
        while True:
            now = time.monotonic()
            turn = max(now, self._next, self._paused_until)
            if deadline is not None and turn > max(now, deadline):  # a turn free now is taken
                wait = turn - now
                where = f"{self.name} " if self.name else ""
                raise RateLimited(
                    f"{where}rate limit: the next turn is {wait:.1f} s away; retried then", wait
                )
            self._next = turn + self._interval
            if turn <= now:
                return
            await asyncio.sleep(turn - now)
            if self._paused_until <= time.monotonic():
                return
            # Paused while this caller slept (a 429 to another delivery): a turn after the pause.
