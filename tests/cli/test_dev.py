"""`jobline dev` and `jobline user add`, run as a person would run them: real processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from api.users.service import authenticate
from cli.demo import BACKDATED_JOBS, DEMO_JOBS
from core.db import Database

JOBLINE = [sys.executable, "-m", "cli.main"]
DEMO_COUNT = len(DEMO_JOBS) + len(BACKDATED_JOBS)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("JOBLINE_")}


class DevProcess:
    def __init__(
        self, data_dir: Path, port: int, temporal_port: int, ui_port: int, demo: bool = True
    ) -> None:
        self.ports = (port, temporal_port, ui_port)
        self.process = subprocess.Popen(
            [
                *JOBLINE,
                "dev",
                "--data-dir",
                str(data_dir),
                "--port",
                str(port),
                "--temporal-port",
                str(temporal_port),
                "--ui-port",
                str(ui_port),
                *([] if demo else ["--no-demo"]),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_clean_env(),
        )
        self.output = ""

    def read_rest(self) -> str:
        """What it printed up to its exit (call after `stop`)."""
        assert self.process.stdout is not None
        self.output += self.process.stdout.read()
        return self.output

    def wait_until_running(self, seconds: float = 300) -> str:
        # 19-22 s on a quiet 2-core machine; in the suite's first pass, beside three other
        # workers' servers and browsers (load average 11), the demo's jobs once took over 120 s.
        deadline = time.monotonic() + seconds
        assert self.process.stdout is not None
        while "Ctrl-C stops everything." not in self.output:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError(f"jobline dev exited:\n{self.output}")
            self.output += line
            assert time.monotonic() < deadline, self.output
        return self.output

    def kill(self) -> None:
        """SIGKILL it and all it started: `jobline dev` killed alone leaves its Temporal server,
        worker and API running (a failed start once left them for the rest of a CI run)."""
        with contextlib.suppress(psutil.Error):
            children = psutil.Process(self.process.pid).children(recursive=True)
            self.process.kill()
            for child in children:
                with contextlib.suppress(psutil.Error):
                    child.kill()
        self.process.wait()

    def stop(self) -> None:
        children = psutil.Process(self.process.pid).children(recursive=True)
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        gone, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, f"left running after Ctrl-C: {alive}"


def test_dev_starts_restarts_and_keeps_jobs(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ports = (_free_port(), _free_port(), _free_port())
    first = DevProcess(data_dir, *ports)
    try:
        banner = first.wait_until_running()
    finally:
        if first.process.poll() is None and "Ctrl-C" not in first.output:
            first.kill()
    try:
        assert f"Demo data    {DEMO_COUNT} jobs" in banner
        users = re.findall(r"^\s+\w+\s+(\w+)\s+(\S+)\s+(jl_demo_\w+)$", banner, re.M)
        tokens = {user: token for user, _, token in users}
        assert set(tokens) == {"ada", "mia", "olga", "sam", "tess"}
        base = f"http://127.0.0.1:{ports[0]}"
        # The printed password signs the person in to the web pages.
        password = next(password for user, password, _ in users if user == "olga")
        with httpx.Client(base_url=base) as browser:
            form = browser.get("/signin").text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
            assert csrf is not None, form
            signed_in = browser.post(
                "/signin",
                data={"login": "olga", "password": password, "csrf_token": csrf.group(1)},
            )
            assert signed_in.status_code == 303, signed_in.text
            assert "Signed in as <strong>Olga Brandt</strong>" in browser.get("/jobs").text
        office = {"Authorization": f"Bearer {tokens['olga']}"}
        jobs = httpx.get(f"{base}/api/v1/jobs", headers=office).json()
        assert jobs["total"] == DEMO_COUNT
        stages = {item["stage"] for item in jobs["items"]}
        assert {"lead", "closed", "canceled", "awaiting_parts", "completed", "invoiced"} <= stages
        # The backdated stuck job and stale quote are flagged by their workflows moments later.
        deadline = time.monotonic() + 60
        while True:
            stuck = httpx.get(f"{base}/api/v1/jobs", params={"stuck": True}, headers=office)
            if stuck.json()["total"] >= len(BACKDATED_JOBS) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert {i["stage"] for i in stuck.json()["items"]} == {"prospect", "quote_sent"}
        assert httpx.get(f"{base}/healthz").json()["checks"]["temporal"] == "ok"
        assert httpx.get(f"http://127.0.0.1:{ports[2]}").status_code == 200  # Temporal Web UI

        listed = subprocess.run(
            [
                str(Path(sys.executable).parent / "temporal"),
                "workflow",
                "list",
                "--address",
                f"127.0.0.1:{ports[1]}",
                "--query",
                "JobStage='closed'",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "JobWorkflow" in listed
    finally:
        first.stop()
    assert not any(_port_in_use(p) for p in ports), "a port is still held after Ctrl-C"

    second = DevProcess(data_dir, *ports)
    try:
        banner = second.wait_until_running()
        assert "Demo data" not in banner  # the data was kept, not recreated
        assert tokens["olga"] in banner  # the same demo tokens work again
        jobs = httpx.get(f"{base}/api/v1/jobs", params={"stage": "awaiting_parts"}, headers=office)
        waiting = jobs.json()["items"]
        assert len(waiting) == 2  # one with its parts overdue
        slug = waiting[0]["slug"]
        sku = httpx.get(f"{base}/api/v1/jobs/{slug}", headers=office).json()["parts"][0]["line"][
            "sku"
        ]
        delivered = httpx.post(
            f"{base}/api/v1/jobs/{slug}/events",
            json={"type": "parts_delivered", "skus": [sku]},
            headers=office,
        )
        assert delivered.status_code == 200, delivered.text
        assert delivered.json()["stage"] == "ready_to_schedule"
        assert httpx.get(f"{base}/api/v1/jobs", headers=office).json()["total"] == DEMO_COUNT
    finally:
        second.stop()


def test_user_add_prints_a_working_token(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("JOBLINE_")},
        "JOBLINE_DATA_DIR": str(tmp_path),
    }
    subprocess.run([*JOBLINE, "migrate"], capture_output=True, env=env, check=True)
    added = subprocess.run(
        [
            *JOBLINE,
            *("user", "add", "carla", "--role", "office", "--email", "carla@example.com"),
            "--password-stdin",
        ],
        input="correct horse battery\n",
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    token = added.stdout.strip()
    assert token.startswith("jl_") and len(token) > 40

    async def _who() -> str | None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'jobline.db'}")
        try:
            async with db.session() as session:
                user = await authenticate(session, token)
                return user.username if user else None
        finally:
            await db.dispose()

    assert asyncio.run(_who()) == "carla"
    again = subprocess.run(
        [*JOBLINE, "user", "add", "carla", "--role", "office", "--no-password"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert again.returncode == 2 and "already exists" in again.stderr
    bad = subprocess.run(
        [*JOBLINE, "user", "add", "x", "--role", "wizard"], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def _child(dev: subprocess.Popen[str], marker: str) -> psutil.Process | None:
    """The child of `jobline dev` whose command line has `marker` (`worker`, `api`)."""
    for child in psutil.Process(dev.pid).children():
        with contextlib.suppress(psutil.Error):
            if marker in child.cmdline()[3:]:
                return child
    return None


def _new_child(dev: DevProcess, marker: str, old_pid: int, seconds: float = 60) -> psutil.Process:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        child = _child(dev.process, marker)
        if child is not None and child.pid != old_pid:
            return child
        time.sleep(0.2)
    raise AssertionError(f"no new {marker} after {seconds:g} s:\n{dev.output}")


def test_dev_starts_a_crashed_worker_and_api_again(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ports = (_free_port(), _free_port(), _free_port())
    dev = DevProcess(data_dir, *ports, demo=False)
    try:
        dev.wait_until_running()
        base = f"http://127.0.0.1:{ports[0]}"
        token = subprocess.run(
            [*JOBLINE, "user", "add", "carla", "--role", "office", "--no-password"],
            capture_output=True,
            text=True,
            env={**_clean_env(), "JOBLINE_DATA_DIR": str(data_dir)},
            check=True,
        ).stdout.strip()
        office = {"Authorization": f"Bearer {token}"}
        client = httpx.post(f"{base}/api/v1/clients", json={"name": "Zoe"}, headers=office)
        assert client.status_code == 201, client.text

        for marker in ("worker", "api"):
            crashed = _child(dev.process, marker)
            assert crashed is not None, dev.output
            crashed.kill()  # SIGKILL, as the OOM killer or an operator would
            _new_child(dev, marker, crashed.pid)
            assert dev.process.poll() is None, "jobline dev stopped when one child died"

        # The stack works again: a new job needs the new worker (its workflow) and the new API.
        job = {"client_id": client.json()["id"], "title": "After", "source": "incoming_call"}
        deadline = time.monotonic() + 60
        answer: httpx.Response | httpx.HTTPError | None = None
        while not (isinstance(answer, httpx.Response) and answer.status_code == 201):
            assert time.monotonic() < deadline, (answer, getattr(answer, "text", ""))
            time.sleep(0.5)
            try:
                answer = httpx.post(f"{base}/api/v1/jobs", json=job, headers=office, timeout=30)
            except httpx.HTTPError as failed:
                answer = failed
        assert answer.json()["stage"] == "lead"
    finally:
        dev.stop()
    log = dev.read_rest()
    for name in ("worker", "api"):
        assert f"the {name} exited with code -9" in log and f"starting the {name} again" in log


@pytest.mark.parametrize("taken", ["api", "temporal", "ui"])
def test_dev_refuses_ports_already_in_use(tmp_path: Path, taken: str) -> None:
    """A second stack on busy ports would talk to the first one's servers: refused, naming the
    port and what to do, before anything starts."""
    ports = {"api": _free_port(), "temporal": _free_port(), "ui": _free_port()}
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", ports[taken]))
        occupant.listen()
        dev = DevProcess(tmp_path / "data", ports["api"], ports["temporal"], ports["ui"])
        output, _ = dev.process.communicate(timeout=60)
    assert dev.process.returncode == 2, output
    assert f"port {ports[taken]}" in output and "already in use" in output
    option = {"api": "--port", "temporal": "--temporal-port", "ui": "--ui-port"}[taken]
    assert option in output
    assert "Starting Temporal" not in output
    assert not (tmp_path / "data" / "temporal.log").exists()  # nothing was started
