"""The consent page, the code exchange at /oauth/token, delegated tokens and the consents API.

RFC 6749 sections 4.1.2 to 4.1.4 and 10.5 (one-time codes), RFC 7636 section 4.6
(the verifier), RFC 9700 section 2.1.1. Browsing goes through WebTest
(:class:`~tests.core.oauth_support.Browser`); token requests through the drivers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from authmw import keys as _keys
from authmw.clients import IssuedClient
from authmw.credentials import Credential
from authmw.errors import InvalidToken
from authmw.oauth2 import AuthEndpoints
from authmw.store.sql import SQLStore
from tests.conftest import PASSWORD, AuthenticatorFactory
from tests.core.conftest import sqlite_file_url
from tests.core.oauth_support import (
    REDIRECT,
    Browser,
    Driver,
    Pkce,
    Reply,
    TestResponse,
    World,
    WSGIDriver,
    authorize_query,
    basic,
    build_world,
    form,
    make_driver,
    no_store,
    redirect_params,
)

pytestmark = pytest.mark.anyio

TOKEN = "/oauth/token"
CONSENTS = "/oauth/consents"
WIDE_SCOPES = ["appointments:read", "reports:read", "admin"]


@pytest.fixture
def world(make_authenticator: AuthenticatorFactory) -> World:
    return build_world(make_authenticator)


@pytest.fixture
def browser(world: World) -> Browser:
    return Browser(world.endpoints)


@pytest.fixture(params=["wsgi", "asgi"])
def driver(request: pytest.FixtureRequest, world: World) -> Driver:
    return make_driver(request.param, world)


@pytest.fixture
def wsgi(world: World) -> Driver:
    return make_driver("wsgi", world)


@pytest.fixture
def wide(world: World) -> IssuedClient:
    """A confidential third-party app that may ask for reports and admin too."""
    return world.auth.clients.create_app("planner", redirect_uris=[REDIRECT], scopes=WIDE_SCOPES)


def exchange_body(
    app: IssuedClient,
    code: str,
    verifier: str | None,
    *,
    redirect_uri: str | None = REDIRECT,
    secret: bool = True,
) -> bytes:
    """A ``grant_type=authorization_code`` request (``None`` leaves a parameter out)."""
    params = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        "client_id": app.client.id,
        "client_secret": app.secret if secret else None,
    }
    return form(**{k: v for k, v in params.items() if v is not None})


async def exchange(driver: Driver, app: IssuedClient, code: str, pkce: Pkce, **kw: Any) -> Reply:
    return await driver.send(TOKEN, exchange_body(app, code, pkce.verifier, **kw))


def assert_token_error(reply: Reply, status: int, error: str) -> None:
    assert (reply.status, reply.error) == (status, error), reply.body
    assert reply.json()["error_description"]
    assert no_store(reply)
    assert b"access_token" not in reply.body


def refused(world: World, access_token: str) -> bool:
    try:
        world.principal(access_token)
    except InvalidToken:
        return True
    return False


async def refresh(driver: Driver, world: World, app: IssuedClient, token: str) -> Reply:
    body = form(grant_type="refresh_token", refresh_token=token, **world.creds(app))
    return await driver.send(TOKEN, body)


def consent_text(page: TestResponse) -> str:
    return " ".join(page.text.split())


# -- the consent page ----------------------------------------------------------------------------


def test_the_consent_page_names_the_app_and_the_scopes_asked(
    browser: Browser, world: World, wide: IssuedClient
) -> None:
    query = authorize_query(wide.client.id, scope="appointments:read reports:read")
    page = browser.login(browser.get(query))
    assert page.status_int == 200
    text = consent_text(page)
    assert "<strong>planner</strong> wants to access your account" in text
    assert "Signed in as <strong>manager</strong>" in text
    assert '<div class="scope-name">appointments:read</div>' in text
    assert '<div class="scope-name">reports:read</div>' in text
    assert "which your role does not include" not in text
    assert "planner is not run by authmw" in text
    assert [b.attrs.get("value") for b in page.html.find_all("button")] == ["deny", "allow"]


def test_scope_descriptions_are_shown(world: World, wide: IssuedClient) -> None:
    endpoints = AuthEndpoints(
        world.auth, scope_descriptions={"reports:read": "Read your team's reports"}
    )
    browser = Browser(endpoints)
    page = browser.login(browser.get(authorize_query(wide.client.id, scope="reports:read")))
    assert "Read your team&#39;s reports" in page.text


def test_scopes_beyond_the_users_roles_are_listed_as_withheld_and_not_granted(
    browser: Browser, world: World, wide: IssuedClient
) -> None:
    query = authorize_query(wide.client.id, scope="appointments:read reports:read admin")
    page = browser.login(browser.get(query), "employee")
    text = consent_text(page)
    listed = text.split("It also asked for")[0]
    assert "appointments:read" in listed
    assert "reports:read" not in listed
    assert "admin" not in listed.split("Signed in as")[1]
    withheld = text.split("It also asked for")[1].split("</p>")[0]
    assert 'class="scope-name">admin</span>' in withheld
    assert 'class="scope-name">reports:read</span>' in withheld
    assert "it will not get them" in withheld
    browser.decide(page, "allow")
    consent = world.auth.store.get_consent("employee", wide.client.id)
    assert consent is not None
    assert consent.scopes == {"appointments:read"}


def test_deny_redirects_access_denied_with_state(
    browser: Browser, world: World, wide: IssuedClient
) -> None:
    page = browser.login(browser.get(authorize_query(wide.client.id, state="s-123")))
    back = browser.decide(page, "deny")
    assert back.status_int == 302
    assert back.headers["Location"].startswith(REDIRECT + "?")
    params = redirect_params(back.headers["Location"])
    assert params["error"] == "access_denied"
    assert params["error_description"]
    assert params["state"] == "s-123"
    assert "code" not in params
    assert world.auth.store.get_consent("manager", wide.client.id) is None
    # A deny is not remembered: the next request asks again.
    again = browser.get(authorize_query(wide.client.id))
    assert again.status_int == 200
    assert "wants to access your account" in again.text


def test_allow_redirects_with_a_code_and_state(
    browser: Browser, world: World, wide: IssuedClient
) -> None:
    page = browser.login(browser.get(authorize_query(wide.client.id, state="s-9")))
    back = browser.decide(page, "allow")
    assert back.status_int == 302
    assert back.headers["Cache-Control"] == "no-store"
    params = redirect_params(back.headers["Location"])
    assert set(params) == {"code", "state"}
    assert params["state"] == "s-9"
    assert params["code"].startswith(world.auth.settings.code_prefix + "_")


def test_a_decision_that_is_neither_allow_nor_deny_is_an_error_page(
    browser: Browser, world: World, wide: IssuedClient
) -> None:
    page = browser.login(browser.get(authorize_query(wide.client.id)))
    form_ = page.forms[0]
    fields = dict(form_.submit_fields())
    reply = browser.app.post(form_.action, {**fields, "decision": "maybe"}, expect_errors=True)
    assert reply.status_int == 400
    assert "Location" not in reply.headers
    assert world.auth.store.get_consent("manager", wide.client.id) is None


def test_a_second_authorization_for_the_same_or_fewer_scopes_skips_the_page(
    browser: Browser, world: World, wide: IssuedClient
) -> None:
    both = "appointments:read reports:read"
    browser.code(wide.client.id, Pkce.new(), scope=both)
    for scope in (both, "reports:read"):
        page = browser.get(authorize_query(wide.client.id, scope=scope, state="again"))
        assert page.status_int == 302, page.text
        params = redirect_params(page.headers["Location"])
        assert set(params) == {"code", "state"}
    # A new browser (a new session) skips the page too, after the login.
    fresh = Browser(world.endpoints)
    page = fresh.login(fresh.get(authorize_query(wide.client.id, scope=both)))
    assert page.status_int == 302


def test_more_scopes_are_asked_for_again_and_added(
    browser: Browser, world: World, wide: IssuedClient
) -> None:
    browser.code(wide.client.id, Pkce.new(), scope="appointments:read")
    page = browser.get(authorize_query(wide.client.id, scope="appointments:read reports:read"))
    assert page.status_int == 200
    assert "reports:read" in page.text
    browser.decide(page, "allow")
    consent = world.auth.store.get_consent("manager", wide.client.id)
    assert consent is not None
    assert consent.scopes == {"appointments:read", "reports:read"}


def test_a_scope_withheld_by_roles_does_not_ask_again(
    browser: Browser, world: World, wide: IssuedClient
) -> None:
    # What the user cannot give is not "more scopes": asking for it again is no reason
    # to show the page every time.
    scope = "appointments:read admin"
    browser.code(wide.client.id, Pkce.new(), scope=scope)
    assert browser.get(authorize_query(wide.client.id, scope=scope)).status_int == 302


# -- the code exchange ---------------------------------------------------------------------------


async def test_a_code_gives_a_delegated_principal(
    driver: Driver, browser: Browser, world: World, wide: IssuedClient
) -> None:
    pkce = Pkce.new()
    code = browser.code(
        wide.client.id, pkce, "employee", scope="appointments:read reports:read admin"
    )
    reply = await exchange(driver, wide, code, pkce)
    assert reply.status == 200, reply.body
    assert no_store(reply)
    body = reply.json()
    assert sorted(body) == ["access_token", "expires_in", "refresh_token", "scope", "token_type"]
    assert body["scope"] == "appointments:read"
    principal = world.auth.authenticate(Credential("bearer", body["access_token"]))
    assert principal is not None
    assert principal.kind == "delegated"
    assert principal.subject == "employee"
    assert principal.client_id == wide.client.id
    assert principal.scopes == {"appointments:read"}
    assert principal.roles == {"employee"}


async def test_consented_scopes_are_cut_to_the_users_roles(
    wsgi: Driver, browser: Browser, world: World, wide: IssuedClient
) -> None:
    pkce = Pkce.new()
    code = browser.code(wide.client.id, pkce, scope="reports:read admin")
    body = (await exchange(wsgi, wide, code, pkce)).json()
    principal = world.principal(body["access_token"])
    assert principal is not None
    assert principal.scopes == {"reports:read"}
    assert body["scope"] == "reports:read"


async def test_when_the_roles_allow_none_of_the_scopes_the_code_grants_none(
    wsgi: Driver, browser: Browser, world: World, wide: IssuedClient
) -> None:
    # The consent page says "know who you are": so must the code, its tokens and
    # the consent, never the scopes the app asked for.
    pkce = Pkce.new()
    code = browser.code(wide.client.id, pkce, "employee", scope="reports:read")
    consent = world.auth.store.get_consent("employee", wide.client.id)
    assert consent is not None
    assert consent.scopes == frozenset()
    body = (await exchange(wsgi, wide, code, pkce)).json()
    assert body["scope"] == ""
    principal = world.principal(body["access_token"])
    assert principal is not None
    assert principal.scopes == frozenset()
    # The refresh token too: it must not hold the asked-for scope for a later
    # policy that gives the role it to bring back.
    introspected = await wsgi.send(
        "/oauth/introspect", form(token=body["refresh_token"]), headers=world.basic(wide)
    )
    assert introspected.json()["active"] is True
    assert introspected.json()["scope"] == ""
    refresh = form(grant_type="refresh_token", refresh_token=body["refresh_token"])
    refreshed = await wsgi.send(TOKEN, refresh, headers=world.basic(wide))
    assert refreshed.status == 200, refreshed.body
    assert refreshed.json()["scope"] == ""


async def test_a_delegated_refresh_works_and_rotates(
    driver: Driver, browser: Browser, world: World, wide: IssuedClient
) -> None:
    pkce = Pkce.new()
    first = (await exchange(driver, wide, browser.code(wide.client.id, pkce), pkce)).json()
    reply = await refresh(driver, world, wide, first["refresh_token"])
    assert reply.status == 200, reply.body
    second = reply.json()
    assert second["refresh_token"] != first["refresh_token"]
    principal = world.principal(second["access_token"])
    assert principal is not None
    assert (principal.kind, principal.subject) == ("delegated", "manager")
    assert principal.client_id == wide.client.id
    # The old refresh token is spent; presenting it again is a replay.
    assert_token_error(
        await refresh(driver, world, wide, first["refresh_token"]), 400, "invalid_grant"
    )
    assert refused(world, second["access_token"])


async def test_a_code_issued_before_the_app_was_disabled_stays_dead_once_it_is_enabled(
    driver: Driver, browser: Browser, world: World, wide: IssuedClient
) -> None:
    pkce = Pkce.new()
    code = browser.code(wide.client.id, pkce)
    world.auth.clients.disable(wide.client.id)
    world.auth.clients.enable(wide.client.id)
    assert_token_error(await exchange(driver, wide, code, pkce), 400, "invalid_grant")
    # A code issued once it is enabled again is exchanged as usual.
    pkce = Pkce.new()
    fresh = await exchange(driver, wide, browser.code(wide.client.id, pkce), pkce)
    assert fresh.status == 200, fresh.body


async def test_a_code_is_single_use_and_a_replay_revokes_the_first_tokens(
    driver: Driver, browser: Browser, world: World, wide: IssuedClient
) -> None:
    pkce = Pkce.new()
    code = browser.code(wide.client.id, pkce)
    first = await exchange(driver, wide, code, pkce)
    assert first.status == 200
    tokens = first.json()
    assert world.principal(tokens["access_token"]) is not None
    assert_token_error(await exchange(driver, wide, code, pkce), 400, "invalid_grant")
    assert refused(world, tokens["access_token"])
    reply = await refresh(driver, world, wide, tokens["refresh_token"])
    assert_token_error(reply, 400, "invalid_grant")
    assert "code.reused" in world.event_names()


@pytest.mark.parametrize("verifier", [None, "short", "x" * 42 + "!"], ids=["none", "short", "bad"])
async def test_a_replay_with_a_bad_verifier_revokes_the_first_tokens_too(
    driver: Driver, browser: Browser, world: World, wide: IssuedClient, verifier: str | None
) -> None:
    # Whoever replays a code has seen it: the verifier they send, or leave out,
    # changes nothing about what the replay says (RFC 6749 section 4.1.2).
    pkce = Pkce.new()
    code = browser.code(wide.client.id, pkce)
    tokens = (await exchange(driver, wide, code, pkce)).json()
    assert world.principal(tokens["access_token"]) is not None
    replay = await driver.send(TOKEN, exchange_body(wide, code, verifier))
    assert_token_error(replay, 400, "invalid_grant")
    assert refused(world, tokens["access_token"])
    assert "code.reused" in world.event_names()


def test_of_20_simultaneous_exchanges_of_one_code_exactly_one_wins(
    make_authenticator: AuthenticatorFactory, sql_store: SQLStore
) -> None:
    # sql_store is a SQLite file and, when AUTHMW_TEST_POSTGRES_URL is set, PostgreSQL:
    # the database decides the race, each thread with a connection of its own.
    world = build_world(make_authenticator, store=sql_store)
    app = world.auth.clients.create_app("planner", redirect_uris=[REDIRECT], scopes=WIDE_SCOPES)
    pkce = Pkce.new()
    code = Browser(world.endpoints).code(app.client.id, pkce)
    body = exchange_body(app, code, pkce.verifier)
    drivers = [WSGIDriver(world.endpoints) for _ in range(20)]
    start = threading.Barrier(len(drivers))
    replies: list[Reply] = []
    lock = threading.Lock()

    def run(driver: WSGIDriver) -> None:
        start.wait()
        reply = driver.send_sync(TOKEN, body)
        with lock:
            replies.append(reply)

    threads = [threading.Thread(target=run, args=(d,)) for d in drivers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status for r in replies)
    assert statuses == [200] + [400] * 19, [r.body for r in replies]
    assert {r.error for r in replies if r.status == 400} == {"invalid_grant"}
    # The losers were replays: the winner's tokens are revoked too (RFC 6749 section 4.1.2).
    (winner,) = [r for r in replies if r.status == 200]
    assert refused(world, winner.json()["access_token"])


class PausingStore(SQLStore):
    """The real SQL store, running ``before_family`` once inside ``set_code_family``.

    That is the moment after the first exchange spent the code and before it
    issued any token: the window a racing replay can fall into.
    """

    before_family: Callable[[], None] | None = None

    def set_code_family(self, code_id: str, family_id: str) -> None:
        hook, self.before_family = self.before_family, None
        if hook is not None:
            hook()
        super().set_code_family(code_id, family_id)


def exchange_interrupted_by(
    make_authenticator: AuthenticatorFactory,
    tmp_path: Path,
    interrupt: Callable[[World, IssuedClient, bytes], None],
) -> None:
    """Exchange a code while ``interrupt`` runs inside it; its tokens must not work.

    ``interrupt`` gets the world, the app and the exchange's body, and runs after
    the exchange spent the code and before it issued any token (``PausingStore``).
    """
    store = PausingStore(sqlite_file_url(tmp_path))
    world = build_world(make_authenticator, store=store)
    app = world.auth.clients.create_app("planner", redirect_uris=[REDIRECT], scopes=WIDE_SCOPES)
    pkce = Pkce.new()
    code = Browser(world.endpoints).code(app.client.id, pkce)
    body = exchange_body(app, code, pkce.verifier)
    store.before_family = lambda: interrupt(world, app, body)
    first = WSGIDriver(world.endpoints).send_sync(TOKEN, body)
    assert first.status == 200, first.body
    tokens = first.json()
    assert refused(world, tokens["access_token"])
    again = WSGIDriver(world.endpoints).send_sync(
        TOKEN,
        form(grant_type="refresh_token", refresh_token=tokens["refresh_token"], **world.creds(app)),
    )
    assert (again.status, again.error) == (400, "invalid_grant")


def test_a_replay_racing_the_first_exchange_still_revokes_its_tokens(
    make_authenticator: AuthenticatorFactory, tmp_path: Path
) -> None:
    replays: list[Reply] = []

    def replay_now(world: World, app: IssuedClient, body: bytes) -> None:
        # Another request, on another thread, while the first one waits here.
        thread = threading.Thread(
            target=lambda: replays.append(WSGIDriver(world.endpoints).send_sync(TOKEN, body))
        )
        thread.start()
        thread.join()

    exchange_interrupted_by(make_authenticator, tmp_path, replay_now)
    assert [(r.status, r.error) for r in replays] == [(400, "invalid_grant")]


async def test_withdrawing_consent_takes_the_codes_not_yet_exchanged(
    driver: Driver, browser: Browser, world: World, wide: IssuedClient
) -> None:
    pkce = Pkce.new()
    code = browser.code(wide.client.id, pkce)
    assert world.auth.tokens.revoke_consent("manager", wide.client.id)
    assert_token_error(await exchange(driver, wide, code, pkce), 400, "invalid_grant")


def test_consent_withdrawn_during_an_exchange_still_ends_its_tokens(
    make_authenticator: AuthenticatorFactory, tmp_path: Path
) -> None:
    # Withdrawn after the exchange checked the consent and before it stored its
    # refresh token: revoke_consent finds no token of the app to revoke.
    withdrawn: list[bool] = []

    def withdraw(world: World, app: IssuedClient, _body: bytes) -> None:
        withdrawn.append(world.auth.tokens.revoke_consent("manager", app.client.id))

    exchange_interrupted_by(make_authenticator, tmp_path, withdraw)
    assert withdrawn == [True]


async def test_a_code_of_another_client_is_invalid_grant_and_stays_usable(
    wsgi: Driver, browser: Browser, world: World, wide: IssuedClient
) -> None:
    pkce = Pkce.new()
    code = browser.code(wide.client.id, pkce)
    assert_token_error(await exchange(wsgi, world.third, code, pkce), 400, "invalid_grant")
    assert (await exchange(wsgi, wide, code, pkce)).status == 200


@pytest.mark.parametrize(
    "uri", ["https://app.example/cb/", "https://app.example/other", "https://APP.example/cb"]
)
async def test_a_redirect_uri_other_than_the_requests_is_invalid_grant(
    wsgi: Driver, browser: Browser, world: World, wide: IssuedClient, uri: str
) -> None:
    pkce = Pkce.new()
    code = browser.code(wide.client.id, pkce)
    assert_token_error(
        await exchange(wsgi, wide, code, pkce, redirect_uri=uri), 400, "invalid_grant"
    )
    assert (await exchange(wsgi, wide, code, pkce)).status == 200


def _asks_consent(page: TestResponse) -> bool:
    return page.status_int == 200 and "wants to access your account" in page.text


@pytest.mark.parametrize(
    ("uri", "asked_again"),
    [
        ("http://127.0.0.1/cb", True),
        ("https://localhost:8443/cb", True),
        ("com.example.native:/cb", True),
        ("https://app.example/cb", False),
    ],
)
def test_a_public_app_on_the_device_is_asked_for_consent_every_time(
    browser: Browser, world: World, uri: str, asked_again: bool
) -> None:
    # RFC 8252 section 8.6: any app on the device can claim a loopback port or a
    # private-use scheme, so a remembered consent is no proof of who is asking.
    app = world.auth.clients.create_app("native", redirect_uris=[uri], public=True)
    first = browser.get(authorize_query(app.client.id, redirect_uri=uri))
    assert _asks_consent(browser.login(first))
    browser.authorize(app.client.id, Pkce.new(), redirect_uri=uri)  # allows
    assert world.auth.store.get_consent("manager", app.client.id) is not None
    again = browser.get(authorize_query(app.client.id, redirect_uri=uri))
    assert _asks_consent(again) is asked_again
    if not asked_again:
        assert again.status_int == 302
    # A confidential app proves who it is with its secret: never asked twice.
    confidential = world.auth.clients.create_app("web", redirect_uris=[uri]).client
    browser.authorize(confidential.id, Pkce.new(), redirect_uri=uri)
    assert browser.get(authorize_query(confidential.id, redirect_uri=uri)).status_int == 302


async def test_a_loopback_code_needs_its_port_at_the_token_endpoint(
    wsgi: Driver, browser: Browser, world: World
) -> None:
    app = world.auth.clients.create_app(
        "native", redirect_uris=["http://127.0.0.1/cb"], public=True
    )
    pkce = Pkce.new()
    used = "http://127.0.0.1:5555/cb"
    code = browser.code(app.client.id, pkce, redirect_uri=used)
    body = exchange_body(app, code, pkce.verifier, secret=False, redirect_uri=None)
    # Left out, the registered URI (no port) stands in: not the one the code was for.
    assert_token_error(await wsgi.send(TOKEN, body), 400, "invalid_grant")
    other = exchange_body(
        app, code, pkce.verifier, secret=False, redirect_uri="http://127.0.0.1:6666/cb"
    )
    assert_token_error(await wsgi.send(TOKEN, other), 400, "invalid_grant")
    right = exchange_body(app, code, pkce.verifier, secret=False, redirect_uri=used)
    assert (await wsgi.send(TOKEN, right)).status == 200


async def test_the_redirect_uri_may_be_left_out_when_it_was_the_only_one(
    wsgi: Driver, browser: Browser, world: World, wide: IssuedClient
) -> None:
    pkce = Pkce.new()
    code = browser.code(wide.client.id, pkce)
    assert (await exchange(wsgi, wide, code, pkce, redirect_uri=None)).status == 200


def _copy_of_code(world: World, code: str, **changes: Any) -> str:
    """Store a copy of ``code``'s record under a new code, with ``changes``; return the new code."""
    settings = world.auth.settings
    record = world.auth.store.get_code(_keys.parse(code, settings.code_prefix).key_id)
    assert record is not None
    value, parsed = _keys.generate(settings.code_prefix)
    world.auth.store.add_code(
        replace(record, id=parsed.key_id, secret_hash=_keys.hash_secret(parsed), **changes)
    )
    return value


