"""Every process's copy of the flags: a change (the kill switch) reaches another process
within a second, a forked child (gunicorn --preload, Celery prefork) keeps its copy current,
and Redis losing the snapshot or going away never leaves a process without flags."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis as redis_sync

from backend.flags import service
from backend.flags.context import Context
from backend.flags.model import Feature
from backend.flags.store import FlagStore, build
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parent.parent


def _feature(name: str, enabled: bool) -> Feature:
    return Feature.model_validate({"name": name, "enabled": enabled, "strategies": []})


def _put(engine: Any, redis: Any, name: str, enabled: bool) -> None:
    service.put_flag(engine, redis, _feature(name, enabled), overridable=False, actor="test")


def _store(settings: Any, engine: Any, redis_url: str | None = None) -> FlagStore:
    return FlagStore(
        redis_url or settings.redis_url, lambda: service.load(engine), check_seconds=30
    )


def test_the_kill_switch_reaches_another_process_by_its_notice(
    settings: Any, sync_engine: Any, sync_redis: redis_sync.Redis
) -> None:
    """The watcher's periodic check is an hour away: only the pub/sub notice can bring the
    change. (How fast it comes is measured by bench/flags: 1 s is the contract.)"""
    name = f"kill.{uuid.uuid4().hex[:8]}"
    _put(sync_engine, sync_redis, name, True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.flags.watcher", name, "--exit-after", "30"],
        cwd=ROOT,
        env=os.environ,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        assert proc.stdout.readline().split()[0] == "on"
        time.sleep(0.5)  # the watcher is listening
        _put(sync_engine, sync_redis, name, False)
        committed = time.time()
        state, *at = proc.stdout.readline().split()
        assert state == "off"  # not "exit": the change came before the watcher gave up
        print(
            f"kill switch seen by another process after {(float(at[0]) - committed) * 1000:.0f} ms"
        )
    finally:
        proc.kill()
        proc.wait(10)


def _child(store: FlagStore, name: str, conn: Any) -> None:
    conn.send(store.is_enabled(name, Context()))  # the copy inherited from the parent
    assert conn.recv() == "changed"
    deadline = time.monotonic() + 5
    while store.is_enabled(name, Context()) and time.monotonic() < deadline:
        time.sleep(0.01)
    conn.send(store.is_enabled(name, Context()))


def test_a_forked_child_keeps_its_copy_current(
    settings: Any, sync_engine: Any, sync_redis: redis_sync.Redis
) -> None:
    name = f"fork.{uuid.uuid4().hex[:8]}"
    _put(sync_engine, sync_redis, name, True)
    store = _store(settings, sync_engine)
    store.start()  # loaded before the fork, as under gunicorn --preload
    try:
        fork = multiprocessing.get_context("fork")
        parent_end, child_end = fork.Pipe()
        child = fork.Process(target=_child, args=(store, name, child_end))
        child.start()
        assert parent_end.recv() is True
        _put(sync_engine, sync_redis, name, False)
        parent_end.send("changed")
        assert parent_end.poll(10), "the child did not answer"
        assert parent_end.recv() is False, "the child kept a stale copy"
        child.join(10)
        assert child.exitcode == 0
    finally:
        store.stop()


def test_redis_losing_the_snapshot_is_repaired_from_postgresql(
    settings: Any, sync_engine: Any, sync_redis: redis_sync.Redis
) -> None:
    name = f"lost.{uuid.uuid4().hex[:8]}"
    _put(sync_engine, sync_redis, name, True)
    sync_redis.delete(service.SNAPSHOT_KEY)  # a Redis restart or flush
    store = _store(settings, sync_engine)
    try:
        store.start()
        assert store.is_enabled(name, Context())
        assert sync_redis.exists(service.SNAPSHOT_KEY)  # put back for the other processes
    finally:
        store.stop()


def test_without_redis_a_process_still_evaluates(
    settings: Any, sync_engine: Any, sync_redis: redis_sync.Redis
) -> None:
    name = f"noredis.{uuid.uuid4().hex[:8]}"
    _put(sync_engine, sync_redis, name, True)
    store = _store(settings, sync_engine, redis_url="redis://127.0.0.1:1/0")
    try:
        store.start()
        assert store.is_enabled(name, Context())
        assert not store.is_enabled(f"{name}.unknown", Context())
    finally:
        store.stop()


def test_a_change_whose_publication_failed_is_found_by_the_periodic_check(
    settings: Any, sync_engine: Any, sync_redis: redis_sync.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"later.{uuid.uuid4().hex[:8]}"
    _put(sync_engine, sync_redis, name, True)
    store = FlagStore(
        settings.redis_url,
        lambda: service.load(sync_engine),
        latest=lambda: service.latest_version(sync_engine),
        check_seconds=0.2,
    )
    try:
        store.start()
        assert store.is_enabled(name, Context())
        # The change is stored but its publication fails (Redis away for the writer).
        gone = redis_sync.Redis(host="127.0.0.1", port=1)
        _put(sync_engine, gone, name, False)
        assert not service.publish(gone, service.load(sync_engine))
        # Redis still holds the older snapshot: the periodic check finds PostgreSQL ahead.
        assert wait_until(lambda: not store.is_enabled(name, Context()), 10)
        assert service.latest_version(sync_engine) == store.version
    finally:
        store.stop()


class _Recording(redis_sync.Redis):
    """A real client that keeps the commands it sent."""

    sent: list[tuple[Any, ...]]

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent.append(args)
        return super().execute_command(*args, **options)


def test_the_periodic_check_reads_the_snapshot_only_when_it_is_newer(
    settings: Any, sync_engine: Any, sync_redis: redis_sync.Redis
) -> None:
    name = f"cheap.{uuid.uuid4().hex[:8]}"
    _put(sync_engine, sync_redis, name, True)
    store = FlagStore(
        settings.redis_url,
        lambda: service.load(sync_engine),
        latest=lambda: service.latest_version(sync_engine),
        check_seconds=30,
    )
    client = _Recording.from_url(settings.redis_url)
    client.sent = []
    try:
        assert store.refresh()  # the copy, without a listener that would take the change
        assert not store._refresh(client, check_postgres=True)  # nothing new: the version only
        assert client.sent == [("HGET", service.SNAPSHOT_KEY, "version")]
        client.sent.clear()
        _put(sync_engine, sync_redis, name, False)
        assert store._refresh(client, check_postgres=True)
        assert ("HGET", service.SNAPSHOT_KEY, "state") in client.sent
        assert store.version == service.latest_version(sync_engine)
        assert not store.is_enabled(name, Context())
    finally:
        store.stop()
        client.close()


def test_a_snapshot_in_the_earlier_layout_is_replaced(
    settings: Any, sync_engine: Any, sync_redis: redis_sync.Redis
) -> None:
    """Earlier builds kept the snapshot as one JSON string: read past, then replaced."""
    name = f"layout.{uuid.uuid4().hex[:8]}"
    _put(sync_engine, sync_redis, name, True)
    sync_redis.delete(service.SNAPSHOT_KEY)
    sync_redis.set(service.SNAPSHOT_KEY, json.dumps(service.load(sync_engine)))
    store = _store(settings, sync_engine)
    try:
        store.start()
        assert store.is_enabled(name, Context())
        assert sync_redis.type(service.SNAPSHOT_KEY) == b"hash"
        assert int(sync_redis.hget(service.SNAPSHOT_KEY, "version") or 0) == store.version
    finally:
        store.stop()


def test_a_snapshot_of_another_database_is_replaced_by_postgresqls(
    settings: Any, sync_engine: Any, sync_redis: redis_sync.Redis
) -> None:
    """Redis holding a snapshot with a higher version than PostgreSQL's (another database's,
    or PostgreSQL restored from a backup): the periodic check puts PostgreSQL's back, and
    every process's copy follows it, to a lower version."""
    name = f"restored.{uuid.uuid4().hex[:8]}"
    _put(sync_engine, sync_redis, name, True)
    real = service.load(sync_engine)
    foreign = {**real, "version": real["version"] + 1000, "features": []}
    # Written without a notice, as another deployment's Redis would hold it.
    sync_redis.hset(
        service.SNAPSHOT_KEY, mapping={"version": foreign["version"], "state": json.dumps(foreign)}
    )
    latest = lambda: service.latest_version(sync_engine)  # noqa: E731
    stores = [
        FlagStore(settings.redis_url, lambda: service.load(sync_engine), latest=latest)
        for _ in range(2)
    ]
    client = redis_sync.Redis.from_url(settings.redis_url)
    try:
        for store in stores:  # both processes took the foreign snapshot
            store._copy = build(foreign)
            assert not store.is_enabled(name, Context())
        assert stores[0]._refresh(client, check_postgres=True)
        assert stores[0].version == real["version"]
        assert stores[0].is_enabled(name, Context())
        assert int(sync_redis.hget(service.SNAPSHOT_KEY, "version") or 0) == real["version"]
        # The other process: Redis agrees with PostgreSQL now, its copy does not.
        assert stores[1]._refresh(client, check_postgres=True)
        assert stores[1].version == real["version"]
        assert stores[1].is_enabled(name, Context())
    finally:
        for store in stores:
            store.stop()
        client.close()


def test_workers_get_one_store_per_process(
    settings: Any, sync_engine: Any, sync_redis: redis_sync.Redis
) -> None:
    from backend.flags.store import process_store

    name = f"worker.{uuid.uuid4().hex[:8]}"
    _put(sync_engine, sync_redis, name, True)
    store = process_store()
    assert process_store() is store
    assert wait_until(lambda: store.is_enabled(name, Context()), 10)
