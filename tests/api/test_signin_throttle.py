"""The sign-in throttle's window, on its own clock (the HTTP behaviour is in test_signin.py)."""

from __future__ import annotations

from api.web.throttle import SignInThrottle, account_key, address_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_slow_for_the_window_then_age_out() -> None:
    clock = Clock()
    throttle = SignInThrottle(max_failures=3, window=600, clock=clock)
    keys = (account_key(" Olga "), address_key("10.0.0.1"))
    assert keys[0] == account_key("olga")  # the name as typed, in any case, is one account
    for _ in range(3):
        assert throttle.wait_seconds(*keys) == 0
        throttle.failed(*keys)
        clock.now += 60
    # Three failures at 1000, 1060 and 1120: the first leaves the window at 1600.
    assert throttle.wait_seconds(*keys) == 1600 - 1180 + 1
    assert throttle.wait_seconds(account_key("mia"), address_key("10.0.0.2")) == 0
    assert throttle.wait_seconds(account_key("mia"), keys[1]) > 0  # the same address
    clock.now = 1601
    assert throttle.wait_seconds(*keys) == 0


def test_a_success_clears_the_account_but_not_the_address() -> None:
    clock = Clock()
    throttle = SignInThrottle(max_failures=2, window=600, clock=clock)
    keys = (account_key("olga"), address_key("10.0.0.1"))
    throttle.failed(*keys)
    throttle.failed(account_key("mia"), keys[1])
    assert throttle.wait_seconds(keys[1]) > 0
    throttle.succeeded(keys[0])
    assert throttle.wait_seconds(keys[0]) == 0
    assert throttle.wait_seconds(keys[1]) > 0
