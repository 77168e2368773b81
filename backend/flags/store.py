"""Each process's copy of the flags: evaluation never calls the network.

The copy is an ``Engine`` built from the snapshot that backend/flags/service.py publishes in
Redis, plus the tenants' overrides. A daemon thread listens on the change channel and swaps
in a new copy within a second of a change; every ``check_seconds`` it also compares the
snapshot's version with PostgreSQL's (a missed notice, a Redis restart, a change whose
publication failed), and reads PostgreSQL when Redis has no snapshot or an older one (putting
the current one back there). Readers never wait: they use whatever copy is current.

Fork safety (gunicorn --preload, Celery prefork, uvicorn workers): a thread does not survive a
fork, so the store remembers its process id; in a child the first evaluation starts a
listener of its own, and the child keeps the copy it inherited meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import redis as redis_sync

from backend.flags.context import Context
from backend.flags.engine import DISABLED, Engine, Variant
from backend.flags.service import CHANNEL, SNAPSHOT_KEY, publish

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Copy:
    version: int
    engine: Engine
    overridable: frozenset[str]
    overrides: dict[str, dict[str, bool]]


EMPTY = Copy(-1, Engine([]), frozenset(), {})


def build(state: dict[str, Any]) -> Copy:
    """An evaluable copy of a snapshot (lenient: one odd definition cannot stop the rest)."""
    engine = Engine.from_state(
        {"version": 1, "features": state["features"], "segments": state["segments"]}
    )
    return Copy(int(state["version"]), engine, frozenset(state["overridable"]), state["overrides"])


class FlagStore:
    def __init__(
        self,
        redis_url: str,
        load: Callable[[], dict[str, Any]],
        *,
        latest: Callable[[], int] | None = None,
        check_seconds: float = 5.0,
    ) -> None:
        self._redis_url = redis_url
        self._load = load
        self._latest = latest
        self._check = check_seconds
        self._copy = EMPTY
        self._pid = -1
        self._lock = threading.Lock()
        self._stop = threading.Event()

    # --- evaluation (no I/O) -------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self._copy.version

    def __contains__(self, name: str) -> bool:
        self._ensure_running()
        return name in self._copy.engine

    def variant(self, name: str, context: Context) -> Variant:
        """The flag for this context, with the tenant's override (context.tenant_id) on top."""
        self._ensure_running()
        copy = self._copy
        forced = self._override(copy, name, context)
        if forced is False:
            return DISABLED
        result = copy.engine.variant(name, context)
        if forced is True and not result.feature_enabled:
            return Variant("disabled", False, None, True)
        return result

    def is_enabled(self, name: str, context: Context) -> bool:
        self._ensure_running()
        copy = self._copy
        forced = self._override(copy, name, context)
        if forced is not None:
            return forced
        return copy.engine.is_enabled(name, context)

    def evaluate_all(self, context: Context) -> dict[str, Variant]:
        self._ensure_running()
        names = list(self._copy.engine)
        return {name: self.variant(name, context) for name in names}

    @staticmethod
    def _override(copy: Copy, name: str, context: Context) -> bool | None:
        if context.tenant_id is None or name not in copy.overridable:
            return None
        if name not in copy.engine:
            return None
        return copy.overrides.get(context.tenant_id, {}).get(name)

    # --- keeping the copy current ----------------------------------------------------------------

    def start(self) -> None:
        """Load the copy now and keep it current (idempotent per process)."""
        self._ensure_running(load_now=True)

    def stop(self) -> None:
        self._stop.set()

    def _ensure_running(self, load_now: bool = False) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._stop = threading.Event()
            if load_now or self._copy is EMPTY:
                self.refresh()
            thread = threading.Thread(target=self._listen, name="flags-listener", daemon=True)
            thread.start()

    def refresh_soon(self) -> None:
        """After a change made by this process: refresh now in a thread (the pub/sub notice
        would do it too, within the listener's next second)."""
        threading.Thread(target=self.refresh, name="flags-refresh", daemon=True).start()

    def refresh(self) -> bool:
        """Make the copy current from Redis (or PostgreSQL), checked against PostgreSQL's
        version (at start, after a change of this process's); whether it changed."""
        client = redis_sync.Redis.from_url(
            self._redis_url, socket_timeout=2, socket_connect_timeout=2
        )
        try:
            return self._refresh(client, check_postgres=True)
        finally:
            client.close()

    def _refresh(self, client: redis_sync.Redis, *, check_postgres: bool = False) -> bool:
        """Make the copy current; whether it changed.

        On a notice: Redis's version is read (a few bytes), and the snapshot only when that is
        newer than the copy. ``check_postgres`` (the periodic check, an explicit refresh):
        PostgreSQL's version, the truth, is compared with Redis's and with the copy's. Redis
        differs when a change's publication failed (Redis away for its writer) or when it
        holds another database's snapshot, or one from before PostgreSQL was restored (then
        with a higher version): the state is read from PostgreSQL and put back in Redis. The
        copy is replaced whenever its version is not PostgreSQL's, even by a lower one."""
        reachable = True
        stored: int | None = None
        try:
            raw_version = client.hget(SNAPSHOT_KEY, "version")
            stored = int(raw_version) if raw_version is not None else None
        except redis_sync.ResponseError as exc:  # e.g. the key in an earlier build's layout
            log.debug("flags: unreadable snapshot in Redis, reading PostgreSQL (%s)", exc)
        except redis_sync.RedisError as exc:
            reachable = False
            log.debug("flags: Redis unavailable, reading PostgreSQL (%s)", exc)
        latest = self._postgres_version() if check_postgres or not reachable else None
        if latest is not None:
            if latest == self._copy.version and (stored == latest or not reachable):
                return False
            state = self._stored_state(client) if stored == latest else None
            if state is None:
                state = self._from_postgres(client if reachable else None, stale=stored)
            return self._take(state, exact=True)
        if stored is not None:
            if stored <= self._copy.version:
                return False
            state = self._stored_state(client)
        else:
            state = None
        if state is None:
            state = self._from_postgres(client if reachable else None, stale=None)
        return self._take(state, exact=False)

    def _from_postgres(
        self, client: redis_sync.Redis | None, *, stale: int | None
    ) -> dict[str, Any] | None:
        """The state from PostgreSQL, put in Redis (unless away) for the other processes."""
        try:
            state = self._load()
        except Exception as exc:  # keep the copy we have
            log.warning("flags: could not load definitions: %s", exc)
            return None
        if client is not None:
            publish(client, state, stale=stale)
        return state

    def _take(self, state: dict[str, Any] | None, *, exact: bool) -> bool:
        """Swap in ``state`` if newer than the copy (``exact``: if another version at all)."""
        if state is None:
            return False
        version = int(state["version"])
        if version == self._copy.version or (version < self._copy.version and not exact):
            return False
        self._copy = build(state)
        return True

    def _postgres_version(self) -> int | None:
        """PostgreSQL's version, None when there is no reader for it or the read fails."""
        if self._latest is None:
            return None
        try:
            return self._latest()
        except Exception as exc:
            log.debug("flags: could not read the version from PostgreSQL: %s", exc)
            return None

    @staticmethod
    def _stored_state(client: redis_sync.Redis) -> dict[str, Any] | None:
        try:
            raw = client.hget(SNAPSHOT_KEY, "state")
        except redis_sync.RedisError as exc:
            log.debug("flags: Redis unavailable, reading PostgreSQL (%s)", exc)
            return None
        return cast(dict[str, Any], json.loads(raw)) if raw is not None else None

    def _listen(self) -> None:
        client = redis_sync.Redis.from_url(
            self._redis_url, socket_connect_timeout=2, health_check_interval=30
        )
        while not self._stop.is_set():
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(CHANNEL)
                self._refresh(client)  # anything missed while (re)subscribing
                checked = time.monotonic()
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    due = time.monotonic() - checked >= self._check
                    if message is not None or due:
                        self._refresh(client, check_postgres=due)
                        checked = time.monotonic()
            except Exception as exc:  # Redis away: the copy stays; retry shortly
                log.debug("flags: listener reconnecting: %s", exc)
                self._stop.wait(1.0)
            finally:
                with contextlib.suppress(Exception):
                    pubsub.close()
        client.close()


_PROCESS: FlagStore | None = None
_PROCESS_LOCK = threading.Lock()


def process_store() -> FlagStore:
    """This process's store outside the API (Celery workers, the relay, scripts), made at the
    first call from the settings; the API uses its own (``Resources.flags``)."""
    global _PROCESS
    with _PROCESS_LOCK:
        if _PROCESS is None:
            from backend.config import get_settings
            from backend.flags import service
            from backend.kit.db import make_engine

            settings = get_settings()
            engine = make_engine(settings.database_url, pool_size=1, max_overflow=1)
            _PROCESS = FlagStore(
                settings.redis_url,
                lambda: service.load(engine),
                latest=lambda: service.latest_version(engine),
                check_seconds=settings.flags_check_seconds,
            )
        return _PROCESS
