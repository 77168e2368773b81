"""Migrations across tenant schemas: parallel, failure-isolated, resumable, cheap when idle."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import delete, event, insert, text

from tenancy import migrate, provisioning
from tenancy.naming import quote_schema, schema_for_slug
from tenancy.registry import Tenant

PREVIOUS = "0001"  # the revision before head in these tests


def _old_tenants(engine, prefix: str, count: int) -> list[str]:
    slugs = [f"{prefix}-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    for slug in slugs:
        provisioning.create_tenant(engine, slug=slug, name=slug, target=PREVIOUS)
    return slugs


def _revisions(engine, slugs: list[str]) -> dict[str, str]:
    """Revision per tenant as its own alembic_version table says (not the registry)."""
    out = {}
    with engine.connect() as conn:
        for slug in slugs:
            schema = quote_schema(schema_for_slug(slug))
            out[slug] = conn.execute(
                text(f"SELECT version_num FROM {schema}.alembic_version")
            ).scalar()
    return out


class QueryCounter:
    def __init__(self, engine) -> None:
        self.count = 0
        self.engine = engine

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._hit)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._hit)

    def _hit(self, *args):
        self.count += 1


def test_two_hundred_tenants_reach_head_in_parallel(sync_engine):
    slugs = _old_tenants(sync_engine, "mig", 200)
    report = migrate.migrate_all(sync_engine, jobs=4)
    assert report.ok, report.failed[:3]
    assert {o.slug for o in report.outcomes} >= set(slugs)
    head = migrate.head("tenant")
    assert set(_revisions(sync_engine, slugs).values()) == {head}
    with sync_engine.connect() as conn:
        behind = conn.execute(
            text("SELECT count(*) FROM tf_shared.tenants WHERE schema_revision <> :h"), {"h": head}
        ).scalar()
    assert behind == 0


def test_failure_is_isolated_reported_and_resumable(sync_engine):
    slugs = _old_tenants(sync_engine, "fail", 6)
    broken = slugs[2]
    with sync_engine.begin() as conn:  # the next revision creates this table: make it collide
        conn.execute(text(f"CREATE TABLE {quote_schema(schema_for_slug(broken))}.projects (x int)"))
    report = migrate.migrate_all(sync_engine, jobs=2)
    assert [o.slug for o in report.failed] == [broken]
    assert "projects" in (report.failed[0].error or "")
    revisions = _revisions(sync_engine, slugs)
    assert revisions.pop(broken) == PREVIOUS  # its transaction rolled back whole
    assert set(revisions.values()) == {migrate.head("tenant")}

    with sync_engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {quote_schema(schema_for_slug(broken))}.projects"))
    again = migrate.migrate_all(sync_engine, jobs=2)
    assert again.ok and [o.slug for o in again.outcomes] == [broken]


def test_noop_run_issues_bounded_queries(sync_engine):
    migrate.migrate_all(sync_engine, jobs=1)
    with QueryCounter(sync_engine) as few:
        assert migrate.migrate_all(sync_engine, jobs=1).pending == 0
    head = migrate.head("tenant")
    with sync_engine.begin() as conn:  # 300 more registry rows, all at head
        conn.execute(
            insert(Tenant),
            [
                {
                    "id": uuid.uuid4(),
                    "slug": f"noop-{i}-{uuid.uuid4().hex[:6]}",
                    "name": "n",
                    "schema_name": f"t_noop_{uuid.uuid4().hex}",
                    "schema_revision": head,
                }
                for i in range(300)
            ],
        )
    try:
        with QueryCounter(sync_engine) as many:
            assert migrate.migrate_all(sync_engine, jobs=1).pending == 0
    finally:  # registry rows without schemas: other tests' relays and sweeps must not see them
        with sync_engine.begin() as conn:
            conn.execute(delete(Tenant).where(Tenant.schema_name.like("t_noop_%")))
    assert many.count == few.count
    assert few.count <= 10


def test_second_migrator_is_refused(sync_engine):
    with sync_engine.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": migrate.MIGRATION_LOCK_KEY})
        try:
            with pytest.raises(migrate.MigrationLocked):
                migrate.migrate_all(sync_engine, jobs=1)
        finally:
            holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": migrate.MIGRATION_LOCK_KEY})
            holder.commit()


def _catalog(conn, schema: str) -> dict[str, list]:
    q = {
        "columns": """SELECT table_name, column_name, data_type, is_nullable, column_default,
                      character_maximum_length FROM information_schema.columns
                      WHERE table_schema = :s ORDER BY 1, 2""",
        "indexes": """SELECT tablename, indexname, replace(indexdef, :s || '.', '')
                      FROM pg_indexes WHERE schemaname = :s ORDER BY 1, 2""",
        "constraints": """SELECT conrelid::regclass::text, conname, contype,
                          replace(pg_get_constraintdef(c.oid), :s || '.', '')
                          FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
                          WHERE n.nspname = :s ORDER BY 2""",
        "versions": "SELECT version_num FROM {schema}.alembic_version",
    }
    out = {}
    for name, sql in q.items():
        rows = conn.execute(text(sql.format(schema=quote_schema(schema))), {"s": schema}).all()
        out[name] = [tuple(str(v).replace(schema, "<s>") for v in r) for r in rows]
    return out


def test_fast_path_schema_equals_migrated_schema(sync_engine):
    fast = provisioning.create_tenant(sync_engine, slug=f"fast-{uuid.uuid4().hex[:8]}", name="f")
    slow_slug = f"slow-{uuid.uuid4().hex[:8]}"
    slow_id = uuid.uuid4()
    with sync_engine.begin() as conn:
        conn.execute(
            insert(Tenant).values(
                id=slow_id, slug=slow_slug, name="s", schema_name=schema_for_slug(slow_slug)
            )
        )
        conn.execute(text(f"CREATE SCHEMA {quote_schema(schema_for_slug(slow_slug))}"))
    with sync_engine.connect() as conn:
        migrate.upgrade_tenant(conn, slow_id, schema_for_slug(slow_slug))
    with sync_engine.connect() as conn:
        assert _catalog(conn, fast.schema_name) == _catalog(conn, schema_for_slug(slow_slug))


def test_provisioning_is_atomic(sync_engine):
    slug = f"atom-{uuid.uuid4().hex[:8]}"

    def failing_seed(conn, tenant):
        raise RuntimeError("seed failed")

    with pytest.raises(RuntimeError):
        provisioning.create_tenant(sync_engine, slug=slug, name="a", seed=failing_seed)
    with sync_engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM tf_shared.tenants WHERE slug = :s"), {"s": slug}
            ).scalar()
            == 0
        )
        assert (
            conn.execute(
                text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"),
                {"s": schema_for_slug(slug)},
            ).scalar()
            == 0
        )


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )


def test_cli_migrate_reports_and_exits_nonzero_on_failure(sync_engine):
    [slug] = _old_tenants(sync_engine, "clim", 1)
    schema = quote_schema(schema_for_slug(slug))
    with sync_engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {schema}.projects (x int)"))
    failed = _cli("migrate", "--jobs", "1")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert slug in failed.stdout + failed.stderr and "1 failed" in failed.stdout
    status = _cli("migrate", "--status")
    assert status.returncode == 0 and PREVIOUS in status.stdout
    with sync_engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {schema}.projects"))
    fixed = _cli("migrate", "--jobs", "1")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert f"[1/1] {slug} ok" in fixed.stdout


def test_tenant_being_deleted_is_skipped_not_recreated(sync_engine):
    [slug] = _old_tenants(sync_engine, "skip", 1)
    record = provisioning.mark_deleting(sync_engine, slug)
    with sync_engine.connect() as conn, pytest.raises(migrate.TenantGone):
        migrate.upgrade_tenant(conn, record.id, record.schema_name)
    provisioning.drop_tenant(sync_engine, record.id)
    with sync_engine.connect() as conn:
        outcome = migrate._migrate_with(sync_engine, record.id, slug, record.schema_name, "head")
        assert outcome.ok and outcome.skipped
        gone = conn.execute(
            text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"), {"s": record.schema_name}
        ).scalar()
    assert gone == 0


def test_older_target_touches_no_tenant_and_unknown_target_is_refused(sync_engine):
    migrate.migrate_all(sync_engine, jobs=1)
    report = migrate.migrate_all(sync_engine, jobs=1, target=PREVIOUS)
    assert report.pending == 0 and report.outcomes == []
    with pytest.raises(ValueError, match="unknown"):
        migrate.migrate_all(sync_engine, jobs=1, target="nope")
    bad = _cli("migrate", "--to", "nope")
    assert bad.returncode == 2 and "unknown" in bad.stderr
