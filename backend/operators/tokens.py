"""Operator credentials: short-lived access JWTs and long-lived API tokens (``tfo_...``).

Operator JWTs are signed and checked by the tenant tokens' key set (backend.identity.tokens:
selected by kid, rotated the same way) but carry their own audience
(``<jwt_audience>:platform``) and ``typ`` ``operator``, and have no ``tid``. A tenant token
therefore never verifies as an operator token, and an operator token never as a tenant one,
even if one of the claim checks were dropped.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from backend.config import Settings
from backend.identity.tokens import TokenService

API_TOKEN_PREFIX = "tfo_"  # noqa: S105 (marks API tokens; the secret follows it)
OPERATOR_TOKEN_TYPE = "operator"  # noqa: S105 (a claim value, not a secret)
_PREFIX_SHOWN = 12  # "tfo_" and 8 characters of the secret, enough to tell tokens apart


class OperatorTokenService:
    """Issues and verifies operator access tokens, with the tenant tokens' keys (by kid)."""

    def __init__(self, settings: Settings) -> None:
        self._tokens = TokenService(settings)
        self.audience = f"{settings.jwt_audience}:platform"
        self.lifetime = settings.operator_access_token_lifetime_seconds

    def issue(self, operator_id: uuid.UUID) -> str:
        claims = {"sub": str(operator_id), "aud": self.audience, "typ": OPERATOR_TOKEN_TYPE}
        return self._tokens.encode(claims, lifetime=self.lifetime)

    def decode(self, token: str) -> uuid.UUID | None:
        """The operator id of a valid operator access token, else None."""
        claims = self._tokens.verify(token, typ=OPERATOR_TOKEN_TYPE, audience=self.audience)
        if claims is None or "tid" in claims:
            return None
        try:
            return uuid.UUID(str(claims["sub"]))
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class NewApiToken:
    secret: str  # shown once, never stored
    token_hash: str
    prefix: str


def new_api_token() -> NewApiToken:
    """A fresh API token: 256 random bits behind the ``tfo_`` prefix."""
    secret = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return NewApiToken(secret, hash_api_token(secret), secret[:_PREFIX_SHOWN])


def hash_api_token(secret: str) -> str:
    """sha256 hex: enough for a high-entropy secret (no salt or slow hash needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def is_api_token(token: str) -> bool:
    return token.startswith(API_TOKEN_PREFIX) and len(token) <= 128
