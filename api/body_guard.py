"""What a request body must pass before anything reads it (issue 8 item 9).

FastAPI reads and parses a route's body before it runs any of the route's dependencies, so the
bearer token would be checked only after a body of any size had been read, and a JSON body of
any depth parsed. This middleware runs first, for requests that carry a body:

1. a route that needs a signed-in user checks the token now: a bad one is a 401 and not one
   byte of the body is read;
2. a body whose Content-Length is over the route's limit is a 413, also unread;
3. a JSON body nested deeper than the limit is a 422, found as it streams in, before parsing.

The size limit itself is FastAPI's `max_body_size` (the API's default in `create_app`, the logo
upload's own on its route). FastAPI counts the bytes as they arrive, so a chunked body with no
Content-Length, or one that says less than it sends, stops at the limit too. A refused body is
not read by the app: the server drops what is left of it, or hangs up (`Connection: close`) when
that is more than a few MiB.
"""

from __future__ import annotations

import email.message
import re

from fastapi import FastAPI, Request
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors
from api.deps import signed_in
from api.route_index import RouteIndex, ServedRoute
from api.web.pages import PAGE_SCOPE_KEY

# Answered before its body was read, a request leaves the rest of its body on the connection.
# Most clients send all they declared before they read an answer, so the server drops the rest
# (unread by the app, not kept) and the client reads a clean 413 or 401; past this much, or with
# no declared length, the server hangs up instead of reading on.
DRAIN_BYTES = 16 * 1024 * 1024
CLOSE = (b"connection", b"close")

# The bytes that change a JSON document's depth, or whether we are inside a string.
_SIGNIFICANT = re.compile(rb'[][{}"\\]')
_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")


class DepthGauge:
    """How deeply a JSON document nests, fed as it arrives in pieces (a string or an escape may
    be split between two). It only counts: parsing and its errors stay FastAPI's."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.depth = 0
        self.in_string = False
        self.escaped = False  # the last piece ended in a backslash inside a string

    def too_deep(self, piece: bytes, *, last: bool) -> bool:
        whole = last and not (self.depth or self.in_string or self.escaped)
        if whole and piece.count(b"[") + piece.count(b"{") <= self.limit:
            # A whole document in one piece (most bodies) with no more openers than the limit
            # cannot nest deeper: no need to look closer.
            return False
        skip = -1
        if self.escaped and piece:
            self.escaped, skip = False, 0
        for found in _SIGNIFICANT.finditer(piece):
            at = found.start()
            if at == skip:
                continue
            byte = piece[at]
            if self.in_string:
                if byte == ord("\\"):
                    skip = at + 1
                    self.escaped = skip == len(piece)
                elif byte == ord('"'):
                    self.in_string = False
            elif byte == ord('"'):
                self.in_string = True
            elif byte in _OPEN:
                self.depth += 1
                if self.depth > self.limit:
                    return True
            elif byte in _CLOSE:
                self.depth -= 1
        return False


def _is_json(headers: Headers) -> bool:
    """As FastAPI decides whether to parse a body as JSON."""
    value = headers.get("content-type")
    if not value:
        return False
    message = email.message.Message()
    message["content-type"] = value
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _declared_length(headers: Headers) -> int | None:
    try:
        return int(headers["content-length"])
    except (KeyError, ValueError):
        return None


class BodyGuard:
    def __init__(self, app: ASGIApp, routes: RouteIndex, max_json_depth: int) -> None:
        self.app = app
        self.routes = routes
        self.max_json_depth = max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = _declared_length(headers)
        if not length and "transfer-encoding" not in headers:  # no body to guard
            await self.app(scope, receive, send)
            return
        served = self.routes.find(scope)
        if served is None:  # no route: a 404 or 405 that reads nothing
            await self.app(scope, receive, send)
            return

        finished = False  # the whole body has been read
        seen = 0  # of it, in bytes

        async def closing_send(message: Message) -> None:
            unread = None if length is None else length - seen
            too_much_left = unread is None or unread > DRAIN_BYTES
            if message["type"] == "http.response.start" and not finished and too_much_left:
                message = {**message, "headers": [*message["headers"], CLOSE]}
            await send(message)

        refusal = await self._refusal(scope, served, length)
        if refusal is not None:
            scope["route"] = served.route  # so metrics count the refusal against its route
            await refusal(scope, receive, closing_send)
            return

        gauge = DepthGauge(self.max_json_depth) if _is_json(headers) else None

        async def gauged_receive() -> Message:
            nonlocal finished, seen
            message = await receive()
            if message["type"] == "http.request":
                last = not message.get("more_body", False)
                finished = last
                seen += len(message.get("body", b""))
                if gauge and gauge.too_deep(message.get("body", b""), last=last):
                    raise errors.RaisedInBody(errors.TooDeep.nested_over(gauge.limit))
            return message

        await self.app(scope, gauged_receive, closing_send)

    async def _refusal(
        self, scope: Scope, served: ServedRoute, length: int | None
    ) -> ASGIApp | None:
        """The answer to a body that must not be read, or None to go on."""
        if served.needs_user:
            request = Request(scope)
            try:
                await signed_in(request)
            except Exception as exc:  # a 401, or a database that cannot answer (a 503)
                app: FastAPI = scope["app"]
                handler = errors.handler_for(app, exc)
                if handler is None:
                    raise
                return await handler(request, exc)  # type: ignore[return-value]
        limit = served.max_body_size
        if length is not None and limit is not None and length > limit:
            refused = errors.TooLarge.body_over(limit)
            if served.is_page:  # a page's form (a logo too large): answered as a page
                app = scope["app"]
                scope[PAGE_SCOPE_KEY] = True
                return app.state.render_page_error(Request(scope), refused)  # type: ignore[no-any-return]
            return errors.respond(refused)
        return None
