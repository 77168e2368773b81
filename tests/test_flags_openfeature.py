"""The OpenFeature provider, exercised through the OpenFeature client as application code
uses it (pure logic: no database, no Redis)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from backend.flags.context import Context
from backend.flags.engine import Engine, Variant
from backend.flags.openfeature import Evaluator, TenantflowProvider, to_context

DOMAIN = "tenantflow-tests"


def _feature(name: str, *, enabled: bool = True, **extra: Any) -> dict[str, Any]:
    return {"name": name, "enabled": enabled, "strategies": [{"name": "default"}], **extra}


def _payload_flag(name: str, kind: str, value: str, *, enabled: bool = True) -> dict[str, Any]:
    variant = {"name": name + "-v", "weight": 1000, "payload": {"type": kind, "value": value}}
    return _feature(name, enabled=enabled, variants=[variant])


def _engine(*features: dict[str, Any]) -> Engine:
    return Engine.from_state({"version": 2, "features": list(features)}, strict=True)


def _rule(name: str, strategy: str, params: dict[str, str], *constraints: Any) -> dict[str, Any]:
    strategies = [{"name": strategy, "parameters": params, "constraints": list(constraints)}]
    return {"name": name, "enabled": True, "strategies": strategies}


ENGINE = _engine(
    _feature("on"),
    _feature("off", enabled=False),
    _rule("only-alice", "userWithId", {"userIds": "alice"}),
    _rule("rollout", "flexibleRollout", {"rollout": "50", "stickiness": "tenantId"}),
    _rule("eu", "default", {}, {"contextName": "region", "operator": "IN", "values": ["eu"]}),
    _rule("big", "default", {}, {"contextName": "seats", "operator": "NUM_GT", "value": "10"}),
    _rule(
        "launched",
        "default",
        {},
        {"contextName": "currentTime", "operator": "DATE_AFTER", "value": "2030-01-01T00:00:00Z"},
    ),
    _payload_flag("str", "string", "hello"),
    _payload_flag("csv", "csv", "a,b"),
    _payload_flag("str-off", "string", "hello", enabled=False),
    _payload_flag("int", "number", "42"),
    _payload_flag("int-dot-zero", "number", "3.0"),
    _payload_flag("fraction", "number", "3.5"),
    _payload_flag("nan", "number", "nan"),
    _payload_flag("not-number", "number", "many"),
    _payload_flag("obj", "json", '{"limit": 5, "tags": ["x"]}'),
    _payload_flag("arr", "json", "[1, 2]"),
    _payload_flag("json-scalar", "json", "7"),
    _payload_flag("bad-json", "json", "{nope"),
)


class Holder:
    """What storage does: one current evaluator, replaced when definitions change."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.current = evaluator

    def get(self) -> Evaluator:
        return self.current


@pytest.fixture
def holder() -> Holder:
    return Holder(ENGINE)


@pytest.fixture
def client(holder: Holder) -> Iterator[OpenFeatureClient]:
    # Waiting for init: otherwise the first evaluation may find the provider NOT_READY.
    api.set_provider_and_wait(TenantflowProvider(holder.get), DOMAIN)
    yield api.get_client(DOMAIN)
    api.clear_providers()


def test_metadata_names_the_provider(client: OpenFeatureClient) -> None:
    assert api.get_provider_metadata(DOMAIN).name == "tenantflow"


def test_boolean_on_off_and_unknown(client: OpenFeatureClient) -> None:
    on = client.get_boolean_details("on", False)
    assert (on.value, on.reason, on.error_code) == (True, Reason.TARGETING_MATCH, None)
    assert on.flag_metadata == {"feature_enabled": True}
    assert on.variant is None  # on without variants: Unleash's "disabled" is not passed on
    off = client.get_boolean_details("off", True)  # the flag's state wins over the default
    assert (off.value, off.reason, off.error_code) == (False, Reason.DISABLED, None)
    missing = client.get_boolean_details("missing", True)
    assert (missing.value, missing.reason) == (True, Reason.ERROR)
    assert missing.error_code == ErrorCode.FLAG_NOT_FOUND


def test_boolean_names_the_variant(client: OpenFeatureClient) -> None:
    details = client.get_boolean_details("str", False)
    assert (details.value, details.variant) == (True, "str-v")