async def test_an_expired_code_is_invalid_grant(
    wsgi: Driver, browser: Browser, world: World, wide: IssuedClient
) -> None:
    pkce = Pkce.new()
    code = browser.code(wide.client.id, pkce)
    now = datetime.now(UTC)
    expired = _copy_of_code(world, code, expires_at=now - timedelta(seconds=1))
    live = _copy_of_code(world, code, expires_at=now + timedelta(seconds=60))
    assert_token_error(await exchange(wsgi, wide, expired, pkce), 400, "invalid_grant")
    assert (await exchange(wsgi, wide, live, pkce)).status == 200


async def test_a_code_dies_with_a_password_change_before_the_exchange(
    wsgi: Driver, browser: Browser, world: World, wide: IssuedClient
) -> None:
    pkce = Pkce.new()
    code = browser.code(wide.client.id, pkce)
    world.auth.users.set_password("manager", "a new correct horse battery")
    assert_token_error(await exchange(wsgi, wide, code, pkce), 400, "invalid_grant")


async def test_a_public_app_exchanges_with_client_id_and_pkce_only(
    driver: Driver, browser: Browser, world: World
) -> None:
    pkce = Pkce.new()
    code = browser.code(world.public.client.id, pkce)
    reply = await exchange(driver, world.public, code, pkce, secret=False)
    assert reply.status == 200, reply.body
    principal = world.principal(reply.json()["access_token"])
    assert principal is not None
    assert (principal.kind, principal.client_id) == ("delegated", world.public.client.id)


