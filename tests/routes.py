"""The app's API routes, including those of included routers (FastAPI includes them lazily)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute


def api_routes(app: Any, prefix: str = "/api/", kind: type[Any] = APIRoute) -> Iterator[Any]:
    def walk(routes: list[Any]) -> Iterator[Any]:
        for route in routes:
            if hasattr(route, "original_router"):
                yield from walk(route.original_router.routes)
            else:
                yield route

    for route in walk(app.routes):
        if isinstance(route, kind) and route.path.startswith(prefix):
            yield route
