"""Fake delivery providers: small real servers on 127.0.0.1 that record what they receive.

- `FakeSmtp`: an aiosmtpd server. Refuses chosen recipients (`refuse[address] = "550 ..."`),
  answers queued replies to RCPT or DATA (`rcpt_replies`, `data_replies`: "421 ...", "451 ..."),
  and can stall before answering RCPT (`rcpt_delay`) so a client times out.
- `FakeSendGrid`: `POST /v3/mail/send` (Bearer key) → 202 with `X-Message-Id`, JSON bodies kept.
- `FakeTwilio`: `POST /2010-04-01/Accounts/{sid}/Messages.json` (Basic sid:token, form-encoded) →
  201 with the message's `sid`. Numbers in `invalid_numbers` get 400 / error 21211.

The HTTP fakes record every request (and its monotonic time, `at`) before answering it, then wait
`delay` seconds (an accepted message whose answer is held back), then answer the next queued reply
(`fail_next`, `throttle_next`: a 429 with `Retry-After`) or success; `drop_next` takes a request
and closes the connection without an answer. With `per_second` set, a request that would make
more than that many accepted in the last second gets a 429 (`Retry-After: 1`) instead.
Each has a function-scoped pytest fixture (`smtp_server`, `sendgrid_server`, `twilio_server`) that
starts a fresh server and stops it afterwards; import `*_fixture` into a test module to use it.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import email.policy
import inspect
import json
import secrets
import socket
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


async def _result(value: bool | Awaitable[bool]) -> bool:
    return await value if inspect.isawaitable(value) else value


async def wait_until(check: Callable[[], bool | Awaitable[bool]], within: float, what: str) -> None:
    """Polls `check` (plain or async) every 50 ms until it is true, failing after `within` s."""
    deadline = time.monotonic() + within
    while not await _result(check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.05)


# --- HTTP providers --------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: Any = None  # dict/list: JSON; str: text; None: empty
    headers: dict[str, str] = field(default_factory=dict)
    # Taken (the status says how), but the connection is closed instead of answered: the
    # client sees its request go out and no answer come back.
    dropped: bool = False

    def payload(self) -> tuple[bytes, str]:
        if self.body is None:
            return b"", "text/plain"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


@dataclass
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    reply: Reply | None = None  # what the fake answered (or will, once the delay is over)
    at: float = field(default_factory=time.monotonic)  # when it came in

    @property
    def status(self) -> int:
        return self.reply.status if self.reply else 0

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(self.body.decode(), keep_blank_values=True))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a kept-alive client connection must not hold up close()
    fake: FakeHttpProvider


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if len(body) < length:
            return  # the client died mid-request: a real provider takes no half a request
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = HttpRequest(self.command, self.path, headers, body)
        reply, delay = fake._take(request)
        if delay and fake._closing.wait(delay):
            return  # the fake is shutting down: drop the connection unanswered
        if reply.dropped:
            self.close_connection = True
            return
        payload, content_type = reply.payload()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", content_type)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the client gave up waiting (a timeout) or its process was killed

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeHttpProvider:
    """An HTTP server in a thread: records requests, answers programmable replies."""

    name = "http"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._replies: deque[Callable[[HttpRequest], Reply]] = deque()
        self.requests: list[HttpRequest] = []
        self.delay = 0.0
        self.per_second: float | None = None
        self._server = _Server((HOST, 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-{self.name}",
            daemon=True,
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._replies.clear()
            self.delay = 0.0
            self.per_second = None

    def answer_next(self, reply: Reply | Callable[[HttpRequest], Reply], times: int = 1) -> None:
        """The next `times` well-formed requests get this reply instead of success."""
        make = reply if callable(reply) else (lambda _request, reply=reply: reply)
        with self._lock:
            self._replies.extend([make] * times)

    def drop_next(self) -> None:
        """The next well-formed request is taken as a success would be, but its connection is
        closed instead of answered."""
        self.answer_next(lambda request: dataclasses.replace(self.answer(request), dropped=True))

    def throttle_next(self, retry_after: str | None = None, times: int = 1) -> None:
        """The next `times` well-formed requests get "429 Too Many Requests", with this
        `Retry-After` header (seconds or an HTTP date; None: no header)."""
        self.answer_next(lambda request: self.too_many(request, retry_after), times)

    @property
    def accepted(self) -> list[HttpRequest]:
        with self._lock:
            return [r for r in self.requests if r.accepted]

    async def wait_for_requests(self, count: int = 1, within: float = 20) -> list[HttpRequest]:
        await wait_until(
            lambda: len(self.requests) >= count, within, f"{count} request(s) at {self.name}"
        )
        return list(self.requests)

    # Subclasses: refuse a malformed request (wrong path, bad credentials), and say what success
    # (or a standing refusal, like an invalid number) looks like.
    def check(self, request: HttpRequest) -> Reply | None:
        return None

    def answer(self, request: HttpRequest) -> Reply:
        return Reply(200)

    def too_many(self, request: HttpRequest, retry_after: str | None) -> Reply:
        return Reply(429, "Too Many Requests", {"Retry-After": retry_after} if retry_after else {})

    def _over_rate(self, request: HttpRequest) -> bool:
        if self.per_second is None:
            return False
        since = request.at - 1.0
        recent = 0
        for earlier in reversed(self.requests):
            if earlier.at <= since:
                break
            recent += earlier.accepted
        return recent >= self.per_second

    def _take(self, request: HttpRequest) -> tuple[Reply, float]:
        with self._lock:
            request.at = time.monotonic()
            reply = self.check(request)
            if reply is None and self._replies:
                reply = self._replies.popleft()(request)
            if reply is None and self._over_rate(request):
                reply = self.too_many(request, "1")
            if reply is None:
                reply = self.answer(request)
            request.reply = reply
            self.requests.append(request)
            return reply, self.delay


class FakeSendGrid(FakeHttpProvider):
    """SendGrid's v3 mail send endpoint."""

    name = "sendgrid"
    PATH = "/v3/mail/send"

    def __init__(self, api_key: str = "SG.test-key") -> None:
        self.api_key = api_key
        super().__init__()

    @staticmethod
    def error(status: int, message: str, field: str | None = None) -> Reply:
        return Reply(status, {"errors": [{"message": message, "field": field, "help": None}]})

    def fail_next(
        self, status: int, message: str = "failed", field: str | None = None, times: int = 1
    ) -> None:
        self.answer_next(self.error(status, message, field), times)

    def too_many(self, request: HttpRequest, retry_after: str | None) -> Reply:
        reply = self.error(429, "too many requests")
        if retry_after:
            reply.headers["Retry-After"] = retry_after
        return reply

    def check(self, request: HttpRequest) -> Reply | None:
        if request.method != "POST" or request.path != self.PATH:
            return self.error(404, f"no such resource: {request.method} {request.path}")
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return self.error(
                401, "The provided authorization grant is invalid, expired, or revoked"
            )
        return None

    def answer(self, request: HttpRequest) -> Reply:
        return Reply(202, None, {"X-Message-Id": secrets.token_urlsafe(16)})

    @property
    def mails(self) -> list[dict[str, Any]]:
        """The JSON bodies of the mails it accepted."""
        return [r.json() for r in self.accepted]

    def mails_for(self, key: str) -> list[dict[str, Any]]:
        return [m for m in self.mails if m.get("custom_args", {}).get("idempotency_key") == key]