async def test_a_confidential_app_must_authenticate(
    wsgi: Driver, browser: Browser, world: World, wide: IssuedClient
) -> None:
    pkce = Pkce.new()
    code = browser.code(wide.client.id, pkce)
    no_secret = await exchange(wsgi, wide, code, pkce, secret=False)
    assert_token_error(no_secret, 401, "invalid_client")
    assert no_secret.header("www-authenticate") is not None
    wrong = exchange_body(wide, code, pkce.verifier, secret=False) + b"&client_secret=nope"
    assert_token_error(await wsgi.send(TOKEN, wrong), 401, "invalid_client")
    # Neither attempt spent the code: with HTTP Basic it still works.
    assert wide.secret is not None
    body = exchange_body(wide, code, pkce.verifier, secret=False)
    reply = await wsgi.send(
        TOKEN, body, headers={"Authorization": basic(wide.client.id, wide.secret)}
    )
    assert reply.status == 200, reply.body


# -- PKCE at the token endpoint (RFC 7636 section 4.5 and 4.6) ----------------------------------


async def test_a_missing_verifier_is_invalid_request(
    driver: Driver, browser: Browser, world: World, wide: IssuedClient
) -> None:
    pkce = Pkce.new()
    code = browser.code(wide.client.id, pkce)
    reply = await driver.send(TOKEN, exchange_body(wide, code, None))
    assert_token_error(reply, 400, "invalid_request")
    assert (await exchange(driver, wide, code, pkce)).status == 200


