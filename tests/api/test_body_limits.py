"""Request bodies are bounded before they are parsed, and senders authenticated before a body is
read (issue 8 item 9), over uvicorn in a subprocess: 100 MB sent to the API leave its memory where
it was, whether the body declares its length or streams chunked without one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from core.config import Settings
from tests.api.settings import BRANDING, api_error, restoring
from tests.conftest import Stack
from tests.fakes.api_process import Answer, ApiProcess, api_process, exchange

COMMUNICATIONS = "/api/v1/settings/communications"
LOGO = "/api/v1/settings/branding/logo"
JSON_LIMIT = Settings(environment="test").api_max_body_bytes
MIB = 1024 * 1024
HUGE = 100 * MIB
PNG = b"\x89PNG\r\n\x1a\n"
# What the server may grow by while refusing bodies many times its limit: its own working set
# wobbles by a few MiB; reading one 100 MB body costs hundreds.
GROWTH_BOUND_KIB = 24 * 1024


@pytest.fixture(scope="module")
def api(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    env = {
        "JOBLINE_ENVIRONMENT": "test",
        "JOBLINE_DATABASE_URL": stack.db.url,
        "JOBLINE_TEMPORAL_ADDRESS": stack.temporal.service_client.config.target_host,
        "JOBLINE_TASK_QUEUE": stack.task_queue,
        "JOBLINE_DATA_DIR": str(tmp_path_factory.mktemp("api-data")),
    }
    log: Path = tmp_path_factory.mktemp("api-log") / "uvicorn.log"
    with api_process(env, log) as server:
        yield server


def _json_padding(total: int) -> Iterator[bytes]:
    """A JSON document `total` bytes long: an object, then spaces (valid JSON to the last byte)."""
    yield b'{"padded": true}'
    left = total - len(b'{"padded": true}')
    while left > 0:
        size = min(MIB, left)
        yield b" " * size
        left -= size


def _send(
    api: ApiProcess, stack: Stack, username: str | None, *, chunked: bool, size: int = HUGE
) -> Answer:
    headers = {"Content-Type": "application/json"}
    if username:
        headers.update(stack.auth(username))
    if not chunked:
        headers["Content-Length"] = str(size)
    return exchange(api.port, "PUT", COMMUNICATIONS, headers, _json_padding(size), chunked=chunked)


def _refused(answer: Answer, status: int, code: str, *, hangs_up: bool = True) -> dict:
    assert answer.status == status, (answer.status, answer.body[:300])
    body = answer.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    # Refused with much of it unread: the server hangs up rather than read the rest.
    assert (answer.headers.get("connection") == "close") == hangs_up, answer.headers
    return body["error"]


def _figures(what: str, before: dict[str, int], after: dict[str, int], answers: list) -> None:
    sent = ", ".join(f"{a.status} after {a.sent / MIB:.1f} MiB sent" for a in answers)
    print(
        f"\n{what}: RSS {before['VmRSS'] / 1024:.0f} -> {after['VmRSS'] / 1024:.0f} MiB, "
        f"peak {before['VmHWM'] / 1024:.0f} -> {after['VmHWM'] / 1024:.0f} MiB; {sent}"
    )


def _warm(api: ApiProcess, stack: Stack) -> dict[str, int]:
    """The server's memory once it has answered a few ordinary requests."""
    for _ in range(3):
        response = httpx.get(f"{api.url}{COMMUNICATIONS}", headers=stack.auth("ada"))
        assert response.status_code == 200, response.text
    return api.memory_kib()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_anonymous_body_gets_401_before_it_is_read(
    api: ApiProcess, stack: Stack, chunked: bool
) -> None:
    before = _warm(api, stack)
    answer = _send(api, stack, None, chunked=chunked)
    after = api.memory_kib()
    _figures(
        f"anonymous 100 MB, {'chunked' if chunked else 'Content-Length'}", before, after, [answer]
    )
    error = _refused(answer, 401, "not_authenticated")
    assert "bearer" in error["message"]
    assert answer.headers["www-authenticate"] == "Bearer"
    # What went out sat in socket buffers: the server answered without waiting for it.
    assert answer.sent < 32 * MIB, answer.sent
    assert after["VmHWM"] - max(before["VmHWM"], before["VmRSS"]) < GROWTH_BOUND_KIB


def test_a_bad_token_with_a_body_gets_401_before_it_is_read(api: ApiProcess, stack: Stack) -> None:
    headers = {"Content-Type": "application/json", "Authorization": "Bearer jl_not-a-token"}
    headers["Content-Length"] = str(HUGE)
    answer = exchange(api.port, "PUT", COMMUNICATIONS, headers, _json_padding(HUGE))
    assert "not valid" in _refused(answer, 401, "not_authenticated")["message"]
    assert answer.sent < 32 * MIB, answer.sent


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_oversize_body_gets_413_without_growing_the_server(
    api: ApiProcess, stack: Stack, chunked: bool
) -> None:
    before = _warm(api, stack)
    answer = _send(api, stack, "ada", chunked=chunked)
    after = api.memory_kib()
    _figures(f"admin 100 MB, {'chunked' if chunked else 'Content-Length'}", before, after, [answer])
    error = _refused(answer, 413, "too_large")
    assert f"{JSON_LIMIT:,} bytes" in error["message"], error
    assert answer.sent < 32 * MIB, answer.sent
    assert after["VmHWM"] - max(before["VmHWM"], before["VmRSS"]) < GROWTH_BOUND_KIB


