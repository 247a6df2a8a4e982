"""Access and refresh tokens: format, verification, rotation, revocation, invalidation."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import Signer
from itsdangerous.encoding import base64_decode, base64_encode

from authmw import Authenticator, Settings, keys
from authmw.credentials import Credential
from authmw.errors import InvalidToken, ServiceUnavailable
from authmw.store import Client, RefreshToken
from authmw.store.sql import SQLStore
from authmw.tokens import AccessClaims, AccessTokenCodec, GrantError, IssuedTokens, TokenKind
from tests.conftest import SECRET_KEY, AuthenticatorFactory
from tests.core.conftest import sqlite_file_url
from tests.core.support import CountingStore, ManualClock

KEY_A = "a" * 40
KEY_B = "b" * 40


def claims(**changes: object) -> AccessClaims:
    """Claims of a user token that expires far in the future."""
    base: dict[str, object] = {
        "token_id": "t1",
        "kind": "user",
        "subject": "alice",
        "client_id": "app1",
        "issued_at": 1,
        "expires_at": 2**32,
        "roles": frozenset({"manager"}),
        "scopes": frozenset({"reports:read"}),
        "epoch": 3,
        "family_id": "f1",
    }
    base.update(changes)
    return AccessClaims(**base)  # type: ignore[arg-type]


# -- the codec ---------------------------------------------------------------------------


def test_codec_round_trip_and_prefix() -> None:
    codec = AccessTokenCodec([KEY_A])
    token = codec.encode(claims())
    assert token.startswith("amt_")
    assert codec.decode(token) == claims()


def test_a_token_signed_with_an_older_key_still_verifies() -> None:
    old = AccessTokenCodec([KEY_A]).encode(claims())
    rotated = AccessTokenCodec([KEY_B, KEY_A])  # newest first
    assert rotated.decode(old) == claims()
    # ...and new tokens are signed with the newest key only.
    assert AccessTokenCodec([KEY_B]).decode(rotated.encode(claims())) == claims()
    with pytest.raises(InvalidToken):
        AccessTokenCodec([KEY_A]).decode(rotated.encode(claims()))


def test_the_format_is_itsdangerous_signer_over_base64_json() -> None:
    # The documented format, checked against itsdangerous itself, both ways: its
    # Signer reads our tokens, and a token it signs decodes here.
    signer = Signer(KEY_A, salt="authmw.access-token.v1", digest_method=hashlib.sha256)
    token = AccessTokenCodec([KEY_A]).encode(claims())
    body = signer.unsign(token.removeprefix("amt_"))
    assert json.loads(base64_decode(body))["sub"] == "alice"
    foreign = "amt_" + signer.sign(base64_encode(json.dumps(claims().to_payload()))).decode()
    assert AccessTokenCodec([KEY_A]).decode(foreign) == claims()


def test_a_token_has_one_spelling() -> None:
    # Characters outside base64url, or base64's "+" and "/" for "-" and "_", fail
    # even where a lax decoder would map them to the same bytes.
    codec = AccessTokenCodec([KEY_A])
    token = codec.encode(claims())
    body, _, mac = token.rpartition(".")
    for bad in (
        f"{body}.{mac.replace('-', '+').replace('_', '/')}",
        f"{body}.{mac}=",
        f"{body}.{mac[:20]}\n{mac[20:]}",
        f"{body}.{mac[:20]}*{mac[20:]}",
    ):
        if bad != token:
            with pytest.raises(InvalidToken):
                codec.decode(bad)


def test_the_last_character_of_the_signature_has_one_spelling() -> None:
    # 32 bytes in 43 characters leave two bits of the last one unused, which a
    # base64 decoder ignores, strict or not: four spellings of one signature.
    codec = AccessTokenCodec([KEY_A])
    token = codec.encode(claims())
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    accepted = []
    for last in alphabet:
        try:
            codec.decode(token[:-1] + last)
        except InvalidToken:
            continue
        accepted.append(last)
    assert accepted == [token[-1]]


@pytest.mark.parametrize("value", ["amt_x", "amt_eyJ4IjoxfQ.abc", "amt_"])
def test_without_a_signing_key_a_token_is_invalid_not_an_error(value: str) -> None:
    # An app of API keys alone has no key; what looks like a token gets the 401.
    auth = Authenticator(SQLStore("sqlite://"))
    assert auth.settings.secret_keys == ()
    with pytest.raises(InvalidToken):
        auth.authenticate(Credential("bearer", value))


def test_a_token_signed_with_a_removed_key_fails() -> None:
    old = AccessTokenCodec([KEY_A]).encode(claims())
    with pytest.raises(InvalidToken):
        AccessTokenCodec([KEY_B]).decode(old)


@pytest.mark.parametrize("keys", [[], ["short"]])
def test_codec_refuses_missing_or_weak_keys(keys: list[str]) -> None:
    with pytest.raises(ValueError, match="key"):
        AccessTokenCodec(keys)


def test_tampered_tokens_fail() -> None:
    codec = AccessTokenCodec([KEY_A])
    token = codec.encode(claims())
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    body, _, signature = token[4:].rpartition(".")
    other = codec.encode(claims(subject="mallory"))[4:].rpartition(".")[0]
    for bad in (
        flipped,
        token + "x",
        token[:-1],
        "amt_",
        "amt_.",
        "amk_" + token[4:],
        f"amt_{other}.{signature}",  # another payload under this signature
        f"amt_{body}",  # no signature
    ):
        with pytest.raises(InvalidToken):
            codec.decode(bad)


@pytest.mark.parametrize(
    "payload",
    [
        {"v": 2},
        {"v": 1, "knd": "root"},
        ["not", "a", "dict"],
        {**claims().to_payload(), "exp": "tomorrow"},
        {**claims().to_payload(), "rol": "admin"},
        {**claims().to_payload(), "iat": True},
        {**claims().to_payload(), "exp": 2**40},  # beyond what a datetime holds
        {**claims().to_payload(), "iat": -1},
        {k: v for k, v in claims().to_payload().items() if k != "sub"},
    ],
)
def test_a_validly_signed_but_foreign_payload_fails_as_invalid_token(payload: object) -> None:
    # Same keys, salt and digest as the codec: only the payload is wrong.
    codec = AccessTokenCodec([KEY_A])
    with pytest.raises(InvalidToken):
        codec.decode(codec._seal(payload))


@given(st.text(max_size=300))
def test_decode_fuzz_raises_only_invalid_token(value: str) -> None:
    codec = AccessTokenCodec([KEY_A])
    with pytest.raises(InvalidToken):
        codec.decode(value)
    with pytest.raises(InvalidToken):
        codec.decode("amt_" + value)


# -- issuing and verifying ---------------------------------------------------------------


def app_client(auth: Authenticator, *, first_party: bool = True, name: str = "web") -> Client:
    """A confidential first-party app, registered through the public API."""
    return auth.clients.create_app(
        name, redirect_uris=["https://app.example/cb"], first_party=first_party
    ).client


def login(
    auth: Authenticator,
    user: str = "manager",
    scopes: frozenset[str] | None = None,
    *,
    app: Client | None = None,
) -> IssuedTokens:
    """Tokens for ``user`` as the password grant issues them (to a new app by default)."""
    record = auth.users.get(user)
    granted = auth.policy.scopes_for(record.roles) if scopes is None else scopes
    return auth.tokens.issue_for_user(record, app or app_client(auth), granted)


def bearer(value: str) -> Credential:
    return Credential("bearer", value)


def test_a_user_token_is_restricted_by_the_users_roles(authenticator: Authenticator) -> None:
    issued = login(authenticator, "employee")
    principal = authenticator.authenticate(bearer(issued.access_token))
    assert principal is not None
    assert principal.kind == "user"
    assert principal.subject == "employee"
    assert principal.roles == {"employee"}
    assert principal.scopes == {"appointments:read"}
    assert principal.teams == {"sales", "support"}
    assert principal.credential_id == issued.token_id
    assert not principal.unrestricted


def test_scopes_asked_beyond_the_roles_are_not_granted(authenticator: Authenticator) -> None:
    issued = login(authenticator, "employee", scopes=frozenset({"admin", "appointments:read"}))
    assert issued.scopes == {"appointments:read"}


def test_the_warm_path_of_a_token_makes_no_store_call(
    make_authenticator: AuthenticatorFactory,
) -> None:
    store = CountingStore(SQLStore("sqlite://"))
    auth = make_authenticator(store)
    issued = login(auth)
    assert auth.authenticate(bearer(issued.access_token)) is not None
    before = store.count()
    for _ in range(5):
        assert auth.authenticate(bearer(issued.access_token)) is not None
    assert store.count() == before


def test_a_cold_token_needs_no_store_call_when_its_user_was_read_recently(
    make_authenticator: AuthenticatorFactory,
) -> None:
    store = CountingStore(SQLStore("sqlite://"))
    auth = make_authenticator(store)
    app = app_client(auth)
    first, second = login(auth, app=app), login(auth, app=app)
    auth.authenticate(bearer(first.access_token))
    before = store.count()
    # A different token of the same user and app: signature check, revocation
    # list, user and app records all come from memory.
    assert auth.authenticate(bearer(second.access_token)) is not None
    assert store.count() == before


def test_an_expired_token_fails(authenticator: Authenticator) -> None:
    auth = authenticator
    client = app_client(auth)
    token = auth.tokens.codec.encode(
        claims(subject="manager", client_id=client.id, expires_at=1, epoch=0)
    )
    with pytest.raises(InvalidToken):
        auth.authenticate(bearer(token))


def test_a_token_for_an_unknown_user_fails(authenticator: Authenticator) -> None:
    token = authenticator.tokens.codec.encode(claims(subject="ghost", epoch=0))
    with pytest.raises(InvalidToken):
        authenticator.authenticate(bearer(token))


@pytest.mark.parametrize(
    "change",
    [
        lambda auth: auth.users.set_password("manager", "a brand new passphrase"),
        lambda auth: auth.users.set_roles("manager", ["employee"]),
        lambda auth: auth.users.disable("manager"),
    ],
    ids=["password", "roles", "disabled"],
)
def test_user_changes_kill_live_tokens_at_the_next_request(
    authenticator: Authenticator, change: object
) -> None:
    issued = login(authenticator)
    assert authenticator.authenticate(bearer(issued.access_token)) is not None
    change(authenticator)  # type: ignore[operator]
    with pytest.raises(InvalidToken):
        authenticator.authenticate(bearer(issued.access_token))
    with pytest.raises(GrantError):
        authenticator.tokens.refresh(
            issued.refresh_token or "", app_of(authenticator, issued), None
        )


@pytest.mark.parametrize("kind", ["user", "delegated"])
def test_disabling_an_app_ends_the_tokens_it_holds_for_users(
    authenticator: Authenticator, kind: TokenKind
) -> None:
    auth = authenticator
    app = app_client(auth)
    other = login(auth)  # the same user, through another app
    record = auth.users.get("manager")
    issued = auth.tokens.issue_for_user(record, app, frozenset(), kind=kind)
    assert auth.authenticate(bearer(issued.access_token)) is not None
    auth.clients.disable(app.id)
    with pytest.raises(InvalidToken):
        auth.authenticate(bearer(issued.access_token))
    assert auth.tokens.introspect(issued.access_token) == {"active": False}
    assert auth.authenticate(bearer(other.access_token)) is not None
    enabled = auth.clients.enable(app.id)
    # Enabled again, the app gets new tokens; what it held before stays dead.
    with pytest.raises(InvalidToken):
        auth.authenticate(bearer(issued.access_token))
    assert auth.tokens.introspect(issued.access_token) == {"active": False}
    assert issued.refresh_token is not None
    assert auth.tokens.introspect(issued.refresh_token) == {"active": False}
    with pytest.raises(GrantError):
        auth.tokens.refresh(issued.refresh_token, enabled, None)
    next_second()
    fresh = auth.tokens.issue_for_user(record, enabled, frozenset(), kind=kind)
    assert auth.authenticate(bearer(fresh.access_token)) is not None
    assert fresh.refresh_token is not None
    assert auth.tokens.refresh(fresh.refresh_token, enabled, None).access_token


def next_second() -> None:
    """Wait for the wall clock's next whole second: an access token's ``iat`` has no finer grain.

    A token issued in the same second as its client's re-enable counts as issued
    before it (``Client.predates_reenable``), so a test that enables and issues
    again waits for the second to turn.
    """
    time.sleep(1.01 - time.time() % 1)


def test_a_re_enabled_client_gets_new_tokens_and_its_old_ones_stay_dead(
    authenticator: Authenticator,
) -> None:
    auth = authenticator
    created = auth.clients.create_client("billing", team="ops", scopes=["reports:read"])
    old = auth.tokens.issue_for_client(created.client, frozenset({"reports:read"}))
    assert auth.authenticate(bearer(old.access_token)) is not None
    assert auth.clients.disable(created.client.id).reenabled_at is None
    before = datetime.now(UTC)
    enabled = auth.clients.enable(created.client.id)
    assert not enabled.disabled
    assert enabled.reenabled_at is not None
    assert enabled.reenabled_at >= before
    # Enabling it again changes nothing: its new tokens live on.
    assert auth.clients.enable(created.client.id) == enabled
    assert auth.clients.authenticate(created.client.id, created.secret or "") == enabled
    with pytest.raises(InvalidToken):
        auth.authenticate(bearer(old.access_token))
    assert auth.tokens.introspect(old.access_token) == {"active": False}
    next_second()
    new = auth.tokens.issue_for_client(enabled, frozenset({"reports:read"}))
    principal = auth.authenticate(bearer(new.access_token))
    assert principal is not None
    assert principal.client_id == created.client.id


def test_what_a_request_under_way_at_the_disable_issues_is_dead_once_enabled(
    authenticator: Authenticator,
) -> None:
    auth = authenticator
    app = app_client(auth)
    issued = login(auth, app=app)
    assert issued.refresh_token is not None
    # A refresh grant that authenticated the app just before the disable finishes
    # after it, with the record it read then.
    authenticated = auth.clients.get(app.id)
    auth.clients.disable(app.id)
    minted = auth.tokens.refresh(issued.refresh_token, authenticated, None)
    assert minted.refresh_token is not None
    enabled = auth.clients.enable(app.id)
    with pytest.raises(InvalidToken):
        auth.authenticate(bearer(minted.access_token))
    with pytest.raises(GrantError):
        auth.tokens.refresh(minted.refresh_token, enabled, None)


def test_predates_reenable_errs_towards_refusing_within_the_second() -> None:
    reenabled_at = datetime(2026, 11, 23, 12, 0, 5, 500000, tzinfo=UTC)
    client = Client(
        id="c",
        name="c",
        kind="client",
        team="ops",
        scopes=frozenset(),
        roles=frozenset(),
        redirect_uris=(),
        public=False,
        first_party=False,
        created_at=reenabled_at - timedelta(days=1),
        reenabled_at=reenabled_at,
    )
    second = int(reenabled_at.timestamp())
    # An access token's iat: the whole second it was issued in, rounded down.
    assert client.predates_reenable(second - 1)
    assert client.predates_reenable(second)  # maybe after the re-enable: refused all the same
    assert not client.predates_reenable(second + 1)
    # A refresh token's or a code's creation time is exact.
    assert client.predates_reenable(reenabled_at - timedelta(microseconds=1))
    assert not client.predates_reenable(reenabled_at)
    # Never re-enabled: nothing predates it.
    assert not dataclasses.replace(client, reenabled_at=None).predates_reenable(0)


def app_of(auth: Authenticator, issued: IssuedTokens) -> Client:
    """The client a token was issued to."""
    principal_client = auth.tokens.codec.decode(issued.access_token).client_id
    return auth.clients.get(principal_client)


@pytest.mark.parametrize(
    "change",
    [
        lambda admin, issued: admin.users.set_password("manager", "a brand new passphrase"),
        lambda admin, issued: admin.clients.disable(app_of(admin, issued).id),
    ],
    ids=["password", "app disabled"],
)
def test_another_process_sees_a_change_within_the_staleness_bound(
    make_authenticator: AuthenticatorFactory,
    tmp_path: Path,
    change: Callable[[Authenticator, IssuedTokens], object],
) -> None:
    url = sqlite_file_url(tmp_path)
    clock = ManualClock()
    settings = Settings(secret_keys=(SECRET_KEY,), cache_ttl=5)
    api = make_authenticator(url, settings=settings, clock=clock)
    admin = make_authenticator(url, settings=settings, seed=False, schema=False)
    issued = login(api)
    assert api.authenticate(bearer(issued.access_token)) is not None
    change(admin, issued)
    clock.advance(4.9)
    assert api.authenticate(bearer(issued.access_token)) is not None  # still within the bound
    clock.advance(0.2)
    with pytest.raises(InvalidToken):
        api.authenticate(bearer(issued.access_token))


def test_another_process_sees_a_revocation_within_the_staleness_bound(
    make_authenticator: AuthenticatorFactory, tmp_path: Path
) -> None:
    url = sqlite_file_url(tmp_path)
    clock = ManualClock()
    settings = Settings(secret_keys=(SECRET_KEY,), cache_ttl=5)
    api = make_authenticator(url, settings=settings, clock=clock)
    admin = make_authenticator(url, settings=settings, seed=False, schema=False)
    issued = login(api)
    assert api.authenticate(bearer(issued.access_token)) is not None
    assert admin.tokens.revoke(issued.access_token, app_of(admin, issued))
    clock.advance(5.1)
    with pytest.raises(InvalidToken):
        api.authenticate(bearer(issued.access_token))


def test_a_token_is_refused_when_the_store_is_down_and_it_must_be_checked(
    make_authenticator: AuthenticatorFactory, tmp_path: Path
) -> None:
    url = sqlite_file_url(tmp_path)
    auth = make_authenticator(url, settings=Settings(secret_keys=(SECRET_KEY,), cache_ttl=0))
    issued = login(auth)
    auth.store.close()
    Path(tmp_path / "authmw.db").unlink()
    (tmp_path / "authmw.db").mkdir()  # the file is gone and cannot be recreated
    with pytest.raises(ServiceUnavailable):
        auth.authenticate(bearer(issued.access_token))


# -- client tokens -------------------------------------------------------------------------


def test_a_client_token_is_bound_to_its_team(authenticator: Authenticator) -> None:
    auth = authenticator
    issued_client = auth.clients.create_client(
        "billing", team="ops", scopes=["reports:read"], roles=["employee"]
    )
    issued = auth.tokens.issue_for_client(issued_client.client, frozenset({"reports:read"}))
    assert issued.refresh_token is None
    principal = auth.authenticate(bearer(issued.access_token))
    assert principal is not None
    assert principal.kind == "client"
    assert principal.team == "ops"
    assert principal.scopes == {"reports:read"}
    assert principal.roles == {"employee"}
    assert principal.client_id == issued_client.client.id
    auth.clients.disable(issued_client.client.id)
    with pytest.raises(InvalidToken):
        auth.authenticate(bearer(issued.access_token))


# -- refresh ------------------------------------------------------------------------------


def test_refresh_rotates_and_a_replay_kills_the_family(authenticator: Authenticator) -> None:
    auth = authenticator
    first = login(auth)
    client = app_of(auth, first)
    assert first.refresh_token is not None
    second = auth.tokens.refresh(first.refresh_token, client, None)
    assert second.refresh_token not in (None, first.refresh_token)
    assert second.family_id == first.family_id
    assert auth.authenticate(bearer(second.access_token)) is not None
    with pytest.raises(GrantError) as replay:
        auth.tokens.refresh(first.refresh_token, client, None)
    assert replay.value.error == "invalid_grant"
    # The replay revoked the family: the successor and its access token are dead too.
    assert second.refresh_token is not None
    with pytest.raises(GrantError):
        auth.tokens.refresh(second.refresh_token, client, None)
    with pytest.raises(InvalidToken):
        auth.authenticate(bearer(second.access_token))
    with pytest.raises(InvalidToken):
        auth.authenticate(bearer(first.access_token))


def test_refresh_narrows_scope_but_never_widens_it(authenticator: Authenticator) -> None:
    auth = authenticator
    first = login(auth, scopes=frozenset({"reports:read", "appointments:read"}))
    client = app_of(auth, first)
    assert first.refresh_token is not None
    with pytest.raises(GrantError) as wider:
        auth.tokens.refresh(first.refresh_token, client, frozenset({"appointments:write"}))
    assert wider.value.error == "invalid_scope"
    narrower = auth.tokens.refresh(first.refresh_token, client, frozenset({"reports:read"}))
    assert narrower.scopes == {"reports:read"}
    # The family keeps its scope: the next refresh may ask for the original set again.
    assert narrower.refresh_token is not None
    again = auth.tokens.refresh(narrower.refresh_token, client, None)
    assert again.scopes == {"reports:read", "appointments:read"}


def test_a_refresh_token_of_one_client_is_refused_for_another(authenticator: Authenticator) -> None:
    auth = authenticator
    issued = login(auth)
    other = app_client(auth, name="other")
    assert issued.refresh_token is not None
    with pytest.raises(GrantError):
        auth.tokens.refresh(issued.refresh_token, other, None)
    # The refusal did not consume the token for its rightful client.
    assert auth.tokens.refresh(issued.refresh_token, app_of(auth, issued), None)


@pytest.mark.parametrize("field", ["expires_at", "idle_expires_at"])
def test_absolute_and_idle_lifetimes_end_a_refresh_token(
    authenticator: Authenticator, field: str
) -> None:
    auth = authenticator
    client = app_client(auth)
    user = auth.users.get("manager")
    now = datetime.now(UTC)
    value, parsed = keys.generate("amr")
    lapsed = {"expires_at": now + timedelta(days=1), "idle_expires_at": now + timedelta(days=1)}
    lapsed[field] = now - timedelta(seconds=1)
    auth.store.add_refresh_token(
        RefreshToken(
            id=parsed.key_id,
            family_id=parsed.key_id,
            client_id=client.id,
            subject=user.username,
            kind="user",
            scopes=frozenset({"reports:read"}),
            credential_epoch=user.credential_epoch,
            created_at=now - timedelta(days=2),
            secret_hash=keys.hash_secret(parsed),
            **lapsed,
        )
    )
    with pytest.raises(GrantError):
        auth.tokens.refresh(value, client, None)


@pytest.mark.parametrize(
    "value", ["", "amr_", "amr_garbage", "amk_" + "a" * 12 + "_" + "b" * 38, "x" * 500]
)
def test_malformed_refresh_tokens_are_invalid_grants(
    authenticator: Authenticator, value: str
) -> None:
    with pytest.raises(GrantError) as refused:
        authenticator.tokens.refresh(value, app_client(authenticator), None)
    assert refused.value.error == "invalid_grant"


def test_twenty_simultaneous_refreshes_exactly_one_succeeds(
    make_authenticator: AuthenticatorFactory, sql_store: SQLStore
) -> None:
    auth = make_authenticator(sql_store)
    issued = login(auth)
    client = app_of(auth, issued)
    assert issued.refresh_token is not None
    barrier = threading.Barrier(20)
    results: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        barrier.wait()
        try:
            auth.tokens.refresh(issued.refresh_token or "", client, None)
            outcome = "ok"
        except GrantError as exc:
            outcome = exc.error
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=work) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["invalid_grant"] * 19 + ["ok"]


# -- revocation and introspection ----------------------------------------------------------


def test_revoking_a_refresh_token_kills_its_access_tokens(authenticator: Authenticator) -> None:
    auth = authenticator
    issued = login(auth)
    client = app_of(auth, issued)
    assert auth.authenticate(bearer(issued.access_token)) is not None
    assert auth.tokens.revoke(issued.refresh_token or "", client)
    with pytest.raises(InvalidToken):
        auth.authenticate(bearer(issued.access_token))
    assert auth.tokens.introspect(issued.refresh_token or "") == {"active": False}


def test_a_client_cannot_revoke_another_clients_token(authenticator: Authenticator) -> None:
    auth = authenticator
    issued = login(auth)
    other = app_client(auth, name="other")
    assert not auth.tokens.revoke(issued.access_token, other)
    assert not auth.tokens.revoke(issued.refresh_token or "", other)
    assert auth.authenticate(bearer(issued.access_token)) is not None


def test_introspection_reads_the_store_not_the_cache(
    make_authenticator: AuthenticatorFactory, tmp_path: Path
) -> None:
    url = sqlite_file_url(tmp_path)
    api = make_authenticator(url)
    admin = make_authenticator(url, seed=False, schema=False)
    issued = login(api)
    live = api.tokens.introspect(issued.access_token)
    assert live["active"] is True
    assert live["sub"] == "manager"
    assert isinstance(live["exp"], int)
    assert isinstance(live["iat"], int)
    admin.tokens.revoke(issued.access_token, app_of(admin, issued))
    assert api.tokens.introspect(issued.access_token) == {"active": False}


@pytest.mark.parametrize("value", ["", "garbage", "amt_x", "amr_x", "amk_x"])
def test_introspecting_garbage_is_inactive(authenticator: Authenticator, value: str) -> None:
    assert authenticator.tokens.introspect(value) == {"active": False}


def test_issued_tokens_never_show_secrets_in_repr(authenticator: Authenticator) -> None:
    issued = login(authenticator)
    assert issued.access_token not in repr(issued)
    assert (issued.refresh_token or "") not in repr(issued)
