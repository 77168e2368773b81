"""Request id (taken from X-Request-ID when sane, otherwise made; echoed on every response)
and the request body limit."""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.kit.errors import problem_response

_SANE = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if incoming and _SANE.fullmatch(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


class PayloadTooLarge(StarletteHTTPException):
    """Raised by the body limit's receive() once the body grows past the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes.")


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413 problem ``payload-too-large``.

    A declared Content-Length over the limit is refused before anything is read; a body
    streamed without one (or longer than declared) is refused as soon as it passes the limit:
    receive() raises PayloadTooLarge, which the problem handlers render (or this middleware,
    when it escapes before a response started)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            status = 413 if declared.isdigit() else 400
            await self._refuse(scope, receive, send, status)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise PayloadTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except PayloadTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send, 413)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int) -> None:
        request = Request(scope, receive)
        if status == 413:
            detail = f"The request body is larger than {self.max_bytes} bytes."
            response = problem_response(request, 413, "payload-too-large", detail)
        else:
            response = problem_response(
                request, 400, "bad-request", "Content-Length is not a number."
            )
        # The unread body is not drained: tell the client the connection ends here.
        response.headers["Connection"] = "close"
        await response(scope, receive, send)
