"""The OpenAPI document, completed in one place for every router (installed by create_app
after all routers are registered, so routes added later get the same treatment):

- stable operationIds (``<tag>_<function name>``, see ``operation_id``);
- the bearer security scheme on every operation that answers 401;
- the ``Idempotency-Key`` header on every authenticated tenant POST (backend.kit.idempotency);
- OpenAPI links from each create (201) to the operations on what it created: ``POST /x`` to
  ``GET|PATCH|DELETE /x/{x_id}`` and ``/x/{x_id}/...``, and ``POST /a/{a_id}/x`` to the same
  under ``/a/{a_id}/x/{x_id}`` or at the top level ``/x/{x_id}`` (the Location pattern), the
  new id taken from ``$response.body#/id`` and parent ids from the request path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from backend.kit.errors import problem_responses
from backend.kit.idempotency import HEADER as IDEMPOTENCY_HEADER
from backend.kit.idempotency import KEY_PATTERN, MAX_KEY_LENGTH

API_ROOTS = ("/api/v1", "/platform/v1")
_PARAM = re.compile(r"\{([^}/]+)\}")
_METHODS = ("get", "put", "patch", "delete", "post")
BEARER = "bearer"


def operation_id(route: APIRoute) -> str:
    """``projects_create_project``: the first tag (or the path's first segment) and the
    route function's name, stable across releases and unique per app (a test checks)."""
    tag = str(route.tags[0]) if route.tags else route.path_format.strip("/").split("/")[0]
    return f"{re.sub(r'[^a-z0-9]+', '_', tag.lower()).strip('_')}_{route.name}"


def _root_of(path: str) -> str | None:
    return next((root for root in API_ROOTS if path.startswith(root + "/")), None)


def _body_fields(schema: dict[str, Any], response: dict[str, Any]) -> set[str]:
    body = response.get("content", {}).get("application/json", {}).get("schema", {})
    ref = body.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        body = schema.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[-1], {})
    return set(body.get("properties", {}))


def _created_value(param: str, fields: set[str]) -> str | None:
    """Where the created resource's ``param`` is in the 201 body: the field of that name, else
    ``id`` for a ``..._id`` parameter."""
    if param in fields:
        return f"$response.body#/{param}"
    if param.endswith("_id") and "id" in fields:
        return "$response.body#/id"
    return None


def _link_targets(
    paths: dict[str, Any], source: str, fields: set[str]
) -> list[tuple[str, str, dict[str, str]]]:
    """(path, method, parameters) of the operations on what ``POST source`` creates."""
    root = _root_of(source)
    if root is None:
        return []
    collection = source.rstrip("/").rsplit("/", 1)[-1]
    if not collection or "{" in collection:
        return []
    source_params = set(_PARAM.findall(source))
    found = []
    for path, ops in paths.items():
        for item in {source + "/{", f"{root}/{collection}/{{"}:
            if not path.startswith(item):
                continue
            rest = path[len(item) :]
            created, _, tail = rest.partition("}")
            if "/" in created or (tail and not tail.startswith("/")):
                continue
            others = [p for p in _PARAM.findall(path) if p != created]
            if any(p not in source_params for p in others):
                continue
            value = _created_value(created, fields)
            if value is None:
                continue
            parameters = {created: value}
            parameters.update({p: f"$request.path.{p}" for p in others})
            for method in _METHODS:
                if method in ops and not (path == source and method == "post"):
                    found.append((path, method, parameters))
    return found


def _add_links(schema: dict[str, Any]) -> None:
    paths = schema.get("paths", {})
    for source, ops in paths.items():
        created = ops.get("post", {}).get("responses", {}).get("201")
        if created is None:
            continue
        links = created.setdefault("links", {})
        fields = _body_fields(schema, created)
        for path, method, parameters in _link_targets(paths, source, fields):
            target = paths[path][method]
            name = target.get("operationId") or f"{method}{path}"
            links.setdefault(name, {"operationId": name, "parameters": parameters})
        if not links:
            del created["links"]


def _calls(dependant: Dependant) -> Iterable[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _authenticated(app: FastAPI, auth: tuple[Callable[..., Any], ...]) -> set[tuple[str, str]]:
    """(path, method) of every route that depends on one of the ``auth`` callables."""
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                walk(inner.routes, prefix + (getattr(route.include_context, "prefix", "") or ""))
            elif isinstance(route, APIRoute) and any(c in auth for c in _calls(route.dependant)):
                found.update((prefix + route.path_format, m.lower()) for m in route.methods or ())

    walk(app.router.routes, "")
    return found


def _add_security_and_keys(schema: dict[str, Any], authenticated: set[tuple[str, str]]) -> None:
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "description": "A tenant user's access token or API key (/api/v1), or an operator's "
        "token (/platform/v1).",
    }
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            if (path, method) not in authenticated:
                continue
            op.setdefault("security", [{BEARER: []}])
            if method == "post" and path.startswith("/api/"):
                op.setdefault("parameters", []).append(
                    {
                        "name": IDEMPOTENCY_HEADER,
                        "in": "header",
                        "required": False,
                        "description": "Makes a retry safe: the same key with the same request "
                        "within 24 h replays the first response (header Idempotent-Replayed: "
                        "true); with another request it is 422; while the first still runs, "
                        "409.",
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_KEY_LENGTH,
                            "pattern": KEY_PATTERN,
                        },
                    }
                )


def _add_common_errors(schema: dict[str, Any]) -> None:
    """Errors any operation of a kind can answer, whatever its route declares: 413 for a body
    over the limit (every operation with a body), 409 idempotency-key-in-use (tenant POSTs with
    an Idempotency-Key), 429 (rate limits: every tenant operation) and 503 (PostgreSQL or Redis
    away: every API operation)."""
    for path, ops in schema.get("paths", {}).items():
        if not path.startswith(("/api/", "/platform/")):
            continue
        for method, op in ops.items():
            responses = op.setdefault("responses", {})
            wanted = [503]
            if path.startswith("/api/"):
                wanted.append(429)
            if "requestBody" in op:
                wanted.append(413)
            if method == "post" and any(
                p.get("name") == IDEMPOTENCY_HEADER for p in op.get("parameters", [])
            ):
                wanted.append(409)
            for status in wanted:
                responses.setdefault(str(status), problem_responses(status)[status])


def install_openapi(app: FastAPI, *, auth: tuple[Callable[..., Any], ...]) -> None:
    """Complete app.openapi() as described above; call after every router is included.
    ``auth``: the dependencies that authenticate a caller (their routes get the scheme)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            _add_security_and_keys(schema, _authenticated(app, auth))
            _add_common_errors(schema)
            _add_links(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
