"""Whether an activity is on its last attempt, read from the retry policy it was scheduled with.

The workflow's retry policy is the one place an attempt limit is written. Activities that give up
gracefully on their last attempt (a message marked failed, a webhook given up on) read the limit
from their own info, so the two can never drift apart and leave a message `queued` for ever.
"""

from __future__ import annotations

from temporalio import activity


def attempt() -> int:
    """This attempt's number (1 outside an activity, as when called directly)."""
    return activity.info().attempt if activity.in_activity() else 1


def is_last_attempt() -> bool:
    """True on the attempt after which Temporal will not retry (never, with no limit)."""
    if not activity.in_activity():
        return False
    info = activity.info()
    limit = info.retry_policy.maximum_attempts if info.retry_policy else 0
    return limit > 0 and info.attempt >= limit
