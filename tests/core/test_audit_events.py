"""The core's lifecycle operations emit their audit events, with ids and never a secret."""

from __future__ import annotations

import pytest

from authmw import Authenticator, InvalidRequest, InvalidToken, TooManyRequests
from authmw import keys as keys_module
from authmw.audit import AuditEvent
from authmw.credentials import Credential
from authmw.oauth2 import AuthEndpoints
from authmw.throttle import Limit, LoginThrottle
from tests.conftest import PASSWORD


def clock_at_rest() -> float:
    # The throttle's buckets end with real time; a clock that stands still keeps
    # a test's failures in one bucket.
    return 1_800_000_000.0


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


def test_wrong_current_passwords_are_throttled_with_the_logins(
    authenticator: Authenticator,
) -> None:
    # Whoever holds a stolen access token must not guess the password behind it
    # without limit: a wrong current password counts as a failed login.
    authenticator.login_throttle = LoginThrottle(per_account=Limit(3, 600), clock=clock_at_rest)
    events = collect(authenticator)
    for _ in range(3):
        with pytest.raises(InvalidRequest):
            authenticator.users.change_password("manager", "not it", "another fine passphrase")
    with pytest.raises(TooManyRequests) as caught:
        # Refused before the password is checked: the right one does not help now.
        authenticator.users.change_password("manager", PASSWORD, "another fine passphrase")
    assert 1 <= caught.value.retry_after <= 600
    assert [e.name for e in events] == [
        *["user.password_change_failed"] * 3,
        "user.password_change_throttled",
    ]
    assert all(e.fields["user"] == "manager" for e in events)
    assert all("not it" not in str(e.as_dict()) for e in events)
    # The token endpoint's own counter: a login for the account is refused too.
    endpoints = AuthEndpoints(authenticator)
    assert endpoints.throttle is authenticator.login_throttle
    assert endpoints.throttle.retry_after("manager", "192.0.2.1") is not None


def test_a_right_current_password_clears_the_account_and_address_counter(
    authenticator: Authenticator,
) -> None:
    authenticator.login_throttle = LoginThrottle(
        per_account_address=Limit(2, 600), clock=clock_at_rest
    )
    with pytest.raises(InvalidRequest):
        authenticator.users.change_password(
            "manager", "not it", "another fine passphrase", address="192.0.2.7"
        )
    authenticator.users.change_password(
        "manager", PASSWORD, "another fine passphrase", address="192.0.2.7"
    )
    # One more failure from that address is not yet the second of the limit.
    with pytest.raises(InvalidRequest):
        authenticator.users.change_password(
            "manager", "not it", "a third fine passphrase", address="192.0.2.7"
        )


def test_a_rejected_credential_is_an_event_naming_the_key_never_the_secret(
    authenticator: Authenticator,
) -> None:
    events = collect(authenticator)
    issued = authenticator.keys.create(name="ci", owner="admin")
    authenticator.keys.revoke(issued.record.id)
    wrong_secret = keys_module.generate()[0]
    for value in (issued.key, wrong_secret, "amk_not-a-key", "amt_not.a.token"):
        with pytest.raises(InvalidToken):
            authenticator.authenticate(Credential("bearer", value))
    rejected = [e for e in events if e.name == "credential.rejected"]
    assert [(e.fields["kind"], e.fields["reason"]) for e in rejected] == [
        ("api_key", "invalid"),  # revoked
        ("api_key", "unknown"),  # a well-formed key nobody issued
        ("api_key", "malformed"),
        ("access_token", "invalid"),
    ]
    assert rejected[0].fields["key_id"] == issued.record.id
    for event in rejected:
        assert issued.key not in str(event.as_dict())
        assert wrong_secret not in str(event.as_dict())