async def test_a_wrong_verifier_is_invalid_grant_and_leaves_the_code(
    driver: Driver, browser: Browser, world: World, wide: IssuedClient
) -> None:
    pkce = Pkce.new()
    code = browser.code(wide.client.id, pkce)
    reply = await exchange(driver, wide, code, Pkce.new())
    assert_token_error(reply, 400, "invalid_grant")
    assert (await exchange(driver, wide, code, pkce)).status == 200


@pytest.mark.parametrize(
    "verifier",
    ["a" * 42, "a" * 129, "a" * 42 + "+", "a" * 42 + "/", "a" * 42 + "=", "a" * 42 + " ", "é" * 43],
    ids=["42", "129", "plus", "slash", "equals", "space", "non-ascii"],
)
async def test_a_malformed_verifier_is_invalid_request(
    wsgi: Driver, browser: Browser, world: World, wide: IssuedClient, verifier: str
) -> None:
    pkce = Pkce.new()
    code = browser.code(wide.client.id, pkce)
    assert_token_error(
        await wsgi.send(TOKEN, exchange_body(wide, code, verifier)), 400, "invalid_request"
    )


@pytest.mark.parametrize("length", [43, 128])
async def test_verifiers_of_43_and_128_characters_work(
    wsgi: Driver, browser: Browser, world: World, wide: IssuedClient, length: int
) -> None:
    verifier = ("A-._~z9" * 20)[:length]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    pkce = Pkce(verifier, challenge.rstrip(b"=").decode())
    code = browser.code(wide.client.id, pkce)
    assert (await exchange(wsgi, wide, code, pkce)).status == 200


