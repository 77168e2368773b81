"""RFC 9457 problem details: one exception type, one renderer, handlers for everything else."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg import errors as pg_errors
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import exc as orm_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.kit.routing import allowed_methods

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://tenantflow.dev/problems/"


class Problem(Exception):
    """An error a client can act on. ``code`` becomes the problem type URI."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers
        self.extra = extra


def problem_body(
    request: Request | None, status: int, code: str, title: str, detail: str, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
        request_id = getattr(request.state, "request_id", None)
        if request_id:
            body["request_id"] = request_id
    body.update(extra)
    return body


def problem_response(
    request: Request | None,
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = problem_body(request, status, code, title or HTTPStatus(status).phrase, detail, **extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_HTTP_CODES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    412: "precondition-failed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "too-many-requests",
    503: "service-unavailable",
}


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(
        request,
        exc.status,
        exc.code,
        exc.detail,
        title=exc.title,
        headers=exc.headers,
        **exc.extra,
    )


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    code = _HTTP_CODES.get(exc.status_code, "http-error")
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:
        allowed = allowed_methods(request.scope)
        if allowed:
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
            detail = f"{request.method} is not allowed here; allowed: {', '.join(allowed)}."
    return problem_response(request, exc.status_code, code, detail, headers=headers)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": ".".join(str(p) for p in err.get("loc", ())),
            "message": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]
    return problem_response(
        request,
        422,
        "validation-error",
        f"{len(errors)} field(s) failed validation",
        title="Request validation failed",
        errors=errors,
    )


def _dependency_down(exc: BaseException) -> str | None:
    """Which backing service an exception says is unreachable, if any."""
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return "PostgreSQL"
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return "Redis"
    return None


def unavailable_problem(exc: BaseException) -> Problem:
    """The problem for a backing service that failed: a deadlock or serialization conflict
    (409, retry), locked/too slow (503 tenant-busy) or away (503)."""
    rollback = pg_errors.DeadlockDetected | pg_errors.SerializationFailure
    if isinstance(getattr(exc, "orig", None), rollback):
        return Problem(
            409,
            "concurrent-update",
            "Another request changed the same data at the same moment; nothing was changed. "
            "Retry the request.",
            headers={"Retry-After": "1"},
        )
    if isinstance(getattr(exc, "orig", None), pg_errors.LockNotAvailable | pg_errors.QueryCanceled):
        return Problem(
            503,
            "tenant-busy",
            "The data is locked by another operation (a migration, for example) or the query "
            "took too long; nothing was changed. Retry shortly.",
            headers={"Retry-After": "5"},
        )
    service = _dependency_down(exc) or "a backing service"
    return Problem(
        503,
        "service-unavailable",
        f"{service} is not answering; nothing was changed. Retry shortly.",
        headers={"Retry-After": "5"},
    )


async def _on_unavailable(request: Request, exc: Exception) -> JSONResponse:
    problem = unavailable_problem(exc)
    log.warning("%s on %s %s: %s", problem.code, request.method, request.url.path, exc)
    request_id = getattr(request.state, "request_id", None)
    headers = {**(problem.headers or {}), **({"X-Request-ID": request_id} if request_id else {})}
    return problem_response(request, problem.status, problem.code, problem.detail, headers=headers)


async def _on_unhandled(request: Request, exc: Exception) -> JSONResponse:
    # This handler runs outside every middleware: add the request id header here.
    if _dependency_down(exc):
        return await _on_unavailable(request, exc)
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    request_id = getattr(request.state, "request_id", None)
    headers = {"X-Request-ID": request_id} if request_id else None
    return problem_response(
        request,
        500,
        "internal-error",
        "An unexpected error occurred; it has been logged.",
        headers=headers,
    )


async def _on_data_error(request: Request, exc: Exception) -> JSONResponse:
    # A value PostgreSQL refused (NUL in text, out of range, ...) that validation let through:
    # the client's input, so 422; logged because a schema should have caught it.
    log.warning("database refused a value on %s %s: %s", request.method, request.url.path, exc)
    request_id = getattr(request.state, "request_id", None)
    return problem_response(
        request,
        422,
        "invalid-data",
        "A value in the request cannot be stored (for example a NUL character or a number "
        "out of range); nothing was changed.",
        headers={"X-Request-ID": request_id} if request_id else None,
    )


async def _on_stale(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(
        request,
        412,
        "precondition-failed",
        "Another request changed this resource at the same moment; read it again and retry.",
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(orm_exc.StaleDataError, _on_stale)
    app.add_exception_handler(sa_exc.DataError, _on_data_error)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_validation)
    for unavailable in (
        sa_exc.OperationalError,
        sa_exc.InterfaceError,
        sa_exc.TimeoutError,
        RedisConnectionError,
        RedisTimeoutError,
    ):
        app.add_exception_handler(unavailable, _on_unavailable)
    app.add_exception_handler(Exception, _on_unhandled)


#: OpenAPI description of a problem response, for routes' ``responses=``.
PROBLEM_SCHEMA = {
    "content": {
        PROBLEM_JSON: {
            "schema": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "instance": {"type": "string"},
                    "request_id": {"type": "string"},
                },
                "required": ["type", "title", "status", "detail"],
            }
        }
    }
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"description": HTTPStatus(s).phrase, **PROBLEM_SCHEMA} for s in statuses}
