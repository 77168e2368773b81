"""405 answers that tell the truth about a path.

Starlette answers 405 with the methods of the first route whose path matched, and a literal
path (``/users/me``) that a parameter route also matches (``/users/{user_id}``) sends the
other methods to the parameter route, which then refuses "me" as an id (422). So:

- ``allowed_methods`` lists every method of the most specific routes matching the path, for
  the ``Allow`` header of every 405;
- ``install_method_guards`` puts, before such a parameter route, a hidden route on the literal
  path that answers 405 for the methods only the parameter route has. Run it after every
  router is included (create_app does).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import FastAPI
from starlette._utils import get_route_path
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import BaseRoute, Route, compile_path
from starlette.types import Scope


class _MethodGuard(Route):
    """Hidden: answers 405 on a literal path for methods a parameter route would take."""


async def _method_not_allowed(request: Request) -> None:
    raise HTTPException(405)


@dataclass(frozen=True)
class _Found:
    path: str
    methods: frozenset[str]
    params: int
    regex: re.Pattern[str]
    top: BaseRoute  # the app-level entry that holds the route (an included router, say)


def _walk(app: FastAPI) -> Iterator[_Found]:
    """Every method-bearing route with its full path (FastAPI includes routers lazily)."""

    def walk(routes: list[BaseRoute], prefix: str, top: BaseRoute | None) -> Iterator[_Found]:
        for route in routes:
            holder = top or route
            inner = getattr(route, "original_router", None)
            if inner is not None:
                more = getattr(getattr(route, "include_context", None), "prefix", "") or ""
                yield from walk(inner.routes, prefix + more, holder)
            elif isinstance(route, Route) and route.methods and not isinstance(route, _MethodGuard):
                regex, path_format, convertors = compile_path(prefix + route.path)
                yield _Found(path_format, frozenset(route.methods), len(convertors), regex, holder)

    return walk(app.router.routes, "", None)


def allowed_methods(scope: Scope) -> list[str]:
    """Methods of the most specific routes (fewest path parameters) matching the path."""
    app = scope.get("app")
    if not isinstance(app, FastAPI):
        return []
    path = get_route_path(scope)
    matching = [f for f in _walk(app) if f.regex.fullmatch(path) is not None]
    if not matching:
        return []
    fewest = min(f.params for f in matching)
    return sorted({m for f in matching if f.params == fewest for m in f.methods})


def install_method_guards(app: FastAPI) -> None:
    found = list(_walk(app))
    literal: dict[str, set[str]] = {}
    for route in found:
        if not route.params:
            literal.setdefault(route.path, set()).update(route.methods)
    for path, own in literal.items():
        for route in found:
            if not route.params or route.regex.fullmatch(path) is None:
                continue
            extra = set(route.methods) - own
            if not extra:
                continue
            guard = _MethodGuard(
                path, _method_not_allowed, methods=sorted(extra), include_in_schema=False
            )
            app.router.routes.insert(app.router.routes.index(route.top), guard)
            own |= extra
