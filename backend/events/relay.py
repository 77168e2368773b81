"""The relay: moves committed outbox rows to the tenants' Celery queues and live feeds.

Run it with ``tenantflow relay`` (``make dev`` starts one); run several for availability, they
split the work (rows are claimed with ``FOR UPDATE SKIP LOCKED``).

Waking up. Every tenant's outbox has a statement trigger that sends ``NOTIFY tf_outbox,
'<schema>'`` at commit, so the relay drains just the tenants that wrote, within milliseconds. A
notification is lost only while the relay is not listening, so whenever it (re)starts
listening it sweeps every tenant once (one query per 500 tenants: "has unpublished rows?"
answered from a partial index). Beyond that a slow sweep checks ``relay_sweep_tenants`` tenants
every ``relay_sweep_seconds`` as a safety net. With 10,000 mostly idle tenants an idle relay
costs a query every few seconds, never a scan of every schema per tick.

Publishing. For a tenant with unpublished rows: claim up to ``relay_batch_size`` rows in
commit-sequence order and mark them published in the same statement, publish one
``events.handle`` message per (event, handler) to the tenant's queue (its pinned queue or its
partition), publish the envelope on the tenant's live channel, then commit. The marks count
only once committed: a crash or a broker error before the commit leaves the rows unpublished,
and they are published again later. Delivery is at least once, and the consumers' inbox makes
effects exactly once.

Fairness. Tenants with a backlog are served round-robin, one batch per turn, and a tenant's
messages in flight are capped (backend/events/inflight.py): a tenant with 10,000 events waiting
has at most ``event_inflight_per_tenant`` of them ahead of another tenant's event in the queue.
A worker that finishes a message notifies ``tf_capacity``, which wakes the relay to dispatch
the tenant's next batch; tenants at their cap are not polled in between (only every
``CAPPED_WAIT`` seconds, in case a notification was lost).

Delivery check. Redis keeps queued messages in memory: a restart loses them after the relay
marked their rows published. So a published event stays "unsettled" until every handler has
an inbox entry for it (handled or dead-lettered); as tenants are swept, events unsettled for
``event_redeliver_after_seconds`` are settled, or published again to the handlers that have
not finished. The inbox makes the extra delivery harmless.

Faults. PostgreSQL, Redis or the broker going away makes the relay log, wait (backing off up
to 5 s) and start over; nothing is marked published that was not handed to the broker.
Pruning of old published rows and inbox entries happens as tenants are swept.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import psycopg
import redis as redis_sync
from celery import Celery
from kombu.exceptions import OperationalError as KombuOperationalError
from sqlalchemy import (
    Engine,
    Integer,
    Row,
    Table,
    Text,
    all_,
    bindparam,
    case,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.orm import Session

from backend.config import Settings
from backend.events import inflight, registry
from backend.events.models import InboxEntry, OutboxEvent
from backend.events.outbox import envelope
from tenancy import keys
from tenancy import registry as tenants
from tenancy.db import bound_engine
from tenancy.naming import quote_schema
from tenancy.registry import TenantRecord

log = logging.getLogger(__name__)

CHANNEL = "tf_outbox"
OUTBOX = cast(Table, OutboxEvent.__table__)
#: The tenant migration that creates the outbox (migrations/tenant/versions/0006).
OUTBOX_REVISION = "0006"
#: Outages the relay waits out (anything else is a bug and ends it).
RECOVERABLE = (psycopg.Error, DBAPIError, redis_sync.RedisError, KombuOperationalError, OSError)
SWEEP_CHUNK = 500
#: A round over tenants with a backlog pauses after this long to take notifications: a tenant
#: that just wrote waits behind at most this much of other tenants' work, however many.
ROUND_SECONDS = 0.05
#: A tenant counts as writing for this long after its last notification (batch sizes).
SHARED_SECONDS = 1.0
#: How long to wait when every tenant with a backlog is at its in-flight cap, unless a worker
#: reports a free slot (``tf_capacity``) sooner: the fallback for a lost notification.
CAPPED_WAIT = 0.25


def with_outbox(batch: list[TenantRecord]) -> list[TenantRecord]:
    """The tenants whose schema has the outbox. A tenant still behind tenant migration 0006
    (a migration rolling out, a tenant that failed to migrate) has none, and one statement over
    many schemas that named it would fail for all of them. Tenant revisions are zero-padded
    sequence numbers, so they compare as strings."""
    return [t for t in batch if (t.schema_revision or "") >= OUTBOX_REVISION]


def _claim_statement(*, dispatch: bool, fresh_only: bool) -> Any:
    """The statement of :meth:`Relay._claim_and_mark`, with parameters ``size`` (rows) and
    ``handled`` (the event types some handler takes). Built once per variant: building it and
    its cache key anew cost more than PostgreSQL's work for it (about 1.5 ms of a 2.5 ms call on
    a 10,000-row backlog, where the statement executes in 0.4 ms)."""
    c = OUTBOX.c
    claim = select(c.seq, c.published_at.label("was_published")).where(c.dispatched_at.is_(None))
    if fresh_only:
        claim = claim.where(c.published_at.is_(None))
    claimed = (
        claim.order_by(c.seq)
        .limit(bindparam("size", type_=Integer))
        .with_for_update(skip_locked=True)
        .cte("claimed")
    )
    now = func.clock_timestamp()
    handled = bindparam("handled", type_=ARRAY(Text))
    unhandled = claimed.c.was_published.is_(None) & (c.type != all_(handled))
    return (
        update(OUTBOX)
        .where(c.seq == claimed.c.seq)
        .values(
            published_at=func.coalesce(c.published_at, now),
            dispatched_at=case((unhandled, now), else_=now if dispatch else c.dispatched_at),
            settled_at=case((unhandled, now), else_=c.settled_at),
        )
        .returning(*OUTBOX.c, claimed.c.was_published)
    )


_CLAIMS = {
    (dispatch, fresh_only): _claim_statement(dispatch=dispatch, fresh_only=fresh_only)
    for dispatch in (False, True)
    for fresh_only in (False, True)
}


def live_channel(tenant_id: uuid.UUID) -> str:
    """The Redis pub/sub channel of a tenant's live feed."""
    return keys.tenant_key(tenant_id, "events", "live")


