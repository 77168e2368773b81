"""`tenantflow flags ...` and `tenantflow limits ...` run as a user runs them (a subprocess
against the test database and Redis db), checked against what the services store and
publish."""

from __future__ import annotations

import contextlib
import getpass
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_cli import cli


def flag_name() -> str:
    return f"cli.{uuid.uuid4().hex[:10]}"


def published(sync_redis: Any, name: str) -> bool:
    """The flag's answer in the snapshot every process loads its copy from."""
    from backend.flags import service
    from backend.flags.store import build

    copy = build(json.loads(sync_redis.hget(service.SNAPSHOT_KEY, "state")))
    return copy.engine.is_enabled(name)


@pytest.fixture
def flags_to_drop(sync_engine: Any, sync_redis: Any) -> Iterator[list[str]]:
    """Names of flags a test makes: deleted afterwards (the suite shares the database)."""
    from backend.flags import service
    from backend.kit.errors import Problem

    names: list[str] = []
    yield names
    for name in names:
        with contextlib.suppress(Problem):  # unless the test deleted it
            service.delete_flag(sync_engine, sync_redis, name, actor="test-cleanup")


@pytest.fixture
def plans_restored(sync_engine: Any, sync_redis: Any) -> Iterator[None]:
    """Every plan as it was before the test."""
    from backend.ratelimit import service
    from backend.ratelimit.schemas import PlanIn

    before = service.list_plans(sync_engine)
    yield
    for plan in before:
        service.put_plan(
            sync_engine,
            sync_redis,
            plan.name,
            PlanIn.model_validate(plan.model_dump(exclude={"name", "updated_at"})),
            actor="test-cleanup",
        )