def test_four_senders_of_100_mb_at_once_leave_the_server_as_it_was(
    api: ApiProcess, stack: Stack
) -> None:
    before = _warm(api, stack)
    senders = [(None, False), (None, True), ("ada", False), ("ada", True)]
    with ThreadPoolExecutor(len(senders)) as pool:
        answers = list(
            pool.map(lambda s: _send(api, stack, s[0], chunked=s[1]), senders)  # type: ignore[misc]
        )
    after = api.memory_kib()
    _figures("four 100 MB bodies at once", before, after, answers)
    assert [a.status for a in answers] == [401, 401, 413, 413]
    assert after["VmHWM"] - max(before["VmHWM"], before["VmRSS"]) < GROWTH_BOUND_KIB
    # And it still answers as before.
    assert httpx.get(f"{api.url}/livez").status_code == 200


async def test_a_json_body_at_the_limit_is_read_and_one_byte_more_is_not(
    api: ApiProcess, stack: Stack
) -> None:
    # In a thread: the settings write must not wait on this test's own event loop, where the
    # stack's worker holds its database connections.
    await asyncio.to_thread(_at_the_limit_and_one_byte_more, api, stack)


def _at_the_limit_and_one_byte_more(api: ApiProcess, stack: Stack) -> None:
    current = httpx.get(f"{api.url}{COMMUNICATIONS}", headers=stack.auth("ada")).json()
    document = json.dumps(current).encode()
    headers = {**stack.auth("ada"), "Content-Type": "application/json"}
    with httpx.Client(base_url=api.url, headers=headers, timeout=30) as http:
        at_limit = http.put(COMMUNICATIONS, content=document.ljust(JSON_LIMIT))
        assert at_limit.status_code == 200, at_limit.text
        assert at_limit.json() == current
        over = http.put(COMMUNICATIONS, content=document.ljust(JSON_LIMIT + 1))
        api_error(over, 413, f"{JSON_LIMIT:,} bytes")
    # Chunked, with no Content-Length to go by: counted as it arrives.
    at_limit_chunked = exchange(
        api.port,
        "PUT",
        COMMUNICATIONS,
        headers,
        [document, b" " * (JSON_LIMIT - len(document))],
        chunked=True,
    )
    assert at_limit_chunked.status == 200, at_limit_chunked.body[:300]
    # The byte over the limit goes out in one write with the body's end, as a client that has
    # all of its body at hand sends it: the server, reading both at once, knows nothing is left
    # and keeps the connection. (Written apart, the end may come after the 413 went out, and the
    # server rightly hangs up on a body it has not seen the end of.)
    padding = b" " * (JSON_LIMIT - len(document))
    over_chunked = exchange(
        api.port,
        "PUT",
        COMMUNICATIONS,
        {**headers, "Transfer-Encoding": "chunked"},
        [_chunk(document), _chunk(padding), _chunk(b" ") + b"0\r\n\r\n"],
    )
    _refused(over_chunked, 413, "too_large", hangs_up=False)  # all of it came: nothing left


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def test_a_logo_of_1_mib_is_taken_and_one_byte_more_is_not(
    api: ApiProcess, stack: Stack
) -> None:
    exactly = PNG + b"\x00" * (MIB - len(PNG))
    async with (
        restoring(stack),
        httpx.AsyncClient(base_url=api.url, headers=stack.auth("ada"), timeout=30) as http,
    ):
        taken = await http.post(LOGO, files={"file": ("logo.png", exactly, "image/png")})
        assert taken.status_code == 200, taken.text
        logo_id = taken.json()["logo_document_id"]
        over = await http.post(LOGO, files={"file": ("logo.png", exactly + b"\x00", "image/png")})
        api_error(over, 413, "1 MiB")
        # Far over: refused by the route's body limit before the form is parsed.
        four = await http.post(LOGO, files={"file": ("logo.png", exactly * 4, "image/png")})
        api_error(four, 413, "bytes")
        assert (await http.get(BRANDING)).json()["logo_document_id"] == logo_id
    headers = {**stack.auth("ada"), "Content-Type": "multipart/form-data; boundary=x"}
    part = b'--x\r\nContent-Disposition: form-data; name="file"; filename="logo.png"\r\n\r\n'
    chunked = exchange(api.port, "POST", LOGO, headers, [part, *[exactly] * 4], chunked=True)
    _refused(chunked, 413, "too_large")


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


async def test_json_nested_too_deeply_is_a_422_that_says_so(stack: Stack) -> None:
    limit = Settings(environment="test").api_max_json_depth
    path = "/api/v1/clients"
    headers = {**stack.auth("olga"), "Content-Type": "application/json"}
    for depth in (limit + 1, 1_000, 100_000):
        body = b'{"name": "Deep", "notes": ' + _nested(depth - 1) + b"}"
        response = await stack.http.post(path, headers=headers, content=body)
        api_error(response, 422, "nested", f"{limit} levels")
    # At the limit it is parsed, and refused for what it is (a list is not notes).
    at_limit = b'{"name": "Deep", "notes": ' + _nested(limit - 1) + b"}"
    response = await stack.http.post(path, headers=headers, content=at_limit)
    error = api_error(response, 422, "notes")
    assert "nested" not in error["message"]
    # Brackets and escaped quotes inside strings are text, not nesting.
    text = '\\"[{' * 300 + "\\\\" + "[" * 300
    body = b'{"name": "Brackets{{[[", "notes": "' + text.encode() + b'"}'
    created = await stack.http.post(path, headers=headers, content=body)
    assert created.status_code == 201, created.text
    assert created.json()["notes"] == json.loads(b'"' + text.encode() + b'"')
