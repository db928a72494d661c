"""Browser tests' shared parts: Debian's Chromium driven by Playwright, the app served by
uvicorn on a real socket, and what every browser test does: sign a person in, give them a
password, ask axe-core for serious findings."""

from __future__ import annotations

import asyncio
import re
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote

import pytest
import uvicorn
from axe_playwright_python.async_playwright import Axe
from fastapi import FastAPI
from playwright.async_api import Browser, ConsoleMessage, Page, ViewportSize, async_playwright

from api.app import create_app
from api.users.service import create_user, find_user, set_password
from core.config import Settings
from tests.conftest import Stack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
# Where sign-in lands when no page was asked for: the board, or a technician's day.
HOME = re.compile(r".*/(jobs|my)(\?.*)?$")


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """`app` on 127.0.0.1, on a port the OS picked (bound here, so no other process can take
    it between choosing and serving); yields its base URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    # log_config=None: leave pytest's logging as it is.
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None)
    )
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                assert not serving.done(), serving.exception()
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving
        listener.close()


@pytest.fixture
async def base_url(stack: Stack) -> AsyncIterator[str]:
    app = create_app(
        Settings(environment="test", task_queue=stack.task_queue),
        db=stack.db,
        temporal=stack.temporal,
    )
    async with serving(app) as url:
        yield url


async def sign_in(
    page: Page, base: str, username: str, password: str, *, then: str | None = None
) -> None:
    """Sign in on /signin as a person would (asking for `then` afterwards, if given) and wait
    for the page it lands on: `then`, or the board or /my."""
    await page.goto(f"{base}/signin" + (f"?next={quote(then, safe='')}" if then else ""))
    await page.get_by_label("Username or email").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    if then is None:
        await page.wait_for_url(HOME)
    else:
        await page.wait_for_url(lambda url: url == f"{base}{then}")


async def person_with_password(stack: Stack, role: str, password: str, prefix: str = "p") -> str:
    """A new person with `role`, a username no other test has, and `password`; their username."""
    username = f"{prefix}{uuid.uuid4().hex[:8]}"
    async with stack.db.session() as session:
        user = await create_user(session, username, role, f"{username}@jobline.test")
        await set_password(session, user, password)
    return username


async def give_password(stack: Stack, username: str, password: str) -> None:
    """Give a person who already exists (ada, olga, tess, ...) `password`."""
    async with stack.db.session() as session:
        user = await find_user(session, username)
        assert user is not None, username
        await set_password(session, user, password)


async def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now, one line each."""
    results = await Axe().run(page)
    assert "violations" in results.response, results.response
    return [
        f"{v['id']} ({v['impact']}): {v['help']} {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def fits_a_phone(page: Page) -> None:
    """Assert the page is no wider than a phone (evaluated by Playwright, so it works on pages
    that run no script of their own)."""
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width}px wide on a phone"


def console_errors(page: Page) -> list[str]:
    """The errors the page logs to its console from now on (the list fills as they come)."""
    errors: list[str] = []

    def _on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"{message.text} {message.location}")

    page.on("console", _on_console)
    return errors
