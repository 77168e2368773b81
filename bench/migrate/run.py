"""Benchmark: migrating every tenant schema, and a migrate run with nothing to do.

Phase 1, a real migration: ``--tenants`` tenants (default 1000) are provisioned at the tenant
revision just before head, then ``tenancy.migrate.migrate_all`` brings them all to head with its
pool of spawned worker processes (``--jobs``, default min(4, cores * 2)), as ``tenantflow migrate``
does. Reported: total seconds (worker start-up included: it is part of the real cost), tenants per
second, and the per-tenant time inside the workers.

Its baseline is the serial cost of the same work: a few separate tenants at the same revision are
migrated one at a time (check out a connection, ``upgrade_tenant`` to head), ``--single`` of them
before the run after one untimed warm-up and as many after it, so that a change of machine load
during the run shows in the baseline; N x their median is what a plain loop over the tenants would
take. The ratio ``total / serial estimate`` (below 1 is better) shows what the process pool buys
on this machine; the estimate leaves out the run's fixed cost (advisory lock, shared schema check,
registry query, worker start-up), which the total includes, so the ratio is slightly unfavourable
to ``migrate_all``.

Phase 2, the no-op run: the registry is grown to ``--registry`` rows (default 10,000) with one
``INSERT ... SELECT generate_series`` of rows already at head (no schema behind them: a migrator
that reads only the registry never needs one), then ``migrate_all`` is timed with nothing to do
(median of ``--noop-runs``). The SQL statements it sends are counted with a
``before_cursor_execute`` listener on the engine, pool checkouts with a ``checkout`` listener (each
checkout costs a pre-ping round trip that SQLAlchemy does not send through the cursor events).
Baselines: one ``SELECT 1`` round trip on an open connection, and the same no-op run timed before
the registry was grown, so the ratio between the two shows whether the cost grows with the tenant
count (it should not: the pending tenants are found by one query).

Targets: the migration of 1000 tenants in under 60 s (scaled linearly for other ``--tenants``),
the no-op run over 10,000 registry rows in under 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event, text

from bench import (
    Counter,
    Summary,
    default_jobs,
    figure,
    progress,
    provision_many,
    ratio,
    throwaway_database,
    timed,
    verdict,
)

TARGET_SECONDS_PER_1000 = 60.0
TARGET_NOOP_SECONDS = 1.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.migrate.run",
        description="Time migrate_all over many tenants, and a migrate run with nothing to do.",
    )
    parser.add_argument(
        "--tenants", type=int, default=None, help="tenants to migrate (default 1000, quick 50)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=default_jobs(),
        help=f"migrate_all worker processes (default min(4, cores * 2) = {default_jobs()})",
    )
    parser.add_argument(
        "--single",
        type=int,
        default=None,
        help="tenants migrated one at a time for the serial baseline, before the run and "
        "again after it (default 5 + 5, quick 3 + 3)",
    )
    parser.add_argument(
        "--registry",
        type=int,
        default=None,
        help="registry rows for the no-op run (default 10000, quick 1000)",
    )
    parser.add_argument(
        "--noop-runs", type=int, default=None, help="no-op runs timed (default 5, quick 3)"
    )
    parser.add_argument(
        "--setup-jobs", type=int, default=2, help="threads provisioning tenants (default 2)"
    )
    parser.add_argument(
        "--show-statements",
        action="store_true",
        help="print the SQL statements of one no-op run to stderr",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 50 tenants, 3 single, 1000 registry rows, 3 no-op runs",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.tenants = args.tenants if args.tenants is not None else (50 if quick else 1000)
    args.single = args.single if args.single is not None else (3 if quick else 5)
    args.registry = args.registry if args.registry is not None else (1000 if quick else 10_000)
    args.noop_runs = args.noop_runs if args.noop_runs is not None else (3 if quick else 5)
    if min(args.tenants, args.jobs, args.single, args.noop_runs, args.setup_jobs) < 1:
        parser.error("--tenants, --jobs, --single, --noop-runs and --setup-jobs must be >= 1")
    return args


# --- helpers -----------------------------------------------------------------------------------


def previous_revision() -> str:
    """The tenant revision just before head (the head must have exactly one parent)."""
    from tenancy import migrate

    head = migrate.script_directory("tenant").get_revision(migrate.head("tenant"))
    assert head is not None
    down = head.down_revision
    if not isinstance(down, str):
        raise SystemExit(f"tenant head {head.revision} has parents {down!r}; need exactly one")
    return down


@dataclass
class SqlCounter:
    """SQL statements sent through an engine and pool checkouts, while ``counting()`` is open."""

    engine: Engine
    statements: list[str] = field(default_factory=list)
    checkouts: int = 0

    def _on_execute(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.statements.append(statement)

    def _on_checkout(self, *_args: Any) -> None:
        self.checkouts += 1

    @contextmanager
    def counting(self) -> Iterator[SqlCounter]:
        self.statements = []
        self.checkouts = 0
        event.listen(self.engine, "before_cursor_execute", self._on_execute)
        event.listen(self.engine.pool, "checkout", self._on_checkout)
        try:
            yield self
        finally:
            event.remove(self.engine, "before_cursor_execute", self._on_execute)
            event.remove(self.engine.pool, "checkout", self._on_checkout)


@dataclass(frozen=True)
class NoopResult:
    registry_rows: int
    median: float
    statements: list[int]
    checkouts: list[int]


def span(values: Sequence[int]) -> str:
    """``7`` when every run gave 7, ``6-7`` when they differed."""
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}-{high}"


def registry_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM tf_shared.tenants")).scalar_one())


def tenants_at(engine: Engine, revision: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM tf_shared.tenants WHERE schema_revision = :rev"),
                {"rev": revision},
            ).scalar_one()
        )


# --- phases ------------------------------------------------------------------------------------


def single_tenant_seconds(engine: Engine, slugs: Sequence[str]) -> list[float]:
    """Migrate each tenant alone to head (connection checkout + upgrade_tenant), timed each."""
    from tenancy import migrate, registry

    head = migrate.head("tenant")
    samples = []
    for slug in slugs:
        with engine.connect() as conn:
            record = registry.get_by_slug(conn, slug)
        assert record is not None
        started = time.perf_counter()
        with engine.connect() as conn:
            reached = migrate.upgrade_tenant(conn, record.id, record.schema_name, "head")
        samples.append(time.perf_counter() - started)
        if reached != head:
            raise RuntimeError(f"tenant {slug} reached {reached}, not {head}")
    return samples


def migrate_everything(engine: Engine, jobs: int, expected: int) -> tuple[float, list[float]]:
    """One ``migrate_all`` that must migrate ``expected`` tenants; (seconds, per-tenant seconds)."""
    from tenancy import migrate

    counters: list[Counter] = []

    def on_start(pending: int) -> None:
        progress(f"migrate_all: {pending} tenants pending, {jobs} workers")
        counters.append(Counter("migrate_all", pending, every=max(1, pending // 10)))

    def on_result(_outcome: migrate.TenantOutcome) -> None:
        counters[0].tick()

    started = time.perf_counter()
    report = migrate.migrate_all(engine, jobs=jobs, on_start=on_start, on_result=on_result)
    seconds = time.perf_counter() - started
    if report.pending != expected or not report.ok:
        failed = "; ".join(f"{o.slug}: {o.error}" for o in report.failed[:5])
        raise RuntimeError(
            f"migrate_all: {report.pending} pending (expected {expected}), "
            f"{len(report.failed)} failed {failed}"
        )
    return seconds, [o.seconds for o in report.outcomes]


def grow_registry(engine: Engine, rows: int, head: str) -> None:
    """Add registry rows at head (no schema behind them) until the registry has ``rows`` rows."""
    extra = rows - registry_rows(engine)
    if extra <= 0:
        return
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tf_shared.tenants"
                " (id, slug, name, schema_name, plan, status, schema_revision)"
                " SELECT gen_random_uuid(), 'filler-' || lpad(g::text, 6, '0'), 'Filler ' || g,"
                " 't_filler_' || lpad(g::text, 6, '0'), 'free', 'active', :head"
                " FROM generate_series(1, :extra) AS g"
            ),
            {"head": head, "extra": extra},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE tf_shared.tenants")
    progress(f"registry grown by {extra} rows to {rows}")


def noop_runs(engine: Engine, runs: int, jobs: int, show: bool) -> NoopResult:
    """``runs`` timed ``migrate_all`` calls that must find nothing to do."""
    from tenancy import migrate

    counter = SqlCounter(engine)
    times, statements, checkouts = [], [], []
    for _ in range(runs):
        with counter.counting():
            started = time.perf_counter()
            report = migrate.migrate_all(engine, jobs=jobs)
            times.append(time.perf_counter() - started)
        if report.pending or report.outcomes:
            raise RuntimeError(f"no-op run found {report.pending} tenants to migrate")
        statements.append(len(counter.statements))
        checkouts.append(counter.checkouts)
    if show:
        for number, statement in enumerate(counter.statements, 1):
            progress(f"no-op statement {number}: {' '.join(statement.split())[:200]}")
    return NoopResult(registry_rows(engine), statistics.median(times), statements, checkouts)


def select1_seconds(engine: Engine, samples: int = 50) -> float:
    """Median round trip of ``SELECT 1`` on an open connection."""
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")  # warm the connection
        times = [timed(lambda: conn.exec_driver_sql("SELECT 1").scalar()) for _ in range(samples)]
    return statistics.median(times)


# --- the run -----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> None:
    from backend.config import get_settings
    from backend.kit.db import make_engine
    from tenancy import migrate

    head = migrate.head("tenant")
    previous = previous_revision()
    engine = make_engine(get_settings().database_url, pool_size=max(3, args.setup_jobs))
    try:
        migrate.upgrade_shared(engine)
        # Single-tenant baseline tenants: half migrated before the run (the first of them
        # untimed, as a warm-up), half provisioned and migrated after it, so that drift in
        # machine load during the run shows up in the baseline too.
        before = [f"single-a-{i:03d}" for i in range(args.single + 1)]
        after = [f"single-b-{i:03d}" for i in range(args.single)]
        tenants = [f"tenant-{i:05d}" for i in range(args.tenants)]
        setup = provision_many(
            engine,
            before + tenants,
            target=previous,
            jobs=args.setup_jobs,
            label=f"provisioning tenants at {previous}",
        )
        progress(f"{len(before) + len(tenants)} tenants at {previous} in {setup:.1f}s")

        single_before = single_tenant_seconds(engine, before)[1:]
        progress(f"single tenant upgrade: median {statistics.median(single_before) * 1000:.1f} ms")

        total, per_tenant = migrate_everything(engine, args.jobs, len(tenants))
        progress(f"migrate_all: {len(tenants)} tenants in {total:.1f}s")

        provision_many(engine, after, target=previous, jobs=1, label="baseline tenants (after)")
        single_after = single_tenant_seconds(engine, after)
        single = statistics.median(single_before + single_after)
        progress(f"single tenant upgrade after the run: median {single * 1000:.1f} ms overall")
        if tenants_at(engine, head) != len(before) + len(tenants) + len(after):
            raise RuntimeError("not every tenant is at head")

        select1 = select1_seconds(engine)
        small = noop_runs(engine, args.noop_runs, args.jobs, show=False)
        grow_registry(engine, args.registry, head)
        large = noop_runs(engine, args.noop_runs, args.jobs, show=args.show_statements)
    finally:
        engine.dispose()

    serial = len(tenants) * single
    workers = Summary.of(per_tenant)
    target = TARGET_SECONDS_PER_1000 * len(tenants) / 1000
    print(
        f"migrate benchmark: tenants={len(tenants)} from={previous} to={head} jobs={args.jobs}"
        f" cpus={os.cpu_count()} setup_s={setup:.1f}",
        flush=True,
    )
    figure(
        "single_tenant_upgrade",
        [
            ("median_ms", f"{single * 1000:.1f}"),
            ("samples", str(len(single_before) + len(single_after))),
            ("median_before_ms", f"{statistics.median(single_before) * 1000:.1f}"),
            ("median_after_ms", f"{statistics.median(single_after) * 1000:.1f}"),
        ],
    )
    figure(
        "migrate_all",
        [
            ("total_s", f"{total:.2f}"),
            ("tenants_per_s", f"{len(tenants) / total:.1f}"),
            ("serial_estimate_s", f"{serial:.2f}"),
            ("total_vs_serial_estimate", ratio(total, serial)),
            ("speedup", f"{ratio(serial, total)}x"),
        ],
    )
    figure(
        "migrate_all_per_tenant_in_worker",
        [
            ("p50_ms", f"{workers.p50 * 1000:.1f}"),
            ("p95_ms", f"{workers.p95 * 1000:.1f}"),
            ("p50_vs_single", ratio(workers.p50, single)),
        ],
    )
    figure(
        "target_migrate_under_60s_per_1000",
        [(f"under_{target:g}s", f"{verdict(total < target)}({total:.2f}s)")],
    )
    figure("select1_roundtrip", [("median_ms", f"{select1 * 1000:.3f}")])
    for label, result in (("noop_migrate_all_before_growth", small), ("noop_migrate_all", large)):
        figure(
            label,
            [
                ("registry_rows", str(result.registry_rows)),
                ("median_s", f"{result.median:.4f}"),
                ("runs", str(args.noop_runs)),
                ("statements", span(result.statements)),
                ("pool_checkouts", span(result.checkouts)),
                ("vs_select1", ratio(result.median, select1)),
                ("vs_before_growth", ratio(result.median, small.median)),
            ],
        )
    figure(
        "target_noop_under_1s",
        [
            (
                "noop_migrate_all",
                f"{verdict(large.median < TARGET_NOOP_SECONDS)}({large.median:.4f}s)",
            )
        ],
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with throwaway_database():
        run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
