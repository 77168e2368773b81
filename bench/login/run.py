"""Benchmark: what a tenant login costs on top of the argon2 hash it cannot avoid.

Every sample is one ``POST /api/v1/auth/login`` through the whole app (``create_app``: request
id, tenant resolution, routing, dependencies, the problem handlers), driven in this process by
direct ASGI calls (``bench.asgi_call``: the messages a server would send, no HTTP client library in
the timing). That leaves out the socket, the HTTP parser and the server's task per
connection; those cost the same for every route and are the server's, not the login path's,
so a real uvicorn server would add noise (two processes on two shared cores) and no
information about the code under test.

Measured, interleaved round-robin with the order rotating every round:

* ``argon2_verify`` -- **baseline**: ``password_helper.verify_and_update`` of the owner's
  password against the stored hash (same password, same parameters), called directly.
* ``argon2_hash`` -- ``password_helper.hash``: what an unknown email pays instead (dummy hash).
* ``login_succeeded`` -- the owner logs in (200: access and refresh token, audit row).
* ``login_failed_unknown_email`` -- an email with no account (401).
* ``login_failed_wrong_password`` -- a known account, wrong password (401).
* ``login_rejected_422_no_io`` -- an empty password (422): the same route, middleware, form
  parsing and error handler, but no Redis, database or hash. The framework's share of a login.

Lockout: the failed samples must not be answered 429 by ``backend.kit.throttle``. Each failed
sample uses an email of its own (a distinct unknown email, or a distinct seeded account with the
owner's hash), so no account counter reaches its limit, and the per-address limit is raised to
its maximum for the bench's app (all requests come from one address). The counters are still
checked and incremented on every request, as in production.

Targets: login p50 at most 1.3x the verify p50; unknown-email p50 within 10% of wrong-password
p50 (an attacker must not learn which emails have accounts from the timing).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis as redis_sync
from sqlalchemy import Engine, insert, select

from bench import (
    BenchServices,
    Summary,
    asgi_call,
    figure,
    progress,
    ratio,
    throwaway_database,
    verdict,
)

TARGET_LOGIN_VS_HASH = 1.3
TARGET_UNKNOWN_VS_KNOWN = 0.10
PASSWORD = "bench-correct-horse-battery"
WRONG_PASSWORD = "bench-wrong-horse-battery!"
LOGIN_URL = "/api/v1/auth/login"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.login.run",
        description="Time tenant login through the whole app against the argon2 verify alone, "
        "and failed logins of unknown emails against wrong passwords of known ones.",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=None,
        help="samples per measured path (default 200, quick 20)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="untimed rounds of every path before measuring (default 10, quick 3)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 20 samples per path, 3 warm-up rounds"
    )
    args = parser.parse_args(argv)
    if args.samples is None:
        args.samples = 20 if args.quick else 200
    if args.warmup is None:
        args.warmup = 3 if args.quick else 10
    if args.samples < 2 or args.warmup < 0:
        parser.error("need --samples >= 2, --warmup >= 0")
    return args


@dataclass(frozen=True)
class Tenant:
    slug: str
    tenant_id: uuid.UUID
    owner_email: str
    stored_hash: str
    known_emails: list[str]


def _setup(engine: Engine, redis: redis_sync.Redis, accounts: int) -> Tenant:
    """One tenant with its owner, and ``accounts`` more users with the owner's hash."""
    from backend.identity.models import User
    from backend.platform import service
    from tenancy import migrate
    from tenancy.db import translate_map

    migrate.upgrade_shared(engine)
    slug = f"bench-login-{os.getpid()}"
    owner = f"owner@{slug}.example.com"
    record = service.create_tenant(
        engine,
        redis,
        slug=slug,
        name="Bench Login",
        plan="free",
        owner_email=owner,
        owner_password=PASSWORD,
    )
    emails = [f"member-{i:05d}@{slug}.example.com" for i in range(accounts)]
    with engine.begin() as conn:
        bound = conn.execution_options(schema_translate_map=translate_map(record.schema_name))
        stored = bound.execute(select(User.hashed_password).where(User.email == owner)).scalar_one()
        bound.execute(
            insert(User),
            [
                {
                    "id": uuid.uuid4(),
                    "email": email,
                    "hashed_password": stored,
                    "name": "Member",
                    "role": "member",
                    "is_active": True,
                    "is_verified": True,
                }
                for email in emails
            ],
        )
    progress(f"tenant {slug} with {accounts + 1} accounts")
    return Tenant(slug, record.id, owner, stored, emails)


def _forget_keys(redis: redis_sync.Redis, tenant: Tenant) -> None:
    """Drop the tenant's Redis keys (throttle counters); the registry cache expires by itself."""
    keys = list(redis.scan_iter(match=f"tf:{{{tenant.tenant_id}}}:*", count=1000))
    if keys:
        redis.delete(*keys)


Path = Callable[[int], Awaitable[float]]


