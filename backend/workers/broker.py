"""The Redis broker transport, with one repair.

When a worker loses its broker connection, Celery 5.7 first collects the connection (which
detaches the transport from it) and then closes it; closing the channel tries to put the
unacknowledged messages back, which needs a client, whose settings come from the detached
transport: ``AttributeError: 'NoneType' object has no attribute 'hostname'``. That error is
not one of the transport's connection errors, so it ends the worker instead of letting it
reconnect (seen on every Redis restart under load, tests/test_events_faults.py).

Here a channel of a detached transport answers with a connection error, which the close
ignores, and the worker reconnects. Nothing is lost: the messages it held stay in Redis's
unacknowledged set and come back after the visibility timeout, as they would after a crash
(and the relay's delivery check covers a Redis that lost them).
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):  # type: ignore[misc]
    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection was closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    Channel = Channel


#: For ``broker_transport``: this transport for ``redis://`` broker URLs.
PATH = f"{__name__}:Transport"