# -- delegated principals follow the user --------------------------------------------------------


async def test_a_role_change_ends_delegated_tokens_and_their_refresh(
    driver: Driver, browser: Browser, world: World, wide: IssuedClient
) -> None:
    pkce = Pkce.new()
    tokens = (await exchange(driver, wide, browser.code(wide.client.id, pkce), pkce)).json()
    assert world.principal(tokens["access_token"]) is not None
    world.auth.users.set_roles("manager", ["employee"])
    assert refused(world, tokens["access_token"])
    reply = await refresh(driver, world, wide, tokens["refresh_token"])
    assert_token_error(reply, 400, "invalid_grant")


# -- the consents API -----------------------------------------------------------------------------


async def _user_token(driver: Driver, world: World, username: str = "manager") -> str:
    reply = await driver.send(TOKEN, world.login_body(username))
    assert reply.status == 200, reply.body
    token: str = reply.json()["access_token"]
    return token


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _delegated(
    driver: Driver, browser: Browser, app: IssuedClient, **params: str
) -> dict[str, Any]:
    pkce = Pkce.new()
    reply = await exchange(driver, app, browser.code(app.client.id, pkce, **params), pkce)
    assert reply.status == 200, reply.body
    tokens: dict[str, Any] = reply.json()
    return tokens


