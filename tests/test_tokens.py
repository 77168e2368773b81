"""Access-token keys: selection by kid, rotation overlap, algorithm confusion (RFC 8725)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from backend.config import Settings
from backend.identity.tokens import TokenService
from tenancy.registry import TenantRecord

HS_A = "a" * 40
HS_B = "b" * 40


def _pem_pair(private) -> tuple[str, str]:
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return pem, public


RSA_PRIVATE, RSA_PUBLIC = _pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))
ED_PRIVATE, ED_PUBLIC = _pem_pair(ed25519.Ed25519PrivateKey.generate())


def _service(keys, signing=None) -> TokenService:
    return TokenService(Settings(jwt_keys=keys, jwt_signing_kid=signing))


def _tenant() -> TenantRecord:
    return TenantRecord(
        id=uuid.uuid4(),
        slug="acme",
        name="Acme",
        schema_name="t_acme",
        plan="free",
        status="active",
        schema_revision=None,
        database_key="default",
        queue=None,
        created_at=dt.datetime.now(dt.UTC),
    )


def _issue(service: TokenService) -> str:
    return service.issue(user_id=uuid.uuid4(), role="member", tenant=_tenant())


@pytest.mark.parametrize(
    "key",
    [
        {"kid": "hs", "alg": "HS256", "secret": HS_A},
        {"kid": "rs", "alg": "RS256", "private_key": RSA_PRIVATE},
        {"kid": "ed", "alg": "EdDSA", "private_key": ED_PRIVATE},
    ],
)
def test_each_algorithm_round_trips_and_names_its_key(key):
    service = _service([key])
    token = _issue(service)
    assert jwt.get_unverified_header(token) == {
        "alg": key["alg"],
        "kid": key["kid"],
        "typ": "at+jwt",
    }
    claims = service.decode(token)
    assert claims is not None
    assert set(claims) >= {"sub", "tid", "role", "exp", "iat", "nbf", "aud", "iss", "jti", "typ"}


def test_rotation_overlap_then_retirement():
    old = {"kid": "2026-10", "alg": "HS256", "secret": HS_A}
    new = {"kid": "2026-11", "alg": "RS256", "private_key": RSA_PRIVATE}
    before = _service([old])
    during = _service([new, old], signing="2026-11")
    after = _service([new])
    old_token = _issue(before)
    assert during.decode(old_token) is not None  # still-valid tokens keep working
    new_token = _issue(during)
    assert jwt.get_unverified_header(new_token)["kid"] == "2026-11"
    assert before.decode(new_token) is None  # unknown kid
    assert after.decode(old_token) is None  # retired
    assert after.decode(new_token) is not None
    verify_only = _service([new, {"kid": "pub", "alg": "RS256", "public_key": RSA_PUBLIC}])
    assert verify_only.decode(new_token) is not None


def _forge(header: dict, claims: dict, secret: bytes) -> str:
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(sig)


def test_hs_rs_confusion_and_alg_none_are_refused():
    service = _service([{"kid": "rs", "alg": "RS256", "private_key": RSA_PRIVATE}])
    claims = jwt.decode(_issue(service), options={"verify_signature": False})
    # An HMAC token "signed" with the public key, naming the RSA key's kid.
    forged = _forge({"alg": "HS256", "kid": "rs", "typ": "JWT"}, claims, RSA_PUBLIC.encode())
    assert service.decode(forged) is None
    unsigned = jwt.encode(claims, None, "none", headers={"kid": "rs"})
    assert service.decode(unsigned) is None
    # A kid of an HS key with an RS-signed token is refused the same way.
    mixed = _service(
        [
            {"kid": "hs", "alg": "HS256", "secret": HS_B},
            {"kid": "rs", "alg": "RS256", "private_key": RSA_PRIVATE},
        ]
    )
    rs_token = jwt.encode(claims, RSA_PRIVATE, "RS256", headers={"kid": "hs"})
    assert mixed.decode(rs_token) is None


def test_key_material_must_fit_its_algorithm():
    from backend.identity.tokens import configured_keys

    for alg, pem in (("RS256", ED_PRIVATE), ("EdDSA", RSA_PRIVATE), ("ES256", RSA_PRIVATE)):
        settings = Settings(jwt_keys=[{"kid": "x", "alg": alg, "private_key": pem}])
        with pytest.raises(ValueError, match="cannot sign"):
            configured_keys(settings)


def test_header_typ_and_clock_leeway():
    service = _service([{"kid": "hs", "alg": "HS256", "secret": HS_A}])
    claims = jwt.decode(_issue(service), options={"verify_signature": False})
    plain = jwt.encode(claims, HS_A, "HS256", headers={"kid": "hs"})  # typ "JWT"
    assert service.decode(plain) is None
    now = int(dt.datetime.now(dt.UTC).timestamp())
    skewed = {**claims, "iat": now + 5, "nbf": now + 5}  # another host's clock, 5 s ahead
    token = jwt.encode(skewed, HS_A, "HS256", headers={"kid": "hs", "typ": "at+jwt"})
    assert service.decode(token) is not None


def test_token_expiry_and_audience():
    service = _service([{"kid": "hs", "alg": "HS256", "secret": HS_A}])
    claims = jwt.decode(_issue(service), options={"verify_signature": False})
    for change in (
        {"exp": int((dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)).timestamp())},
        {"aud": "someone-else"},
        {"iss": "someone-else"},
        {"typ": "operator"},
    ):
        headers = {"kid": "hs", "typ": "at+jwt"}
        token = jwt.encode({**claims, **change}, HS_A, "HS256", headers=headers)
        assert service.decode(token) is None, change


@pytest.mark.parametrize(
    "keys, signing, message",
    [
        ([{"kid": "x", "alg": "HS256", "secret": "short"}], None, ">= 32 chars"),
        ([{"kid": "x", "alg": "RS256"}], None, "private_key or public_key"),
        ([{"kid": "x", "alg": "RS256", "public_key": RSA_PUBLIC}], None, "no key can sign"),
        ([{"kid": "x", "alg": "HS256", "secret": HS_A}] * 2, None, "unique"),
        ([{"kid": "x", "alg": "HS256", "secret": HS_A}], "y", "names no signing key"),
        ([{"kid": "x", "alg": "none", "secret": HS_A}], None, "alg"),
    ],
)
def test_bad_key_settings_are_refused(keys, signing, message):
    with pytest.raises(ValueError, match=message):
        Settings(jwt_keys=keys, jwt_signing_kid=signing)