@dataclass
class Stats:
    published: int = 0
    messages: int = 0
    batches: int = 0
    sweeps: int = 0
    errors: int = 0
    pruned: int = 0
    redelivered: int = 0
    dispatched: int = 0


@dataclass
class Relay:
    settings: Settings
    engine: Engine
    redis: redis_sync.Redis
    celery: Celery
    stats: Stats = field(default_factory=Stats)
    #: Tenants that may have unpublished rows, in the order they will be served.
    pending: OrderedDict[uuid.UUID, TenantRecord] = field(default_factory=OrderedDict)
    #: Tenants that may have rows not yet on their live feed (they wrote, or a sweep found
    #: rows): only for these is a backlog searched for new rows.
    _unpublished: set[uuid.UUID] = field(default_factory=set)
    #: When each tenant last wrote (monotonic), for the last ``SHARED_SECONDS``.
    _writes: dict[uuid.UUID, float] = field(default_factory=dict)
    _by_schema: dict[str, TenantRecord] = field(default_factory=dict)
    _sweep_after: tuple[dt.datetime, uuid.UUID] | None = None
    _next_sweep: float = 0.0
    _last_prune: dict[uuid.UUID, float] = field(default_factory=dict)

    # --- the loop ------------------------------------------------------------------------------

    def run(
        self, stop: threading.Event | None = None, on_idle: Callable[[], None] | None = None
    ) -> None:
        """Relay until ``stop`` is set, surviving outages of PostgreSQL, Redis and the broker."""
        stop = stop or threading.Event()
        delay = 0.1
        while not stop.is_set():
            try:
                with self._listen() as listener:
                    self.sweep_all()
                    delay = 0.1
                    busy = False
                    while not stop.is_set():
                        if busy:
                            timeout = 0.0
                        elif self.pending:  # all of them at their in-flight cap: let it drain
                            timeout = CAPPED_WAIT
                        else:
                            timeout = self._idle_wait()
                        self._wake(listener, timeout=timeout)
                        if time.monotonic() >= self._next_sweep:
                            self.sweep_some()
                        busy = self.serve_round() > 0
                        if not self.pending and on_idle is not None:
                            on_idle()
            except (
                psycopg.Error,
                DBAPIError,
                redis_sync.RedisError,
                KombuOperationalError,
                OSError,
            ) as exc:
                self.stats.errors += 1
                log.warning("relay: %s; retrying in %.1f s", exc, delay)
                stop.wait(delay)
                delay = min(delay * 2, 5.0)

    def _idle_wait(self) -> float:
        return max(0.0, min(1.0, self._next_sweep - time.monotonic()))

    def _listen(self) -> psycopg.Connection[Any]:
        url = make_url(self.settings.database_url).set(drivername="postgresql")
        conn = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
        conn.execute(f"LISTEN {CHANNEL}")
        conn.execute(f"LISTEN {inflight.CAPACITY_CHANNEL}")
        return conn

    def _wake(self, listener: psycopg.Connection[Any], timeout: float) -> None:
        """Add the tenants named by notifications that arrive within ``timeout`` seconds."""
        writers: set[str] = set()
        freed: set[str] = set()
        notes = list(listener.notifies(timeout=timeout, stop_after=None if timeout == 0 else 1))
        notes += listener.notifies(timeout=0)  # whatever else is waiting, without blocking
        for note in notes:
            (writers if note.channel == CHANNEL else freed).add(note.payload)
        for schema in writers:
            tenant = self._tenant_of(schema)
            if tenant is not None:
                self._unpublished.add(tenant.id)
                self._writes[tenant.id] = time.monotonic()
            if tenant is not None:
                # A tenant that just wrote goes first, even one already in the line with a
                # backlog of handler work: its new events are due on its live feed now, and
                # its turn is one batch.
                self.pending[tenant.id] = tenant
                self.pending.move_to_end(tenant.id, last=False)
        for schema in freed - writers:  # a slot came free: the tenant keeps its place
            tenant = self._tenant_of(schema)
            if tenant is not None and tenant.id not in self.pending:
                self.pending[tenant.id] = tenant

    def _tenant_of(self, schema: str) -> TenantRecord | None:
        tenant = self._by_schema.get(schema)
        if tenant is None:
            with self.engine.connect() as conn:
                tenant = tenants.get_by_schema(conn, schema)
            if tenant is not None:
                self._by_schema[schema] = tenant
        return tenant

    # --- finding work --------------------------------------------------------------------------

    def sweep_all(self) -> None:
        """Every tenant with unpublished rows becomes pending (after (re)connecting)."""
        after: tuple[dt.datetime, uuid.UUID] | None = None
        while True:
            batch = self._tenants(after, SWEEP_CHUNK)
            if not batch:
                break
            self._check(batch)
            after = (batch[-1].created_at, batch[-1].id)
        self._next_sweep = time.monotonic() + self.settings.relay_sweep_seconds
        self.stats.sweeps += 1

    def sweep_some(self) -> None:
        """The next ``relay_sweep_tenants`` tenants, round the registry (the safety net)."""
        batch = self._tenants(self._sweep_after, self.settings.relay_sweep_tenants)
        self._sweep_after = (batch[-1].created_at, batch[-1].id) if batch else None
        self._check(batch)
        self._settle(batch)
        self._prune(batch)
        self._next_sweep = time.monotonic() + self.settings.relay_sweep_seconds
        self.stats.sweeps += 1

    def _tenants(
        self, after: tuple[dt.datetime, uuid.UUID] | None, limit: int
    ) -> list[TenantRecord]:
        with self.engine.connect() as conn:
            found = tenants.list_tenants(conn, after=after, limit=limit, status="active")
        for tenant in found:
            self._by_schema[tenant.schema_name] = tenant
        return found

    def _check(self, batch: list[TenantRecord]) -> None:
        """Which of these tenants have unpublished rows: one statement per chunk."""
        for tenant in self._having(batch, "dispatched_at IS NULL"):
            self.pending.setdefault(tenant.id, tenant)
            self._unpublished.add(tenant.id)

    def _having(self, batch: list[TenantRecord], condition: str) -> list[TenantRecord]:
        """The tenants whose outbox has a row matching ``condition`` (SQL over the outbox's
        columns): one statement per ``SWEEP_CHUNK`` tenants. If a schema in a chunk has no
        outbox (a registry row without its schema, a failed migration), that chunk is checked
        tenant by tenant and the broken tenant is left out, so it cannot stop the others."""
        found: list[TenantRecord] = []
        batch = with_outbox(batch)
        for start in range(0, len(batch), SWEEP_CHUNK):
            chunk = batch[start : start + SWEEP_CHUNK]
            # Schema names come from the registry and are validated by tenancy.naming; this is
            # the relay's one statement over many schemas (a translate map names one).
            parts = [
                f"SELECT {i} AS n WHERE EXISTS (SELECT 1 FROM {quote_schema(t.schema_name)}.outbox"
                f" WHERE {condition})"
                for i, t in enumerate(chunk)
            ]
            try:
                with self.engine.connect() as conn:
                    hits = conn.execute(text(" UNION ALL ".join(parts))).scalars().all()
            except ProgrammingError:
                hits = []
                for i, part in enumerate(parts):
                    try:
                        with self.engine.connect() as conn:
                            if conn.execute(text(part)).first() is not None:
                                hits.append(i)
                    except ProgrammingError as exc:
                        log.warning("relay: tenant %s left out: %s", chunk[i].slug, exc.orig)
            found.extend(chunk[n] for n in hits)
        return found

    # --- publishing ----------------------------------------------------------------------------

    def serve_round(self) -> int:
        """One batch for every pending tenant, in turn; tenants found drained leave the list.
        The number of rows published or dispatched."""
        before = self.stats.published + self.stats.dispatched
        started = time.monotonic()
        for tenant_id in list(self.pending):
            tenant = self.pending.pop(tenant_id)
            more = self.relay_batch(tenant)
            if more:
                self.pending[tenant_id] = tenant  # to the back of the line
            if time.monotonic() - started > ROUND_SECONDS:
                break  # look for new writers before going on (the rest keep their places)
        return self.stats.published + self.stats.dispatched - before

    def relay_batch(self, tenant: TenantRecord) -> bool:
        """One turn for a tenant, in one transaction; whether more may be waiting.

        The oldest rows not yet handed to their handlers are claimed in commit order, as many
        as the in-flight cap leaves room for, and go to their handlers' queues. New rows go to
        the live feed at once, whatever the tenant's handlers have in flight (the feed must not
        lag behind a backlog of handler work): when the tenant may have new rows behind the
        claimed ones, those are claimed too and published. A tenant without a backlog is thus
        published and dispatched in one transaction, a few milliseconds after its commit; a
        tenant at its cap and without new rows costs one Redis call per turn."""
        size = self.settings.relay_batch_size
        room = inflight.room(self.redis, tenant.id, self.settings.event_inflight_per_tenant)
        if room <= 0 and tenant.id not in self._unpublished:
            return True  # at its cap, nothing new to publish: wait for a slot (tf_capacity)
        per_message = self._batch_size(tenant.id)
        budget = min(size, room * per_message)
        with Session(bound_engine(self.engine, tenant), expire_on_commit=False) as session:
            # Claimed and marked in one statement each (the marks commit only once the
            # messages are handed over, below): a turn is BEGIN, one or two of these, COMMIT.
            head = self._claim_and_mark(session, max(budget, 1), dispatch=budget > 0)
            dispatch = head[:budget]
            fresh = [r for r in head if r.was_published is None]
            if tenant.id in self._unpublished:
                if len(head) == max(budget, 1):  # new rows may sit behind the claimed ones
                    behind = self._claim_and_mark(session, size, dispatch=False, fresh_only=True)
                    fresh += behind
                    if len(behind) < size:
                        self._unpublished.discard(tenant.id)
                else:
                    self._unpublished.discard(tenant.id)
            if not head:
                return False
            docs = {r.seq: envelope(r, tenant.id) for r in [*dispatch, *fresh]}
            messages = [
                (docs[r.seq], h.name) for r in dispatch for h in registry.handlers_for(r.type)
            ]
            sent = self._publish(tenant, [docs[r.seq] for r in fresh], messages, per_message)
            session.commit()
        self.stats.published += len(fresh)
        self.stats.dispatched += len(dispatch)
        self.stats.messages += sent
        self.stats.batches += 1 if sent else 0
        # More waits: the claim was full (or the cap held rows back), or new rows may remain.
        return len(head) == max(budget, 1) or tenant.id in self._unpublished

    def _batch_size(self, tenant_id: uuid.UUID) -> int:
        """Events per handler message: ``event_batch_size`` while other tenants are writing
        (small batches keep a busy tenant's share of the workers small), up to
        ``event_batch_size_alone`` while this tenant is the only one that wrote in the last
        ``SHARED_SECONDS`` (nobody waits, so it may use the workers fully)."""
        now = time.monotonic()
        if len(self._writes) > 1:
            for other, at in list(self._writes.items()):
                if now - at > SHARED_SECONDS:
                    del self._writes[other]
        if any(other != tenant_id for other in self._writes):
            return self.settings.event_batch_size
        return max(self.settings.event_batch_size, self.settings.event_batch_size_alone)

    @staticmethod
    def _claim_and_mark(
        session: Session, size: int, *, dispatch: bool, fresh_only: bool = False
    ) -> list[Row[Any]]:
        """Up to ``size`` rows not yet dispatched (only unpublished ones if ``fresh_only``), in
        commit-sequence order, locked against other relays, and marked in the same statement:
        published, dispatched if ``dispatch`` (their messages go out in this turn), and
        dispatched and settled at once if no handler takes their type. The rows as they were
        claimed, with ``was_published`` (their ``published_at`` before this mark). The marks are
        the transaction's: they are lost, and the rows claimed again, if it does not commit."""
        query = _CLAIMS[dispatch, fresh_only]
        rows = session.execute(query, {"size": size, "handled": sorted(registry.HANDLERS)}).all()
        return sorted(rows, key=lambda r: r.seq)

    def _publish(
        self,
        tenant: TenantRecord,
        live: list[dict[str, Any]],
        deliveries: list[tuple[dict[str, Any], str]],
        per_message: int | None = None,
    ) -> int:
        """The envelopes on the live channel, and the (event, handler) deliveries as batch
        messages of up to ``event_batch_size`` events per handler; how many messages."""
        from backend.events.jobs import handle_batch

        per_message = per_message or self.settings.event_batch_size
        by_handler: dict[str, list[dict[str, Any]]] = {}
        for doc, name in deliveries:
            by_handler.setdefault(name, []).append(doc)
        batches = [
            (uuid.uuid4().hex, name, docs[i : i + per_message])
            for name, docs in by_handler.items()
            for i in range(0, len(docs), per_message)
        ]
        with self.redis.pipeline(transaction=False) as pipe:
            inflight.add(pipe, tenant.id, (message_id for message_id, _, _ in batches))
            channel = live_channel(tenant.id)
            for doc in live:
                pipe.publish(channel, json.dumps(doc, separators=(",", ":")))
            pipe.execute()
        if batches:
            with self.celery.producer_or_acquire() as producer:
                for message_id, name, docs in batches:
                    # The message's repr for logs and monitors, given: Celery would otherwise
                    # render every envelope of the batch (a third of the publish's cost).
                    handle_batch.apply_async(
                        args=[docs, name, message_id],
                        tenant=tenant,
                        producer=producer,
                        argsrepr=f"[<{len(docs)} events>, {name!r}, {message_id!r}]",
                        kwargsrepr="{}",
                    )
        return len(batches)

    # --- delivery check ------------------------------------------------------------------------

    def _settle(self, batch: list[TenantRecord]) -> None:
        """Published events not yet settled after ``event_redeliver_after_seconds``: settle
        those every handler finished with, publish the others again to the handlers that did
        not (their message was lost: a Redis restart, a purged queue)."""
        wait = float(self.settings.event_redeliver_after_seconds)
        stale = (
            "dispatched_at IS NOT NULL AND settled_at IS NULL"
            f" AND dispatched_at < now() - make_interval(secs => {wait!r})"
        )
        for tenant in self._having(batch, stale):
            self.settle_tenant(tenant)

    def settle_tenant(self, tenant: TenantRecord) -> int:
        """One pass over the tenant's stale unsettled events; how many were published again."""
        cutoff = func.now() - dt.timedelta(seconds=self.settings.event_redeliver_after_seconds)
        again: list[tuple[dict[str, Any], str]] = []
        with Session(bound_engine(self.engine, tenant), expire_on_commit=False) as session:
            rows = list(
                session.execute(
                    select(OutboxEvent)
                    .where(
                        OutboxEvent.dispatched_at.is_not(None),
                        OutboxEvent.settled_at.is_(None),
                        OutboxEvent.dispatched_at < cutoff,
                    )
                    .order_by(OutboxEvent.dispatched_at)
                    .limit(self.settings.relay_batch_size)
                    .with_for_update(skip_locked=True)
                ).scalars()
            )
            if not rows:
                return 0
            finished: dict[uuid.UUID, set[str]] = {}
            for event_id, handler in session.execute(
                select(InboxEntry.event_id, InboxEntry.handler).where(
                    InboxEntry.event_id.in_([r.id for r in rows])
                )
            ):
                finished.setdefault(event_id, set()).add(handler)
            settled, resent = [], []
            for row in rows:
                missing = [
                    h.name
                    for h in registry.handlers_for(row.type)
                    if h.name not in finished.get(row.id, set())
                ]
                if missing:
                    doc = envelope(row, tenant.id)
                    again.extend((doc, name) for name in missing)
                    resent.append(row.seq)
                else:
                    settled.append(row.seq)
            if again:
                self._publish(tenant, [], again)
            if settled:
                session.execute(
                    update(OutboxEvent)
                    .where(OutboxEvent.seq.in_(settled))
                    .values(settled_at=func.clock_timestamp())
                )
            if resent:  # wait another period before checking these again
                session.execute(
                    update(OutboxEvent)
                    .where(OutboxEvent.seq.in_(resent))
                    .values(dispatched_at=func.clock_timestamp())
                )
            session.commit()
        if again:
            log.warning(
                "relay: %d message(s) of tenant %s were not handled in time; published again",
                len(again),
                tenant.slug,
            )
        self.stats.redelivered += len(again)
        return len(again)

    # --- pruning -------------------------------------------------------------------------------

    def _prune(self, batch: list[TenantRecord]) -> None:
        """Published rows and inbox entries past the retention, at most hourly per tenant."""
        now = time.monotonic()
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=self.settings.event_retention_days)
        for tenant in with_outbox(batch):
            if now - self._last_prune.get(tenant.id, -3600.0) < 3600:
                continue
            with Session(bound_engine(self.engine, tenant)) as session:
                try:
                    gone = session.execute(
                        delete(OutboxEvent)
                        .where(
                            OutboxEvent.occurred_at < cutoff, OutboxEvent.published_at.is_not(None)
                        )
                        .returning(OutboxEvent.seq)
                    ).all()
                    session.execute(delete(InboxEntry).where(InboxEntry.processed_at < cutoff))
                    session.commit()
                except ProgrammingError as exc:  # no outbox (see _having)
                    log.warning("relay: tenant %s left out: %s", tenant.slug, exc.orig)
                    gone = []
            self._last_prune[tenant.id] = now
            self.stats.pruned += len(gone)
