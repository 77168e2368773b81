"""Optimistic concurrency over HTTP: ETag on reads, If-Match on writes (412 on mismatch).

A resource's ETag is its row version (SQLAlchemy's ``version_id_col``, bumped by every UPDATE,
which also refuses a concurrent write that read an older version). Clients send the ETag
they read back in ``If-Match``; ``*`` or no header means "whatever is current".
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from functools import partial

from fastapi import Request, Response

from backend.kit.errors import Problem


def etag(version: int) -> str:
    return f'"v{version}"'


def check_if_match(request: Request, version: int) -> None:
    """412 problem unless If-Match is absent, ``*`` or lists the current ETag."""
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return
    current = etag(version)
    # If-Match compares strongly: a weak tag (W/"...") never matches.
    if current not in (tag.strip() for tag in header.split(",")):
        raise Problem(
            412,
            "precondition-failed",
            f"The resource changed since it was read (now {current}); read it again and retry.",
            current_etag=current,
        )


def page_etag(parts: Iterable[object]) -> str:
    """The ETag of a list page: a digest of what decides its representation (for tasks, each
    item's id, version and key, and the next cursor). Equal parts give the same body."""
    digest = hashlib.blake2b(digest_size=12)
    for part in parts:
        digest.update(str(part).encode())
        digest.update(b"\x00")
    return f'"p{digest.hexdigest()}"'


def names_tag(request: Request, current: str) -> bool:
    """True when If-None-Match already names ``current`` (answer 304); weak comparison."""
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or current in tags


def not_modified(request: Request, version: int) -> bool:
    """True when If-None-Match already names the current ETag (answer 304)."""
    return names_tag(request, etag(version))


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


#: What a route hands its service: called with the row's version once the row is loaded.
IfMatch = Callable[[int], None] | None


def if_match_of(request: Request) -> Callable[[int], None]:
    return partial(check_if_match, request)


def not_modified_response(version: int) -> Response:
    return Response(status_code=304, headers={"ETag": etag(version)})