async def test_the_user_lists_their_consents(
    driver: Driver, browser: Browser, world: World, wide: IssuedClient
) -> None:
    await _delegated(driver, browser, wide, scope="appointments:read reports:read")
    reply = await driver.send(
        CONSENTS, method="GET", headers=_bearer(await _user_token(driver, world)), content_type=None
    )
    assert reply.status == 200, reply.body
    assert no_store(reply)
    (consent,) = reply.json()["consents"]
    assert consent["client_id"] == wide.client.id
    assert consent["app"] == "planner"
    assert consent["scopes"] == ["appointments:read", "reports:read"]
    assert datetime.fromisoformat(consent["granted_at"]) <= datetime.now(UTC)
    # Another user sees none of them.
    other = await driver.send(
        CONSENTS,
        method="GET",
        headers=_bearer(await _user_token(driver, world, "employee")),
        content_type=None,
    )
    assert other.json() == {"consents": []}


async def test_only_the_users_own_token_may_use_the_consents_api(
    driver: Driver, browser: Browser, world: World, wide: IssuedClient
) -> None:
    delegated = (await _delegated(driver, browser, wide))["access_token"]
    machine = await driver.send(
        TOKEN, form(grant_type="client_credentials"), headers=world.basic(world.machine)
    )
    client_token = machine.json()["access_token"]
    api_key = world.auth.keys.create(name="ci", owner="admin").key
    for headers in (
        _bearer(delegated),
        _bearer(client_token),
        {"Authorization": f"apikey {api_key}"},
        {"X-API-Key": api_key},
    ):
        for method, path in (("GET", CONSENTS), ("DELETE", f"{CONSENTS}/{wide.client.id}")):
            reply = await driver.send(path, method=method, headers=headers, content_type=None)
            assert reply.status == 403, (headers, method, reply.body)
    assert world.auth.store.get_consent("manager", wide.client.id) is not None
    for method, path in (("GET", CONSENTS), ("DELETE", f"{CONSENTS}/{wide.client.id}")):
        reply = await driver.send(path, method=method, content_type=None)
        assert reply.status == 401
        assert reply.header("www-authenticate") is not None
        bad = await driver.send(
            path, method=method, headers=_bearer("amt_nonsense"), content_type=None
        )
        assert bad.status == 401


