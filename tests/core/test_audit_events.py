"""The core's lifecycle operations emit their audit events, with ids and never a secret."""

from __future__ import annotations

from authmw import Authenticator
from authmw.audit import AuditEvent
from tests.conftest import PASSWORD


def collect(auth: Authenticator) -> list[AuditEvent]:
    """Every event ``auth`` emits from now on."""
    events: list[AuditEvent] = []
    auth.audit.add_hook(events.append)
    return events


def test_key_lifecycle_events(authenticator: Authenticator) -> None:
    events = collect(authenticator)
    issued = authenticator.keys.create(name="ci", owner="admin", scopes=["reports:read"])
    rotated = authenticator.keys.rotate(issued.record.id)
    authenticator.keys.revoke(rotated.record.id)
    assert [(e.name, e.fields.get("key_id")) for e in events] == [
        ("key.created", issued.record.id),
        ("key.rotated", issued.record.id),
        ("key.revoked", rotated.record.id),
    ]
    assert events[0].fields["user"] == "admin"
    assert events[0].fields["scope"] == "reports:read"
    for event in events:
        for value in event.fields.values():
            assert not isinstance(value, str) or issued.key not in value
            assert not isinstance(value, str) or rotated.key not in value


def test_user_change_events(authenticator: Authenticator) -> None:
    events = collect(authenticator)
    new_password = "a different passphrase"
    authenticator.users.set_password("employee", new_password)
    authenticator.users.set_roles("employee", ["manager"])
    authenticator.users.disable("employee")
    assert [e.name for e in events] == [
        "user.password_changed",
        "user.roles_changed",
        "user.disabled",
    ]
    assert all(e.fields["user"] == "employee" for e in events)
    assert events[1].fields["roles"] == "manager"
    assert all(new_password not in str(e.as_dict()) for e in events)


def test_changing_ones_own_password_is_one_event(authenticator: Authenticator) -> None:
    events = collect(authenticator)
    authenticator.users.change_password("manager", PASSWORD, "another fine passphrase")
    assert [e.name for e in events] == ["user.password_changed"]
