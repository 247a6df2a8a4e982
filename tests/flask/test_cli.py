"""``flask authmw``: the ``authmw`` commands, acting on the app's own authenticator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskCliRunner

from authmw import Authenticator, PasswordHasher, Policy, Role
from authmw.store.sql import SQLStore
from authmw_flask import AuthMW, requires_auth


@requires_auth()
def whoami() -> dict[str, Any]:
    return {"subject": g.principal.subject}


def make_app(auth: Authenticator | None = None, **config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(config)
    AuthMW(app, authenticator=auth)
    app.add_url_rule("/whoami", view_func=whoami)
    return app


def run(app: Flask, *args: str, stdin: str | None = None) -> Any:
    """Run ``flask authmw ARGS``; return the parsed JSON it printed."""
    result = app.test_cli_runner().invoke(args=["authmw", *args, "--json"], input=stdin)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_the_group_offers_the_authmw_commands(auth: Authenticator) -> None:
    runner: FlaskCliRunner = make_app(auth).test_cli_runner()
    result = runner.invoke(args=["authmw", "--help"])
    assert result.exit_code == 0
    for command in ("init", "keys", "users"):
        assert f"  {command} " in result.output
    assert "demo" not in result.output  # `flask run` serves a Flask app
    keys_help = runner.invoke(args=["authmw", "keys", "--help"])
    for command in ("create", "list", "revoke", "rotate"):
        assert f"  {command} " in keys_help.output


def test_commands_act_on_the_apps_authenticator(auth: Authenticator) -> None:
    app = make_app(auth)
    created = run(
        app, "users", "create", "alice", "--role", "manager", "--team", "red",
        "--password-stdin", stdin="alice's long password\n",
    )  # fmt: skip
    assert created["username"] == "alice"
    assert auth.users.get("alice").roles == frozenset({"manager"})
    names = [user["username"] for user in run(app, "users", "list")]
    assert names == sorted(["admin", "manager", "employee", "alice"])


def test_a_key_created_on_the_command_line_works_at_once_and_dies_at_once(
    auth: Authenticator,
) -> None:
    # The command and the app share one authenticator (and so one cache): the app
    # is still open after the command, and a revocation needs no cache expiry.
    app = make_app(auth)
    client = app.test_client()
    issued = run(app, "keys", "create", "--name", "ci", "--team", "blue")
    headers = {"X-API-Key": issued["key"]}
    assert client.get("/whoami", headers=headers).json == {"subject": "team:blue"}
    revoked = run(app, "keys", "revoke", issued["id"])
    assert revoked["status"] == "revoked"
    assert client.get("/whoami", headers=headers).status_code == 401


def test_roles_are_checked_against_the_apps_policy() -> None:
    policy = Policy({"reader": Role.of(scopes=["books:read"])})
    auth = Authenticator(
        SQLStore("sqlite://"),
        policy=policy,
        passwords=PasswordHasher(memory_cost=1024, time_cost=1),
    )
    auth.store.create_schema()
    try:
        app = make_app(auth)
        args = ["authmw", "users", "create", "bob", "--password-stdin"]
        ok = app.test_cli_runner().invoke(args=[*args, "--role", "reader"], input="p" * 12)
        assert ok.exit_code == 0, ok.output
        refused = app.test_cli_runner().invoke(args=[*args, "--role", "admin"], input="p" * 12)
        assert refused.exit_code == 2
        assert "unknown role(s): admin (known roles: reader)" in refused.output
    finally:
        auth.close()


def test_errors_are_one_line_not_a_traceback(auth: Authenticator) -> None:
    result = make_app(auth).test_cli_runner().invoke(args=["authmw", "users", "disable", "ghost"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    assert "ghost" in result.output
    assert "Traceback" not in result.output


def test_init_creates_the_database_named_in_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AUTHMW_DATABASE_URL", "AUTHMW_SECRET_KEY", "AUTHMW_POLICY"):
        monkeypatch.delenv(name, raising=False)
    database = tmp_path / "app.db"
    app = make_app(AUTHMW_DATABASE_URL=f"sqlite:///{database}")
    try:
        done = run(app, "init")
        assert done["secret_source"] == "file"
        assert done["secret_created"] is True
        assert Path(done["secret_file"]) == (tmp_path / "app.db.secret").resolve()
        assert (tmp_path / "app.db.secret").is_file()
        assert run(app, "users", "list") == []
    finally:
        app.extensions["authmw"].authenticator.close()