def _paths(app: Any, tenant: Tenant) -> dict[str, Path]:
    import time
    from urllib.parse import urlencode

    from backend.identity.passwords import password_helper

    headers = [
        (b"x-tenant", tenant.slug.encode()),
        (b"content-type", b"application/x-www-form-urlencoded"),
    ]

    async def post(email: str, password: str, status: int) -> float:
        body = urlencode({"username": email, "password": password}).encode()
        started = time.perf_counter()
        got = await asgi_call(app, "POST", LOGIN_URL, body, headers)
        seconds = time.perf_counter() - started
        if got != status:
            raise RuntimeError(f"login of {email}: {got}, not {status}")
        return seconds

    async def rejected(_: int) -> float:
        return await post(tenant.owner_email, "", 422)

    async def verify(_: int) -> float:
        started = time.perf_counter()
        verified, updated = password_helper.verify_and_update(PASSWORD, tenant.stored_hash)
        seconds = time.perf_counter() - started
        if not verified or updated is not None:
            raise RuntimeError("the stored hash does not verify at the current parameters")
        return seconds

    async def hash_(_: int) -> float:
        started = time.perf_counter()
        password_helper.hash(PASSWORD)
        return time.perf_counter() - started

    async def succeeded(_: int) -> float:
        return await post(tenant.owner_email, PASSWORD, 200)

    async def unknown(i: int) -> float:
        return await post(f"nobody-{i:05d}@{tenant.slug}.example.com", PASSWORD, 401)

    async def wrong(i: int) -> float:
        return await post(tenant.known_emails[i], WRONG_PASSWORD, 401)

    return {
        "verify": verify,
        "hash": hash_,
        "succeeded": succeeded,
        "unknown": unknown,
        "wrong": wrong,
        "rejected": rejected,
    }


async def _measure(
    paths: dict[str, Path], rounds: int, first: int, label: str
) -> dict[str, list[float]]:
    """``rounds`` rounds of every path, the order rotating each round; ``first`` numbers them."""
    samples: dict[str, list[float]] = defaultdict(list)
    keys = list(paths)
    every = max(1, rounds // 10)
    for i in range(rounds):
        shift = i % len(keys)
        for key in keys[shift:] + keys[:shift]:
            samples[key].append(await paths[key](first + i))
        if (i + 1) % every == 0 or i + 1 == rounds:
            progress(f"{label}: round {i + 1}/{rounds}")
    return samples


def _report(args: argparse.Namespace, samples: dict[str, list[float]]) -> None:
    s = {key: Summary.of(values) for key, values in samples.items()}
    base = s["verify"]
    print(
        f"login benchmark: samples_per_path={args.samples} warmup={args.warmup}"
        f" transport=asgi-direct cpus={os.cpu_count()}",
        flush=True,
    )
    rows = [
        ("argon2_verify_alone", "verify"),
        ("argon2_hash_alone", "hash"),
        ("login_succeeded", "succeeded"),
        ("login_failed_unknown_email", "unknown"),
        ("login_failed_wrong_password", "wrong"),
        ("login_rejected_422_no_io", "rejected"),
    ]
    for label, key in rows:
        row = s[key]
        figure(
            label,
            [
                ("p50_ms", f"{row.p50 * 1000:.1f}"),
                ("p95_ms", f"{row.p95 * 1000:.1f}"),
                ("p50_vs_verify", ratio(row.p50, base.p50)),
                ("p95_vs_verify", ratio(row.p95, base.p95)),
                ("p50_over_verify_ms", f"{(row.p50 - base.p50) * 1000:.1f}"),
            ],
        )
    login = s["succeeded"].p50 / base.p50
    timing = s["unknown"].p50 / s["wrong"].p50
    figure(
        "target_login_vs_verify_p50_max_1.3x",
        [("login_succeeded", f"{verdict(login <= TARGET_LOGIN_VS_HASH)}({login:.2f}x)")],
    )
    figure(
        "target_unknown_vs_known_p50_within_10pct",
        [
            (
                "unknown_vs_wrong_password",
                f"{verdict(abs(timing - 1) <= TARGET_UNKNOWN_VS_KNOWN)}({timing:.2f}x)",
            )
        ],
    )


async def _run_app(args: argparse.Namespace, services: BenchServices, tenant: Tenant) -> None:
    from backend.config import get_settings
    from backend.main import create_app

    # All requests come from one address: its counter must not lock the failed series.
    settings = get_settings().model_copy(
        update={
            "redis_url": services.redis_url,
            "login_max_failures_per_address": 100_000,
            "log_level": "WARNING",
        }
    )
    app = create_app(settings)
    app_state: Any = app
    async with app_state.router.lifespan_context(app):
        paths = _paths(app, tenant)
        if args.warmup:
            await _measure(paths, args.warmup, 0, "warmup")
        samples = await _measure(paths, args.samples, args.warmup, "measure")
    _report(args, samples)


def run(services: BenchServices, args: argparse.Namespace) -> None:
    from backend.config import get_settings
    from backend.kit.db import make_engine

    engine = make_engine(get_settings().database_url, pool_size=2, max_overflow=0)
    redis = redis_sync.Redis.from_url(services.redis_url)
    tenant: Tenant | None = None
    try:
        tenant = _setup(engine, redis, args.warmup + args.samples)
        asyncio.run(_run_app(args, services, tenant))
    finally:
        if tenant is not None:
            _forget_keys(redis, tenant)
        redis.close()
        engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with throwaway_database() as services:
        run(services, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
