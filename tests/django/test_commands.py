"""``manage.py authmw``: the CLI, on the database the settings name."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from authmw import Authenticator
from authmw.store.sql import SQLStore
from authmw_django.management.commands.authmw import Command
from tests.django.test_middleware import tiny_policy


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    database = f"sqlite:///{tmp_path / 'cmd.db'}"
    setup = Authenticator.from_url(database)
    setup.store.create_schema()
    setup.users.create("admin", password="admin-password", roles=["admin"])
    setup.close()
    with override_settings(AUTHMW={"DATABASE_URL": database}):
        yield database


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("authmw", *args, stdout=out)
    return out.getvalue()


def test_creates_and_lists_keys_on_the_configured_database(url: str) -> None:
    created = json.loads(run("keys", "create", "--name", "ci", "--owner", "admin", "--json"))
    assert created["key"]
    listed = json.loads(run("keys", "list", "--json"))
    assert [key["id"] for key in listed] == [created["id"]]
    # The middleware's authenticator reads the same database: the new key works.
    check = Authenticator.from_url(url)
    try:
        principal = check.authenticate_headers({"X-API-Key": created["key"]})
        assert principal is not None
        assert principal.subject == "admin"
    finally:
        check.close()


def test_cli_errors_become_command_errors(url: str) -> None:
    with pytest.raises(CommandError, match="unknown role"):
        run("users", "set-roles", "admin", "--role", "emperor")


@pytest.mark.parametrize("sep", [":", "."])  # the CLI's AUTHMW_POLICY takes only the colon
def test_policy_setting_reaches_the_cli(url: str, sep: str) -> None:
    options = {"DATABASE_URL": url, "POLICY": f"tests.django.test_middleware{sep}tiny_policy"}
    with override_settings(AUTHMW=options):
        run("users", "set-roles", "admin", "--role", "reader")
    with pytest.raises(CommandError, match="unknown role"):
        run("users", "set-roles", "admin", "--role", "reader")


@pytest.mark.parametrize("given_as", ["POLICY", "AUTHENTICATOR"])
def test_a_policy_given_as_an_object_reaches_the_cli(url: str, given_as: str) -> None:
    # No import path to hand on: the command passes the configured policy itself.
    auth = Authenticator.from_url(url, policy=tiny_policy())
    try:
        options: dict[str, object] = (
            {"DATABASE_URL": url, "POLICY": tiny_policy()}
            if given_as == "POLICY"
            else {"AUTHENTICATOR": auth}
        )
        with override_settings(AUTHMW=options):
            run("users", "set-roles", "admin", "--role", "reader")
            with pytest.raises(SystemExit) as ok:
                Command().run_from_argv(
                    ["manage.py", "authmw", "users", "set-roles", "admin", "--role", "reader"]
                )
            assert ok.value.code == 0
            with pytest.raises(CommandError, match="unknown role"):
                run("users", "set-roles", "admin", "--role", "manager")
    finally:
        auth.close()


def test_manage_py_hands_argv_to_click(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ok:
        Command().run_from_argv(
            ["manage.py", "authmw", "--settings", "x.settings", "users", "list", "--json"]
        )
    assert ok.value.code == 0
    assert [user["username"] for user in json.loads(capsys.readouterr().out)] == ["admin"]
    with pytest.raises(SystemExit) as failed:
        Command().run_from_argv(["manage.py", "authmw", "keys", "revoke", "no-such-key"])
    assert failed.value.code != 0
    assert "Error" in capsys.readouterr().err


def test_an_authenticator_on_a_file_database_is_found(url: str) -> None:
    auth = Authenticator.from_url(url)
    try:
        with override_settings(AUTHMW={"AUTHENTICATOR": auth}):
            assert "admin" in run("users", "list")
    finally:
        auth.close()


def test_an_in_memory_authenticator_is_refused(auth: Authenticator) -> None:
    with pytest.raises(CommandError, match="DATABASE_URL"):
        run("users", "list")


def test_an_explicit_db_wins(url: str, tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path / 'other.db'}"
    store = SQLStore(other)
    store.create_schema()
    store.close()
    assert json.loads(run("--db", other, "users", "list", "--json")) == []
