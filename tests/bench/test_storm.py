"""The reminder storm (issue 12, item 3) in small, through bench/storm.py as a person runs it: a
real worker's queue_messages and deliver_message, the real SendGrid client, a fake SendGrid that
takes 10 mails a second and answers 429 above that.

With the worker's limit just under the provider's rate, the storm goes through at no more than
that rate with few 429s; with no limit, the 429s (Retry-After) and the back-off do the work
alone. Either way every reminder is sent, once.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.run import run_bench

# A benchmark on its own stack of processes: run alone (`make test`'s serial pass).
pytestmark = pytest.mark.serial

# A provider slower than the worker (which reaches 25-40 deliveries a second here), so that its
# rate is what holds the storm back.
MESSAGES = 150
PROVIDER_RATE = 10


# The worker's limit a little under the provider's, as the README advises: between a turn and its
# request is the commit of `sending`, and on a busy machine its time varies enough to put one
# request more in a second now and then (each such 429 holds every delivery for its Retry-After).
@pytest.mark.parametrize("worker_rate", [PROVIDER_RATE * 0.9, 0])
def test_a_storm_is_delivered_once_within_the_providers_rate(
    tmp_path: Path, worker_rate: float
) -> None:
    out = tmp_path / "storm.json"
    stdout = run_bench(
        "storm.py",
        "--messages",
        str(MESSAGES),
        "--provider-rate",
        str(PROVIDER_RATE),
        "--worker-rate",
        str(worker_rate),
        "--shards",
        "3",
        "--json",
        str(out),
        timeout_s=420,
    )
    f = json.loads(out.read_text())
    assert f["by_status"] == {"sent": MESSAGES}, stdout
    assert f["accepted"] == f["keys_accepted"] == MESSAGES, stdout
    assert f["duplicates"] == 0, stdout
    assert f["queued_s"] is not None and f["finished_s"] is not None, stdout
    assert f["achieved_per_s"] <= PROVIDER_RATE * 1.05, stdout
    assert f["finished_s"] >= (MESSAGES - 1) / PROVIDER_RATE, stdout
    if worker_rate:
        assert f["too_many"] <= MESSAGES * 0.05, stdout
    else:
        assert f["too_many"] > 0, stdout
