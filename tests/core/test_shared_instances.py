"""Two authenticators ("instances") on one database and one Redis: changes reach both at once.

The staleness bound is set to an hour here, so anything the second instance
learns within the test's deadline it learned from the bus, not from its cache
expiring. The deadline is a liveness bound for a slow machine, not a timing claim.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from authmw import Authenticator, Settings
from authmw.credentials import Credential
from authmw.errors import InvalidToken
from authmw.shared import Invalidation, RedisBus
from authmw.store.sql import SQLStore
from tests.conftest import PASSWORD, SECRET_KEY, AuthenticatorFactory
from tests.core.conftest import sqlite_file_url
from tests.core.proxy import TcpProxy
from tests.core.support import CountingStore
from tests.core.test_shared_redis import REDIS_SKIP, REDIS_URL

DEADLINE = 10.0
HOUR = 3600.0


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE} s: {what}")
        time.sleep(0.02)


def refused(auth: Authenticator, value: str) -> bool:
    try:
        auth.authenticate(Credential("bearer", value))
    except InvalidToken:
        return True
    return False


@pytest.fixture
def redis_url() -> str:
    if not REDIS_URL:
        pytest.skip(REDIS_SKIP)
    pytest.importorskip("redis")
    return REDIS_URL


@pytest.fixture
def proxy(redis_url: str) -> Iterator[TcpProxy]:
    target = urlsplit(redis_url)
    with TcpProxy(target.hostname or "127.0.0.1", target.port or 6379) as proxy:
        yield proxy


def through(proxy: TcpProxy, url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(netloc=f"127.0.0.1:{proxy.port}"))


@pytest.fixture
def pair(
    make_authenticator: AuthenticatorFactory, tmp_path: Path, redis_url: str
) -> tuple[Authenticator, Authenticator]:
    """Instance A (seeded) and instance B, each with its own bus on one channel."""
    url = sqlite_file_url(tmp_path)
    channel = f"authmw:test:{tmp_path.name}"
    settings = Settings(secret_keys=(SECRET_KEY,), cache_ttl=HOUR)
    a = make_authenticator(url, settings=settings, bus=RedisBus(redis_url, channel=channel))
    b = make_authenticator(
        url, settings=settings, schema=False, seed=False, bus=RedisBus(redis_url, channel=channel)
    )
    assert a.bus is not None
    assert b.bus is not None
    eventually(lambda: a.bus is not None and a.bus.connected, "A subscribed")
    eventually(lambda: b.bus is not None and b.bus.connected, "B subscribed")
    return a, b


def user_token(auth: Authenticator, user: str = "manager") -> str:
    app = auth.clients.create_app(
        f"app-{time.monotonic_ns()}", redirect_uris=["https://a.example/cb"], first_party=True
    ).client
    record = auth.users.get(user)
    return auth.tokens.issue_for_user(
        record, app, auth.policy.scopes_for(record.roles)
    ).access_token


def test_a_key_revoked_on_one_instance_is_refused_by_the_other(
    pair: tuple[Authenticator, Authenticator],
) -> None:
    a, b = pair
    issued = a.keys.create(name="shared", owner="admin")
    assert b.authenticate(Credential("x-api-key", issued.key)) is not None  # now cached on B
    a.keys.revoke(issued.record.id)
    eventually(lambda: refused(b, issued.key), "B refuses the revoked key")


def test_a_revoked_token_and_a_password_change_reach_the_other_instance(
    pair: tuple[Authenticator, Authenticator],
) -> None:
    a, b = pair
    revoked, other = user_token(a), user_token(a)
    assert b.authenticate(Credential("bearer", revoked)) is not None
    assert b.authenticate(Credential("bearer", other)) is not None
    app = a.clients.get(a.tokens.codec.decode(revoked).client_id)
    assert a.tokens.revoke(revoked, app)
    eventually(lambda: refused(b, revoked), "B refuses the revoked token")
    assert b.authenticate(Credential("bearer", other)) is not None  # only that one
    a.users.change_password("manager", PASSWORD, "a brand new passphrase")
    eventually(lambda: refused(b, other), "B refuses the tokens of the old password")


def test_an_app_disabled_on_one_instance_loses_its_tokens_on_the_other(
    pair: tuple[Authenticator, Authenticator], redis_url: str, tmp_path: Path
) -> None:
    a, b = pair
    heard: list[Invalidation] = []
    listener = RedisBus(redis_url, channel=f"authmw:test:{tmp_path.name}")
    listener.subscribe(heard.append)
    try:
        eventually(lambda: listener.connected, "the listener subscribed")
        disabled, other = user_token(a), user_token(a)  # two apps, one user
        assert b.authenticate(Credential("bearer", disabled)) is not None
        assert b.authenticate(Credential("bearer", other)) is not None
        app_id = a.tokens.codec.decode(disabled).client_id
        a.clients.disable(app_id)
        eventually(lambda: refused(b, disabled), "B refuses the disabled app's token")
        assert b.authenticate(Credential("bearer", other)) is not None  # only that app's
        # An instance of an earlier release, mid-upgrade, knows only "subject": it
        # hears that too, and drops the app's own (client credentials) tokens.
        expected = {Invalidation("client", app_id), Invalidation("subject", app_id)}
        eventually(lambda: expected <= set(heard), "both messages on the bus")
    finally:
        listener.close()


def test_while_the_bus_is_down_every_request_is_checked_against_the_store(
    make_authenticator: AuthenticatorFactory,
    tmp_path: Path,
    redis_url: str,
    proxy: TcpProxy,
) -> None:
    url = sqlite_file_url(tmp_path)
    settings = Settings(secret_keys=(SECRET_KEY,), cache_ttl=HOUR)
    admin = make_authenticator(url, settings=settings)
    store = CountingStore(SQLStore(url))
    bus = RedisBus(through(proxy, redis_url), channel=f"authmw:test:{tmp_path.name}")
    bus.heartbeat = 0.5
    api = make_authenticator(store, settings=settings, schema=False, seed=False, bus=bus)
    eventually(lambda: bus.connected, "subscribed")
    key = admin.keys.create(name="k", owner="admin")
    assert api.authenticate(Credential("x-api-key", key.key)) is not None
    before = store.count("find_key")
    assert api.authenticate(Credential("x-api-key", key.key)) is not None
    assert store.count("find_key") == before  # cached while the bus is up

    proxy.cut()
    eventually(lambda: not bus.connected, "the bus notices the cut")
    assert api.authenticate(Credential("x-api-key", key.key)) is not None
    assert api.authenticate(Credential("x-api-key", key.key)) is not None
    assert store.count("find_key") == before + 2  # no cache: the store was asked each time
    # A revocation made while the bus is down is seen at once: nothing was cached.
    admin.keys.revoke(key.record.id)
    assert refused(api, key.key)

    proxy.restore()
    eventually(lambda: bus.connected, "the bus reconnects by itself")
    second = admin.keys.create(name="k2", owner="admin")
    assert api.authenticate(Credential("x-api-key", second.key)) is not None
    calls = store.count("find_key")
    assert api.authenticate(Credential("x-api-key", second.key)) is not None
    assert store.count("find_key") == calls  # cached again
