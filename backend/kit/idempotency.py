"""Idempotency-Key on tenant POSTs: a retried request replays the first response.

A pure ASGI middleware inside the tenant middleware (it needs ``scope["state"]["tenant"]``).
For a POST under /api/ that carries ``Idempotency-Key`` and a credential (``Authorization``):

- the key (1-255 printable ASCII characters, else 422 ``invalid-idempotency-key``) is claimed
  in Redis under the tenant's hash tag and the caller: the principal (``user:<id>`` of a
  verified access token of this tenant, ``key:<hash>`` of an API key), so a retry after a
  token refresh or a new login still replays, while one caller can never replay another's
  response, nor one tenant another's. A credential that names nobody (a forged or expired
  token) bypasses the store, and its route answers 401;
- the same key with the same request (method, path, query, content type, body) replays the
  stored response (status, body, Content-Type, Location, ETag) with ``Idempotent-Replayed:
  true``; with another request it is 422 ``idempotency-key-reused``; while the first request
  still runs it is 409 ``idempotency-key-in-use``;
- results are kept ``ttl`` seconds (24 h), encrypted (AES-GCM) with a key derived from the
  client's ``Idempotency-Key``, which the store never holds (the Redis key names its SHA-256):
  a response that carries a secret (an API key's creation) is not readable from Redis, its
  dumps or replicas, only by a retry that presents the same key (so clients should use random
  keys, such as UUIDs). Responses that ask for a retry are not stored and
  the key is released: status >= 500, 408/425/429, or any response with ``Retry-After``
  (a deadlock's 409); nor are 401/403 (the request was not processed: the caller's access may
  change) or a response larger than ``MAX_STORED_BYTES``;
- Redis away with the header present: 503 (fail closed); without the header nothing changes.

Requests without ``Authorization`` (login, refresh, logout, invite accept, password reset) and
every path under ``/api/v1/auth/`` are passed through untouched: they spend or issue
credentials, and replaying one would hand the same tokens out twice (or skip the login
throttle). Their bodies name the credential, so a retry is safe to run again anyway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette._utils import get_route_path
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.kit.errors import problem_response
from tenancy.keys import idempotency_key

log = logging.getLogger(__name__)

#: The caller's identity for the store, from (scope, Authorization header): None when the
#: credential names nobody (the request then runs without the store).
CallerOf = Callable[[Scope, str], str | None]


def credential_caller(scope: Scope, credential: str) -> str:
    """The credential itself (for apps without principals; the API passes a principal
    resolver, backend.identity.permissions.idempotency_caller). Stored only as a hash."""
    return credential


HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_PATTERN = r"^[\x20-\x7e]{1,255}$"
MAX_KEY_LENGTH = 255
#: Larger responses are sent but not stored (the key is released).
MAX_STORED_BYTES = 1024 * 1024
_REPLAYED_HEADERS = ("content-type", "location", "etag")
#: Not stored: the request was not processed, or should be tried again.
_RETRY_STATUSES = frozenset({401, 403, 408, 425, 429})
_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)

# Overwrite or delete the record only while it is still this request's claim.
_SET_IF_OWNER = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
if cjson.decode(current)['owner'] ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3])) end
return 1
"""


def _sealing_key(client_key: str, redis_key: str) -> AESGCM:
    """The cipher of one stored result: keyed by the client's Idempotency-Key (never stored)
    and bound to the record's Redis key."""
    material = hmac.new(
        client_key.encode("ascii"),
        b"tenantflow idempotency v1\n" + redis_key.encode(),
        hashlib.sha256,
    ).digest()
    return AESGCM(material)


def _seal(cipher: AESGCM, redis_key: str, payload: dict[str, Any]) -> str:
    nonce = secrets.token_bytes(12)
    sealed = cipher.encrypt(nonce, json.dumps(payload).encode(), redis_key.encode())
    return base64.b64encode(nonce + sealed).decode()


