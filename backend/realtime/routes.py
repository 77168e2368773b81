"""WebSocket /api/v1/stream: the tenant's events, live (protocol in docs/events.md)."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from backend.identity.permissions import declares
from backend.realtime import stream

router = APIRouter(prefix="/api/v1", tags=["events"])


@router.websocket("/stream")
@declares(stream.ACTION)
async def live_stream(websocket: WebSocket) -> None:
    """Authenticate (query ``access_token`` or a first ``auth`` message), then events."""
    await stream.serve(websocket)