class FakeTwilio(FakeHttpProvider):
    """Twilio's Messages resource (API version 2010-04-01)."""

    name = "twilio"

    def __init__(self, account_sid: str | None = None, auth_token: str = "test-token") -> None:
        self.account_sid = account_sid or f"AC{secrets.token_hex(16)}"
        self.auth_token = auth_token
        self.invalid_numbers: set[str] = set()
        super().__init__()

    @property
    def path(self) -> str:
        return f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    @staticmethod
    def error(status: int, code: int, message: str) -> Reply:
        return Reply(
            status,
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
        )

    def fail_next(self, status: int, code: int, message: str, times: int = 1) -> None:
        self.answer_next(self.error(status, code, message), times)

    def too_many(self, request: HttpRequest, retry_after: str | None) -> Reply:
        reply = self.error(429, 20429, "Too Many Requests")
        if retry_after:
            reply.headers["Retry-After"] = retry_after
        return reply

    def check(self, request: HttpRequest) -> Reply | None:
        if request.method != "POST" or request.path != self.path:
            return self.error(404, 20404, f"The requested resource {request.path} was not found")
        secret = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {secret}":
            return self.error(401, 20003, "Authenticate")
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return self.error(400, 20001, "expected a form-encoded body")
        return None

    def answer(self, request: HttpRequest) -> Reply:
        form = request.form()
        to = form.get("To", "")
        if to in self.invalid_numbers:
            return self.error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        sid = f"SM{secrets.token_hex(16)}"
        now = format_datetime(datetime.now(UTC), usegmt=True)
        return Reply(
            201,
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "api_version": "2010-04-01",
                "body": form.get("Body", ""),
                "date_created": now,
                "date_updated": now,
                "date_sent": None,
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": form.get("From"),
                "messaging_service_sid": None,
                "num_media": "0",
                "num_segments": "1",
                "price": None,
                "price_unit": "USD",
                "status": "queued",
                "subresource_uris": {
                    "media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"
                },
                "to": to,
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            },
        )

    @property
    def messages(self) -> list[dict[str, str]]:
        """The form fields (To, From, Body, ...) of the messages it accepted."""
        return [r.form() for r in self.accepted]