def _unseal(cipher: AESGCM, redis_key: str, sealed: str) -> dict[str, Any] | None:
    raw = base64.b64decode(sealed)
    try:
        plain = cipher.decrypt(raw[:12], raw[12:], redis_key.encode())
    except InvalidTag:
        return None
    result: dict[str, Any] = json.loads(plain)
    return result


def valid_key(value: str) -> bool:
    return 0 < len(value) <= MAX_KEY_LENGTH and all(" " <= c <= "~" for c in value)


@dataclass
class _Captured:
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    too_big: bool = False

    def storable(self) -> bool:
        retry = any(name.lower() == b"retry-after" for name, _ in self.headers)
        return (
            not self.too_big
            and self.status < 500
            and self.status not in _RETRY_STATUSES
            and not retry
        )

    def record(self, fingerprint: str, cipher: AESGCM, redis_key: str) -> str:
        kept = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in self.headers
            if name.decode("latin-1").lower() in _REPLAYED_HEADERS
        }
        response = {
            "status": self.status,
            "headers": kept,
            "body": base64.b64encode(bytes(self.body)).decode(),
        }
        return json.dumps(
            {
                "state": "done",
                "owner": "",
                "fp": fingerprint,
                "sealed": _seal(cipher, redis_key, response),
            }
        )


class IdempotencyMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        redis: Callable[[], aioredis.Redis],
        ttl_seconds: int,
        lock_seconds: int,
        max_body_bytes: int,
        prefixes: tuple[str, ...] = ("/api/",),
        excluded: tuple[str, ...] = ("/api/v1/auth/",),
        caller_of: CallerOf | None = None,
    ) -> None:
        self.app = app
        self.caller_of = caller_of or credential_caller
        self.redis = redis
        self.ttl = ttl_seconds
        self.lock = lock_seconds
        self.max_body = max_body_bytes
        self.prefixes = prefixes
        self.excluded = excluded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path = get_route_path(scope)
        headers = Headers(scope=scope)
        key = headers.get(HEADER.lower())
        credential = headers.get("authorization")
        tenant = scope.get("state", {}).get("tenant")
        if (
            key is None
            or not credential
            or tenant is None
            or not path.startswith(self.prefixes)
            or path.startswith(self.excluded)
        ):
            await self.app(scope, receive, send)
            return
        if not valid_key(key):
            await self._problem(
                scope,
                receive,
                send,
                422,
                "invalid-idempotency-key",
                f"{HEADER} must be 1-{MAX_KEY_LENGTH} printable ASCII characters.",
            )
            return
        body = await self._read_body(receive)
        if body is None:
            await self._problem(
                scope,
                receive,
                send,
                413,
                "payload-too-large",
                f"The request body is larger than {self.max_body} bytes.",
            )
            return
        caller = self.caller_of(scope, credential)
        if caller is None:  # nobody: the route answers 401, nothing to remember
            await self.app(scope, self._replay(body, receive), send)
            return
        digest = hashlib.sha256(caller.encode("latin-1")).hexdigest()
        redis_key = idempotency_key(tenant.id, digest, key)
        fingerprint = hashlib.sha256(
            b"\n".join(
                (
                    scope["method"].encode(),
                    path.encode(),
                    scope.get("query_string", b""),
                    (headers.get("content-type") or "").encode("latin-1"),
                    body,
                )
            )
        ).hexdigest()
        owner = secrets.token_hex(16)
        claim = json.dumps({"state": "running", "owner": owner, "fp": fingerprint})
        redis = self.redis()
        try:
            existing = None
            for _ in range(2):
                if await redis.set(redis_key, claim, nx=True, ex=self.lock):
                    break
                existing = await redis.get(redis_key)
                if existing is not None:
                    break
        except _REDIS_DOWN:
            log.warning("idempotency store unavailable", exc_info=True)
            await self._problem(
                scope,
                receive,
                send,
                503,
                "service-unavailable",
                f"Redis is not answering, so the {HEADER} cannot be honoured; nothing was "
                "changed. Retry shortly.",
                headers={"Retry-After": "5"},
            )
            return
        cipher = _sealing_key(key, redis_key)
        if existing is not None:
            record = json.loads(existing)
            await self._answer_existing(
                scope, receive, send, record, fingerprint, cipher, redis_key
            )
            return
        await self._run(scope, receive, send, body, redis, redis_key, owner, fingerprint, cipher)

    @staticmethod
    def _replay(body: bytes, receive: Receive) -> Receive:
        """``receive`` that hands out the already-read body first."""
        sent = False

        async def replayed() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replayed

    async def _run(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        body: bytes,
        redis: aioredis.Redis,
        redis_key: str,
        owner: str,
        fingerprint: str,
        cipher: AESGCM,
    ) -> None:
        captured = _Captured()
        replay_receive = self._replay(body, receive)

        async def capture_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured.status = message["status"]
                captured.headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                if not captured.too_big:
                    captured.body.extend(message.get("body", b""))
                    if len(captured.body) > MAX_STORED_BYTES:
                        captured.too_big = True
                        captured.body.clear()
                if not message.get("more_body", False):
                    await self._finish(redis, redis_key, owner, captured, fingerprint, cipher)
            await send(message)

        try:
            await self.app(scope, replay_receive, capture_send)
        except BaseException:
            await self._release(redis, redis_key, owner)
            raise

    async def _finish(
        self,
        redis: aioredis.Redis,
        redis_key: str,
        owner: str,
        captured: _Captured,
        fingerprint: str,
        cipher: AESGCM,
    ) -> None:
        # Stored before the last body chunk goes out, so a retry sent the moment the client
        # has the answer finds it.
        record = captured.record(fingerprint, cipher, redis_key) if captured.storable() else ""
        try:
            await redis.eval(_SET_IF_OWNER, 1, redis_key, owner, record, str(self.ttl))  # type: ignore[misc]
        except _REDIS_DOWN:
            # The work is done and its answer goes out; the claim lapses after lock_seconds.
            log.warning("could not store the idempotent result of %s", redis_key, exc_info=True)

    async def _release(self, redis: aioredis.Redis, redis_key: str, owner: str) -> None:
        try:
            await redis.eval(_SET_IF_OWNER, 1, redis_key, owner, "", "0")  # type: ignore[misc]
        except _REDIS_DOWN:
            log.warning("could not release idempotency key %s", redis_key, exc_info=True)

    async def _answer_existing(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        record: dict[str, Any],
        fp: str,
        cipher: AESGCM,
        redis_key: str,
    ) -> None:
        if record.get("fp") != fp:
            detail = (
                f"This {HEADER} was used for a different request; use a new key for a new request."
            )
            await self._problem(scope, receive, send, 422, "idempotency-key-reused", detail)
            return
        if record.get("state") != "done":
            await self._problem(
                scope,
                receive,
                send,
                409,
                "idempotency-key-in-use",
                f"A request with this {HEADER} is still running; retry once it has finished.",
                headers={"Retry-After": "1"},
            )
            return
        # A record of an earlier build holds the response in clear.
        response = _unseal(cipher, redis_key, record["sealed"]) if "sealed" in record else record
        if response is None:  # the same key's hash, another key: a collision or tampering
            detail = f"The result stored under this {HEADER} cannot be read with it; use a new key."
            await self._problem(scope, receive, send, 422, "idempotency-key-reused", detail)
            return
        headers = [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in response["headers"].items()
        ]
        headers.append((REPLAYED_HEADER.lower().encode(), b"true"))
        content = base64.b64decode(response["body"])
        headers.append((b"content-length", str(len(content)).encode()))
        await send(
            {"type": "http.response.start", "status": response["status"], "headers": headers}
        )
        await send({"type": "http.response.body", "body": content, "more_body": False})

    async def _read_body(self, receive: Receive) -> bytes | None:
        chunks = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return bytes(chunks)
            chunks.extend(message.get("body", b""))
            if len(chunks) > self.max_body:
                return None
            if not message.get("more_body", False):
                return bytes(chunks)

    async def _problem(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        code: str,
        detail: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        response = problem_response(Request(scope, receive), status, code, detail, headers=headers)
        await response(scope, receive, send)
