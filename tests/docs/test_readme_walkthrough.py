"""The README's walkthrough, pasted as a newcomer would: its shell block runs in bash, with curl,
against a real `jobline api` (uvicorn in a process of its own) and the test stack's worker,
database and Temporal server, with the demo users' tokens in TOKEN_OLGA and the others.

It must take its job from `lead` to `closed` with the ids the API returned, and every step must
print the stage the README says. SQLite only: this is about the README, not the backend.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest

from tests.api.test_over_uvicorn import api_process
from tests.conftest import Stack

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "# Walkthrough: a job from lead to closed."
STAGES = [
    "lead",  # owner assigned: still a lead
    "prospect",
    "quoting",
    "quote_sent",
    "approved",
    "scheduled",
    "scheduled",  # the checklist: still scheduled, now ready to dispatch
    "dispatched",
    "on_site",
    "completed",
    "invoiced",
    "verified",
    "closed",
]


def walkthrough() -> str:
    """The README's fenced shell block that starts with the walkthrough's marker line."""
    blocks = re.findall(r"^```sh\n(.*?)^```$", README.read_text(), re.S | re.M)
    found = [block for block in blocks if block.startswith(MARKER)]
    assert len(found) == 1, f"one ```sh block starting {MARKER!r} in README.md"
    return found[0]


def test_the_walkthrough_has_no_hard_coded_ids() -> None:
    script = walkthrough()
    assert "/jobs/$SLUG/events" in script and "$CLIENT_ID" in script
    assert not re.search(r'"client_id": \d', script)
    assert "jl_demo" not in script  # the tokens come from the environment


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_the_readme_walkthrough_takes_a_job_to_closed(stack: Stack) -> None:
    with api_process(stack) as base:
        env = {
            "PATH": os.environ["PATH"],
            "JOBLINE_URL": base,
            **{f"TOKEN_{n.upper()}": stack.tokens[n] for n in ("olga", "sam", "mia", "tess")},
        }
        # As pasted into bash, with one difference: the first failing step stops the run. The
        # worker runs in this test's event loop, so the script is awaited, not waited for.
        bash = await asyncio.create_subprocess_exec(
            "bash",
            "-e",
            "-o",
            "pipefail",
            "-c",
            walkthrough(),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(bash.communicate(), timeout=300)
    stdout, stderr = out.decode(), err.decode()
    assert bash.returncode == 0, f"stdout:\n{stdout}\nstderr:\n{stderr}"
    printed = stdout.split()
    assert printed[0] == "job", stdout
    # Every step printed the stage the README's comments name, from lead to closed.
    assert printed[2:] == STAGES, stdout

    # Read back through the API: closed and paid, with the ids the run was given.
    slug = printed[1]
    job = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()
    assert job["stage"] == "closed" and job["owner"] == "sam", job
    assert job["quote"]["total"] == "329.00" and job["number"] is not None
    assert job["client"]["name"] == "Rivera Residence"
    purposes = {m["purpose"] for m in job["communications"]}
    assert {"quote", "appointment", "on_my_way"} <= purposes, purposes