def test_targeting_key_is_the_user_id(client: OpenFeatureClient) -> None:
    assert client.get_boolean_value("only-alice", False, EvaluationContext("alice")) is True
    assert client.get_boolean_value("only-alice", False, EvaluationContext("bob")) is False
    assert client.get_boolean_value("only-alice", False) is False
    by_attribute = EvaluationContext(attributes={"userId": "alice"})
    assert client.get_boolean_value("only-alice", False, by_attribute) is True
    both = EvaluationContext("bob", {"userId": "alice"})
    assert client.get_boolean_value("only-alice", False, both) is False


@pytest.mark.parametrize("key", ["tenantId", "tenant_id"])
def test_tenant_rollout_agrees_with_the_engine(client: OpenFeatureClient, key: str) -> None:
    seen = set()
    for i in range(60):
        tenant = f"tenant-{i}"
        context = EvaluationContext(attributes={key: tenant})
        got = client.get_boolean_value("rollout", False, context)
        assert got is ENGINE.is_enabled("rollout", Context(tenant_id=tenant)), tenant
        seen.add(got)
    assert seen == {True, False}  # a provider ignoring the tenant would give one answer


def test_other_attributes_become_properties(client: OpenFeatureClient) -> None:
    def on(flag: str, **attributes: Any) -> bool:
        return client.get_boolean_value(flag, False, EvaluationContext(attributes=attributes))

    assert on("eu", region="eu") is True
    assert on("eu", region="us") is False
    assert on("big", seats=20) is True
    assert on("big", seats=5) is False


@pytest.mark.parametrize("key", ["currentTime", "current_time"])
def test_current_time_from_datetime_or_text(client: OpenFeatureClient, key: str) -> None:
    cases: list[tuple[datetime | str, bool]] = [
        (datetime(2031, 1, 1, tzinfo=UTC), True),
        ("2031-01-01T00:00:00+00:00", True),
        ("2029-06-01T00:00:00", False),
    ]
    for when, expected in cases:
        context = EvaluationContext(attributes={key: when})
        assert client.get_boolean_value("launched", not expected, context) is expected, when


def test_unreadable_time_is_an_invalid_context(client: OpenFeatureClient) -> None:
    context = EvaluationContext(attributes={"currentTime": "next tuesday"})
    details = client.get_boolean_details("on", False, context)
    assert (details.value, details.error_code) == (False, ErrorCode.INVALID_CONTEXT)


def test_context_mapping() -> None:
    when = datetime(2030, 5, 1, 12, tzinfo=UTC)
    attributes = {
        "sessionId": "s",
        "remote_address": "10.0.0.1",
        "environment": "production",
        "appName": "web",
        "tenantId": 42,
        "plan": "pro",
        "currentTime": when,
        "beta": True,
        "ratio": 0.5,
        "since": when,
        "gone": None,
        "tags": ["a", "b"],
    }
    ctx = to_context(EvaluationContext("u", attributes))  # type: ignore[arg-type]
    assert ctx == Context(
        user_id="u",
        session_id="s",
        remote_address="10.0.0.1",
        environment="production",
        app_name="web",
        tenant_id="42",
        plan="pro",
        current_time=when,
        properties={"beta": "true", "ratio": "0.5", "since": when.isoformat()},
    )
    assert to_context(None) == Context()


@pytest.mark.parametrize(("flag", "expected"), [("str", "hello"), ("csv", "a,b")])
def test_string_payload(client: OpenFeatureClient, flag: str, expected: str) -> None:
    details = client.get_string_details(flag, "default")
    assert (details.value, details.variant, details.reason) == (
        expected,
        flag + "-v",
        Reason.TARGETING_MATCH,
    )
    assert details.error_code is None


def test_string_falls_back_when_off_or_without_variant(client: OpenFeatureClient) -> None:
    off = client.get_string_details("str-off", "fallback")
    assert (off.value, off.reason, off.variant, off.error_code) == (
        "fallback",
        Reason.DISABLED,
        None,
        None,
    )
    plain = client.get_string_details("on", "fallback")
    assert (plain.value, plain.reason, plain.error_code) == ("fallback", Reason.DEFAULT, None)
    assert plain.flag_metadata == {"feature_enabled": True}