async def test_deleting_a_consent_ends_the_apps_tokens_for_that_user(
    driver: Driver, browser: Browser, world: World, wide: IssuedClient
) -> None:
    tokens = await _delegated(driver, browser, wide)
    refreshed = (await refresh(driver, world, wide, tokens["refresh_token"])).json()
    # Another user's tokens for the same app are not touched.
    other_browser = Browser(world.endpoints)
    others = await _delegated(driver, other_browser, wide, username="employee")
    own = await _user_token(driver, world)
    reply = await driver.send(
        f"{CONSENTS}/{wide.client.id}", method="DELETE", headers=_bearer(own), content_type=None
    )
    assert reply.status == 204
    assert reply.body == b""
    assert refused(world, tokens["access_token"])
    assert refused(world, refreshed["access_token"])
    assert_token_error(
        await refresh(driver, world, wide, refreshed["refresh_token"]), 400, "invalid_grant"
    )
    assert world.principal(others["access_token"]) is not None
    assert world.principal(own) is not None  # the user's own token lives on
    assert world.auth.store.get_consent("manager", wide.client.id) is None
    listed = await driver.send(CONSENTS, method="GET", headers=_bearer(own), content_type=None)
    assert listed.json() == {"consents": []}
    again = await driver.send(
        f"{CONSENTS}/{wide.client.id}", method="DELETE", headers=_bearer(own), content_type=None
    )
    assert again.status == 404
    # The next authorization asks again.
    page = browser.get(authorize_query(wide.client.id))
    assert page.status_int == 200
    assert "wants to access your account" in page.text


