"""The Jobline API served by uvicorn in a process of its own, on 127.0.0.1, for promises that only
show over a real socket (what the server reads of a body, and when); and a raw HTTP/1.1 client
that keeps sending a body while it watches for the answer, as a hostile client would.

httpx.ASGITransport hands the app the whole body at once, so it cannot show any of this.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ApiProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def memory_kib(self) -> dict[str, int]:
        """VmRSS (now) and VmHWM (the peak so far) of the server process, in KiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}


UVICORN = [
    sys.executable,
    "-m",
    "uvicorn",
    "api.app:create_app",
    "--factory",
    "--log-level",
    "warning",
]


def start_api(
    env: dict[str, str],
    log: Path,
    *,
    command: list[str] | None = None,
    port: int | None = None,
    within: float = 60,
) -> ApiProcess:
    """The API started by `command` (uvicorn serving `api.app:create_app` unless given; `--host`
    and `--port` are appended) on 127.0.0.1, once /livez answers. Its output is appended to `log`,
    so a restart on the same `port` (as after a crash) keeps the earlier output."""
    port = port or free_port()
    full = [*(command or UVICORN), "--host", "127.0.0.1", "--port", str(port)]
    with log.open("ab") as output:
        process = subprocess.Popen(
            full, cwd=ROOT, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT
        )
    server = ApiProcess(process, port, log)
    deadline = time.monotonic() + within
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the API exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/livez", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            stop(server)
            raise RuntimeError(f"the API did not start: {log.read_text()[-3000:]}")
        time.sleep(0.2)


def stop(server: ApiProcess) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@contextmanager
def api_process(env: dict[str, str], log: Path, within: float = 60) -> Iterator[ApiProcess]:
    """uvicorn serving `api.app:create_app`, configured by `JOBLINE_*` variables in `env`."""
    log.write_bytes(b"")
    server = start_api(env, log, within=within)
    try:
        yield server
    finally:
        stop(server)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the client got out before the answer came

    def json(self) -> dict:
        return json.loads(self.body)


def _framed(chunks: Iterable[bytes], chunked: bool) -> Iterator[bytes]:
    for chunk in chunks:
        yield b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk
    if chunked:
        yield b"0\r\n\r\n"


def _answer(data: bytes) -> tuple[int, dict[str, str], bytes] | None:
    """The response in `data` once it is complete (with a Content-Length, as Jobline's are)."""
    head, found, rest = data.partition(b"\r\n\r\n")
    if not found:
        return None
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    length = int(headers.get("content-length", "0"))
    if len(rest) < length:
        return None
    return int(lines[0].split()[1]), headers, rest[:length]


def exchange(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Iterable[bytes],
    *,
    chunked: bool = False,
    within: float = 60,
) -> Answer:
    """Send a request, body and all, until the server answers or stops reading; return the answer
    and how much of the body went out first. A server that answers early and closes is no error:
    that is what a refusal of a body should look like."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    pending = ("\r\n".join(lines) + "\r\n\r\n").encode()
    head_size = len(pending)
    frames = _framed(body, chunked)
    sent = 0
    received = b""
    deadline = time.monotonic() + within
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setblocking(False)
        sending = True
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer within {within} s; got {received[:200]!r}")
            if sending and not pending:
                pending = next(frames, b"")
                sending = bool(pending)
            readable, writable, _ = select.select([sock], [sock] if sending else [], [], 1)
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                received += data
                answer = _answer(received)
                if answer is not None:
                    return Answer(*answer, sent=max(0, sent - head_size))
                if not data:
                    raise ConnectionError(f"closed without an answer: {received[:200]!r}")
            if writable and sending:
                try:
                    count = sock.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    sending = False  # the server stopped reading: its answer may be waiting
                    continue
                sent += count
                pending = pending[count:]
