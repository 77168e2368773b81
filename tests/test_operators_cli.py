"""`tenantflow operators ...` run as a user runs it, and the tokens it makes used over HTTP."""

from __future__ import annotations

import json
import subprocess
import uuid

from typer.testing import CliRunner

from backend.cli import app as cli_app
from tests.conftest import assert_problem
from tests.operators_helpers import OPERATOR_PASSWORD, bearer
from tests.test_cli import cli

TENANTS = "/platform/v1/tenants"


def _email() -> str:
    return f"cli-{uuid.uuid4().hex[:10]}@ops.example.com"


def _create(
    email: str, password: str = OPERATOR_PASSWORD, *extra: str
) -> subprocess.CompletedProcess[str]:
    return cli(
        "operators", "create", "--email", email, "--password-stdin", *extra, stdin=password + "\n"
    )


async def test_operator_and_token_lifecycle(client, sync_engine):
    email = _email()
    created = _create(email.upper(), OPERATOR_PASSWORD, "--name", "Ops One", "--json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["email"] == email  # stored lowercased
    again = _create(email)
    assert again.returncode == 2 and "already exists" in again.stderr

    listed = json.loads(cli("operators", "list", "--json").stdout)
    mine = next(o for o in listed if o["email"] == email)
    assert mine["is_active"] and mine["name"] == "Ops One"
    assert email in cli("operators", "list").stdout

    made = cli(
        "operators", "token", "create", "--email", email, "--name", "ci", "--expires-in-days", "30"
    )
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("tfo_") and "not shown again" in made.stderr
    assert (await client.get(TENANTS, headers=bearer(secret))).status_code == 200

    tokens = json.loads(cli("operators", "token", "list", "--email", email, "--json").stdout)
    assert len(tokens) == 1 and tokens[0]["name"] == "ci" and tokens[0]["expires_at"]
    assert secret.startswith(tokens[0]["prefix"])
    every = cli("operators", "token", "list")
    assert every.returncode == 0 and secret not in every.stdout
    assert secret not in cli("operators", "token", "list", "--json").stdout

    revoked = cli("operators", "token", "revoke", tokens[0]["id"])
    assert revoked.returncode == 0, revoked.stderr
    assert_problem(await client.get(TENANTS, headers=bearer(secret)), 401)
    assert cli("operators", "token", "revoke", tokens[0]["id"]).returncode == 0  # idempotent

    second = cli("operators", "token", "create", "--email", email, "--name", "other").stdout.strip()
    login = await client.post(
        "/platform/v1/auth/login", json={"email": email, "password": OPERATOR_PASSWORD}
    )
    assert login.status_code == 200, login.text
    gone = cli("operators", "deactivate", "--email", email)
    assert gone.returncode == 0, gone.stderr
    for token in (second, login.json()["access_token"]):
        assert_problem(await client.get(TENANTS, headers=bearer(token)), 401)
    refused = cli("operators", "token", "create", "--email", email, "--name", "late")
    assert refused.returncode == 2 and "deactivated" in refused.stderr


def test_bad_input_exits_2_with_a_clear_message(sync_engine):
    short = _create(_email(), "short")
    assert short.returncode == 2 and "password" in short.stderr and "short" not in short.stdout
    assert "10 characters" in short.stderr
    long = _create(_email(), "x" * 129)
    assert long.returncode == 2 and "password" in long.stderr
    bad_email = _create("not-an-email")
    assert bad_email.returncode == 2 and "email" in bad_email.stderr
    for args in (
        ("operators", "deactivate", "--email", _email()),
        ("operators", "token", "create", "--email", _email(), "--name", "x"),
        ("operators", "token", "list", "--email", _email()),
        ("operators", "token", "revoke", str(uuid.uuid4())),
        ("operators", "token", "revoke", "not-a-uuid"),
    ):
        result = cli(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "error" in result.stderr
    blank = cli("operators", "token", "create", "--email", _email(), "--name", "  ")
    assert blank.returncode == 2 and "--name" in blank.stderr
    days = cli(
        "operators", "token", "create", "--email", _email(), "--name", "x", "--expires-in-days", "0"
    )
    assert days.returncode == 2
    assert cli("operators", "create").returncode == 2  # --email is required


def test_password_prompt_is_hidden_and_confirmed(sync_engine):
    email = _email()
    typed = f"{OPERATOR_PASSWORD}\nsomething-else\n{OPERATOR_PASSWORD}\n{OPERATOR_PASSWORD}\n"
    result = CliRunner().invoke(cli_app, ["operators", "create", "--email", email], input=typed)
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output.lower() and f"operator {email} created" in result.output
    assert OPERATOR_PASSWORD not in result.output


def test_help_documents_every_operator_command():
    for args in (
        ["operators"],
        ["operators", "create"],
        ["operators", "list"],
        ["operators", "deactivate"],
        ["operators", "token"],
        ["operators", "token", "create"],
        ["operators", "token", "list"],
        ["operators", "token", "revoke"],
    ):
        result = cli(*args, "--help")
        assert result.returncode == 0 and "Usage" in result.stdout, args
        assert len(result.stdout.splitlines()) > 4, args