@pytest.mark.parametrize(
    ("method", "flag", "default"),
    [
        ("get_string_details", "int", "d"),
        ("get_string_details", "obj", "d"),
        ("get_integer_details", "str", 7),
        ("get_float_details", "obj", 7.5),
        ("get_object_details", "str", {"d": 1}),
        ("get_object_details", "int", {"d": 1}),
        ("get_object_details", "json-scalar", [0]),
    ],
)
def test_payload_type_mismatch(
    client: OpenFeatureClient, method: str, flag: str, default: Any
) -> None:
    details = getattr(client, method)(flag, default)
    assert (details.value, details.reason) == (default, Reason.ERROR)
    assert details.error_code == ErrorCode.TYPE_MISMATCH


@pytest.mark.parametrize(
    ("method", "flag", "default"),
    [
        ("get_integer_details", "fraction", 7),
        ("get_integer_details", "not-number", 7),
        ("get_float_details", "not-number", 7.5),
        ("get_float_details", "nan", 7.5),
        ("get_object_details", "bad-json", {"d": 1}),
    ],
)
def test_payload_parse_error(
    client: OpenFeatureClient, method: str, flag: str, default: Any
) -> None:
    details = getattr(client, method)(flag, default)
    assert (details.value, details.reason) == (default, Reason.ERROR)
    assert details.error_code == ErrorCode.PARSE_ERROR
    assert flag + "-v" in (details.error_message or "")


def test_provider_itself_refuses_a_scalar_for_an_object() -> None:
    # The client would also catch the scalar; callers of the provider directly must too.
    details = TenantflowProvider(lambda: ENGINE).resolve_object_details("json-scalar", [0])
    assert (details.value, details.error_code) == ([0], ErrorCode.TYPE_MISMATCH)


def test_numbers(client: OpenFeatureClient) -> None:
    assert client.get_integer_value("int", 0) == 42
    assert client.get_integer_value("int-dot-zero", 0) == 3
    assert client.get_integer_value("str-off", 9) == 9
    value = client.get_float_value("int", 0.0)
    assert value == 42.0 and isinstance(value, float)
    assert client.get_float_value("fraction", 0.0) == 3.5
    details = client.get_integer_details("int", 0)
    assert (details.variant, details.reason) == ("int-v", Reason.TARGETING_MATCH)


def test_objects(client: OpenFeatureClient) -> None:
    assert client.get_object_value("obj", {}) == {"limit": 5, "tags": ["x"]}
    assert client.get_object_value("arr", {}) == [1, 2]
    assert client.get_object_value("on", {"d": 1}) == {"d": 1}
    missing = client.get_object_details("missing", [])
    assert (missing.value, missing.error_code) == ([], ErrorCode.FLAG_NOT_FOUND)


class Broken:
    """An evaluator that knows every flag and fails to evaluate any."""

    def variant(self, name: str, context: Context) -> Variant:
        raise RuntimeError("definitions are corrupt")

    def __contains__(self, name: str) -> bool:
        return True


def test_a_failing_source_gives_the_default(holder: Holder, client: OpenFeatureClient) -> None:
    def fail() -> Evaluator:
        raise ConnectionError("storage is down")

    api.set_provider_and_wait(TenantflowProvider(fail), DOMAIN)
    details = client.get_boolean_details("on", True)
    assert (details.value, details.reason, details.error_code) == (
        True,
        Reason.ERROR,
        ErrorCode.GENERAL,
    )
    assert details.error_message == "ConnectionError: storage is down"
    assert client.get_object_value("obj", {"d": 1}) == {"d": 1}


def test_a_failing_evaluator_gives_the_default(holder: Holder, client: OpenFeatureClient) -> None:
    holder.current = Broken()
    details = client.get_string_details("str", "fallback")
    assert (details.value, details.error_code) == ("fallback", ErrorCode.GENERAL)
    assert "definitions are corrupt" in (details.error_message or "")


def test_swapping_the_engine_takes_effect(holder: Holder, client: OpenFeatureClient) -> None:
    assert client.get_boolean_value("on", False) is True
    assert client.get_string_value("str", "d") == "hello"
    holder.current = _engine(
        _feature("on", enabled=False), _payload_flag("str", "string", "goodbye")
    )
    assert client.get_boolean_value("on", True) is False
    assert client.get_string_value("str", "d") == "goodbye"
    holder.current = _engine()
    assert client.get_boolean_details("on", True).error_code == ErrorCode.FLAG_NOT_FOUND


async def test_async_resolution(client: OpenFeatureClient) -> None:
    assert await client.get_boolean_value_async("on", False) is True
    assert await client.get_integer_value_async("int", 0) == 42
