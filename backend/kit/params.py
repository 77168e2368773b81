"""Lists refuse query parameters they do not know (a typo must not silently mean "no filter")."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from fastapi import Request

from backend.kit.errors import Problem


def known_params_only(allowed: Iterable[str]) -> Callable[[Request], Awaitable[None]]:
    """A dependency: 422 ``invalid-parameter`` for an unknown or repeated query parameter."""
    names = frozenset(allowed)

    async def check(request: Request) -> None:
        params = [name for name, _ in request.query_params.multi_items()]
        unknown = sorted({p for p in params if p not in names})
        repeated = sorted({p for p in params if params.count(p) > 1} - set(unknown))
        if unknown or repeated:
            raise Problem(
                422,
                "invalid-parameter",
                (f"Unknown query parameter(s): {', '.join(unknown)}. " if unknown else "")
                + (f"Repeated query parameter(s): {', '.join(repeated)}. " if repeated else "")
                + f"Allowed: {', '.join(sorted(names))}.",
                unknown=unknown,
                repeated=repeated,
            )

    return check
