"""``authmw consents``: list and withdraw what users allowed apps, through click's CliRunner."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from authmw import Authenticator
from authmw.cli import main
from authmw.tokens import IssuedTokens
from tests.core.test_cli import CLEAN_ENV, PASSWORD, Cli, is_aware_iso

CONSENT_FIELDS = {"user", "client_id", "app", "scopes", "granted_at", "updated_at"}
CB = "https://partner.example/cb"
READ = frozenset({"appointments:read"})
BOTH = frozenset({"appointments:read", "reports:read"})


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'authmw.db'}"


@pytest.fixture
def cli(db_url: str) -> Cli:
    runner = Cli(db_url)
    runner.ok("init")
    return runner


@pytest.fixture
def open_auth(cli: Cli, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Authenticator]:
    """The database as the CLI sees it (its signing key too): to set up consents and check."""
    for name in CLEAN_ENV:
        monkeypatch.delenv(name, raising=False)
    auth = Authenticator.from_env(db_url)
    yield auth
    auth.close()


@dataclass
class World:
    partner: str
    calendar: str
    machine: str
    tokens: dict[tuple[str, str], IssuedTokens]


@pytest.fixture
def world(cli: Cli, open_auth: Authenticator) -> World:
    """alice (manager) and bob (employee) consented to two apps and hold delegated tokens."""
    for name, role in (("alice", "manager"), ("bob", "employee")):
        cli.ok("users", "create", name, "--role", role, "--password-stdin", input=PASSWORD)
    apps = {}
    for name in ("Partner", "Calendar"):
        created = cli.json(
            "apps", "create", "--name", name, "--redirect-uri", CB, "--scope", "appointments:read",
            "--scope", "reports:read",
        )  # fmt: skip
        apps[name] = created["client_id"]
    machine = cli.json("clients", "create", "--name", "job", "--team", "blue")["client_id"]
    first = datetime(2030, 1, 7, 9, 30, tzinfo=UTC)
    tokens = {}
    for user, app, scopes in (
        ("alice", apps["Partner"], BOTH),
        ("alice", apps["Calendar"], READ),
        ("bob", apps["Partner"], READ),
    ):
        open_auth.store.save_consent(user, app, scopes, first)
        tokens[user, app] = open_auth.tokens.issue_for_user(
            open_auth.users.get(user), open_auth.clients.get(app), scopes, kind="delegated"
        )
    # A later consent to more scopes moves updated_at, never granted_at.
    open_auth.store.save_consent("bob", apps["Partner"], READ, first + timedelta(days=1))
    return World(apps["Partner"], apps["Calendar"], machine, tokens)


def live(auth: Authenticator, issued: IssuedTokens) -> tuple[bool, bool]:
    """Whether the access token and the refresh token are still active (authoritative)."""
    assert issued.refresh_token is not None
    return (
        auth.tokens.introspect(issued.access_token)["active"],
        auth.tokens.introspect(issued.refresh_token)["active"],
    )


def test_help_lists_the_consents_commands() -> None:
    result = CliRunner().invoke(main, ["--help"], env=CLEAN_ENV)
    assert result.exit_code == 0
    assert "consents" in result.output
    sub = CliRunner().invoke(main, ["consents", "--help"], env=CLEAN_ENV)
    assert sub.exit_code == 0
    assert "list" in sub.output
    assert "revoke" in sub.output


def test_list_json(cli: Cli, world: World) -> None:
    listed = cli.json("consents", "list")
    assert [(c["user"], c["client_id"]) for c in listed] == sorted(
        [("alice", world.partner), ("alice", world.calendar), ("bob", world.partner)]
    )
    for consent in listed:
        assert set(consent) == CONSENT_FIELDS
        assert is_aware_iso(consent["granted_at"])
        assert is_aware_iso(consent["updated_at"])
    alice_partner = next(c for c in listed if c["user"] == "alice" and c["app"] == "Partner")
    assert alice_partner["scopes"] == ["appointments:read", "reports:read"]
    assert alice_partner["granted_at"] == alice_partner["updated_at"] == "2030-01-07T09:30:00+00:00"
    bob = next(c for c in listed if c["user"] == "bob")
    assert bob["granted_at"] == "2030-01-07T09:30:00+00:00"
    assert bob["updated_at"] == "2030-01-08T09:30:00+00:00"


def test_list_filters(cli: Cli, world: World) -> None:
    assert {c["client_id"] for c in cli.json("consents", "list", "--user", "alice")} == {
        world.partner,
        world.calendar,
    }
    by_app = cli.json("consents", "list", "--client", world.partner)
    assert [c["user"] for c in by_app] == ["alice", "bob"]
    both = cli.json("consents", "list", "--user", "bob", "--client", world.partner)
    assert [(c["user"], c["scopes"]) for c in both] == [("bob", ["appointments:read"])]
    assert cli.json("consents", "list", "--user", "nobody") == []


def test_list_table(cli: Cli, world: World) -> None:
    out = cli.ok("consents", "list").output.splitlines()
    assert out[0].split() == ["USER", "APP", "ID", "APP", "SCOPES", "GRANTED", "UPDATED"]
    assert len(out) == 4
    row = next(line for line in out if line.startswith("alice") and world.partner in line)
    assert "Partner" in row
    assert "appointments:read,reports:read" in row
    assert "2030-01-07 09:30 UTC" in row


def test_list_empty(cli: Cli) -> None:
    assert cli.ok("consents", "list").output.strip() == "No consents."
    assert cli.json("consents", "list") == []


def test_revoke_ends_the_apps_tokens_for_that_user_only(
    cli: Cli, world: World, open_auth: Authenticator
) -> None:
    for issued in world.tokens.values():
        assert live(open_auth, issued) == (True, True)

    out = cli.ok("consents", "revoke", "alice", world.partner).output
    assert f"Withdrew the consent of alice to app {world.partner} 'Partner'" in out

    assert open_auth.store.get_consent("alice", world.partner) is None
    assert live(open_auth, world.tokens["alice", world.partner]) == (False, False)
    # Another app of alice's and another user of the app are untouched.
    assert live(open_auth, world.tokens["alice", world.calendar]) == (True, True)
    assert live(open_auth, world.tokens["bob", world.partner]) == (True, True)
    assert {(c["user"], c["client_id"]) for c in cli.json("consents", "list")} == {
        ("alice", world.calendar),
        ("bob", world.partner),
    }


def test_revoke_json(cli: Cli, world: World) -> None:
    out = cli.json("consents", "revoke", "bob", world.partner)
    assert set(out) == CONSENT_FIELDS | {"revoked"}
    assert out["revoked"] is True
    assert out["user"] == "bob"
    assert out["client_id"] == world.partner
    assert out["app"] == "Partner"
    assert out["scopes"] == ["appointments:read"]


def test_revoke_twice_says_there_is_no_consent(cli: Cli, world: World) -> None:
    cli.ok("consents", "revoke", "alice", world.partner)
    message = cli.fails("consents", "revoke", "alice", world.partner, code=1)
    assert message == f"Error: alice has not given app {world.partner} consent"


def test_revoke_refusals_change_nothing(
    cli: Cli, world: World, open_auth: Authenticator, db_url: str
) -> None:
    assert "no user" in cli.fails("consents", "revoke", "carol", world.partner).lower()
    assert "no client with id" in cli.fails("consents", "revoke", "alice", "nosuchapp123")
    wrong_kind = cli.fails("consents", "revoke", "alice", world.machine)
    assert "not an app" in wrong_kind
    # No `authmw clients` command withdraws a consent: say why instead of pointing there.
    assert "no user consents to it" in wrong_kind
    assert "authmw clients" not in wrong_kind
    # No consent from bob to Calendar: refused before anything is revoked.
    extra = open_auth.tokens.issue_for_user(
        open_auth.users.get("bob"), open_auth.clients.get(world.calendar), READ, kind="delegated"
    )
    message = cli.fails("consents", "revoke", "bob", world.calendar)
    assert message == f"Error: bob has not given app {world.calendar} consent"
    assert live(open_auth, extra) == (True, True)
    assert len(cli.json("consents", "list")) == 3
    for issued in world.tokens.values():
        assert live(open_auth, issued) == (True, True)


def test_revoke_needs_both_arguments(cli: Cli) -> None:
    result = cli.run("consents", "revoke", "alice")
    assert result.exit_code == 2
    assert "Missing argument" in result.output


def test_no_secret_in_any_output(cli: Cli, world: World) -> None:
    cli.ok("consents", "list")
    cli.json("consents", "list")
    cli.ok("consents", "revoke", "alice", world.calendar)
    everything = cli.all_output()
    assert PASSWORD not in everything
    for issued in world.tokens.values():
        assert issued.access_token not in everything
