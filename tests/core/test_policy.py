"""authmw.policy: DESIGN.md's rule table, as a table.

Each row is a kind of principal, built the way authmw builds it (API keys through
``Policy.key_principal``, user tokens through ``Policy.user_principal``; clients
and delegated principals, which come from later features, directly). Each column
is one route requirement. A cell is ``ALLOW`` or the exact error class the
route answers with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authmw import Authenticator, InvalidToken
from authmw.context import Found, check_found
from authmw.credentials import Credential
from authmw.errors import AuthError, Forbidden, InsufficientRole, InsufficientScope
from authmw.policy import ApiKeyMode, Policy, Role, check_kinds
from authmw.principal import KINDS, Kind, Principal
from authmw.store import ApiKey, User
from authmw.store.sql import SQLStore
from tests.conftest import AuthenticatorFactory

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ALL_ROLES = frozenset({"admin", "manager", "employee"})
ALL_SCOPES = frozenset({"appointments:read", "appointments:write", "reports:read", "admin"})


def user(name: str, roles: set[str], teams: set[str], *, disabled: bool = False) -> User:
    return User(
        id=hash(name) & 0xFFFF,
        username=name,
        roles=frozenset(roles),
        teams=frozenset(teams),
        disabled=disabled,
        credential_epoch=0,
        created_at=NOW,
    )


ADMIN = user("admin", {"admin"}, {"ops"})
MANAGER = user("manager", {"manager"}, {"sales"})
EMPLOYEE = user("employee", {"employee"}, {"sales", "support"})
USERS = {u.username: u for u in (ADMIN, MANAGER, EMPLOYEE)}


def key(
    *, owner: str | None = None, team: str | None = None, scopes: set[str] | None = None
) -> ApiKey:
    return ApiKey(
        id="k" * 12,
        name="test",
        owner=owner,
        team=team,
        scopes=None if scopes is None else frozenset(scopes),
        created_at=NOW,
    )


def key_principal(policy: Policy, k: ApiKey) -> Principal:
    principal = policy.key_principal(k, USERS.get(k.owner or ""))
    assert principal is not None, "this key must be able to act"
    return principal


# -- the principals of the rule table ------------------------------------------------

Build = Callable[[Policy], Principal]


def _client(p: Policy, roles: set[str]) -> Principal:
    return Principal(
        kind="client",
        subject="client:c1",
        roles=p.effective_roles(roles),
        scopes=frozenset({"appointments:read"}),
        team="sales",
        teams=frozenset({"sales"}),
        client_id="c1",
    )


PRINCIPALS: dict[str, Build] = {
    "personal key (admin)": lambda p: key_principal(p, key(owner="admin")),
    "personal key (manager)": lambda p: key_principal(p, key(owner="manager")),
    "personal key (employee)": lambda p: key_principal(p, key(owner="employee")),
    "team key (sales)": lambda p: key_principal(p, key(team="sales")),
    "restricted key (admin)": lambda p: key_principal(
        p, key(owner="admin", scopes={"appointments:read"})
    ),
    # Restricted to two scopes, of which its owner holds only one: in inherit mode
    # the key gets the intersection, so "admin" is not among its scopes.
    "restricted key (manager)": lambda p: key_principal(
        p, key(owner="manager", scopes={"appointments:read", "admin"})
    ),
    "restricted team key": lambda p: key_principal(
        p, key(team="sales", scopes={"appointments:read"})
    ),
    "user (manager)": lambda p: p.user_principal(MANAGER),
    "client (employee)": lambda p: _client(p, {"employee"}),
    "client (no role)": lambda p: _client(p, set()),
    # The app asked for "admin" too; the user's roles do not grant it, so consent cannot.
    "delegated (manager)": lambda p: p.user_principal(
        MANAGER, kind="delegated", scopes={"appointments:read", "admin"}, client_id="app"
    ),
}

# -- the requirements of a route ------------------------------------------------------

COLUMNS: dict[str, dict[str, Any]] = {
    "requires_role(admin)": {"roles": {"admin"}},
    "requires_role(employee)": {"roles": {"employee"}},
    "requires_scope(appointments:read)": {"scopes": {"appointments:read"}},
    "requires_scope(admin)": {"scopes": {"admin"}},
    "team sales": {"team": "sales"},
    "team ops": {"team": "ops"},
    "kinds={user}": {"kinds": {"user"}},
}

ALLOW = None
ROLE = InsufficientRole
SCOPE = InsufficientScope
FORBID = Forbidden
Cell = type[AuthError] | None
Cells = tuple[Cell, Cell, Cell, Cell, Cell, Cell, Cell]

# The seeded users' teams: admin is in "ops", manager in "sales".
# fmt: off
GLOBAL: dict[str, Cells] = {
    #                            role    role    scope   scope   team    team    kinds=
    #                            admin   empl.   appts   admin   sales   ops     {user}
    "personal key (admin)":     (ALLOW,  ALLOW,  ALLOW,  ALLOW,  ALLOW,  ALLOW,  FORBID),
    "team key (sales)":         (ALLOW,  ALLOW,  ALLOW,  ALLOW,  ALLOW,  FORBID, FORBID),
    "restricted key (admin)":   (ROLE,   ROLE,   ALLOW,  SCOPE,  ALLOW,  ALLOW,  FORBID),
    "restricted team key":      (ROLE,   ROLE,   ALLOW,  SCOPE,  ALLOW,  FORBID, FORBID),
    "user (manager)":           (ROLE,   ALLOW,  ALLOW,  SCOPE,  ALLOW,  FORBID, ALLOW),
    "client (employee)":        (ROLE,   ALLOW,  ALLOW,  SCOPE,  ALLOW,  FORBID, FORBID),
    "client (no role)":         (ROLE,   ROLE,   ALLOW,  SCOPE,  ALLOW,  FORBID, FORBID),
    "delegated (manager)":      (ROLE,   ALLOW,  ALLOW,  SCOPE,  ALLOW,  FORBID, FORBID),
}

# A personal key acts exactly as its owner would: the owner's roles, scopes and teams.
INHERIT: dict[str, Cells] = {
    #                            role    role    scope   scope   team    team    kinds=
    #                            admin   empl.   appts   admin   sales   ops     {user}
    "personal key (admin)":     (ALLOW,  ALLOW,  ALLOW,  ALLOW,  FORBID, ALLOW,  FORBID),
    "personal key (manager)":   (ROLE,   ALLOW,  ALLOW,  SCOPE,  ALLOW,  FORBID, FORBID),
    "personal key (employee)":  (ROLE,   ALLOW,  ALLOW,  SCOPE,  ALLOW,  FORBID, FORBID),
    "team key (sales)":         (ALLOW,  ALLOW,  ALLOW,  ALLOW,  ALLOW,  FORBID, FORBID),
    "restricted key (admin)":   (ROLE,   ROLE,   ALLOW,  SCOPE,  FORBID, ALLOW,  FORBID),
    "restricted key (manager)": (ROLE,   ROLE,   ALLOW,  SCOPE,  ALLOW,  FORBID, FORBID),
    "restricted team key":      (ROLE,   ROLE,   ALLOW,  SCOPE,  ALLOW,  FORBID, FORBID),
    "user (manager)":           (ROLE,   ALLOW,  ALLOW,  SCOPE,  ALLOW,  FORBID, ALLOW),
    "client (employee)":        (ROLE,   ALLOW,  ALLOW,  SCOPE,  ALLOW,  FORBID, FORBID),
    "client (no role)":         (ROLE,   ROLE,   ALLOW,  SCOPE,  ALLOW,  FORBID, FORBID),
    "delegated (manager)":      (ROLE,   ALLOW,  ALLOW,  SCOPE,  ALLOW,  FORBID, FORBID),
}
# fmt: on

TABLES: dict[ApiKeyMode, dict[str, Cells]] = {"global": GLOBAL, "inherit": INHERIT}


def _cases() -> list[Any]:
    cases = []
    for mode, table in TABLES.items():
        for row, cells in table.items():
            build = PRINCIPALS[row]
            for (column, requirement), expected in zip(COLUMNS.items(), cells, strict=True):
                cases.append(
                    pytest.param(mode, build, requirement, expected, id=f"{mode}: {row} / {column}")
                )
    return cases


def test_the_tables_cover_every_principal_and_column() -> None:
    assert set(GLOBAL) | set(INHERIT) == set(PRINCIPALS)
    for table in TABLES.values():
        assert all(len(cells) == len(COLUMNS) for cells in table.values())


@pytest.mark.parametrize(("mode", "build", "requirement", "expected"), _cases())
def test_rule_table(
    mode: ApiKeyMode,
    build: Build,
    requirement: Mapping[str, Any],
    expected: Cell,
) -> None:
    policy = Policy.default(api_keys=mode)
    principal = build(policy)
    if expected is None:
        policy.authorize(principal, **requirement)
        return
    with pytest.raises(AuthError) as caught:
        policy.authorize(principal, **requirement)
    assert type(caught.value) is expected
    if expected is InsufficientScope:
        assert isinstance(caught.value, InsufficientScope)
        assert caught.value.scope == " ".join(sorted(requirement["scopes"]))


@pytest.mark.parametrize("mode", ["global", "inherit"])
def test_kinds_admit_the_listed_kinds(mode: ApiKeyMode) -> None:
    policy = Policy.default(api_keys=mode)
    policy.authorize(PRINCIPALS["team key (sales)"](policy), kinds={"api_key", "client"})
    policy.authorize(PRINCIPALS["client (no role)"](policy), kinds={"api_key", "client"})
    with pytest.raises(Forbidden):
        policy.authorize(PRINCIPALS["user (manager)"](policy), kinds={"api_key", "client"})


def test_kinds_are_checked_before_the_global_pass() -> None:
    # A global key passes every role and scope check, but not a kinds= restriction
    # ("change my password" is for users only).
    policy = Policy.default()
    with pytest.raises(Forbidden):
        policy.authorize(
            PRINCIPALS["personal key (admin)"](policy), roles={"admin"}, kinds={"user"}
        )


@pytest.mark.parametrize("row", ["personal key (admin)", "team key (sales)"])
def test_global_keys_pass_requirements_outside_the_policy(row: str) -> None:
    # "Global" is a property of the key, not a list of what the policy grants: a
    # route guarded by a scope or role that no role maps to still admits it...
    policy = Policy.default()
    principal = PRINCIPALS[row](policy)
    policy.authorize(principal, roles={"auditor"}, scopes={"billing:export"})
    # ...as it admits any principal marked unrestricted, whatever else it carries.
    bare = Principal(kind="api_key", subject="x", unrestricted=True)
    policy.authorize(bare, roles={"admin"}, scopes={"admin"})
    # While an admin's own token holds only what the roles grant.
    admin = policy.user_principal(ADMIN)
    with pytest.raises(InsufficientScope):
        policy.authorize(admin, scopes={"billing:export"})
    with pytest.raises(InsufficientRole):
        policy.authorize(admin, roles={"auditor"})


def test_roles_need_any_one_scopes_need_all() -> None:
    policy = Policy.default()
    manager = PRINCIPALS["user (manager)"](policy)
    policy.authorize(manager, roles={"admin", "manager"})
    policy.authorize(manager, scopes={"reports:read", "appointments:write"})
    with pytest.raises(InsufficientScope) as caught:
        policy.authorize(manager, scopes={"reports:read", "admin"})
    assert caught.value.scope == "admin reports:read"


def test_no_requirement_admits_any_principal() -> None:
    policy = Policy.default()
    policy.authorize(Principal(kind="user", subject="nobody"))


# -- principals as built from stored credentials ------------------------------------


def test_global_personal_key_is_unrestricted_and_holds_everything() -> None:
    policy = Policy.default()
    p = PRINCIPALS["personal key (admin)"](policy)
    assert p.kind == "api_key"
    assert p.subject == "admin"
    assert p.unrestricted
    assert p.roles == ALL_ROLES
    assert p.scopes == ALL_SCOPES
    assert p.team is None
    assert p.teams == {"ops"}
    assert p.credential_id == "k" * 12


def test_team_key_acts_as_its_team() -> None:
    p = PRINCIPALS["team key (sales)"](Policy.default())
    assert p.subject == "team:sales"
    assert p.team == "sales"
    assert p.teams == {"sales"}
    assert p.unrestricted


def test_restricted_key_holds_only_its_scopes_and_no_role() -> None:
    p = PRINCIPALS["restricted key (admin)"](Policy.default())
    assert not p.unrestricted
    assert p.roles == frozenset()
    assert p.scopes == {"appointments:read"}


def test_inherit_personal_key_carries_the_owners_roles_and_scopes() -> None:
    policy = Policy.default(api_keys="inherit")
    p = PRINCIPALS["personal key (manager)"](policy)
    assert not p.unrestricted
    assert p.roles == {"manager", "employee"}
    assert p.scopes == {"reports:read", "appointments:write", "appointments:read"}
    assert p.teams == {"sales"}


def test_user_principal_scopes_narrow_but_never_widen() -> None:
    policy = Policy.default()
    assert policy.user_principal(EMPLOYEE).scopes == {"appointments:read"}
    narrowed = policy.user_principal(MANAGER, scopes={"reports:read", "admin"})
    assert narrowed.scopes == {"reports:read"}
    assert policy.user_principal(MANAGER, scopes=()).scopes == frozenset()


@pytest.mark.parametrize("mode", ["global", "inherit"])
def test_disabled_owner_makes_a_personal_key_unable_to_act(mode: ApiKeyMode) -> None:
    policy = Policy.default(api_keys=mode)
    disabled = user("admin", {"admin"}, {"ops"}, disabled=True)
    assert policy.key_principal(key(owner="admin"), disabled) is None
    assert policy.key_principal(key(owner="admin"), None) is None


def test_demoted_owner_makes_a_global_personal_key_unable_to_act() -> None:
    demoted = user("admin", {"manager"}, {"ops"})
    assert Policy.default().key_principal(key(owner="admin"), demoted) is None
    # In inherit mode the key simply carries the lower role.
    inherited = Policy.default(api_keys="inherit").key_principal(key(owner="admin"), demoted)
    assert inherited is not None
    assert inherited.roles == {"manager", "employee"}


def test_team_keys_do_not_depend_on_any_user() -> None:
    policy = Policy.default()
    assert policy.key_principal(key(team="sales"), None) is not None


# -- the role hierarchy ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("assigned", "effective"),
    [
        ({"admin"}, {"admin", "manager", "employee"}),
        ({"manager"}, {"manager", "employee"}),
        ({"employee"}, {"employee"}),
        ({"employee", "manager"}, {"manager", "employee"}),
        ({"ghost"}, set()),
        (set(), set()),
    ],
)
def test_effective_roles_expand_the_hierarchy(assigned: set[str], effective: set[str]) -> None:
    assert Policy.default().effective_roles(assigned) == effective


@pytest.mark.parametrize(
    ("assigned", "scopes"),
    [
        ({"employee"}, {"appointments:read"}),
        ({"manager"}, {"appointments:read", "reports:read", "appointments:write"}),
        ({"admin"}, {"appointments:read", "reports:read", "appointments:write", "admin"}),
        ({"ghost"}, set()),
    ],
)
def test_roles_map_to_scopes_through_the_hierarchy(assigned: set[str], scopes: set[str]) -> None:
    assert Policy.default().scopes_for(assigned) == scopes


def test_all_roles_and_scopes() -> None:
    policy = Policy.default()
    assert policy.all_roles == ALL_ROLES
    assert policy.all_scopes == ALL_SCOPES


def test_top_roles() -> None:
    assert Policy.default().top_roles == {"admin"}
    # Two separate hierarchies and a diamond: tops are the roles nobody includes.
    policy = Policy(
        {
            "base": Role.of(scopes=["read"]),
            "left": Role.of(includes=["base"]),
            "right": Role.of(includes=["base"]),
            "owner": Role.of(includes=["left", "right"]),
            "auditor": Role.of(scopes=["audit"]),
        }
    )
    assert policy.top_roles == {"owner", "auditor"}
    assert policy.effective_roles({"owner"}) == {"owner", "left", "right", "base"}
    assert policy.may_own_global_key({"auditor"})
    assert policy.may_own_global_key({"base", "owner"})
    assert not policy.may_own_global_key({"left", "right"})


@pytest.mark.parametrize(
    "roles",
    [
        {"a": Role.of(includes=["a"])},
        {"a": Role.of(includes=["b"]), "b": Role.of(includes=["a"])},
        {
            "a": Role.of(includes=["b"]),
            "b": Role.of(includes=["c"]),
            "c": Role.of(includes=["a"]),
            "top": Role.of(includes=["a"]),
        },
    ],
    ids=["self", "two", "three"],
)
def test_a_cycle_in_the_hierarchy_is_refused(roles: dict[str, Role]) -> None:
    with pytest.raises(ValueError, match="cycle"):
        Policy(roles)


def test_including_an_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown roles \['ghost'\]"):
        Policy({"a": Role.of(includes=["ghost"])})


def test_api_keys_mode_is_checked() -> None:
    with pytest.raises(ValueError, match="api_keys"):
        Policy.default(api_keys="everything")  # type: ignore[arg-type]


def test_check_roles() -> None:
    policy = Policy.default()
    assert policy.check_roles(["admin", "employee"]) == {"admin", "employee"}
    with pytest.raises(ValueError, match="ghost"):
        policy.check_roles(["admin", "ghost"])


def test_check_kinds() -> None:
    assert check_kinds(None) is None
    assert check_kinds(["user", "client"]) == frozenset({"user", "client"})
    with pytest.raises(ValueError, match="robot"):
        check_kinds({"user", "robot"})


def test_role_of_builds_frozensets() -> None:
    role = Role.of(scopes=["a", "b", "a"], includes=("x",))
    assert role == Role(frozenset({"a", "b"}), frozenset({"x"}))


# -- through the authenticator: the owner's standing is read at verification ----------


@pytest.mark.parametrize("change", ["demote", "disable"])
def test_personal_key_stops_verifying_when_its_owner_loses_standing(
    authenticator: Authenticator, change: str
) -> None:
    issued = authenticator.keys.create(name="laptop", owner="admin")
    credential = Credential("apikey", issued.key)
    assert authenticator.authenticate(credential) is not None
    if change == "demote":
        authenticator.users.set_roles("admin", ["manager"])
    else:
        authenticator.users.disable("admin")
    with pytest.raises(InvalidToken):
        authenticator.authenticate(credential)


def test_inherit_mode_key_follows_its_owners_roles(
    make_authenticator: AuthenticatorFactory,
) -> None:
    auth = make_authenticator(policy=Policy.default(api_keys="inherit"))
    issued = auth.keys.create(name="laptop", owner="employee")
    credential = Credential("apikey", issued.key)
    before = auth.authenticate(credential)
    assert before is not None
    assert before.roles == {"employee"}
    auth.users.set_roles("employee", ["manager"])
    after = auth.authenticate(credential)
    assert after is not None
    assert after.roles == {"manager", "employee"}
    auth.policy.authorize(after, roles={"manager"})


_AUTH = Authenticator(SQLStore("sqlite://"))
_NAMES = st.frozensets(st.sampled_from(sorted(ALL_ROLES | ALL_SCOPES | {"auditor"})), max_size=3)


# Cheap examples, and the cases that matter are a few in a hundred: look at many.
@settings(max_examples=1000)
@given(
    kind=st.sampled_from(sorted(KINDS)),
    roles=_NAMES,
    scopes=_NAMES,
    unrestricted=st.booleans(),
    bound_team=st.none() | st.sampled_from(["ops", "sales"]),
    required_roles=_NAMES,
    required_scopes=_NAMES,
    kinds=st.none() | st.frozensets(st.sampled_from(sorted(KINDS)), min_size=1),
    team=st.none() | st.sampled_from(["ops", "sales"]),
)
def test_the_guards_shortcut_answers_as_the_policy(
    *,
    kind: Kind,
    roles: frozenset[str],
    scopes: frozenset[str],
    unrestricted: bool,
    bound_team: str | None,
    required_roles: frozenset[str],
    required_scopes: frozenset[str],
    kinds: frozenset[str] | None,
    team: str | None,
) -> None:
    # check_found(), which every guard and DRF permission class calls, admits a
    # global key without asking the policy when the route names no kinds and no
    # team: it must never admit what Policy.check refuses, nor refuse what it admits.
    principal = Principal(
        kind=kind,
        subject="s",
        roles=roles,
        scopes=scopes,
        team=bound_team,
        teams=frozenset({"sales"}),
        unrestricted=unrestricted,
    )
    found: Found = (_AUTH, principal, None, {})
    auth = _AUTH
    expected: type[AuthError] | None = None
    try:
        auth.policy.check(principal, required_roles, required_scopes, kinds, team)
    except AuthError as exc:
        expected = type(exc)
    if expected is None:
        assert check_found(found, required_roles, required_scopes, kinds, team) is principal
    else:
        with pytest.raises(expected):
            check_found(found, required_roles, required_scopes, kinds, team)