def test_flag_put_list_show_kill_switch_and_history(
    tmp_path: Path, sync_engine: Any, sync_redis: Any, flags_to_drop: list[str]
) -> None:
    from backend.flags import service

    name = flag_name()
    flags_to_drop.append(name)
    actor = f"cli:{getpass.getuser()}"
    definition = {
        "name": name,
        "enabled": True,
        "tenantOverridable": True,
        "strategies": [{"name": "default"}],
    }
    path = tmp_path / "flag.json"
    path.write_text(json.dumps(definition))
    created = cli("flags", "put", name, str(path), "--json")
    assert created.returncode == 0, created.stderr
    flag = json.loads(created.stdout)
    assert flag["enabled"] is True and flag["tenantOverridable"] is True
    assert flag["updatedBy"] == actor
    assert published(sync_redis, name) is True

    two = [{"name": "default"}, {"name": "userWithId", "parameters": {"userIds": "u1"}}]
    replaced = cli("flags", "put", name, "-", stdin=json.dumps({**definition, "strategies": two}))
    assert replaced.returncode == 0, replaced.stderr
    assert f"flag {name} replaced: on, 2 strategy(ies)" in replaced.stdout

    listed = json.loads(cli("flags", "list", "--json").stdout)
    mine = next(f for f in listed if f["name"] == name)
    assert len(mine["strategies"]) == 2 and mine["tenantOverridable"] is True
    table = cli("flags", "list")
    assert table.returncode == 0 and name in table.stdout and actor in table.stdout
    shown = cli("flags", "show", name)
    assert shown.returncode == 0, shown.stderr
    strategies = json.loads(shown.stdout)["strategies"]  # as stored: defaults filled in
    assert [(s["name"], s["parameters"]) for s in strategies] == [
        ("default", {}),
        ("userWithId", {"userIds": "u1"}),
    ]
    assert json.loads(cli("flags", "show", name, "--json").stdout) == mine

    version = service.latest_version(sync_engine)
    disabled = cli("flags", "disable", name)
    assert disabled.returncode == 0, disabled.stderr
    assert f"flag {name} switched: off" in disabled.stdout
    # Published: a process building its copy now has the flag off, strategies kept.
    assert service.latest_version(sync_engine) == version + 1
    assert int(sync_redis.hget(service.SNAPSHOT_KEY, "version")) == version + 1
    assert published(sync_redis, name) is False
    stored = service.get_flag(sync_engine, name)
    assert stored["definition"]["strategies"] == strategies and stored["tenant_overridable"] is True
    again = cli("flags", "disable", name)
    assert again.returncode == 0 and "already off" in again.stdout
    assert service.latest_version(sync_engine) == version + 1
    enabled = cli("flags", "enable", name, "--json")
    assert enabled.returncode == 0 and json.loads(enabled.stdout)["enabled"] is True
    assert published(sync_redis, name) is True

    entries = json.loads(cli("flags", "history", name, "--json").stdout)
    assert [e["action"] for e in entries] == ["update", "update", "update", "create"]
    assert [e["after"]["definition"]["enabled"] for e in entries] == [True, False, True, True]
    assert {e["actor"] for e in entries} == {actor}
    assert len(json.loads(cli("flags", "history", name, "--limit", "1", "--json").stdout)) == 1
    assert actor in cli("flags", "history", name).stdout

    deleted = cli("flags", "delete", name, "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert published(sync_redis, name) is False
    assert cli("flags", "show", name).returncode == 1
    assert json.loads(cli("flags", "history", name, "--json").stdout)[0]["action"] == "delete"


def test_unknown_flag_exits_1_without_a_traceback() -> None:
    name = flag_name()
    for args in (
        ["show", name],
        ["enable", name],
        ["disable", name],
        ["delete", name, "--yes"],
        ["history", name],
    ):
        result = cli("flags", *args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert "no flag" in result.stderr.lower() and "Traceback" not in result.stderr, args


def test_refused_definitions_exit_2_with_a_readable_message(tmp_path: Path) -> None:
    name = flag_name()
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{")
    result = cli("flags", "put", name, str(bad_json))
    assert result.returncode == 2 and "is not JSON" in result.stderr
    result = cli("flags", "put", name, str(tmp_path / "missing.json"))
    assert result.returncode == 2 and "cannot read" in result.stderr

    like = {"contextName": "userId", "operator": "LIKE", "values": ["a"]}
    for body, says in (
        (
            {
                "name": name,
                "enabled": True,
                "strategies": [{"name": "default", "constraints": [like]}],
            },
            "strategies.0.constraints.0",
        ),
        ({"name": name, "enabled": "yes"}, "enabled"),
        ({"name": name, "enabled": True, "strategies": [{"name": "mystery"}]}, "mystery"),
        ({"name": name, "enabled": True, "tenantOverridable": "yes"}, "tenantOverridable"),
        ({"name": "another-name", "enabled": True}, "another-name"),
        (
            {
                "name": name,
                "enabled": True,
                "strategies": [{"name": "default", "segments": [987654]}],
            },
            "987654",
        ),
        ([], "body"),
    ):
        result = cli("flags", "put", name, "-", stdin=json.dumps(body))
        assert result.returncode == 2, (body, result.stderr)
        assert says in result.stderr and "Traceback" not in result.stderr, (body, result.stderr)
    assert cli("flags", "show", name).returncode == 1  # nothing was stored


def test_plans_list_show_and_replace(plans_restored: None) -> None:
    listed = cli("limits", "plans", "--json")
    assert listed.returncode == 0, listed.stderr
    by_name = {p["name"]: p for p in json.loads(listed.stdout)}
    assert set(by_name) == {"free", "pro", "enterprise"}
    assert "enterprise" in cli("limits", "plans").stdout
    assert json.loads(cli("limits", "plan", "pro", "--json").stdout) == by_name["pro"]

    body = {k: v for k, v in by_name["pro"].items() if k not in ("name", "updated_at")}
    changed = cli(
        "limits",
        "set-plan",
        "pro",
        "-",
        "--json",
        stdin=json.dumps({**body, "requests_per_minute": 4321, "concurrent_requests": 9}),
    )
    assert changed.returncode == 0, changed.stderr
    assert json.loads(changed.stdout)["requests_per_minute"] == 4321
    shown = cli("limits", "plan", "pro")
    assert "4321" in shown.stdout and "9" in shown.stdout

    missing = cli("limits", "plan", "gold")
    assert missing.returncode == 1 and "No plan 'gold'" in missing.stderr
    unknown = cli("limits", "set-plan", "gold", "-", stdin=json.dumps(body))
    assert unknown.returncode == 1 and "No plan" in unknown.stderr
    for bad in (
        {**body, "requests_per_minute": 0},
        {**body, "burst": 5},
        {**body, "shadow": ["all"]},
    ):
        refused = cli("limits", "set-plan", "free", "-", stdin=json.dumps(bad))
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert json.loads(cli("limits", "plan", "free", "--json").stdout) == by_name["free"]


def test_tenant_overrides_set_keep_clear_and_stay_with_their_tenant(make_tenant: Any) -> None:
    first, second = make_tenant("lim"), make_tenant("lim")
    second_before = json.loads(cli("limits", "show", second.slug, "--json").stdout)
    plan = json.loads(cli("limits", "plan", "free", "--json").stdout)

    set_ = cli(
        "limits",
        "set",
        first.slug,
        "--requests-per-minute",
        "50",
        "--concurrent-requests",
        "3",
        "--json",
    )
    assert set_.returncode == 0, set_.stderr
    limits = json.loads(set_.stdout)
    assert limits["overrides"]["requests_per_minute"] == 50
    assert limits["effective"]["requests_per_minute"] == 50
    assert limits["effective"]["concurrent_requests"] == 3
    kept = json.loads(
        cli("limits", "set", first.slug, "--user-requests-per-minute", "7", "--json").stdout
    )
    assert kept["overrides"]["requests_per_minute"] == 50  # left out: kept
    assert kept["effective"]["user_requests_per_minute"] == 7
    cleared = cli("limits", "set", first.slug, "--clear", "requests-per-minute", "--json")
    assert cleared.returncode == 0, cleared.stderr
    after = json.loads(cleared.stdout)
    assert after["overrides"]["requests_per_minute"] is None
    assert after["effective"]["requests_per_minute"] == plan["requests_per_minute"]
    assert after["overrides"]["user_requests_per_minute"] == 7
    assert after["overrides"]["concurrent_requests"] == 3
    assert json.loads(cli("limits", "show", first.slug, "--json").stdout) == after
    table = cli("limits", "show", first.slug)
    assert table.returncode == 0 and "user-requests-per-minute" in table.stdout

    assert json.loads(cli("limits", "show", second.slug, "--json").stdout) == second_before

    for args in (
        ["--requests-per-minute", "0"],
        ["--concurrent-requests", "2000000"],
        ["--clear", "burst"],
        ["--requests-per-minute", "5", "--clear", "requests-per-minute"],
        [],
    ):
        refused = cli("limits", "set", first.slug, *args)
        assert refused.returncode == 2, (args, refused.stderr)
        assert "Traceback" not in refused.stderr
    assert json.loads(cli("limits", "show", first.slug, "--json").stdout) == after

    slug = f"nobody-{uuid.uuid4().hex[:8]}"
    for args in (["show", slug], ["set", slug, "--requests-per-minute", "5"]):
        missing = cli("limits", *args)
        assert missing.returncode == 1 and f"No tenant '{slug}'" in missing.stderr, args


def test_limit_changes_show_in_the_history_as_made_by_the_cli_user(
    plans_restored: None, make_tenant: Any
) -> None:
    actor = f"cli:{getpass.getuser()}"
    tenant = make_tenant("lim")
    assert cli("limits", "set", tenant.slug, "--requests-per-minute", "50").returncode == 0
    assert cli("limits", "set", tenant.slug, "--clear", "requests-per-minute").returncode == 0
    entries = json.loads(cli("limits", "history", tenant.slug, "--json").stdout)
    assert [e["actor"] for e in entries] == [actor, actor]
    assert [(e["before"] or {}).get("requests_per_minute") for e in entries] == [50, None]
    assert [e["after"]["requests_per_minute"] for e in entries] == [None, 50]
    assert (
        len(json.loads(cli("limits", "history", tenant.slug, "--limit", "1", "--json").stdout)) == 1
    )
    table = cli("limits", "history", tenant.slug)
    assert table.returncode == 0 and actor in table.stdout
    assert "requests_per_minute: 50 -> -" in table.stdout

    plan = json.loads(cli("limits", "plan", "free", "--json").stdout)
    body = {k: v for k, v in plan.items() if k not in ("name", "updated_at")}
    changed = cli(
        "limits", "set-plan", "free", "-", stdin=json.dumps({**body, "concurrent_requests": 77})
    )
    assert changed.returncode == 0, changed.stderr
    newest = json.loads(cli("limits", "plan-history", "free", "--json").stdout)[0]
    assert newest["actor"] == actor and newest["after"]["concurrent_requests"] == 77
    assert newest["before"]["concurrent_requests"] == body["concurrent_requests"]
    shown = cli("limits", "plan-history", "free", "--limit", "1")
    assert shown.returncode == 0 and actor in shown.stdout

    missing = cli("limits", "plan-history", "gold")
    assert missing.returncode == 1 and "No plan 'gold'" in missing.stderr
    slug = f"nobody-{uuid.uuid4().hex[:8]}"
    missing = cli("limits", "history", slug)
    assert missing.returncode == 1 and f"No tenant '{slug}'" in missing.stderr
