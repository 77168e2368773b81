"""Benchmark: how long creating one tenant takes, with many tenants already there.

What is measured, with ``--existing`` tenants (default 1000) already provisioned:

* ``service.create_tenant`` -- the real path behind ``POST /platform/v1/tenants`` and the CLI:
  registry row, schema, the tenant DDL at head in one round trip (rendered once per process from
  the Alembic migrations) and the owner account, whose password is hashed with argon2, all in one
  transaction, then the registry cache invalidation in Redis.
* ``provisioning.create_tenant`` without a seed -- the same path less the owner, so the cost of
  the schema work can be read apart from the argon2 hash.
* the argon2 hash alone (``password_helper.hash``), to show where the gap between the two goes.

Baseline: what provisioning would cost without the rendered DDL, i.e. Alembic stepping through
the tenant migrations online (``tenancy.migrate.upgrade_tenant``) into an empty schema whose
registry row already exists. The registry row and the empty schema are made with plain SQL before
the clock starts and the connection is already checked out, so the baseline leaves out work that
the fast paths include (registry insert, CREATE SCHEMA, pool checkout, the record re-read, the
Redis invalidation): the speedup figures are, if anything, understated. For an apples-to-apples
reading the baseline is also printed with the registry row and the CREATE SCHEMA included
(``baseline_incl_row_and_schema``); ratios are always against the first one.

Absolute times on a shared machine are noisy, so every latency is also printed as a ratio against
the baseline p50/p95 of the same run, and the paths are measured interleaved (round-robin, with
the order rotating each round) so that drift in machine load hits all of them alike. Every
measured call creates a new tenant, so the registry grows by ``3 * samples`` during the run.

Target: p50 of the real path (``service.create_tenant``) under 100 ms.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis as redis_sync
from sqlalchemy import Engine, text

from bench import (
    BenchServices,
    Summary,
    figure,
    progress,
    provision_many,
    ratio,
    throwaway_database,
    timed,
    verdict,
)

TARGET_P50_SECONDS = 0.100
OWNER_PASSWORD = "bench-correct-horse-battery"


@dataclass(frozen=True)
class MeasuredPath:
    """One way of creating a tenant; ``run(slug)`` returns {sample key: seconds}."""

    key: str
    run: Callable[[str], dict[str, float]]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.provisioning.run",
        description="Time tenant creation (fast path, with and without owner) against Alembic "
        "online migrations into an empty schema.",
    )
    parser.add_argument(
        "--existing",
        type=int,
        default=None,
        help="tenants provisioned before measuring (default 1000, quick 50)",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=None,
        help="tenants created per measured path (default 100, quick 10)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=3,
        help="untimed rounds of every path before measuring (default 3)",
    )
    parser.add_argument(
        "--setup-jobs",
        type=int,
        default=2,
        help="threads provisioning the existing tenants (default 2)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 50 existing tenants, 10 samples per path"
    )
    args = parser.parse_args(argv)
    if args.existing is None:
        args.existing = 50 if args.quick else 1000
    if args.samples is None:
        args.samples = 10 if args.quick else 100
    if args.existing < 0 or args.samples < 2 or args.warmup < 0 or args.setup_jobs < 1:
        parser.error("need --existing >= 0, --samples >= 2, --warmup >= 0, --setup-jobs >= 1")
    return args


def _paths(engine: Engine, redis: redis_sync.Redis) -> list[MeasuredPath]:
    from backend.platform import service
    from tenancy import migrate, provisioning
    from tenancy.naming import quote_schema, schema_for_slug

    head = migrate.head("tenant")

    def real(slug: str) -> dict[str, float]:
        seconds = timed(
            lambda: service.create_tenant(
                engine,
                redis,
                slug=slug,
                name=slug.title(),
                plan="free",
                owner_email=f"owner@{slug}.example.com",
                owner_password=OWNER_PASSWORD,
            )
        )
        return {"real": seconds}

    def ddl_only(slug: str) -> dict[str, float]:
        seconds = timed(
            lambda: provisioning.create_tenant(engine, slug=slug, name=slug.title(), redis=redis)
        )
        return {"ddl": seconds}

    def alembic_online(slug: str) -> dict[str, float]:
        schema = schema_for_slug(slug)
        tenant_id = uuid.uuid4()
        with engine.connect() as conn:
            started = time.perf_counter()
            with conn.begin():
                conn.execute(
                    text(
                        "INSERT INTO tf_shared.tenants (id, slug, name, schema_name, plan, status)"
                        " VALUES (:id, :slug, :name, :schema, 'free', 'active')"
                    ),
                    {"id": tenant_id, "slug": slug, "name": slug.title(), "schema": schema},
                )
                conn.exec_driver_sql(f"CREATE SCHEMA {quote_schema(schema)}")
            setup = time.perf_counter() - started
            reached: list[str | None] = []
            seconds = timed(
                lambda: reached.append(migrate.upgrade_tenant(conn, tenant_id, schema, "head"))
            )
        if reached != [head]:
            raise RuntimeError(f"baseline tenant {slug} reached {reached}, not {head}")
        return {"baseline": seconds, "baseline_full": setup + seconds}

    return [
        MeasuredPath("baseline", alembic_online),
        MeasuredPath("real", real),
        MeasuredPath("ddl", ddl_only),
    ]


def _measure(paths: Sequence[MeasuredPath], rounds: int, label: str) -> dict[str, list[float]]:
    """``rounds`` rounds of every path, order rotating each round, plus the argon2 hash alone."""
    from backend.identity.passwords import password_helper

    samples: dict[str, list[float]] = defaultdict(list)
    every = max(1, rounds // 10)
    for i in range(rounds):
        order = list(paths[i % len(paths) :]) + list(paths[: i % len(paths)])
        for path in order:
            for key, seconds in path.run(f"{path.key}-{label}-{i:05d}").items():
                samples[key].append(seconds)
        samples["hash"].append(timed(lambda: password_helper.hash(OWNER_PASSWORD)))
        if (i + 1) % every == 0 or i + 1 == rounds:
            progress(f"{label}: round {i + 1}/{rounds}")
    return samples


def _report(args: argparse.Namespace, samples: dict[str, list[float]]) -> None:
    from tenancy import migrate

    base = Summary.of(samples["baseline"])
    real = Summary.of(samples["real"])
    ddl = Summary.of(samples["ddl"])
    full = Summary.of(samples["baseline_full"])
    argon2 = Summary.of(samples["hash"])
    print(
        f"provisioning benchmark: existing_tenants={args.existing} samples_per_path={args.samples}"
        f" tenant_head={migrate.head('tenant')} cpus={os.cpu_count()}",
        flush=True,
    )
    rows = [
        ("baseline_alembic_online", base),
        ("baseline_incl_row_and_schema", full),
        ("service_create_tenant", real),
        ("provisioning_create_tenant_no_seed", ddl),
        ("argon2_hash_alone", argon2),
    ]
    for label, s in rows:
        figure(
            label,
            [
                ("p50_ms", f"{s.p50 * 1000:.1f}"),
                ("p95_ms", f"{s.p95 * 1000:.1f}"),
                ("p50_vs_baseline", ratio(s.p50, base.p50)),
                ("p95_vs_baseline", ratio(s.p95, base.p95)),
            ],
        )
    figure(
        "speedup_vs_baseline_p50",
        [
            ("service_create_tenant", f"{ratio(base.p50, real.p50)}x"),
            ("provisioning_create_tenant_no_seed", f"{ratio(base.p50, ddl.p50)}x"),
        ],
    )
    figure(
        "target_p50_under_100ms",
        [
            (
                "service_create_tenant",
                f"{verdict(real.p50 < TARGET_P50_SECONDS)}({real.p50 * 1000:.1f}ms)",
            ),
            (
                "provisioning_create_tenant_no_seed",
                f"{verdict(ddl.p50 < TARGET_P50_SECONDS)}({ddl.p50 * 1000:.1f}ms)",
            ),
        ],
    )


def run(services: BenchServices, args: argparse.Namespace) -> None:
    from backend.config import get_settings
    from backend.kit.db import make_engine
    from tenancy import migrate

    engine = make_engine(
        get_settings().database_url, pool_size=max(2, args.setup_jobs), max_overflow=0
    )
    redis = redis_sync.Redis.from_url(services.redis_url)
    try:
        migrate.upgrade_shared(engine)
        existing = [f"existing-{i:05d}" for i in range(args.existing)]
        seconds = provision_many(
            engine,
            existing,
            target="head",
            jobs=args.setup_jobs,
            label="provisioning existing tenants",
        )
        progress(f"{args.existing} existing tenants in {seconds:.1f}s")
        paths = _paths(engine, redis)
        if args.warmup:
            _measure(paths, args.warmup, "warmup")
        samples = _measure(paths, args.samples, "measure")
        with engine.connect() as conn:
            at_head = conn.execute(
                text("SELECT count(*) FROM tf_shared.tenants WHERE schema_revision = :head"),
                {"head": migrate.head("tenant")},
            ).scalar_one()
        expected = args.existing + 3 * (args.warmup + args.samples)
        if at_head != expected:
            raise RuntimeError(f"{at_head} tenants at head, expected {expected}")
        _report(args, samples)
    finally:
        redis.close()
        engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with throwaway_database() as services:
        run(services, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
