"""``authmw clients`` and ``authmw apps``, driven in-process through click's CliRunner."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from authmw import Authenticator
from authmw.cli import main
from tests.core.test_cli import CLEAN_ENV, Cli, is_aware_iso

SECRET_RE = re.compile(r"\Aamcs_[A-Za-z0-9]{12}_[A-Za-z0-9]{38}\Z")
CLIENT_FIELDS = {
    "client_id",
    "name",
    "kind",
    "team",
    "scopes",
    "roles",
    "disabled",
    "reenabled_at",
    "status",
    "previous_secret_expires_at",
    "created_at",
}
APP_FIELDS = {
    "client_id",
    "name",
    "kind",
    "redirect_uris",
    "scopes",
    "public",
    "first_party",
    "disabled",
    "reenabled_at",
    "status",
    "previous_secret_expires_at",
    "created_at",
}
CB = "https://cal.example/cb"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'authmw.db'}"


@pytest.fixture
def cli(db_url: str) -> Cli:
    """A CLI on an initialised database."""
    runner = Cli(db_url)
    runner.ok("init")
    return runner


@pytest.fixture
def open_auth(db_url: str) -> Iterator[Authenticator]:
    """The database as the library sees it, to check what the CLI did."""
    auth = Authenticator.from_url(db_url)
    yield auth
    auth.close()


def create_client(cli: Cli, *args: str) -> Any:
    return cli.json("clients", "create", "--name", "billing", "--team", "blue", *args)


def create_app(cli: Cli, *args: str) -> Any:
    return cli.json("apps", "create", "--name", "calendar", "--redirect-uri", CB, *args)


def test_help_lists_the_new_groups(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--help"], env=CLEAN_ENV)
    assert result.exit_code == 0
    assert "clients" in result.output
    assert "apps" in result.output
    for group in ("clients", "apps"):
        sub = CliRunner().invoke(main, [group, "--help"], env=CLEAN_ENV)
        assert sub.exit_code == 0
        for command in ("create", "list", "disable", "enable", "rotate-secret"):
            assert command in sub.output


# -- clients ------------------------------------------------------------------------------


def test_clients_create(cli: Cli, open_auth: Authenticator) -> None:
    out = create_client(
        cli, "--scope", "reports:read", "--scope", "appointments:read", "--role", "employee"
    )
    assert set(out) == CLIENT_FIELDS | {"client_secret"}
    assert list(out)[:2] == ["client_id", "client_secret"]
    assert SECRET_RE.match(out["client_secret"])
    assert out["client_secret"].startswith(f"amcs_{out['client_id']}_")
    assert out["name"] == "billing"
    assert out["kind"] == "client"
    assert out["team"] == "blue"
    assert out["scopes"] == ["appointments:read", "reports:read"]
    assert out["roles"] == ["employee"]
    assert out["disabled"] is False
    assert out["status"] == "active"
    assert out["previous_secret_expires_at"] is None
    assert is_aware_iso(out["created_at"])
    client = open_auth.clients.authenticate(out["client_id"], out["client_secret"])
    assert client is not None
    assert client.team == "blue"
    assert client.roles == {"employee"}


def test_clients_create_human_output(cli: Cli, open_auth: Authenticator) -> None:
    human = cli.ok("clients", "create", "--name", "sync", "--team", "blue").output
    assert "will not be shown again" in human
    [secret] = [w for w in human.split() if w.startswith("amcs_")]
    [client] = open_auth.clients.list()
    assert f"client_id:     {client.id}" in human
    assert "roles: none" in human
    assert open_auth.clients.authenticate(client.id, secret) == client


@pytest.mark.parametrize(
    ("args", "expected", "code"),
    [
        (["--name", "k", "--team", "blue", "--scope", "root"], "unknown scope(s): root", 2),
        (["--name", "k", "--team", "blue", "--role", "boss"], "unknown role(s): boss", 2),
        (["--name", "k"], "Missing option '--team'", 2),
        (["--team", "blue"], "Missing option '--name'", 2),
        (["--name", "k", "--team", "no spaces"], "team name", 1),
        (["--name", "", "--team", "blue"], "client name", 1),
    ],
)
def test_clients_create_bad_input(
    cli: Cli, open_auth: Authenticator, args: list[str], expected: str, code: int
) -> None:
    assert expected in cli.fails("clients", "create", *args, code=code)
    assert open_auth.clients.list() == []


def test_clients_list(cli: Cli) -> None:
    assert cli.ok("clients", "list").output.strip() == "No clients."
    assert cli.json("clients", "list") == []
    first = create_client(cli, "--scope", "reports:read")
    second = cli.json("clients", "create", "--name", "analytics", "--team", "green")
    app = create_app(cli)
    lines = cli.ok("clients", "list").output.splitlines()
    assert lines[0].split() == ["ID", "NAME", "TEAM", "SCOPES", "ROLES", "STATUS", "CREATED"]
    assert len(lines) == 3
    offset = lines[0].index("STATUS")
    assert all(line[offset:].startswith("active") for line in lines[1:])
    listed = cli.json("clients", "list")
    assert [c["client_id"] for c in listed] == [second["client_id"], first["client_id"]]
    assert all(set(c) == CLIENT_FIELDS for c in listed)  # never a secret
    assert app["client_id"] not in cli.ok("clients", "list").output


def test_clients_disable_and_enable(cli: Cli, open_auth: Authenticator) -> None:
    created = create_client(cli)
    client_id, secret = created["client_id"], created["client_secret"]
    out = cli.json("clients", "disable", client_id)
    assert set(out) == CLIENT_FIELDS
    assert (out["disabled"], out["status"]) == (True, "disabled")
    assert out["reenabled_at"] is None
    before = datetime.now(UTC)
    assert open_auth.clients.authenticate(client_id, secret) is None
    assert "it can no longer authenticate" in cli.ok("clients", "disable", client_id).output
    enabled = cli.json("clients", "enable", client_id)
    assert enabled["disabled"] is False
    # Says when: what it was issued before then stays dead.
    reenabled_at = datetime.fromisoformat(enabled["reenabled_at"])
    assert before <= reenabled_at <= datetime.now(UTC)
    assert open_auth.clients.authenticate(client_id, secret) is not None
    assert "was not disabled: no change" in cli.ok("clients", "enable", client_id).output
    cli.ok("clients", "disable", client_id)
    assert "Enabled client" in cli.ok("clients", "enable", client_id).output
    assert "no client with id 'nope'" in cli.fails("clients", "disable", "nope")
    assert "no client with id 'nope'" in cli.fails("clients", "enable", "nope")


def test_clients_rotate_secret(cli: Cli, open_auth: Authenticator) -> None:
    created = create_client(cli)
    client_id = created["client_id"]
    out = cli.json("clients", "rotate-secret", client_id)
    assert set(out) == CLIENT_FIELDS | {"client_secret"}
    assert out["client_id"] == client_id
    assert out["client_secret"] != created["client_secret"]
    assert out["client_secret"].startswith(f"amcs_{client_id}_")
    assert out["previous_secret_expires_at"] is None
    assert open_auth.clients.authenticate(client_id, created["client_secret"]) is None
    assert open_auth.clients.authenticate(client_id, out["client_secret"]) is not None
    assert "no client with id 'nope'" in cli.fails("clients", "rotate-secret", "nope")


def test_clients_rotate_secret_with_grace(cli: Cli, open_auth: Authenticator) -> None:
    created = create_client(cli)
    client_id = created["client_id"]
    human = cli.ok("clients", "rotate-secret", client_id, "--grace", "1h").output
    assert "the old secret works until" in human
    assert "will not be shown again" in human
    [new] = [w for w in human.split() if w.startswith("amcs_")]
    assert open_auth.clients.authenticate(client_id, created["client_secret"]) is not None
    assert open_auth.clients.authenticate(client_id, new) is not None
    [listed] = cli.json("clients", "list")
    assert listed["status"] == "rotating"
    until = datetime.fromisoformat(listed["previous_secret_expires_at"])
    started = datetime.fromisoformat(listed["created_at"])
    assert timedelta(minutes=59) < until - started <= timedelta(hours=1, minutes=1)


@pytest.mark.parametrize("grace", ["0", "1x", "-1h", "1h30"])
def test_rotate_secret_bad_grace(cli: Cli, open_auth: Authenticator, grace: str) -> None:
    created = create_client(cli)
    message = cli.fails("clients", "rotate-secret", created["client_id"], "--grace", grace, code=2)
    assert "'--grace'" in message
    assert open_auth.clients.authenticate(created["client_id"], created["client_secret"])


# -- apps ---------------------------------------------------------------------------------


def test_apps_create_confidential(cli: Cli, open_auth: Authenticator) -> None:
    out = cli.json(
        "apps",
        "create",
        "--name",
        "Calendar",
        "--redirect-uri",
        "https://b.example/cb",
        "--redirect-uri",
        "com.example.cal:/cb",
        "--redirect-uri",
        "http://[::1]:8400/cb",
        "--scope",
        "appointments:read",
    )
    assert set(out) == APP_FIELDS | {"client_secret"}
    assert list(out)[:2] == ["client_id", "client_secret"]
    assert SECRET_RE.match(out["client_secret"])
    assert out["kind"] == "app"
    assert out["redirect_uris"] == [
        "https://b.example/cb",
        "com.example.cal:/cb",
        "http://[::1]:8400/cb",
    ]
    assert out["scopes"] == ["appointments:read"]
    assert (out["public"], out["first_party"]) == (False, False)
    app = open_auth.clients.authenticate(out["client_id"], out["client_secret"])
    assert app is not None
    assert app.redirect_uris == tuple(out["redirect_uris"])


def test_apps_create_public_first_party(cli: Cli, open_auth: Authenticator) -> None:
    out = create_app(cli, "--public", "--first-party")
    assert set(out) == APP_FIELDS - {"previous_secret_expires_at"}
    assert "client_secret" not in out
    assert (out["public"], out["first_party"]) == (True, True)
    assert open_auth.clients.get(out["client_id"]).secret_hash is None
    human = cli.ok(
        "apps", "create", "--name", "mobile", "--redirect-uri", "com.example.m:/cb", "--public"
    ).output
    assert "public, PKCE only" in human
    assert "amcs_" not in human
    assert "client_secret" not in human


def test_an_app_without_scopes_is_shown_as_asking_for_any(cli: Cli) -> None:
    # Such an app may ask for every scope (the user consents, and the user's role
    # bounds the token): "none" would read as the opposite.
    human = cli.ok("apps", "create", "--name", "open", "--redirect-uri", CB).output
    assert "scopes: any (none registered)" in human
    narrow = cli.ok(
        "apps", "create", "--name", "narrow", "--redirect-uri", CB, "--scope", "reports:read"
    )
    assert "scopes: reports:read;" in narrow.output
    assert create_app(cli)["scopes"] == []  # the JSON stays the registered list
    rows = {line.split()[1]: line.split()[3] for line in cli.ok("apps", "list").output.splitlines()}
    assert (rows["open"], rows["narrow"]) == ("(any)", "reports:read")


def test_a_client_without_scopes_is_shown_as_having_none(cli: Cli) -> None:
    # A machine client gets exactly its registered scopes: for it "none" is true.
    human = cli.ok("clients", "create", "--name", "sync", "--team", "blue").output
    assert "scopes: none" in human
    assert "any" not in human


@pytest.mark.parametrize(
    ("args", "expected", "code"),
    [
        (["--redirect-uri", "http://cal.example/cb"], "loopback", 2),
        (["--redirect-uri", CB + "#frag"], "fragment", 2),
        (["--redirect-uri", "https://u@cal.example/cb"], "userinfo", 2),
        (["--redirect-uri", "myapp:/cb"], "private-use scheme with a dot", 2),
        (["--redirect-uri", "/cb"], "absolute URI", 2),
        (["--redirect-uri", CB, "--redirect-uri", CB], "listed twice", 1),
        (
            [arg for i in range(11) for arg in ("--redirect-uri", f"https://a.example/{i}")],
            "at most 10",
            1,
        ),
        ([], "Missing option '--redirect-uri'", 2),
        (["--redirect-uri", CB, "--scope", "root"], "unknown scope(s): root", 2),
    ],
)
def test_apps_create_bad_input(
    cli: Cli, open_auth: Authenticator, args: list[str], expected: str, code: int
) -> None:
    message = cli.fails("apps", "create", "--name", "x", *args, code=code)
    assert expected in message
    assert open_auth.clients.list() == []


def test_a_refused_redirect_uri_names_the_option(cli: Cli) -> None:
    message = cli.fails("apps", "create", "--name", "x", "--redirect-uri", "http://a.example/")
    assert "Invalid value for '--redirect-uri'" in message
    assert "use https, or http://127.0.0.1" in message


def test_apps_list(cli: Cli) -> None:
    assert cli.ok("apps", "list").output.strip() == "No apps."
    assert cli.json("apps", "list") == []
    confidential = create_app(cli)
    public = cli.json(
        "apps", "create", "--name", "alpha", "--redirect-uri", "com.example.a:/cb", "--public"
    )
    create_client(cli)
    lines = cli.ok("apps", "list").output.splitlines()
    assert lines[0].split()[:3] == ["ID", "NAME", "TYPE"]
    assert len(lines) == 3
    assert "public" in lines[1]
    assert "confidential" in lines[2]
    listed = cli.json("apps", "list")
    assert [a["client_id"] for a in listed] == [public["client_id"], confidential["client_id"]]
    assert set(listed[0]) == APP_FIELDS - {"previous_secret_expires_at"}
    assert set(listed[1]) == APP_FIELDS


def test_apps_disable_enable_rotate(cli: Cli, open_auth: Authenticator) -> None:
    created = create_app(cli)
    app_id = created["client_id"]
    assert cli.json("apps", "disable", app_id)["disabled"] is True
    assert open_auth.clients.authenticate(app_id, created["client_secret"]) is None
    assert cli.json("apps", "enable", app_id)["disabled"] is False
    rotated = cli.json("apps", "rotate-secret", app_id, "--grace", "10m")
    assert set(rotated) == APP_FIELDS | {"client_secret"}
    assert rotated["status"] == "rotating"
    assert open_auth.clients.authenticate(app_id, created["client_secret"]) is not None
    assert open_auth.clients.authenticate(app_id, rotated["client_secret"]) is not None


def test_a_public_app_has_no_secret_to_rotate(cli: Cli) -> None:
    public = create_app(cli, "--public")
    assert "public" in cli.fails("apps", "rotate-secret", public["client_id"])


def test_each_group_refuses_the_other_kind(cli: Cli, open_auth: Authenticator) -> None:
    client = create_client(cli)
    app = create_app(cli)
    message = cli.fails("clients", "disable", app["client_id"])
    assert "is an app, not a client" in message
    assert "authmw apps" in message
    assert "is a client, not an app" in cli.fails("apps", "rotate-secret", client["client_id"])
    assert "is a client, not an app" in cli.fails("apps", "enable", client["client_id"])
    assert not any(c.disabled for c in open_auth.clients.list())
    assert open_auth.clients.authenticate(client["client_id"], client["client_secret"])


def test_no_secret_is_printed_but_by_create_and_rotate(cli: Cli, open_auth: Authenticator) -> None:
    client = create_client(cli)
    app = create_app(cli)
    rotated = cli.json("clients", "rotate-secret", client["client_id"], "--grace", "1h")
    for group, item in (("clients", client), ("apps", app)):
        cli.ok(group, "list")
        cli.json(group, "list")
        cli.ok(group, "disable", item["client_id"])
        cli.json(group, "enable", item["client_id"])
    everything = cli.all_output()
    for secret in (client["client_secret"], app["client_secret"], rotated["client_secret"]):
        assert everything.count(secret) == 1
    for stored in open_auth.clients.list():
        for stored_hash in (stored.secret_hash, stored.previous_secret_hash):
            if stored_hash is not None:
                assert stored_hash.partition("$")[2] not in everything