# --- SMTP --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpMessage:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        data = self.data.replace(b"\r\n", b"\n")  # as it came over the wire, CRLF
        return cast(EmailMessage, message_from_bytes(data, policy=email.policy.default))


class _SmtpHandler:
    def __init__(self, fake: FakeSmtp) -> None:
        self.fake = fake

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        fake = self.fake
        if fake.rcpt_delay:
            await asyncio.sleep(fake.rcpt_delay)
        with fake._lock:
            if address in fake.refuse:
                return fake.refuse[address]
            if fake.rcpt_replies:
                return fake.rcpt_replies.popleft()
        envelope.rcpt_tos.append(address)
        with fake._lock:
            fake.rcpts.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        fake = self.fake
        with fake._lock:
            if fake.data_replies:
                return fake.data_replies.popleft()
            fake.messages.append(
                SmtpMessage(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            )
        return "250 2.0.0 Message accepted for delivery"


class FakeSmtp:
    """An SMTP server (aiosmtpd, its own thread and event loop) that keeps what it accepts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: list[SmtpMessage] = []
        self.rcpts: list[str] = []  # every recipient accepted, in every session
        self.refuse: dict[str, str] = {}  # recipient -> "550 5.1.1 ..." (every time)
        self.rcpt_replies: deque[str] = deque()  # the next RCPT answers, e.g. "421 4.7.0 ..."
        self.data_replies: deque[str] = deque()  # the next DATA answers, e.g. "451 4.3.0 ..."
        self.rcpt_delay = 0.0
        self.host = HOST
        self.port = free_port()
        self._controller = Controller(
            _SmtpHandler(self), hostname=self.host, port=self.port, ready_timeout=10
        )

    def start(self) -> None:
        self._controller.start()

    def close(self) -> None:
        self._controller.stop()

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self.rcpts.clear()
            self.refuse.clear()
            self.rcpt_replies.clear()
            self.data_replies.clear()
            self.rcpt_delay = 0.0


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(name="smtp_server")
def smtp_server_fixture() -> Iterator[FakeSmtp]:
    server = FakeSmtp()
    server.start()
    try:
        yield server
    finally:
        server.close()


# Twilio's magic test number: a valid sender.
FROM_NUMBER = "+15005550006"


def provider_settings(sendgrid: FakeSendGrid, twilio: FakeTwilio) -> dict[str, str]:
    """The delivery settings for these fakes, as the `JOBLINE_*` variables a worker reads."""
    return {
        "email_backend": "sendgrid",
        "sendgrid_api_key": sendgrid.api_key,
        "sendgrid_base_url": sendgrid.base_url,
        "sms_backend": "twilio",
        "twilio_account_sid": twilio.account_sid,
        "twilio_auth_token": twilio.auth_token,
        "twilio_from_number": FROM_NUMBER,
        "twilio_base_url": twilio.base_url,
    }


@pytest.fixture(name="sendgrid_server")
def sendgrid_server_fixture() -> Iterator[FakeSendGrid]:
    server = FakeSendGrid()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(name="twilio_server")
def twilio_server_fixture() -> Iterator[FakeTwilio]:
    server = FakeTwilio()
    try:
        yield server
    finally:
        server.close()
