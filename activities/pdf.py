"""HTML to PDF with WeasyPrint, off the event loop, fetching nothing from outside.

Kept apart from the activities (and light to import: WeasyPrint only) because it is what each
rendering process imports when it starts.

The URL fetcher is the second wall around documents (the first is the templates' autoescaping):
WeasyPrint asks it for every image, stylesheet and attachment a document names, and it serves
only the logo, from memory, under the internal `jobline-logo:` address. Every other URL and file
is refused, whoever wrote it; WeasyPrint leaves the resource out and carries on.

Rendering runs in a small pool of spawned worker processes. Measured on this machine (2 cores):
`asyncio.to_thread` renders one at a time at bare speed, but many at once no faster than bare
(WeasyPrint holds the GIL) and stalls the event loop up to ~200 ms, while the process pool keeps
the loop's longest stall under 10 ms. `bench/closeout.py` measures it on the work receipt
(146 ms in bare WeasyPrint on a slow 2-core machine): 24 at once, the pool renders 18.4 a second
against 6.8 bare; one at a time 12.0, faster than bare because each process parses a stylesheet
once and keeps its fonts (`render_pdf_sync`). Its cost is a one-off ~0.6 s to start the
processes and load the fonts (`PdfRenderer.warm`, which the worker calls as it starts).
`PdfRenderer(mode="thread")` remains for callers that must not start processes.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import logging
import multiprocessing
import os
import re
import signal
import sys
import threading
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Literal

from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

log = logging.getLogger("jobline.documents")

LOGO_URL = "jobline-logo:logo"


@dataclass(frozen=True)
class Logo:
    content: bytes
    content_type: str


class MemoryOnlyFetcher(URLFetcher):
    """Serves the logo from memory and refuses everything else: no network, no files."""

    def __init__(self, logo: Logo | None = None) -> None:
        super().__init__(allowed_protocols=())
        self._logo = logo
        self.refused: list[str] = []

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        if self._logo is not None and url == LOGO_URL:
            return URLFetcherResponse(
                url, self._logo.content, {"Content-Type": self._logo.content_type}
            )
        self.refused.append(url)
        raise ValueError(f"documents fetch nothing from outside: refused {url[:200]!r}")


@dataclass
class PdfResult:
    pdf: bytes
    # URLs the document asked for and did not get (none, for Jobline's own templates).
    refused: list[str] = field(default_factory=list)


def render_pdf_sync(html: str, logo: Logo | None = None) -> PdfResult:
    """HTML to PDF in this thread (blocking). No base URL: nothing relative resolves, and every
    absolute URL goes to the memory-only fetcher.

    A document in Jobline's own shape (one plain `<style>`, no other stylesheet, and nothing in
    it that a parse would fetch or that would rank differently: `_PARSED_EACH_TIME`) is rendered
    with that stylesheet parsed once per process and this thread's fonts kept from one render to
    the next; anything else, as WeasyPrint renders it on its own."""
    fetcher = MemoryOnlyFetcher(logo)
    body, stylesheet = _own_stylesheet(html)
    document = HTML(string=body, base_url=None, url_fetcher=fetcher)
    if stylesheet is None:
        pdf = document.write_pdf()
    else:
        pdf = document.write_pdf(stylesheets=[stylesheet], font_config=_kept_fonts())
    assert pdf is not None
    return PdfResult(pdf=pdf, refused=fetcher.refused)


# Every document is a template filled with a job and the branding, so a process sees the same
# few stylesheets again and again. Measured on the work receipt (bench/closeout.py's), 2-core
# machine: 143-157 ms a render as WeasyPrint does it alone, 84-93 ms with the stylesheet parsed
# once and the fonts kept, the same PDF byte for byte; and a process grew 100 MiB over 400 renders
# before, 9 MiB after (each render's font configuration was left behind).
_ONE_PLAIN_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)
# Any other author stylesheet (a second <style>, a <link>) would outrank the user stylesheet the
# one <style> becomes: such a document takes the ordinary path.
_AUTHOR_STYLESHEETS = re.compile(r"<style|<link", re.IGNORECASE)
# What would make a parsed stylesheet depend on more than its text (a fetch, a font, a counter
# style collected at parse time) or hide one behind a CSS escape, and `!important`, which ranks
# a user stylesheet above the document's own style attributes.
_PARSED_EACH_TIME = (
    "url(",
    "@import",
    "@font-face",
    "@counter-style",
    "@color-profile",
    "\\",
    "important",  # `!important`, spaced or not
)


def _own_stylesheet(html: str) -> tuple[str, CSS | None]:
    """The HTML without its one plain `<style>`, and that stylesheet parsed (once per process),
    when the document is in Jobline's shape; else the HTML as it is and None.

    The stylesheet is then given to WeasyPrint as a user stylesheet: with no author stylesheet
    left beside it, it still overrides only the browser defaults, as it did."""
    if len(_AUTHOR_STYLESHEETS.findall(html)) != 1:
        return html, None
    found = _ONE_PLAIN_STYLE.search(html)
    if found is None or any(token in found.group(1) for token in _PARSED_EACH_TIME):
        return html, None
    return html[: found.start()] + html[found.end() :], _parsed(found.group(1))


@functools.lru_cache(maxsize=32)
def _parsed(css: str) -> CSS:
    # Read-only once parsed (cssselect2's matcher, the @page rules), so threads share it.
    return CSS(string=css, base_url=None, url_fetcher=MemoryOnlyFetcher())


_per_thread = threading.local()


def _kept_fonts() -> FontConfiguration:
    """This thread's font configuration (Pango's font map is not shared across threads)."""
    fonts: FontConfiguration | None = getattr(_per_thread, "fonts", None)
    if fonts is None:
        fonts = _per_thread.fonts = FontConfiguration()
    return fonts


# Rendering processes yield the CPU to the ones that answer people (the API, the worker's event
# loop, Temporal): a PDF follows its event by design, and on a small machine a render at equal
# priority made the next events wait behind it (issue 12: an Update's activity 8 -> 250 ms while
# an invoice and a receipt rendered). Idle cores still render at full speed.
RENDER_NICENESS = 10


def _child_init(parent: int) -> None:
    os.nice(RENDER_NICENESS)
    # Ctrl-C reaches the whole process group (`jobline dev`); the parent shuts the pool down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # And when the parent dies without doing so (killed, or stopping in a hurry), this process
    # goes with it instead of staying behind for good.
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(0)


def _die_with_parent() -> None:
    """Linux: SIGTERM this process when its parent exits (prctl PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _warm() -> int:
    render_pdf_sync("<p>.</p>")  # loads Pango and the fonts once per process
    return os.getpid()


# A rendering process used to grow ~0.23 MiB with every render and never give it back (57 -> 157
# MiB after 400 renders; 560 MiB each after a scale run's thousands of documents): each render's
# font configuration was left behind, so a pool was retired every 400 renders. Since the fonts are
# kept (above) it levels off: 1,500 renders of the three kinds with varied text grew a process
# 15.5 MiB by the 100th and 16.3 MiB by the last. A pool is still retired after this many
# renders, for documents off that path and whatever else a long run leaves behind: once those in
# flight are done, the next render starts a fresh one, and the fonts load again (~1 s of CPU).
RENDERS_PER_POOL = 5000

# And a pool with nothing to render for `idle_seconds` is retired too (the worker sets it from
# JOBLINE_WORKER_PDF_IDLE_SECONDS, 120 by default): its processes hold ~70 MiB each of fonts and
# Pango even when idle, which is most of a small office's day and more than the rest of the
# worker needs for 10,000 open jobs (issue 12: 204 MiB alone, 347 MiB with two idle rendering
# processes). The next render after a quiet spell starts a fresh pool, ~0.6 s more on that one
# document, which follows its event anyway.


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class PdfRenderer:
    """Renders PDFs off the event loop: in worker processes (default) or in threads."""

    def __init__(
        self,
        mode: Literal["process", "thread"] = "process",
        workers: int | None = None,
        renders_per_pool: int = RENDERS_PER_POOL,
        idle_seconds: float | None = None,
    ) -> None:
        self.mode = mode
        self.workers = workers or default_workers()
        self.renders_per_pool = renders_per_pool
        self.idle_seconds = idle_seconds  # None: an idle pool is kept
        self._pool: Executor | None = None
        self._renders = 0  # by the current pool
        self._in_flight = 0  # renders (and warm-ups) started and not yet done, on any pool
        self._idle_timer: asyncio.TimerHandle | None = None
        self._lock = threading.Lock()

    def _executor(self) -> Executor | None:
        if self.mode == "thread":
            return None  # the loop's default thread pool, as asyncio.to_thread uses
        with self._lock:
            if self._pool is None:
                # spawn, not fork: the worker has threads (Temporal's core, the database
                # driver) that a forked child would inherit in whatever state they were.
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_child_init,
                    initargs=(os.getpid(),),
                )
                self._renders = 0
            return self._pool

    def _discard(self, pool: Executor | None) -> None:
        with self._lock:
            if pool is not None and self._pool is pool:
                self._pool = None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    async def render_result(self, html: str, logo: Logo | None = None) -> PdfResult:
        pool = self._executor()
        self._busy()
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                pool, render_pdf_sync, html, logo
            )
        except BrokenProcessPool:
            # A child died (killed, out of memory): the next render gets a fresh pool, and
            # this one fails to be retried.
            self._discard(pool)
            raise
        finally:
            self._done()
        self._count(pool)
        if result.refused:
            log.warning("a document asked for URLs it may not have: %s", result.refused[:5])
        return result

    def _count(self, pool: Executor | None) -> None:
        """One more render by `pool`; at `renders_per_pool` it is retired."""
        with self._lock:
            if pool is None or self._pool is not pool:
                return
            self._renders += 1
            if self._renders < self.renders_per_pool:
                return
            self._pool = None
        pool.shutdown(wait=False)  # renders in flight finish, then its processes exit

    def _busy(self) -> None:
        with self._lock:
            self._in_flight += 1
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None

    def _done(self) -> None:
        """One render (or warm-up) over; the last one out starts the current pool's idle clock."""
        with self._lock:
            self._in_flight -= 1
            pool = self._pool
            if self._in_flight or pool is None or self.idle_seconds is None:
                return
            if self._idle_timer is not None:
                self._idle_timer.cancel()
            self._idle_timer = asyncio.get_running_loop().call_later(
                self.idle_seconds, self._retire_if_idle, pool
            )

    def _retire_if_idle(self, pool: Executor) -> None:
        with self._lock:
            self._idle_timer = None
            if self._in_flight or self._pool is not pool:
                return
            self._pool = None
        log.info("PDF processes idle for %s s: stopped until the next document", self.idle_seconds)
        pool.shutdown(wait=False)

    def running(self) -> bool:
        """Whether rendering processes are up (or starting)."""
        with self._lock:
            return self._pool is not None

    async def render(self, html: str, logo: Logo | None = None) -> bytes:
        return (await self.render_result(html, logo)).pdf

    async def warm(self) -> list[int]:
        """Start the worker processes and load the fonts now, not on a customer's first PDF.
        Returns the ids of the processes that answered (in thread mode, this one's)."""
        pool = self._executor()
        loop = asyncio.get_running_loop()
        self._busy()
        try:
            return await asyncio.gather(
                *(loop.run_in_executor(pool, _warm) for _ in range(self.workers))
            )
        finally:
            self._done()

    def close(self) -> None:
        with self._lock:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
        self._discard(self._pool)
