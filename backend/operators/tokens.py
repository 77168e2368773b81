"""Operator credentials: short-lived access JWTs and long-lived API tokens (``tfo_...``).

Operator JWTs reuse the tenant tokens' algorithm allow-list (backend.identity.tokens) but are
signed with a key derived from the secret key for operators only, carry their own audience
(``<jwt_audience>:platform``) and ``typ`` ``operator``, and have no ``tid``. A tenant token
therefore never verifies as an operator token, and an operator token never as a tenant one,
even if one of the claim checks were dropped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

import jwt

from backend.config import Settings
from backend.identity.tokens import ALGORITHMS

API_TOKEN_PREFIX = "tfo_"  # noqa: S105 (marks API tokens; the secret follows it)
OPERATOR_TOKEN_TYPE = "operator"  # noqa: S105 (a claim value, not a secret)
_PREFIX_SHOWN = 12  # "tfo_" and 8 characters of the secret, enough to tell tokens apart


class OperatorTokenService:
    """Issues and verifies operator access tokens (JWT, HS256)."""

    def __init__(self, settings: Settings) -> None:
        secret = settings.secret_key.get_secret_value().encode()
        self._key = hmac.new(secret, b"tenantflow operator access token", "sha256").digest()
        self.audience = f"{settings.jwt_audience}:platform"
        self._issuer = settings.jwt_issuer
        self.lifetime = settings.operator_access_token_lifetime_seconds

    def issue(self, operator_id: uuid.UUID) -> str:
        now = dt.datetime.now(dt.UTC)
        claims = {
            "sub": str(operator_id),
            "aud": self.audience,
            "iss": self._issuer,
            "iat": now,
            "nbf": now,
            "exp": now + dt.timedelta(seconds=self.lifetime),
            "jti": uuid.uuid4().hex,
            "typ": OPERATOR_TOKEN_TYPE,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHMS[0])

    def decode(self, token: str) -> uuid.UUID | None:
        """The operator id of a valid operator access token, else None."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self._issuer,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
            if claims.get("typ") != OPERATOR_TOKEN_TYPE or "tid" in claims:
                return None
            return uuid.UUID(str(claims["sub"]))
        except (jwt.PyJWTError, ValueError):
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
