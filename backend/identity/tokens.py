"""Access tokens: short-lived JWTs chosen by ``kid`` from configured keys only (RFC 8725).

Every token names its key in the header; the key fixes the one algorithm accepted for it, so
``alg: none``, HS/RS confusion (an HMAC token signed with a public key) and unknown kids are all
refused before any signature check. Claims: sub, tid, role, exp, iat, nbf, aud, iss, jti, typ.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from backend.config import JwtKey, Settings
from tenancy.registry import TenantRecord

#: The algorithms any key may use; PyJWT is never asked to accept anything else.
ALLOWED_ALGORITHMS = frozenset({"HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA"})
PRIMARY_KID = "primary"
ACCESS = "access"


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    alg: str
    sign: Any | None  # None: verify-only (a retiring public key)
    verify: Any


#: The key types each asymmetric algorithm takes.
KEY_TYPES: dict[str, tuple[type, ...]] = {
    "RS256": (rsa.RSAPrivateKey, rsa.RSAPublicKey),
    "ES256": (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey),
    "EdDSA": (
        ed25519.Ed25519PrivateKey,
        ed25519.Ed25519PublicKey,
        ed448.Ed448PrivateKey,
        ed448.Ed448PublicKey,
    ),
}
#: Seconds of clock difference between API hosts tolerated on exp, nbf and iat.
LEEWAY = 10
#: Verified access tokens a process remembers (TokenService.decode).
VERIFIED_CACHE_SIZE = 10_000
#: The JOSE header typ of access tokens (RFC 9068; RFC 8725 section 3.11 explicit typing).
ACCESS_HEADER_TYP = "at+jwt"


def _checked(key: JwtKey, material: Any) -> Any:
    if not isinstance(material, KEY_TYPES[key.alg]):
        raise ValueError(f"key {key.kid}: a {type(material).__name__} cannot sign {key.alg}")
    curve = getattr(material, "curve", None)  # EC keys only
    if curve is not None and curve.name != "secp256r1":
        raise ValueError(f"key {key.kid}: ES256 needs a P-256 key")
    return material


def load_key(key: JwtKey) -> SigningKey:
    if key.alg.startswith("HS"):
        assert key.secret is not None
        secret = key.secret.get_secret_value().encode()
        return SigningKey(key.kid, key.alg, secret, secret)
    if key.private_key is not None:
        raw = key.private_key.get_secret_value().encode()
        private = _checked(key, serialization.load_pem_private_key(raw, password=None))
        return SigningKey(key.kid, key.alg, private, private.public_key())
    assert key.public_key is not None
    public = _checked(key, serialization.load_pem_public_key(key.public_key.encode()))
    return SigningKey(key.kid, key.alg, None, public)


def configured_keys(settings: Settings) -> tuple[dict[str, SigningKey], SigningKey]:
    """All verification keys by kid, and the key that signs new tokens."""
    if settings.jwt_keys:
        keys = {k.kid: load_key(k) for k in settings.jwt_keys}
        kid = settings.jwt_signing_kid or next(k.kid for k in keys.values() if k.sign is not None)
    else:
        secret = settings.secret_key.get_secret_value().encode()
        keys = {PRIMARY_KID: SigningKey(PRIMARY_KID, "HS256", secret, secret)}
        kid = PRIMARY_KID
    return keys, keys[kid]


class TokenService:
    def __init__(self, settings: Settings) -> None:
        self._keys, self._signer = configured_keys(settings)
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self.lifetime = settings.access_token_lifetime_seconds
        #: token -> its verified claims (see decode).
        self._verified: dict[str, dict[str, Any]] = {}

    @property
    def signing_kid(self) -> str:
        return self._signer.kid

    def encode(self, claims: dict[str, Any], *, lifetime: int | None = None) -> str:
        """Sign ``claims`` plus the standard ones (aud, iss, iat, nbf, exp, jti)."""
        now = dt.datetime.now(dt.UTC)
        payload = {
            "aud": self._audience,
            "iss": self._issuer,
            "iat": now,
            "nbf": now,
            "exp": now + dt.timedelta(seconds=lifetime or self.lifetime),
            "jti": uuid.uuid4().hex,
            **claims,
        }
        if self._signer.sign is None:  # configured_keys never picks a verify-only key
            raise RuntimeError(f"key {self._signer.kid} cannot sign")
        return jwt.encode(
            payload,
            self._signer.sign,
            algorithm=self._signer.alg,
            headers={"kid": self._signer.kid, "typ": ACCESS_HEADER_TYP},
        )

    def issue(self, *, user_id: uuid.UUID, role: str, tenant: TenantRecord) -> str:
        claims = {"sub": str(user_id), "tid": str(tenant.id), "role": role, "typ": ACCESS}
        return self.encode(claims)

    def verify(
        self, token: str, *, typ: str = ACCESS, audience: str | None = None
    ) -> dict[str, Any] | None:
        """Verified claims of a token of type ``typ``, or None for anything else."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None or header.get("alg") != key.alg or key.alg not in ALLOWED_ALGORITHMS:
            return None
        if header.get("typ") != ACCESS_HEADER_TYP:
            return None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.verify,
                algorithms=[key.alg],
                audience=audience or self._audience,
                issuer=self._issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "iat", "nbf", "sub", "aud", "iss", "jti"]},
            )
        except jwt.PyJWTError:
            return None
        if claims.get("typ") != typ:
            return None
        return claims

    def decode(self, token: str) -> dict[str, Any] | None:
        """Verified claims of a tenant access token (with a tid), or None.

        A request verifies its token up to three times (tenant resolution, rate limits,
        authentication), so verified tokens are remembered until they expire: a repeat costs
        a dictionary lookup and a clock check instead of a signature check (~0.1 ms). Only the
        keys of this process verify, so a key removed from the settings stops being accepted
        with the process that had it."""
        hit = self._verified.get(token)
        if hit is not None:
            now = time.time()
            if hit["nbf"] - LEEWAY <= now < hit["exp"] + LEEWAY:
                return dict(hit)
            self._verified.pop(token, None)
        claims = self.verify(token)
        if claims is None or not isinstance(claims.get("tid"), str):
            return None
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)), None)  # the oldest entry
        self._verified[token] = dict(claims)
        return claims

    def tenant_of(self, token: str) -> str | None:
        """The tid claim of a valid token (used by tenant resolution)."""
        claims = self.decode(token)
        return str(claims["tid"]) if claims else None
