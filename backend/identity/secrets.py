"""Opaque high-entropy tokens (refresh tokens, API keys, invites, resets) and their hashes.

They carry 256 bits of randomness, so a plain SHA-256 is the right storage form: a slow
password hash adds nothing against guessing and would cost every request.
"""

from __future__ import annotations

import hashlib
import secrets


def new_secret() -> str:
    """256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