async def test_deleting_an_app_without_consent_is_404(
    wsgi: Driver, world: World, wide: IssuedClient
) -> None:
    own = _bearer(await _user_token(wsgi, world))
    for client_id in (wide.client.id, "nosuchclient", ""):
        reply = await wsgi.send(
            f"{CONSENTS}/{client_id}", method="DELETE", headers=own, content_type=None
        )
        assert reply.status == 404, client_id


async def test_the_consents_api_takes_get_and_delete_only(wsgi: Driver, world: World) -> None:
    own = _bearer(await _user_token(wsgi, world))
    refused = await wsgi.send(CONSENTS, method="POST", headers=own)
    assert (refused.status, refused.header("allow")) == (405, "GET, HEAD")
    assert (
        await wsgi.send(f"{CONSENTS}/x", method="GET", headers=own, content_type=None)
    ).status == 405


async def test_head_answers_as_get_would_without_the_content(
    driver: Driver, browser: Browser, world: World, wide: IssuedClient
) -> None:
    # RFC 9110 section 9.3.2, on both read-only endpoints: the same status and
    # header fields, Content-Length included, and no content.
    await _delegated(driver, browser, wide)
    own = _bearer(await _user_token(driver, world))
    for path, headers in (("/.well-known/oauth-authorization-server", {}), (CONSENTS, own)):
        got = await driver.send(path, method="GET", headers=headers, content_type=None)
        head = await driver.send(path, method="HEAD", headers=headers, content_type=None)
        assert (got.status, head.status, head.body) == (200, 200, b""), path
        assert len(got.body) > 0
        assert head.header("content-length") == str(len(got.body)), path
        assert head.header("content-type") == got.header("content-type") == "application/json"
        assert head.header("cache-control") == got.header("cache-control")
    # Without a token, HEAD is refused as GET is: the status and the challenge.
    anonymous = await driver.send(CONSENTS, method="HEAD", content_type=None)
    assert anonymous.status == 401
    assert anonymous.body == b""
    assert anonymous.header("www-authenticate") is not None


# -- audit -------------------------------------------------------------------------------------


async def test_consent_and_code_events_name_ids_and_never_a_secret(
    wsgi: Driver, browser: Browser, world: World, wide: IssuedClient
) -> None:
    secrets_seen: list[str] = [PASSWORD]
    page = browser.login(browser.get(authorize_query(wide.client.id)))
    browser.decide(page, "deny")
    pkce = Pkce.new()
    code = browser.code(wide.client.id, pkce)
    tokens = (await exchange(wsgi, wide, code, pkce)).json()
    await exchange(wsgi, wide, code, pkce)  # reused
    own = await _user_token(wsgi, world)
    await wsgi.send(
        f"{CONSENTS}/{wide.client.id}", method="DELETE", headers=_bearer(own), content_type=None
    )
    secrets_seen += [
        code,
        pkce.verifier,
        pkce.challenge,
        tokens["access_token"],
        tokens["refresh_token"],
        own,
    ]
    secrets_seen.append(_keys.parse(code, world.auth.settings.code_prefix).secret)
    by_name = {e.name: e.fields for e in world.events}
    assert by_name["consent.denied"] == {"user": "manager", "client_id": wide.client.id}
    assert by_name["consent.granted"]["user"] == "manager"
    assert by_name["consent.granted"]["client_id"] == wide.client.id
    assert by_name["consent.granted"]["scope"] == "appointments:read reports:read"
    assert by_name["code.reused"]["client_id"] == wide.client.id
    assert by_name["code.reused"]["user"] == "manager"
    assert by_name["code.reused"]["family_id"]
    assert by_name["consent.revoked"] == {"user": "manager", "client_id": wide.client.id}
    dumped = json.dumps([e.as_dict() for e in world.events])
    for secret in secrets_seen:
        assert secret not in dumped
