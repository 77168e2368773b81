"""Liveness and readiness probes, and the process's Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from backend.kit.deps import ResourcesDep
from backend.kit.errors import problem_response

router = APIRouter(tags=["health"])
CHECK_TIMEOUT = 2.0


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="PostgreSQL and Redis answer (503 otherwise)",
    responses={503: {"description": "A dependency does not answer"}},
)
async def readyz(request: Request, res: ResourcesDep) -> Any:
    async def database() -> None:
        async with res.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def redis() -> None:
        await res.redis.ping()

    checks: dict[str, str] = {}
    for name, probe in (("postgres", database), ("redis", redis)):
        try:
            await asyncio.wait_for(probe(), CHECK_TIMEOUT)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"error: {type(exc).__name__}"
    if all(v == "ok" for v in checks.values()):
        return {"status": "ready", "checks": checks}
    failing = ", ".join(k for k, v in checks.items() if v != "ok")
    return problem_response(
        request,
        503,
        "not-ready",
        f"Not ready: {failing} not answering.",
        headers={"Retry-After": "5"},
        checks=checks,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics of this process (text exposition format)",
    response_class=PlainTextResponse,
)
async def metrics() -> PlainTextResponse:
    return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)
