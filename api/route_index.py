"""The app's routes as they are served: each with its full path template (router prefixes
included), the body limit FastAPI applies to it, and whether it needs a signed-in user.

Routers included into routers keep their own, unprefixed path on the route object
(`/closeout`, not `/api/v1/settings/closeout`); FastAPI's route contexts know the full one.
Middleware, which runs before (and around) routing, looks routes up here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import RouteContext, iter_route_contexts
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from api.deps import current_user
from api.web.pages import _mark_page as mark_page


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any] | None]:
    yield dependant.call
    for dependency in dependant.dependencies:
        yield from _calls(dependency)


@dataclass(frozen=True)
class ServedRoute:
    context: RouteContext

    @property
    def route(self) -> BaseRoute:
        return self.context.original_route

    @property
    def path(self) -> str:
        return self.context.path_format or "unmatched"

    @cached_property
    def max_body_size(self) -> int | None:
        return getattr(self.context, "max_body_size", None)

    @cached_property
    def needs_user(self) -> bool:
        dependant = getattr(self.context, "dependant", None)
        return dependant is not None and current_user in set(_calls(dependant))

    @cached_property
    def is_page(self) -> bool:
        """A page of the office app (api/web/pages.py): its refusals are answered as pages."""
        dependant = getattr(self.context, "dependant", None)
        return dependant is not None and mark_page in set(_calls(dependant))

    def matches(self, scope: Scope) -> bool:
        match, _ = self.context.matches(scope)
        return match == Match.FULL


class RouteIndex:
    """Built on first use, when every router has been included."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    @cached_property
    def routes(self) -> list[ServedRoute]:
        return [ServedRoute(context) for context in iter_route_contexts(self.app.routes)]

    @cached_property
    def _by_route(self) -> dict[int, list[ServedRoute]]:
        found: dict[int, list[ServedRoute]] = {}
        for served in self.routes:
            found.setdefault(id(served.route), []).append(served)
        return found

    def find(self, scope: Scope) -> ServedRoute | None:
        """The route that will answer this request (method included), as the router picks it."""
        return next((served for served in self.routes if served.matches(scope)), None)

    def template(self, scope: Scope) -> str:
        """The full path template of the route that answered, for labels: one per endpoint."""
        route = scope.get("route")
        if route is None:
            return "unmatched"
        candidates = self._by_route.get(id(route), [])
        if len(candidates) == 1:
            return candidates[0].path
        # One router included under two prefixes: the request's path says which.
        return next((c.path for c in candidates if c.matches(scope)), "unmatched")
