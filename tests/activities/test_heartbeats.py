"""activities/heartbeats.py: an activity waiting on slow work keeps heartbeating, and its work is
cancelled with it."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.testing import ActivityEnvironment

from activities.heartbeats import heartbeating


async def test_slow_work_heartbeats_until_it_returns() -> None:
    beats: list[object] = []
    two_beats = asyncio.Event()
    env = ActivityEnvironment()

    def beat(*details: object) -> None:
        beats.append(details)
        if len(beats) == 2:
            two_beats.set()

    env.on_heartbeat = beat

    async def slow() -> str:
        # Done only once it has been heartbeated for twice, however slow the machine.
        await two_beats.wait()
        return "pdf"

    async def activity_body() -> str:
        return await heartbeating(slow(), every=0.05)

    assert await asyncio.wait_for(env.run(activity_body), timeout=30) == "pdf"
    assert 2 <= len(beats) <= 3, beats  # it stops heartbeating once the work is done


async def test_quick_work_needs_no_heartbeat_and_runs_outside_an_activity() -> None:
    beats: list[object] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)

    async def quick() -> int:
        return 7

    async def activity_body() -> int:
        return await heartbeating(quick(), every=0.1)

    assert await env.run(activity_body) == 7
    assert beats == []
    assert await heartbeating(quick()) == 7  # a test calling the activity method directly


async def test_a_cancelled_attempt_cancels_its_work() -> None:
    env = ActivityEnvironment()
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def endless() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def activity_body() -> None:
        await heartbeating(endless(), every=0.05)

    attempt = asyncio.ensure_future(env.run(activity_body))
    await started.wait()
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt
    assert cancelled.is_set()
