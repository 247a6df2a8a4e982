"""The auth endpoints under attack and failure: throttle, rehash, logs, audit, fuzz, store down."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import bcrypt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authmw import Settings
from authmw.store.sql import SQLStore, metadata
from tests.conftest import PASSWORD, SECRET_KEY, AuthenticatorFactory
from tests.core.conftest import sqlite_file_url
from tests.core.oauth_support import (
    FORM,
    PEER,
    ASGIDriver,
    Driver,
    Reply,
    World,
    WSGIDriver,
    basic,
    build_world,
    form,
    make_driver,
    no_store,
)

pytestmark = pytest.mark.anyio

TOKEN = "/oauth/token"
REVOKE = "/oauth/revoke"
INTROSPECT = "/oauth/introspect"
WRONG = "not the right password"


@pytest.fixture
def world(make_authenticator: AuthenticatorFactory) -> World:
    return build_world(make_authenticator)


@pytest.fixture(params=["wsgi", "asgi"])
def driver(request: pytest.FixtureRequest, world: World) -> Driver:
    return make_driver(request.param, world)


@pytest.fixture
def wsgi(world: World) -> Driver:
    return make_driver("wsgi", world)


# -- login throttling ------------------------------------------------------------------


def assert_throttled(reply: Reply) -> int:
    """A 429 with an RFC 6749 error body and ``Retry-After`` in whole seconds; returns it."""
    assert reply.status == 429, reply.body
    assert isinstance(reply.error, str)
    assert isinstance(reply.json()["error_description"], str)
    assert "access_token" not in reply.json()
    assert no_store(reply)
    retry_after = reply.header("retry-after")
    assert retry_after is not None
    assert retry_after.isdigit()
    assert int(retry_after) > 0
    return int(retry_after)


async def fail_logins(driver: Driver, world: World, times: int, **send: Any) -> None:
    for _ in range(times):
        reply = await driver.send(TOKEN, world.login_body(password=WRONG), **send)
        assert (reply.status, reply.error) == (400, "invalid_grant")


async def test_failed_logins_from_one_address_are_throttled_softly(
    driver: Driver, world: World
) -> None:
    limit = world.endpoints.throttle.per_account_address.failures
    await fail_logins(driver, world, limit)
    # Now even the right password is refused, without being checked.
    before = world.event_names()
    retry_after = assert_throttled(await driver.send(TOKEN, world.login_body()))
    assert world.event_names()[len(before) :] == ["login.throttled"]
    assert retry_after == 300  # the clock stands at the start of the 300-second window
    # Soft: the real user at another address still logs in.
    elsewhere = await driver.send(TOKEN, world.login_body(), peer="203.0.113.9")
    assert elsewhere.status == 200
    # And once Retry-After has passed, so does this address.
    world.clock.advance(retry_after)
    assert (await driver.send(TOKEN, world.login_body())).status == 200


async def test_a_success_clears_the_address_counter(wsgi: Driver, world: World) -> None:
    limit = world.endpoints.throttle.per_account_address.failures
    await fail_logins(wsgi, world, limit - 1)
    assert (await wsgi.send(TOKEN, world.login_body())).status == 200
    await fail_logins(wsgi, world, limit - 1)
    assert (await wsgi.send(TOKEN, world.login_body())).status == 200


async def test_throttling_counts_the_account_not_other_accounts(wsgi: Driver, world: World) -> None:
    await fail_logins(wsgi, world, world.endpoints.throttle.per_account_address.failures)
    other = await wsgi.send(TOKEN, world.login_body("employee"))
    assert other.status == 200


@pytest.fixture
def proxied(make_authenticator: AuthenticatorFactory) -> World:
    settings = Settings(secret_keys=(SECRET_KEY,), trusted_proxies=("10.0.0.0/8",))
    return build_world(make_authenticator, settings=settings)


@pytest.mark.parametrize("name", ["wsgi", "asgi"])
async def test_x_forwarded_for_is_believed_from_a_trusted_proxy(proxied: World, name: str) -> None:
    driver = make_driver(name, proxied)
    limit = proxied.endpoints.throttle.per_account_address.failures
    client = {"X-Forwarded-For": "203.0.113.5"}
    await fail_logins(driver, proxied, limit, peer="10.1.2.3", headers=client)
    assert_throttled(
        await driver.send(TOKEN, proxied.login_body(), peer="10.1.2.3", headers=client)
    )
    # Whatever the client prepends, the address our proxy saw is the one counted.
    spoofed = {"X-Forwarded-For": "192.0.2.1, 203.0.113.5"}
    assert_throttled(
        await driver.send(TOKEN, proxied.login_body(), peer="10.9.9.9", headers=spoofed)
    )
    # Another client behind the same proxy is not.
    other = {"X-Forwarded-For": "203.0.113.6"}
    reply = await driver.send(TOKEN, proxied.login_body(), peer="10.1.2.3", headers=other)
    assert reply.status == 200


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(
    driver: Driver, world: World
) -> None:
    limit = world.endpoints.throttle.per_account_address.failures
    # A client that invents a new X-Forwarded-For for every guess gains nothing.
    for n in range(limit):
        headers = {"X-Forwarded-For": f"192.0.2.{n + 1}"}
        await fail_logins(driver, world, 1, headers=headers)
    fresh = {"X-Forwarded-For": "192.0.2.200"}
    assert_throttled(await driver.send(TOKEN, world.login_body(), headers=fresh))


# -- password hashes ------------------------------------------------------------------------


def bcrypt_hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


async def test_a_bcrypt_hash_is_upgraded_to_argon2id_at_login(driver: Driver, world: World) -> None:
    store = world.auth.store
    store.update_user("manager", password_hash=bcrypt_hash(PASSWORD))
    epoch = world.auth.users.get("manager").credential_epoch
    assert (await driver.send(TOKEN, world.login_body())).status == 200
    user = store.get_user("manager")
    assert user is not None
    assert user.password_hash is not None
    assert user.password_hash.startswith("$argon2id$")
    # A rehash is not a password change: live tokens survive it.
    assert user.credential_epoch == epoch
    assert (await driver.send(TOKEN, world.login_body())).status == 200


async def test_a_wrong_password_leaves_a_bcrypt_hash_alone(wsgi: Driver, world: World) -> None:
    stored = bcrypt_hash(PASSWORD)
    world.auth.store.update_user("manager", password_hash=stored)
    await fail_logins(wsgi, world, 1)
    user = world.auth.store.get_user("manager")
    assert user is not None
    assert user.password_hash == stored


@pytest.mark.parametrize(
    "password",
    [PASSWORD + "x" * 72, "\u00e9" * 40, PASSWORD[:8] + "\U0001f600" * 20, "y" * 5000],
    ids=["ascii", "two-byte", "emoji", "huge"],
)
async def test_long_passwords_against_bcrypt_are_invalid_grants(
    driver: Driver, world: World, password: str
) -> None:
    world.auth.store.update_user("manager", password_hash=bcrypt_hash(PASSWORD))
    assert len(password.encode()) > 72
    reply = await driver.send(TOKEN, world.login_body(password=password))
    assert (reply.status, reply.error) == (400, "invalid_grant")


# -- logs -------------------------------------------------------------------------------------

# What every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class Collect(logging.Handler):
    """Keep every record that reaches the root logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def every_logger_at_debug(caplog: pytest.LogCaptureFixture) -> Iterator[Collect]:
    """Root, oauthlib, authmw and every logger created so far at DEBUG; restored after."""
    handler = Collect()
    root = logging.getLogger()
    names = ["", "oauthlib", "authmw", *logging.Logger.manager.loggerDict]
    loggers = [logging.getLogger(name) for name in names]
    saved = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    root.addHandler(handler)
    caplog.set_level(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for logger, level in saved:
            logger.setLevel(level)


def secret_fragments(value: str) -> list[str]:
    """``value`` and the parts of it that would still be a leak on their own."""
    fragments = [value]
    if value.count("_") >= 2 and not value.startswith("amt_"):
        # amcs_/amr_/amk_<id>_<secret>: the id may be logged, the secret part never.
        fragments.append(value.split("_", 2)[2])
    if value.startswith("amt_"):
        # An access token's signature and its signed payload.
        payload, _, signature = value[4:].rpartition(".")
        fragments += [signature, payload]
    return [f for f in fragments if len(f) >= 8]


async def all_flows(driver: Driver, world: World) -> list[str]:
    """Run every flow of the endpoints once; return every secret value they involved."""
    auth = world.auth
    seen: list[str] = [PASSWORD, WRONG]
    for client in (world.web, world.third, world.machine):
        assert client.secret is not None
        seen.append(client.secret)
    api_key = auth.keys.create(name="ci", owner="admin").key
    seen.append(api_key)

    # Password grant, by form and by Basic.
    tokens = (await driver.send(TOKEN, world.login_body())).json()
    seen += [tokens["access_token"], tokens["refresh_token"]]
    basic_login = await driver.send(
        TOKEN,
        form(grant_type="password", username="employee", password=PASSWORD),
        headers=world.basic(world.web),
    )
    seen += [basic_login.json()["access_token"], basic_login.json()["refresh_token"]]
    # Refresh, then a reuse of the first refresh token.
    refresh = form(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    rotated = (await driver.send(TOKEN, refresh, headers=world.basic(world.web))).json()
    seen += [rotated["access_token"], rotated["refresh_token"]]
    await driver.send(TOKEN, refresh, headers=world.basic(world.web))
    # Client credentials.
    machine = (
        await driver.send(
            TOKEN, form(grant_type="client_credentials"), headers=world.basic(world.machine)
        )
    ).json()
    seen.append(machine["access_token"])
    # Introspection and revocation of each kind of token, and of an API key.
    for token in (machine["access_token"], basic_login.json()["refresh_token"], api_key):
        await driver.send(INTROSPECT, form(token=token), headers=world.basic(world.machine))
    for token in (basic_login.json()["access_token"], basic_login.json()["refresh_token"]):
        await driver.send(REVOKE, form(token=token), headers=world.basic(world.web))
    await driver.send(REVOKE, form(token=api_key), headers=world.basic(world.web))
    # Failed logins, up to and past the throttle; a password typed as the username.
    for _ in range(6):
        await driver.send(TOKEN, world.login_body(password=WRONG))
    await driver.send(TOKEN, world.login_body(password=WRONG, client=world.third))
    # Bad client authentication of every sort, secrets included.
    assert world.machine.secret is not None
    wrong_secret = world.machine.secret[:-4] + "AAAA"
    seen.append(wrong_secret)
    for header in (
        basic(world.machine.client.id, wrong_secret),
        basic(world.web.client.id, world.machine.secret),
        "Basic " + base64.b64encode(world.machine.secret.encode()).decode(),
        "Bearer " + tokens["access_token"],
    ):
        await driver.send(
            TOKEN, form(grant_type="client_credentials"), headers={"Authorization": header}
        )
    await driver.send(
        TOKEN, form(grant_type="client_credentials", client_id="x", client_secret=api_key)
    )
    # Secrets where they do not belong: the query string, a refresh_token parameter.
    await driver.send(TOKEN, world.login_body(), query=form(client_secret=wrong_secret).decode())
    await driver.send(
        TOKEN,
        form(grant_type="refresh_token", refresh_token=api_key),
        headers=world.basic(world.web),
    )
    return seen


@pytest.mark.parametrize("name", ["wsgi", "asgi"])
async def test_no_secret_reaches_any_log_record(
    world: World,
    name: str,
    every_logger_at_debug: Collect,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secrets = await all_flows(make_driver(name, world), world)
    # httpx is the test's own HTTP client, not the server: it logs the URLs it
    # requests, and one of them deliberately carries a secret in its query.
    records = [
        r
        for r in [*every_logger_at_debug.records, *caplog.records]
        if r.name.split(".")[0] not in ("httpx", "httpcore")
    ]
    assert any(r.name.startswith("authmw") for r in records)  # the capture works
    fragments = [f for value in secrets for f in secret_fragments(value)]
    for record in records:
        texts = [every_logger_at_debug.format(record), record.getMessage()]
        texts += [repr(v) for k, v in record.__dict__.items() if k not in _STANDARD]
        for text in texts:
            for fragment in fragments:
                assert fragment not in text, f"{record.name}: {text[:200]}"


# -- audit --------------------------------------------------------------------------------------


async def test_each_flow_emits_its_audit_events(driver: Driver, world: World) -> None:
    def new_events(since: int) -> list[str]:
        return world.event_names()[since:]

    mark = len(world.events)
    tokens = (await driver.send(TOKEN, world.login_body())).json()
    assert new_events(mark) == ["login.succeeded", "token.issued"]
    issued = world.events[-1].fields
    assert issued["grant_type"] == "password"
    assert issued["user"] == "manager"
    assert issued["client_id"] == world.web.client.id
    assert issued["token_id"] == world.auth.tokens.codec.decode(tokens["access_token"]).token_id
    assert isinstance(issued["family_id"], str)
    family = issued["family_id"]

    mark = len(world.events)
    refresh = form(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    await driver.send(TOKEN, refresh, headers=world.basic(world.web))
    assert new_events(mark) == ["token.refreshed", "token.issued"]
    assert world.events[-1].fields["family_id"] == family
    assert world.events[-1].fields["grant_type"] == "refresh_token"

    mark = len(world.events)
    await driver.send(TOKEN, refresh, headers=world.basic(world.web))
    assert new_events(mark) == ["refresh.reused"]
    assert world.events[-1].fields["family_id"] == family

    mark = len(world.events)
    machine = await driver.send(
        TOKEN, form(grant_type="client_credentials"), headers=world.basic(world.machine)
    )
    assert new_events(mark) == ["token.issued"]
    assert world.events[-1].fields["grant_type"] == "client_credentials"
    assert world.events[-1].fields["family_id"] is None

    mark = len(world.events)
    introspected = await driver.send(
        INTROSPECT,
        form(token=machine.json()["access_token"]),
        headers=world.basic(world.machine),
    )
    assert new_events(mark) == ["token.introspected"]
    assert world.events[-1].fields["client_id"] == world.machine.client.id
    assert world.events[-1].fields["token_id"] == introspected.json()["jti"]

    fresh = (await driver.send(TOKEN, world.login_body("employee"))).json()
    mark = len(world.events)
    await driver.send(REVOKE, form(token=fresh["access_token"]), headers=world.basic(world.web))
    assert new_events(mark) == ["token.revoked"]
    assert world.events[-1].fields["kind"] == "access"
    assert isinstance(world.events[-1].fields["token_id"], str)
    mark = len(world.events)
    await driver.send(REVOKE, form(token=fresh["refresh_token"]), headers=world.basic(world.web))
    assert new_events(mark) == ["token.revoked"]
    assert world.events[-1].fields["kind"] == "refresh"
    assert isinstance(world.events[-1].fields["family_id"], str)

    mark = len(world.events)
    await driver.send(TOKEN, world.login_body(password=WRONG))
    assert new_events(mark) == ["login.failed"]
    assert world.events[-1].fields["address"] == PEER

    mark = len(world.events)
    await driver.send(
        TOKEN,
        form(grant_type="client_credentials"),
        headers={"Authorization": basic(world.machine.client.id, "wrong")},
    )
    assert new_events(mark) == ["client.authentication_failed"]

    # No event holds a secret.
    secrets = [PASSWORD, WRONG, tokens["access_token"], tokens["refresh_token"]]
    secrets += [fresh["access_token"], fresh["refresh_token"]]
    for value in secrets:
        for event in world.events:
            assert all(value not in str(v) for v in event.fields.values())
    for client in (world.web, world.machine):
        assert client.secret is not None
        secret_part = client.secret.split("_", 2)[2]
        for event in world.events:
            assert all(secret_part not in str(v) for v in event.fields.values())


# -- fuzz ---------------------------------------------------------------------------------------

PARAMS = [
    "grant_type",
    "username",
    "password",
    "scope",
    "refresh_token",
    "client_id",
    "client_secret",
    "token",
    "token_type_hint",
    "code",
]
VALUES = ["password", "refresh_token", "client_credentials", "manager", PASSWORD, "admin", ""]
printable = st.characters(min_codepoint=32, max_codepoint=126)


@st.composite
def requests(draw: st.DrawFn, world: World) -> tuple[str, bytes, dict[str, str], str | None]:
    """A request to one of the endpoints: a form body mixing real and random parts."""
    known = [*VALUES, world.web.client.id, world.machine.client.id, world.web.secret or ""]
    name = st.sampled_from(PARAMS) | st.text(max_size=12)
    value = st.sampled_from(known) | st.text(max_size=40)
    pairs = draw(st.lists(st.tuples(name, value), max_size=8))
    body = form(*pairs) if draw(st.booleans()) else draw(st.binary(max_size=200))
    headers: dict[str, str] = {}
    auth = draw(
        st.none()
        | st.sampled_from([basic(world.web.client.id, world.web.secret or ""), "Basic", "basic  "])
        | st.text(printable, max_size=60)
        | st.binary(max_size=60).map(lambda b: "Basic " + base64.b64encode(b).decode())
        | st.tuples(st.text(printable, max_size=20), st.text(printable, max_size=20)).map(
            lambda p: basic(*p)
        )
    )
    if auth is not None:
        headers["Authorization"] = auth
    content_type = draw(st.sampled_from([FORM, FORM + "; charset=utf-8", "text/plain", None]))
    path = draw(st.sampled_from([TOKEN, REVOKE, INTROSPECT]))
    return path, body, headers, content_type


def assert_well_formed(reply: Reply) -> None:
    assert reply.status < 500, reply.body
    if reply.status == 200:
        assert reply.body == b"" or isinstance(reply.json(), dict)
        return
    assert isinstance(reply.json()["error"], str)
    assert no_store(reply)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzz_wsgi_never_a_5xx_always_an_error_body(
    make_authenticator: AuthenticatorFactory, data: st.DataObject
) -> None:
    world = fuzz_world(make_authenticator)
    driver = WSGIDriver(world.endpoints)
    path, body, headers, content_type = data.draw(requests(world))
    assert_well_formed(driver.send_sync(path, body, headers=headers, content_type=content_type))


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzz_asgi_never_a_5xx_always_an_error_body(
    make_authenticator: AuthenticatorFactory, data: st.DataObject
) -> None:
    world = fuzz_world(make_authenticator)
    driver = ASGIDriver(world.endpoints)
    path, body, headers, content_type = data.draw(requests(world))

    async def send() -> Reply:
        return await driver.send(path, body, headers=headers, content_type=content_type)

    assert_well_formed(anyio.run(send))


_FUZZ_WORLDS: dict[int, World] = {}


def fuzz_world(make_authenticator: AuthenticatorFactory) -> World:
    """One world per test function (hypothesis calls the body many times with one fixture)."""
    key = id(make_authenticator)
    if key not in _FUZZ_WORLDS:
        _FUZZ_WORLDS.clear()
        _FUZZ_WORLDS[key] = build_world(make_authenticator)
    return _FUZZ_WORLDS[key]


# -- the store goes down -----------------------------------------------------------------------


def _drop_all(world: World, tmp_path: Path) -> None:
    store = world.auth.store
    assert isinstance(store, SQLStore)
    metadata.drop_all(store.engine)


def _replace_file_with_directory(world: World, tmp_path: Path) -> None:
    world.auth.store.close()
    (tmp_path / "authmw.db").unlink()
    (tmp_path / "authmw.db").mkdir()  # gone, and cannot be created again


def _drop_refresh_tokens(world: World, tmp_path: Path) -> None:
    # Clients and users still answer: the failure comes after client authentication.
    store = world.auth.store
    assert isinstance(store, SQLStore)
    metadata.tables["authmw_refresh_tokens"].drop(store.engine)
    metadata.tables["authmw_revocations"].drop(store.engine)


BREAKS = {
    "tables dropped": _drop_all,
    "file replaced by a directory": _replace_file_with_directory,
    "refresh and revocation tables dropped": _drop_refresh_tokens,
}


@pytest.mark.parametrize("name", ["wsgi", "asgi"])
@pytest.mark.parametrize("brk", BREAKS.values(), ids=BREAKS.keys())
async def test_a_broken_store_is_503_with_retry_after_and_never_a_token(
    make_authenticator: AuthenticatorFactory,
    tmp_path: Path,
    name: str,
    brk: Any,
) -> None:
    world = build_world(make_authenticator, store=sqlite_file_url(tmp_path))
    driver = make_driver(name, world)
    tokens = (await driver.send(TOKEN, world.login_body())).json()
    brk(world, tmp_path)
    requests = [
        (TOKEN, world.login_body(), {}),
        (TOKEN, form(grant_type="client_credentials"), world.basic(world.machine)),
        (
            TOKEN,
            form(grant_type="refresh_token", refresh_token=tokens["refresh_token"]),
            world.basic(world.web),
        ),
        (INTROSPECT, form(token=tokens["access_token"]), world.basic(world.machine)),
        (REVOKE, form(token=tokens["refresh_token"]), world.basic(world.web)),
    ]
    if brk is _drop_refresh_tokens:
        # Client credentials need neither table: that grant rightly still works.
        del requests[1]
    for path, body, headers in requests:
        reply = await driver.send(path, body, headers=headers)
        assert reply.status == 503, (path, reply.body)
        assert reply.error == "temporarily_unavailable"
        assert reply.header("retry-after") == "5"
        assert no_store(reply)
        assert b"access_token" not in reply.body
        assert b"active" not in reply.body
