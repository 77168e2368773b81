"""Flag engine semantics the Unleash specification sample does not pin down."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from backend.flags.context import Context
from backend.flags.engine import DISABLED, Engine
from backend.flags.model import Feature, parse_state
from backend.flags.strategies import normalized_hash


def _feature(name: str = "f", strategies: list[dict[str, Any]] | None = None, **extra: Any):
    return {"name": name, "enabled": True, "strategies": strategies or [], **extra}


def _engine(*features: dict[str, Any], segments: list[Any] | None = None, strict: bool = True):
    state = {"version": 2, "features": list(features), "segments": segments or []}
    return Engine.from_state(state, strict=strict)


def _constraint_engine(operator: str, strict: bool = True, **constraint: Any) -> Engine:
    constraint = {"contextName": "x", "operator": operator, **constraint}
    return _engine(
        _feature(strategies=[{"name": "default", "constraints": [constraint]}]), strict=strict
    )


def _on(engine: Engine, **context: Any) -> bool:
    return engine.is_enabled("f", Context.from_dict(context))


def _props(**properties: str | None) -> dict[str, Any]:
    return {"properties": properties}


# --- tenantId as stickiness and as a constraint field -----------------------------------------


def _tenant_rollout(percent: int) -> Engine:
    params = {"rollout": str(percent), "stickiness": "tenantId", "groupId": "g"}
    return _engine(_feature(strategies=[{"name": "flexibleRollout", "parameters": params}]))


def test_tenant_stickiness_is_stable_per_tenant() -> None:
    engine = _tenant_rollout(50)
    for i in range(200):
        ctx = Context(tenant_id=f"tenant-{i}")
        first = engine.is_enabled("f", ctx)
        # Other fields (a different user, session) must not move a tenant in or out.
        for user in ("a", "b", "c"):
            again = Context(tenant_id=f"tenant-{i}", user_id=user, session_id=user)
            assert engine.is_enabled("f", again) is first
        assert first is (normalized_hash("g", f"tenant-{i}") <= 50)


def test_tenant_rollout_reaches_about_its_percentage() -> None:
    engine = _tenant_rollout(30)
    on = sum(engine.is_enabled("f", Context(tenant_id=f"t{i}")) for i in range(20_000))
    assert 0.28 < on / 20_000 < 0.32


def test_tenant_stickiness_without_a_tenant_is_off() -> None:
    engine = _tenant_rollout(100)
    assert engine.is_enabled("f", Context(tenant_id="t1"))
    assert not engine.is_enabled("f", Context(user_id="u1", session_id="s1"))


def test_tenant_variant_stickiness_and_constraint() -> None:
    variants = [
        {"name": name, "weight": 500, "weightType": "variable", "stickiness": "tenantId"}
        for name in ("blue", "green")
    ]
    constraint = {"contextName": "tenantId", "operator": "NOT_IN", "values": ["banned"]}
    engine = _engine(
        _feature(strategies=[{"name": "default", "constraints": [constraint]}], variants=variants)
    )
    picks = Counter(engine.variant("f", Context(tenant_id=f"t{i}")).name for i in range(4000))
    assert set(picks) == {"blue", "green"} and 0.45 < picks["blue"] / 4000 < 0.55
    for i in range(50):
        names = {engine.variant("f", Context(tenant_id=f"t{i}", user_id=u)).name for u in "xyz"}
        assert len(names) == 1
    assert engine.variant("f", Context(tenant_id="banned")) == DISABLED


# --- remoteAddress --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("2001:db8::1", True),
        ("2001:DB8:0:0:ffff::9", True),
        ("2001:db9::1", False),
        ("fe80::1", True),
        ("10.20.30.40", True),
        ("::ffff:10.20.30.40", True),  # an IPv4 client seen by a dual-stack listener
        ("11.0.0.1", False),
        ("not-an-ip", False),
        (None, False),
    ],
)
def test_remote_address_ipv6_and_ipv4_ranges(address: str | None, expected: bool) -> None:
    params = {"IPs": "2001:db8::/32, fe80::1, 10.0.0.0/8"}
    engine = _engine(_feature(strategies=[{"name": "remoteAddress", "parameters": params}]))
    assert _on(engine, remoteAddress=address) is expected


# --- numbers, dates, versions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "value", "context", "expected"),
    [
        ("NUM_EQ", "5", "5.0", True),
        ("NUM_EQ", "5", "5.1", False),
        ("NUM_GT", "5", "5.01", True),
        ("NUM_GT", "5", "5", False),
        ("NUM_GTE", "-1.5", "-1.5", True),
        ("NUM_GTE", "-1.5", "-2", False),
        ("NUM_LT", "1e3", "999", True),
        ("NUM_LT", "1e3", "1000", False),
        ("NUM_LTE", "0", "0", True),
        ("NUM_LTE", "0", "0.001", False),
    ],
)
def test_number_operators(operator: str, value: str, context: str, expected: bool) -> None:
    assert _on(_constraint_engine(operator, value=value), **_props(x=context)) is expected
    inverted = _constraint_engine(operator, value=value, inverted=True)
    assert _on(inverted, **_props(x=context)) is not expected


@pytest.mark.parametrize("operator", ["NUM_EQ", "NUM_GT", "NUM_GTE", "NUM_LT", "NUM_LTE"])
@pytest.mark.parametrize("context", [None, "", "twelve", "0x10", " 5", "1_0", "nan"])
def test_number_operators_fail_on_missing_or_unparsable_values(
    operator: str, context: str | None
) -> None:
    assert not _on(_constraint_engine(operator, value="5"), **_props(x=context))
    # `inverted` negates the operator's answer, so it is satisfied by a missing value.
    assert _on(_constraint_engine(operator, value="5", inverted=True), **_props(x=context))


NOON = "2030-06-01T12:00:00Z"


@pytest.mark.parametrize(
    ("operator", "now", "expected"),
    [
        ("DATE_AFTER", "2030-06-01T12:00:01Z", True),
        ("DATE_AFTER", "2030-06-01T12:00:00Z", False),
        ("DATE_AFTER", "2030-06-01T13:59:00+02:00", False),  # 11:59 UTC
        ("DATE_BEFORE", "2030-06-01T11:59:59Z", True),
        ("DATE_BEFORE", "2030-06-01T14:30:00+02:00", False),  # 12:30 UTC
        ("DATE_BEFORE", "2030-06-01T12:00:00", False),  # no offset: UTC
    ],
)
def test_date_operators(operator: str, now: str, expected: bool) -> None:
    constraint = {"contextName": "currentTime", "value": NOON}
    engine = _constraint_engine(operator, **constraint)
    assert _on(engine, currentTime=now) is expected
    assert _on(_constraint_engine(operator, inverted=True, **constraint), currentTime=now) is (
        not expected
    )


def test_date_operators_default_to_the_current_time() -> None:
    after_2000 = _constraint_engine("DATE_AFTER", contextName="currentTime", value="2000-01-01")
    before_2000 = _constraint_engine("DATE_BEFORE", contextName="currentTime", value="2000-01-01")
    assert _on(after_2000) and not _on(before_2000)
    assert not _on(after_2000, currentTime=datetime(1999, 12, 31, tzinfo=UTC))


@pytest.mark.parametrize("operator", ["DATE_AFTER", "DATE_BEFORE"])
@pytest.mark.parametrize("context", [None, "yesterday", "2030-13-45"])
def test_date_operators_on_a_missing_or_unparsable_field(
    operator: str, context: str | None
) -> None:
    engine = _constraint_engine(operator, contextName="signupDate", value=NOON)
    assert not _on(engine, **{"properties": {"signupDate": context}})
    inverted = _constraint_engine(operator, contextName="signupDate", value=NOON, inverted=True)
    assert _on(inverted, **{"properties": {"signupDate": context}})


def test_date_operators_on_a_custom_field() -> None:
    engine = _constraint_engine("DATE_BEFORE", contextName="signupDate", value=NOON)
    assert _on(engine, **_props(signupDate="2030-01-01T00:00:00Z"))
    assert not _on(engine, **_props(signupDate="2031-01-01T00:00:00Z"))


def test_an_unparsable_current_time_is_a_client_error() -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        Context.from_dict({"currentTime": "tomorrow"})


# semver 2.0 section 11: each version precedes the next.
ORDERED = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.2.0",
    "1.10.0",
    "2.0.0",
]


@pytest.mark.parametrize("i", range(len(ORDERED)))
def test_semver_operators_follow_semver_precedence(i: int) -> None:
    target = ORDERED[i]
    eq = _constraint_engine("SEMVER_EQ", value=target)
    gt = _constraint_engine("SEMVER_GT", value=target)
    lt = _constraint_engine("SEMVER_LT", value=target)
    not_gt = _constraint_engine("SEMVER_GT", value=target, inverted=True)
    for j, version in enumerate(ORDERED):
        ctx = _props(x=version)
        assert _on(eq, **ctx) is (j == i), (version, target)
        assert _on(gt, **ctx) is (j > i), (version, target)
        assert _on(lt, **ctx) is (j < i), (version, target)
        assert _on(not_gt, **ctx) is (j <= i), (version, target)


def test_semver_ignores_build_metadata() -> None:
    assert _on(_constraint_engine("SEMVER_EQ", value="1.2.3+build.5"), **_props(x="1.2.3"))
    assert _on(_constraint_engine("SEMVER_EQ", value="1.2.3"), **_props(x="1.2.3+other"))


@pytest.mark.parametrize("operator", ["SEMVER_EQ", "SEMVER_GT", "SEMVER_LT"])
@pytest.mark.parametrize("context", [None, "1.2", "v1.2.3", "1.2.3.4", "latest", "01.2.3"])
def test_semver_operators_on_missing_or_unparsable_versions(
    operator: str, context: str | None
) -> None:
    assert not _on(_constraint_engine(operator, value="1.2.3"), **_props(x=context))
    assert _on(_constraint_engine(operator, value="1.2.3", inverted=True), **_props(x=context))


# --- strings and regular expressions --------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "wanted", "context", "sensitive", "insensitive"),
    [
        ("STR_CONTAINS", "Beta", "closed-BETA-group", False, True),
        ("STR_STARTS_WITH", "ACME", "acme.example", False, True),
        ("STR_ENDS_WITH", ".Example", "ACME.EXAMPLE", False, True),
        ("STR_ENDS_WITH", "example", "acme.example", True, True),
        ("STR_CONTAINS", "zzz", "ACME", False, False),
    ],
)
def test_string_operators_case_sensitivity(
    operator: str, wanted: str, context: str, sensitive: bool, insensitive: bool
) -> None:
    engine = _constraint_engine(operator, values=[wanted])
    folded = _constraint_engine(operator, values=["other", wanted], caseInsensitive=True)
    assert _on(engine, **_props(x=context)) is sensitive
    assert _on(folded, **_props(x=context)) is insensitive
    assert not _on(folded)  # missing value
    assert _on(_constraint_engine(operator, values=[wanted], inverted=True))


@pytest.mark.parametrize(
    ("pattern", "case_insensitive", "context", "expected"),
    [
        ("^admin-\\d+$", False, "ADMIN-12", False),
        ("^admin-\\d+$", True, "ADMIN-12", True),
        ("^admin-\\d+$", False, "admin-12\n", False),  # RE2's `$` is the very end
        ("^a(?i)bc$", False, "aBC", True),  # mid-pattern flags, scoped as in RE2
        ("^a(?i)bc$", False, "ABC", False),
        ("x(?i)y|z", False, "Z", True),  # the flag also covers later alternatives
        ("^[[:digit:]]{3}$", False, "123", True),
        ("^\\Qa.b\\E$", False, "axb", False),
        ("^(?<word>\\w+)$", False, "hello", True),
        ("\\x{263A}", False, "smile \u263a", True),
    ],
)
def test_regex_operator(pattern: str, case_insensitive: bool, context: str, expected: bool) -> None:
    engine = _constraint_engine("REGEX", value=pattern, caseInsensitive=case_insensitive)
    assert _on(engine, **_props(x=context)) is expected
    assert not _on(engine)
    inverted = _constraint_engine(
        "REGEX", value=pattern, caseInsensitive=case_insensitive, inverted=True
    )
    assert _on(inverted, **_props(x=context)) is not expected


# --- segments, variants, dependencies, strategies ------------------------------------------


def test_a_strategy_naming_an_unknown_segment_is_off() -> None:
    segments = [{"id": 1, "constraints": []}]
    known = {"name": "default", "segments": [1]}
    unknown = {"name": "default", "segments": [1, 7]}
    assert _engine(_feature(strategies=[known]), segments=segments).is_enabled("f")
    lenient = _engine(_feature(strategies=[unknown]), segments=segments, strict=False)
    assert not lenient.is_enabled("f")
    with pytest.raises(ValidationError, match=r"unknown segments \[7\]"):
        _engine(_feature(strategies=[unknown]), segments=segments)


def _variants(*names_weights: tuple[str, int], **extra: Any) -> list[dict[str, Any]]:
    return [
        {"name": n, "weight": w, "payload": {"type": "string", "value": n}, **extra}
        for n, w in names_weights
    ]


def test_variant_overrides_beat_the_hash() -> None:
    variants = _variants(("a", 500), ("b", 500))
    variants[1]["overrides"] = [
        {"contextName": "userId", "values": ["u1", "u2"]},
        {"contextName": "tenantId", "values": ["vip"]},
        {"contextName": "country", "values": ["NO"]},
    ]
    engine = _engine(_feature(strategies=[{"name": "default"}], variants=variants))
    users = [f"user{i}" for i in range(200)]
    hashed = {u: engine.variant("f", Context(user_id=u)).name for u in users}
    assert set(hashed.values()) == {"a", "b"}
    for user in [u for u, name in hashed.items() if name == "a"]:
        assert engine.variant("f", Context(user_id=user, tenant_id="vip")).name == "b"
        assert engine.variant("f", Context(user_id=user, properties={"country": "NO"})).name == "b"
    got = engine.variant("f", Context(user_id="u2"))
    assert got.name == "b" and got.enabled and got.feature_enabled
    assert got.payload is not None and got.payload.value == "b"


def test_fix_weights_keep_their_share_and_variable_ones_split_the_rest() -> None:
    variants = [
        {"name": "fixed", "weight": 800, "weightType": "fix"},
        {"name": "v1", "weight": 0, "weightType": "variable"},
        {"name": "v2", "weight": 0, "weightType": "variable"},
    ]
    engine = _engine(_feature(variants=variants))
    picks = Counter(engine.variant("f", Context(user_id=str(i))).name for i in range(20_000))
    assert 0.78 < picks["fixed"] / 20_000 < 0.82
    assert 0.08 < picks["v1"] / 20_000 < 0.12 and 0.08 < picks["v2"] / 20_000 < 0.12


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        (
            [
                {"name": "a", "weight": 700, "weightType": "fix"},
                {"name": "b", "weight": 400, "weightType": "fix"},
            ],
            "over 1000",
        ),
        ([{"name": "a", "weight": 600, "weightType": "fix"}], "must sum to 1000"),
        ([{"name": "a", "weight": 0}], "sum to 0"),
        ([{"name": "a", "weight": -1}], "greater than or equal to 0"),
        ([{"name": "a", "weight": 1}, {"name": "a", "weight": 1}], "duplicate variant name"),
        ([{"name": "a", "weight": 1, "weightType": "sometimes"}], "weightType"),
    ],
)
def test_bad_weights_are_rejected(variants: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Feature.model_validate(_feature(variants=variants))


def test_a_matching_strategy_with_variants_wins_and_hashes_by_its_group() -> None:
    strategy_variants = _variants(("s1", 1), ("s2", 1))
    rollout = {"rollout": "100", "stickiness": "default", "groupId": "shared-group"}
    strategies = [
        {
            "name": "flexibleRollout",
            "parameters": rollout,
            "constraints": [{"contextName": "plan", "operator": "IN", "values": ["pro"]}],
            "variants": strategy_variants,
        },
        {"name": "default"},
    ]
    engine = _engine(_feature(strategies=strategies, variants=_variants(("feature", 1))))
    for i in range(100):
        user = f"user{i}"
        expected = "s1" if normalized_hash("shared-group", user, 2, 86028157) == 1 else "s2"
        assert engine.variant("f", Context(user_id=user, plan="pro")).name == expected
        # The first strategy does not match: the second (no variants) gives feature variants.
        assert engine.variant("f", Context(user_id=user, plan="free")).name == "feature"


def test_strategies_are_evaluated_by_sort_order() -> None:
    """The first matching strategy gives the variant: the one with the lowest sortOrder, not
    the first in the list; a strategy without sortOrder sorts as 9999, ties keep the order."""

    def strategy(variant: str, sort_order: int | None = None) -> dict[str, Any]:
        made = {"name": "default", "variants": _variants((variant, 1))}
        return made if sort_order is None else {**made, "sortOrder": sort_order}

    def chosen(*strategies: dict[str, Any]) -> str:
        return _engine(_feature(strategies=list(strategies))).variant("f", Context()).name

    assert chosen(strategy("second", 2), strategy("first", 1)) == "first"
    assert chosen(strategy("unsorted"), strategy("sorted", 5)) == "sorted"
    assert chosen(strategy("late", 10_000), strategy("unsorted")) == "unsorted"
    assert chosen(strategy("a", 1), strategy("b", 1)) == "a"
    assert chosen(strategy("a"), strategy("b")) == "a"
    # Kept in the definition as given (the API returns what it was sent).
    feature = Feature.model_validate(_feature(strategies=[strategy("x", 3)]))
    assert feature.model_dump(by_alias=True)["strategies"][0]["sortOrder"] == 3


def test_strategy_variants_use_the_strategy_stickiness() -> None:
    params = {"rollout": "100", "stickiness": "tenantId", "groupId": "g"}
    strategy = {
        "name": "flexibleRollout",
        "parameters": params,
        "variants": _variants(("x", 1), ("y", 1)),
    }
    engine = _engine(_feature(strategies=[strategy]))
    for i in range(50):
        names = {engine.variant("f", Context(tenant_id=f"t{i}", user_id=u)).name for u in "abc"}
        assert len(names) == 1


def test_a_dependency_on_a_parent_variant() -> None:
    parent_variants = _variants(("red", 1), ("blue", 1))
    parent_variants[0]["overrides"] = [{"contextName": "userId", "values": ["r"]}]
    parent_variants[1]["overrides"] = [{"contextName": "userId", "values": ["b"]}]
    parent = _feature("parent", strategies=[{"name": "default"}], variants=parent_variants)
    child = _feature(
        "child",
        strategies=[{"name": "default"}],
        dependencies=[{"feature": "parent", "variants": ["red"]}],
        variants=_variants(("child-variant", 1)),
    )
    off_parent = {**parent, "enabled": False}
    engine = _engine(parent, child)
    assert engine.is_enabled("child", Context(user_id="r"))
    assert not engine.is_enabled("child", Context(user_id="b"))
    assert engine.variant("child", Context(user_id="r")).name == "child-variant"
    assert engine.variant("child", Context(user_id="b")) == DISABLED
    assert not _engine(off_parent, child).is_enabled("child", Context(user_id="r"))


def test_unknown_strategy_is_off_when_served_and_rejected_from_api_input() -> None:
    custom = _feature(strategies=[{"name": "myCustomStrategy", "parameters": {"a": "b"}}])
    engine = _engine(custom, strict=False)
    assert not engine.is_enabled("f", Context(user_id="u"))
    assert engine.variant("f").feature_enabled is False
    with_default = _feature(strategies=[{"name": "myCustomStrategy"}, {"name": "default"}])
    assert _engine(with_default, strict=False).is_enabled("f")
    with pytest.raises(ValidationError, match="unknown strategy 'myCustomStrategy'"):
        Feature.model_validate(custom)


def test_unknown_flag_gives_the_disabled_variant() -> None:
    engine = _engine(_feature())
    assert not engine.is_enabled("nope")
    assert engine.variant("nope") == DISABLED
    assert engine.variant("nope").to_dict() == {
        "name": "disabled",
        "enabled": False,
        "feature_enabled": False,
    }
    assert engine.variant("f").to_dict()["feature_enabled"] is True


def test_application_hostname_is_case_insensitive() -> None:
    params = {"hostNames": "Web-1, web-2"}
    engine = _engine(_feature(strategies=[{"name": "applicationHostname", "parameters": params}]))
    assert _on(engine, **_props(hostname="WEB-1"))
    assert not _on(engine, **_props(hostname="web-3"))


def test_gradual_rollouts_by_user_and_session_match_the_normalized_hash() -> None:
    for name, field in (
        ("gradualRolloutUserId", "userId"),
        ("gradualRolloutSessionId", "sessionId"),
    ):
        params = {"percentage": "40", "groupId": "grp"}
        engine = _engine(_feature(strategies=[{"name": name, "parameters": params}]))
        for i in range(300):
            expected = normalized_hash("grp", str(i)) <= 40
            assert _on(engine, **{field: str(i)}) is expected
        assert not _on(engine)


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("constraint", "message"),
    [
        ({"operator": "LIKE", "values": ["a"]}, "unknown constraint operator 'LIKE'"),
        ({"operator": "REGEX", "value": "(?=a)b"}, "look-ahead is not supported"),
        ({"operator": "REGEX", "value": "(a)\\1"}, "back-references are not supported"),
        ({"operator": "REGEX", "value": "(unclosed"}, "missing '\\)'"),
        ({"operator": "REGEX"}, "needs a `value`"),
        ({"operator": "NUM_GT", "value": "ten"}, "needs a number"),
        ({"operator": "DATE_AFTER", "value": "soon"}, "ISO 8601"),
        ({"operator": "SEMVER_LT", "value": "v1.2.3"}, "semantic version"),
        ({"operator": "IN", "values": "not-a-list"}, "list"),
        ({"operator": "IN", "values": ["a"], "contextName": ""}, "at least 1 character"),
    ],
)
def test_bad_constraints_are_rejected(constraint: dict[str, Any], message: str) -> None:
    strategy = {"name": "default", "constraints": [{"contextName": "x", **constraint}]}
    with pytest.raises(ValidationError, match=message):
        Feature.model_validate(_feature(strategies=[strategy]))


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        ({"name": "flexibleRollout", "parameters": {"rollout": "abc"}}, "'rollout' must be"),
        ({"name": "flexibleRollout", "parameters": {"rollout": "150"}}, "'rollout' must be"),
        ({"name": "flexibleRollout", "parameters": {}}, "'rollout' must be"),
        ({"name": "gradualRolloutUserId", "parameters": {"percentage": "-5"}}, "'percentage'"),
        ({"name": "remoteAddress", "parameters": {"IPs": "10.0.0.0/8, 300.1.1.1"}}, "300.1.1.1"),
        ({"name": "userWithId", "parameters": {"userIds": ["a", "b"]}}, "string"),
        ({"name": "default", "segments": ["one"]}, "integer"),
    ],
)
def test_bad_strategies_are_rejected(strategy: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Feature.model_validate(_feature(strategies=[strategy]))


def test_validation_accepts_unknown_keys_and_unquoted_numbers() -> None:
    feature = Feature.model_validate(
        _feature(
            strategies=[
                {
                    "name": "flexibleRollout",
                    "parameters": {"rollout": 25, "stickiness": "default"},
                    "constraints": [{"contextName": "x", "operator": "NUM_GT", "value": 3}],
                    "sortOrder": 1,
                    "id": "9f3c",
                }
            ],
            type="release",
            createdAt="2024-01-01T00:00:00Z",
        )
    )
    assert feature.strategies[0].parameters["rollout"] == "25"
    assert feature.strategies[0].constraints[0].value == "3"
    assert feature.model_extra == {"type": "release", "createdAt": "2024-01-01T00:00:00Z"}
    assert feature.model_dump(by_alias=True)["impressionData"] is False


def test_duplicate_and_self_referencing_features_are_rejected() -> None:
    with pytest.raises(ValidationError, match="duplicate feature name: f"):
        parse_state({"features": [_feature(), _feature()]}, strict=True)
    with pytest.raises(ValidationError, match="depends on itself"):
        Feature.model_validate(_feature(dependencies=[{"feature": "f"}]))


def test_lenient_state_keeps_bad_parts_off_and_the_rest_working() -> None:
    bad = _feature(
        "bad",
        strategies=[
            {
                "name": "default",
                "constraints": [{"contextName": "x", "operator": "NUM_GT", "value": "ten"}],
            }
        ],
    )
    inverted_bad = _feature(
        "inverted-bad",
        strategies=[
            {
                "name": "default",
                "constraints": [
                    {"contextName": "x", "operator": "FUTURE_OP", "value": "1", "inverted": True}
                ],
            }
        ],
    )
    engine = _engine(bad, inverted_bad, _feature("good"), strict=False)
    ctx = Context(properties={"x": "11"})
    assert engine.is_enabled("good", ctx)
    assert not engine.is_enabled("bad", ctx) and not engine.is_enabled("inverted-bad", ctx)


def test_context_from_unleash_json() -> None:
    ctx = Context.from_dict(
        {
            "userId": 42,
            "tenantId": "t1",
            "currentTime": "2030-01-01T00:00:00+01:00",
            "properties": {"beta": True, "gone": None, "n": 1.5},
            "customTop": "x",
        }
    )
    assert ctx.user_id == "42" and ctx.tenant_id == "t1"
    assert ctx.current_time == datetime(2029, 12, 31, 23, tzinfo=UTC)
    assert ctx.properties == {"beta": "true", "n": "1.5", "customTop": "x"}
    assert ctx.get("tenantId") == "t1" and ctx.get("customTop") == "x" and ctx.get("gone") is None


def test_nested_unbounded_repetition_is_refused_from_api_input_only() -> None:
    risky = "^(\\w+\\s?)*$"
    with pytest.raises(ValidationError, match="exponential time"):
        _constraint_engine("REGEX", value=risky)
    assert _constraint_engine("REGEX", value="^(\\w+\\s?){1,20}$") is not None
    served = _constraint_engine("REGEX", value=risky, strict=False)  # as Unleash serves it
    assert _on(served, **_props(x="two words"))


def test_disabled_strategies_never_match() -> None:
    both = [
        {"name": "default", "disabled": True},
        {"name": "userWithId", "parameters": {"userIds": "u1"}},
    ]
    engine = _engine(_feature(strategies=both))
    assert not _on(engine, userId="u2") and _on(engine, userId="u1")
    # Every strategy disabled is off, not "no strategies, so on for everyone".
    assert not _on(_engine(_feature(strategies=[{"name": "default", "disabled": True}])))


def test_numeric_payload_values_are_text() -> None:
    variants = [{"name": "v", "weight": 1, "payload": {"type": "number", "value": 1.5}}]
    engine = _engine(_feature(variants=variants))
    assert engine.variant("f").to_dict()["payload"] == {"type": "number", "value": "1.5"}


def test_engine_lists_and_evaluates_every_flag() -> None:
    state = parse_state({"features": [_feature("a"), {**_feature("b"), "enabled": False}]})
    engine = Engine.from_state(state)
    assert sorted(engine) == ["a", "b"] and len(engine) == 2 and "a" in engine
    assert "c" not in engine and engine.feature("c") is None
    feature = engine.feature("a")
    assert feature is not None and feature.name == "a"
    assert {n: v.feature_enabled for n, v in engine.evaluate_all().items()} == {
        "a": True,
        "b": False,
    }
