"""Routes refuse query parameters they do not know: a typo must not silently mean "no filter".

``known_query_params`` is installed on the whole API (create_app): it takes the names a route
declares, its dependencies' included, from the route itself, so no list of names can drift
from the route's signature."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from starlette.requests import HTTPConnection

from backend.kit.errors import Problem


def _refuse_unknown(request: Request, names: frozenset[str]) -> None:
    params = [name for name, _ in request.query_params.multi_items()]
    unknown = sorted({p for p in params if p not in names})
    repeated = sorted({p for p in params if params.count(p) > 1} - set(unknown))
    if unknown or repeated:
        allowed = ", ".join(sorted(names)) or "none"
        raise Problem(
            422,
            "invalid-parameter",
            (f"Unknown query parameter(s): {', '.join(unknown)}. " if unknown else "")
            + (f"Repeated query parameter(s): {', '.join(repeated)}. " if repeated else "")
            + f"Allowed: {allowed}.",
            unknown=unknown,
            repeated=repeated,
        )


def known_params_only(allowed: Iterable[str]) -> Callable[[Request], Awaitable[None]]:
    """A dependency: 422 ``invalid-parameter`` for an unknown or repeated query parameter."""
    names = frozenset(allowed)

    async def check(request: Request) -> None:
        _refuse_unknown(request, names)

    return check


def declared_query_params(dependant: Dependant) -> frozenset[str]:
    """The query parameter names of a route, its dependencies' included."""
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= declared_query_params(sub)
    return frozenset(names)


_DECLARED: dict[int, frozenset[str]] = {}


async def known_query_params(connection: HTTPConnection) -> None:
    """App-wide dependency: 422 for a query parameter the matched route does not declare
    (HTTP only: a WebSocket route reads its parameters itself)."""
    if connection.scope["type"] != "http":
        return
    request: Any = connection
    route: Any = connection.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    names = _DECLARED.get(id(route))
    if names is None:
        names = _DECLARED[id(route)] = declared_query_params(dependant)
    _refuse_unknown(request, names)
