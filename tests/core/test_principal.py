"""authmw.principal: the value every plugin hands to application code."""

from __future__ import annotations

import json
import typing
from datetime import UTC, datetime

import pytest

from authmw.principal import KINDS, Kind, Principal

#: The fields ``GET /me`` serves, in DESIGN.md's order.
ME_FIELDS = ["kind", "subject", "roles", "scopes", "team", "teams", "credential_id", "client_id"]


def test_kinds_are_the_four_of_the_rule_table() -> None:
    assert set(KINDS) == {"api_key", "user", "client", "delegated"}
    assert set(typing.get_args(Kind)) == KINDS


def test_defaults_grant_nothing() -> None:
    p = Principal(kind="user", subject="alice")
    assert p.roles == frozenset()
    assert p.scopes == frozenset()
    assert p.team is None
    assert p.teams == frozenset()
    assert p.unrestricted is False
    assert p.expires_at is None


def test_principal_is_frozen_and_slotted() -> None:
    p = Principal(kind="user", subject="alice")
    with pytest.raises(AttributeError):
        p.subject = "mallory"  # type: ignore[misc]
    assert not hasattr(p, "__dict__")


def test_equal_principals_are_equal_and_hashable() -> None:
    a = Principal(kind="api_key", subject="admin", roles=frozenset({"admin"}), credential_id="k")
    b = Principal(kind="api_key", subject="admin", roles=frozenset({"admin"}), credential_id="k")
    assert a == b
    assert len({a, b}) == 1


def test_to_json_has_exactly_the_me_fields_with_sorted_lists() -> None:
    p = Principal(
        kind="client",
        subject="client:reporting",
        roles=frozenset({"manager", "employee"}),
        scopes=frozenset({"reports:read", "appointments:read"}),
        team="sales",
        teams=frozenset({"sales", "ops"}),
        credential_id="cred",
        client_id="reporting",
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        unrestricted=False,
    )
    data = p.to_json()
    assert list(data) == ME_FIELDS
    assert data == {
        "kind": "client",
        "subject": "client:reporting",
        "roles": ["employee", "manager"],
        "scopes": ["appointments:read", "reports:read"],
        "team": "sales",
        "teams": ["ops", "sales"],
        "credential_id": "cred",
        "client_id": "reporting",
    }
    # Serialisable as is: no sets, no datetimes.
    assert json.loads(json.dumps(data)) == data


def test_to_json_of_an_empty_principal() -> None:
    assert Principal(kind="user", subject="bob").to_json() == {
        "kind": "user",
        "subject": "bob",
        "roles": [],
        "scopes": [],
        "team": None,
        "teams": [],
        "credential_id": None,
        "client_id": None,
    }
