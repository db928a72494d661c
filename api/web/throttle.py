"""Failed sign-ins, counted per account and per client address, so guessing is slowed.

Kept in memory, per API process: a failure costs no database write (a flood of wrong passwords
cannot load the database), and the count only has to live as long as its window. The price: a
restart forgets the counts, and N API processes allow up to N times the attempts; with one or
two processes behind a proxy that is still a few guesses a minute per account.
"""

from __future__ import annotations

import time
from collections import deque

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60


class SignInThrottle:
    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window: float = WINDOW_SECONDS,
        clock=time.monotonic,  # type: ignore[no-untyped-def]
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        cutoff = self._clock() - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def wait_seconds(self, *keys: str) -> int:
        """0 when a sign-in may be tried now; else how long until one may."""
        waits = []
        for key in keys:
            failures = self._recent(key)
            if len(failures) >= self.max_failures:
                waits.append(failures[-self.max_failures] + self.window - self._clock())
        return max(1, int(max(waits)) + 1) if waits else 0

    def failed(self, *keys: str) -> None:
        if len(self._failures) > 100_000:  # a flood of new keys must not grow without bound
            self._failures.clear()
        for key in keys:
            self._failures.setdefault(key, deque()).append(self._clock())
            while len(self._failures[key]) > self.max_failures:
                self._failures[key].popleft()

    def succeeded(self, account_key: str) -> None:
        self._failures.pop(account_key, None)


def account_key(login: str) -> str:
    return "account:" + login.strip().lower()


def address_key(host: str | None) -> str:
    return "address:" + (host or "unknown")
