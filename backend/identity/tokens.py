"""Access tokens: HS256 JWTs carrying sub, tid, role, exp, iat, nbf, aud, iss and jti."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import jwt

from backend.config import Settings
from tenancy.registry import TenantRecord

ALGORITHMS = ["HS256"]  # an allow-list: alg=none and key confusion are refused by PyJWT


class TokenService:
    def __init__(self, settings: Settings) -> None:
        self._key = settings.secret_key.get_secret_value()
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self.lifetime = settings.access_token_lifetime_seconds

    def issue(self, *, user_id: uuid.UUID, role: str, tenant: TenantRecord) -> str:
        now = dt.datetime.now(dt.UTC)
        claims = {
            "sub": str(user_id),
            "tid": str(tenant.id),
            "role": role,
            "aud": self._audience,
            "iss": self._issuer,
            "iat": now,
            "nbf": now,
            "exp": now + dt.timedelta(seconds=self.lifetime),
            "jti": uuid.uuid4().hex,
            "typ": "access",
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHMS[0])

    def decode(self, token: str) -> dict[str, Any] | None:
        """Verified claims, or None for any token that is not a valid access token of ours."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=ALGORITHMS,
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "iat", "sub", "tid", "aud", "iss"]},
            )
        except jwt.PyJWTError:
            return None
        if claims.get("typ") != "access":
            return None
        return claims

    def tenant_of(self, token: str) -> str | None:
        """The tid claim of a valid token (used by tenant resolution)."""
        claims = self.decode(token)
        return str(claims["tid"]) if claims else None
