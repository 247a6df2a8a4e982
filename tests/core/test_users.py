"""authmw.users: accounts, and how a change to one reaches live credentials."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest

from authmw import Authenticator, Conflict, InvalidToken, NotFound, Policy, WeakPassword
from authmw.credentials import Credential
from authmw.store.sql import SQLStore
from tests.conftest import PASSWORD, AuthenticatorFactory
from tests.core.support import CountingStore

NEW_PASSWORD = "a different long password"


def test_create_user(authenticator: Authenticator) -> None:
    created = authenticator.users.create(
        "carol", password=PASSWORD, roles=["manager"], teams=["sales", "ops"]
    )
    assert created.username == "carol"
    assert created.roles == {"manager"}
    assert created.teams == {"sales", "ops"}
    assert not created.disabled
    assert created.credential_epoch == 0
    assert created.created_at.tzinfo is not None
    assert created.password_hash is not None
    assert created.password_hash.startswith("$argon2id$")
    assert PASSWORD not in created.password_hash
    assert PASSWORD not in repr(created)
    assert authenticator.passwords.verify(PASSWORD, created.password_hash)[0]
    assert authenticator.users.get("carol") == created


def test_list_users_by_name(authenticator: Authenticator) -> None:
    assert [u.username for u in authenticator.users.list()] == ["admin", "employee", "manager"]


@pytest.mark.parametrize(
    ("username", "kwargs", "error"),
    [
        ("", {}, ValueError),
        ("has space", {}, ValueError),
        ("caf\u00e9", {}, ValueError),
        ("x" * 151, {}, ValueError),
        ("ok", {"roles": ["ghost"]}, ValueError),
        ("ok", {"roles": []}, ValueError),
        ("ok", {"teams": ["bad team"]}, ValueError),
        ("ok", {"password": "short"}, WeakPassword),
        ("ok", {"password": "x" * 1025}, WeakPassword),
    ],
)
def test_create_validates_its_input(
    authenticator: Authenticator,
    username: str,
    kwargs: dict[str, object],
    error: type[Exception],
) -> None:
    arguments: dict[str, object] = {"password": PASSWORD, "roles": ["employee"], **kwargs}
    with pytest.raises(error):
        authenticator.users.create(username, **arguments)  # type: ignore[arg-type]
    assert len(authenticator.users.list()) == 3


@pytest.mark.parametrize("username", ["a", "alice.smith@example.com", "x_y-z+1", "x" * 150])
def test_create_accepts_usernames(authenticator: Authenticator, username: str) -> None:
    assert authenticator.users.create(username, password=PASSWORD, roles=["employee"])


def test_duplicate_username_is_a_conflict(authenticator: Authenticator) -> None:
    with pytest.raises(Conflict):
        authenticator.users.create("admin", password=PASSWORD, roles=["employee"])


def test_unknown_user_is_not_found(authenticator: Authenticator) -> None:
    with pytest.raises(NotFound):
        authenticator.users.get("ghost")
    changes: list[Callable[[], object]] = [
        lambda: authenticator.users.set_password("ghost", NEW_PASSWORD),
        lambda: authenticator.users.set_roles("ghost", ["admin"]),
        lambda: authenticator.users.set_teams("ghost", ["sales"]),
        lambda: authenticator.users.disable("ghost"),
        lambda: authenticator.users.enable("ghost"),
    ]
    for change in changes:
        with pytest.raises(NotFound):
            change()


# -- changes and the credential epoch ---------------------------------------------------------


def test_set_password_bumps_the_epoch(authenticator: Authenticator) -> None:
    user = authenticator.users.set_password("manager", NEW_PASSWORD)
    assert user.credential_epoch == 1
    stored = authenticator.users.get("manager").password_hash
    assert authenticator.passwords.verify(NEW_PASSWORD, stored) == (True, None)
    assert authenticator.passwords.verify(PASSWORD, stored) == (False, None)


def test_weak_new_password_changes_nothing(authenticator: Authenticator) -> None:
    before = authenticator.users.get("manager")
    with pytest.raises(WeakPassword):
        authenticator.users.set_password("manager", "short")
    assert authenticator.users.get("manager") == before


def test_set_roles_bumps_the_epoch(authenticator: Authenticator) -> None:
    user = authenticator.users.set_roles("employee", ["manager", "employee"])
    assert user.roles == {"manager", "employee"}
    assert user.credential_epoch == 1
    with pytest.raises(ValueError, match="ghost"):
        authenticator.users.set_roles("employee", ["ghost"])
    with pytest.raises(ValueError, match="at least one role"):
        authenticator.users.set_roles("employee", [])
    assert authenticator.users.get("employee").credential_epoch == 1


def test_set_teams_bumps_the_epoch(authenticator: Authenticator) -> None:
    user = authenticator.users.set_teams("employee", ["ops"])
    assert user.teams == {"ops"}
    assert user.credential_epoch == 1
    with pytest.raises(ValueError, match="team"):
        authenticator.users.set_teams("employee", ["no spaces"])


def test_disable_bumps_the_epoch_and_enable_does_not(authenticator: Authenticator) -> None:
    disabled = authenticator.users.disable("manager")
    assert disabled.disabled
    assert disabled.credential_epoch == 1
    enabled = authenticator.users.enable("manager")
    assert not enabled.disabled
    # The tokens that died with the disable stay dead: the epoch does not go back.
    assert enabled.credential_epoch == 1


def test_every_change_bumps_once(authenticator: Authenticator) -> None:
    authenticator.users.set_password("admin", NEW_PASSWORD)
    authenticator.users.set_roles("admin", ["admin"])
    authenticator.users.set_teams("admin", ["ops"])
    authenticator.users.disable("admin")
    assert authenticator.users.get("admin").credential_epoch == 4


# -- changes reach this process's cache at once ----------------------------------------------


Change = Callable[[Authenticator], object]

CHANGES: dict[str, Change] = {
    "set_password": lambda a: a.users.set_password("admin", NEW_PASSWORD),
    "set_roles": lambda a: a.users.set_roles("admin", ["admin", "employee"]),
    "set_teams": lambda a: a.users.set_teams("admin", ["sales"]),
    "disable": lambda a: a.users.disable("admin"),
    "enable": lambda a: a.users.enable("admin"),
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_a_change_drops_the_users_cached_keys_and_only_theirs(
    make_authenticator: AuthenticatorFactory, change: Change
) -> None:
    counting = CountingStore(SQLStore("sqlite://"))
    auth = make_authenticator(counting)
    mine = Credential("apikey", auth.keys.create(name="mine", owner="admin").key)
    team = Credential("apikey", auth.keys.create(name="team", team="sales").key)
    auth.authenticate(mine)
    auth.authenticate(team)
    assert len(auth.cache) == 2
    change(auth)
    # The admin's key is no longer served from memory; the team key still is.
    assert len(auth.cache) == 1
    lookups = counting.count("find_key")
    # After "disable" the key is refused: exactly what dropping it from the cache is for.
    with contextlib.suppress(InvalidToken):
        auth.authenticate(mine)
    assert counting.count("find_key") == lookups + 1
    auth.authenticate(team)
    assert counting.count("find_key") == lookups + 1


def test_demoting_the_owner_stops_a_cached_global_key(authenticator: Authenticator) -> None:
    key = Credential("apikey", authenticator.keys.create(name="k", owner="admin").key)
    assert authenticator.authenticate(key) is not None
    authenticator.users.set_roles("admin", ["manager"])
    with pytest.raises(InvalidToken):
        authenticator.authenticate(key)
    # Promoted back, the key acts again: it was never revoked, only unable to act.
    authenticator.users.set_roles("admin", ["admin"])
    assert authenticator.authenticate(key) is not None


def test_disabling_the_owner_stops_a_cached_key(authenticator: Authenticator) -> None:
    key = Credential("apikey", authenticator.keys.create(name="k", owner="admin").key)
    assert authenticator.authenticate(key) is not None
    authenticator.users.disable("admin")
    with pytest.raises(InvalidToken):
        authenticator.authenticate(key)


def test_new_roles_reach_a_cached_inherit_key(make_authenticator: AuthenticatorFactory) -> None:
    auth = make_authenticator(policy=Policy.default(api_keys="inherit"))
    key = Credential("apikey", auth.keys.create(name="k", owner="manager").key)
    before = auth.authenticate(key)
    assert before is not None
    assert "reports:read" in before.scopes
    auth.users.set_roles("manager", ["employee"])
    after = auth.authenticate(key)
    assert after is not None
    assert after.scopes == {"appointments:read"}
