"""GET|POST /oauth/authorize: request validation, redirect URIs, login, CSRF, headers, pages.

Driven like a browser over WSGI (WebTest keeps cookies and submits the forms),
with a subset over ASGI (``httpx.ASGITransport``). RFC 6749 sections 3.1.2 and
4.1.2.1, RFC 7636, RFC 8252 section 7.3, RFC 8414 and RFC 9700 section 2.1.
The consent page and the code exchange are in ``test_oauth_consent.py``.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authmw.clients import IssuedClient
from authmw.oauth2 import AuthEndpoints
from authmw.oauth2.authorize import AUTHORIZE_PARAMETERS
from authmw.throttle import LoginThrottle
from tests.conftest import PASSWORD, AuthenticatorFactory
from tests.core.oauth_support import (
    AUTHORIZE,
    LOOPBACK_HOST,
    REDIRECT,
    Browser,
    FormFinder,
    Pkce,
    TestResponse,
    World,
    authorize_query,
    build_world,
    redirect_params,
)

pytestmark = pytest.mark.anyio

LOOPBACK_REDIRECT = "http://127.0.0.1/cb"


@pytest.fixture
def world(make_authenticator: AuthenticatorFactory) -> World:
    return build_world(make_authenticator)


@pytest.fixture
def browser(world: World) -> Browser:
    return Browser(world.endpoints)


@pytest.fixture
def native(world: World) -> IssuedClient:
    """A public app listening on loopback (RFC 8252 section 7.3)."""
    return world.auth.clients.create_app("native", redirect_uris=[LOOPBACK_REDIRECT], public=True)


def assert_page_headers(headers: Any) -> None:
    """What every HTML page of the endpoint carries, and what none does."""
    get = headers.get
    assert get("Content-Type") == "text/html; charset=utf-8"
    assert get("X-Frame-Options") == "DENY"
    csp = get("Content-Security-Policy") or ""
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'none'" in csp
    assert get("Cache-Control") == "no-store"
    names = {name.lower() for name in headers}
    assert not {n for n in names if n.startswith("access-control-")}, names


def assert_error_page(page: TestResponse, status: int = 400, message: str | None = None) -> None:
    """Shown, never redirected: HTML, the status, no ``Location``."""
    assert page.status_int == status, page.text
    assert "Location" not in page.headers
    assert_page_headers(page.headers)
    assert "We can't continue" in page.text
    if message is not None:
        assert message in page.text


def alert(page: TestResponse) -> str | None:
    """The error message shown on a page, if any."""
    match = re.search(r'role="alert">([^<]*)<', page.text)
    return match.group(1) if match else None


def is_login_page(page: TestResponse) -> bool:
    return page.status_int == 200 and bool(page.forms) and "username" in page.forms[0].fields


def cookie_attributes(page: TestResponse, name: str) -> set[str]:
    """The attributes of the ``Set-Cookie`` for ``name`` (``Max-Age`` without its value)."""
    for header in page.headers.getall("Set-Cookie"):
        if header.startswith(name + "="):
            parts = [p.strip() for p in header.split(";")[1:]]
            return {p.split("=")[0] if p.startswith("Max-Age") else p for p in parts}
    raise AssertionError(f"no {name} cookie in {page.headers.getall('Set-Cookie')}")


def assert_redirected_error(
    page: TestResponse, error: str, redirect: str = REDIRECT, state: str | None = "xyz"
) -> dict[str, str]:
    """An RFC 6749 section 4.1.2.1 error: 302 back to the app with error, description, state."""
    assert page.status_int == 302, page.text
    location = page.headers["Location"]
    assert location.startswith(redirect + "?"), location
    params = redirect_params(location)
    assert params["error"] == error
    assert params["error_description"]
    assert params.get("state") == state
    assert "code" not in params
    assert page.headers["Cache-Control"] == "no-store"
    return params


# -- response_type (RFC 6749 section 4.1.2.1) ------------------------------------------------


@pytest.mark.parametrize(
    ("response_type", "error"),
    [
        ("token", "unsupported_response_type"),
        ("code token", "unsupported_response_type"),
        ("code id_token", "unsupported_response_type"),
        ("foo", "unsupported_response_type"),
        ("", "invalid_request"),
        (None, "invalid_request"),
    ],
)
def test_only_response_type_code_is_accepted(
    browser: Browser, world: World, response_type: str | None, error: str
) -> None:
    page = browser.get(authorize_query(world.third.client.id, response_type=response_type))
    assert_redirected_error(page, error)


def test_response_type_code_shows_the_login_page(browser: Browser, world: World) -> None:
    page = browser.get(authorize_query(world.third.client.id))
    assert is_login_page(page)
    assert_page_headers(page.headers)


# -- redirect URIs: exact strings (RFC 9700 section 2.1) -------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example/cb/",
        "https://app.example/cb?x=1",
        "https://app.example/cb#frag",
        "https://app.example/cb/../cb",
        "https://evil.example/cb",
        "https://app.example.evil.example/cb",
        "http://app.example/cb",
        "https://APP.example/cb",
        "HTTPS://app.example/cb",
        "https://app.example/CB",
        "https://user@app.example/cb",
        "https://app.example@evil.example/cb",
        "https://app.example:8443/cb",
        "https://app.example:443/cb",
        "https://app.example/cb%2F",
    ],
)
@pytest.mark.parametrize("response_type", ["code", "token"])
def test_a_redirect_uri_other_than_the_registered_string_is_an_error_page(
    browser: Browser, world: World, uri: str, response_type: str
) -> None:
    # Even an error that would otherwise be redirected (response_type=token) is
    # shown: redirecting to an unchecked URI would make us an open redirector.
    page = browser.get(
        authorize_query(world.third.client.id, redirect_uri=uri, response_type=response_type)
    )
    assert_error_page(page)


@pytest.mark.parametrize("port", ["", ":1024", ":5555", ":65535"])
def test_a_loopback_app_may_use_any_port(browser: Browser, native: IssuedClient, port: str) -> None:
    pkce = Pkce.new()
    uri = f"http://127.0.0.1{port}/cb"
    page = browser.get(authorize_query(native.client.id, pkce, redirect_uri=uri))
    assert is_login_page(page)
    back = browser.decide(browser.login(page), "allow")
    assert back.status_int == 302
    assert back.headers["Location"].startswith(uri + "?code=")
    assert redirect_params(back.headers["Location"])["state"] == "xyz"


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:5555/other",
        "http://127.0.0.1:5555/cb/",
        "http://127.0.0.1:5555/cb?x=1",
        "http://127.0.0.1:5555/cb#f",
        "http://localhost:5555/cb",
        "http://[::1]:5555/cb",
        "https://127.0.0.1:5555/cb",
        "http://127.0.0.2:5555/cb",
        "http://127.0.0.1:5555@evil.example/cb",
    ],
)
def test_loopback_ports_vary_and_nothing_else(
    browser: Browser, native: IssuedClient, uri: str
) -> None:
    assert_error_page(browser.get(authorize_query(native.client.id, redirect_uri=uri)))


def test_only_an_app_that_registered_a_loopback_uri_gets_any_port(
    browser: Browser, world: World
) -> None:
    for uri in ("http://127.0.0.1:5555/cb", "https://app.example:5555/cb"):
        assert_error_page(browser.get(authorize_query(world.third.client.id, redirect_uri=uri)))


@pytest.mark.parametrize(
    "uri",
    [
        "http://app.example/cb",
        "http://10.0.0.1/cb",
        "http://127.0.0.1.evil.example/cb",
        "https://app.example/cb#fragment",
        "https://user@app.example/cb",
        "relative/cb",
        "myapp:/cb",
    ],
)
def test_registration_refuses_what_could_leak_a_code(world: World, uri: str) -> None:
    with pytest.raises(ValueError, match="redirect URI"):
        world.auth.clients.create_app("leaky", redirect_uris=[uri])


@pytest.mark.parametrize(
    "uri",
    ["http://127.0.0.1/cb", "http://[::1]:8080/cb", "http://localhost/cb", "com.example.app:/cb"],
)
def test_registration_accepts_loopback_http_and_private_use_schemes(world: World, uri: str) -> None:
    app = world.auth.clients.create_app("native", redirect_uris=[uri], public=True)
    assert app.client.redirect_uris == (uri,)


# -- errors before the client and its redirect URI are known: shown ---------------------------


def test_an_unknown_client_is_an_error_page(browser: Browser) -> None:
    page = browser.get(authorize_query("nosuchclient"))
    assert_error_page(page, message="This application is not registered, or is disabled.")


def test_a_disabled_app_is_an_error_page(browser: Browser, world: World) -> None:
    world.auth.clients.disable(world.third.client.id)
    page = browser.get(authorize_query(world.third.client.id))
    assert_error_page(page, message="This application is not registered, or is disabled.")


def test_a_machine_client_cannot_ask_users(browser: Browser, world: World) -> None:
    assert_error_page(browser.get(authorize_query(world.machine.client.id)))


def test_a_missing_client_id_is_an_error_page(browser: Browser) -> None:
    page = browser.get(authorize_query(None))
    assert_error_page(page, message="The request does not say which application is asking.")


def test_a_missing_redirect_uri_with_several_registered_is_an_error_page(
    browser: Browser, world: World
) -> None:
    app = world.auth.clients.create_app(
        "two", redirect_uris=[REDIRECT, "https://app.example/other"]
    )
    assert_error_page(browser.get(authorize_query(app.client.id, redirect_uri=None)))


@pytest.mark.parametrize("uri", [None, ""])
def test_a_missing_redirect_uri_with_one_registered_uses_it(
    browser: Browser, world: World, uri: str | None
) -> None:
    # RFC 6749 section 3.1: a parameter without a value is treated as omitted.
    pkce = Pkce.new()
    page = browser.get(authorize_query(world.third.client.id, pkce, redirect_uri=uri))
    back = browser.decide(browser.login(page), "allow")
    assert back.headers["Location"].startswith(REDIRECT + "?code=")


@pytest.mark.parametrize(
    "name", ["client_id", "redirect_uri", "response_type", "state", "scope", "code_challenge"]
)
def test_a_repeated_parameter_is_an_error_page(browser: Browser, world: World, name: str) -> None:
    # RFC 6749 section 3.1: parameters must not be included more than once.
    query = authorize_query(world.third.client.id, scope="appointments:read") + f"&{name}=again"
    assert_error_page(browser.get(query), message=f"The {name} parameter is repeated.")


# -- later errors: redirected with error, error_description and state -------------------------


def test_a_scope_the_app_did_not_register_is_redirected_invalid_scope(
    browser: Browser, world: World
) -> None:
    page = browser.get(authorize_query(world.third.client.id, scope="reports:read"))
    assert_redirected_error(page, "invalid_scope")


def test_an_unknown_scope_is_redirected_invalid_scope(browser: Browser, world: World) -> None:
    page = browser.get(authorize_query(world.web.client.id, scope="nonsense"))
    assert_redirected_error(page, "invalid_scope")


def test_without_state_the_error_has_no_state(browser: Browser, world: World) -> None:
    page = browser.get(authorize_query(world.third.client.id, state=None, response_type="token"))
    assert_redirected_error(page, "unsupported_response_type", state=None)


def test_state_is_returned_exactly(browser: Browser, world: World) -> None:
    state = "a b&c=d/é<>\"'"
    page = browser.get(authorize_query(world.third.client.id, state=state, response_type="x"))
    assert_redirected_error(page, "unsupported_response_type", state=state)


# -- PKCE at the authorization request (RFC 7636, S256 only) ------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"code_challenge": None},
        {"code_challenge": ""},
        {"code_challenge_method": "plain"},
        {"code_challenge_method": None},
        {"code_challenge_method": ""},
        {"code_challenge_method": "s256"},
        {"code_challenge_method": "S512"},
        {"code_challenge": "too-short"},
        {"code_challenge": "A" * 44},
        {"code_challenge": "+" * 43},
        {"code_challenge": "A" * 42 + "="},
    ],
    ids=lambda p: ",".join(f"{k}={v!r}" for k, v in p.items()),
)
def test_pkce_s256_is_required(
    browser: Browser, world: World, params: dict[str, str | None]
) -> None:
    page = browser.get(authorize_query(world.third.client.id, None, **params))
    assert_redirected_error(page, "invalid_request")


def test_pkce_is_required_of_a_confidential_app_too(browser: Browser, world: World) -> None:
    page = browser.get(authorize_query(world.web.client.id, code_challenge=None))
    assert_redirected_error(page, "invalid_request")


# -- the login page ----------------------------------------------------------------------------


def test_the_login_page_names_the_app_and_has_the_contract_fields(
    browser: Browser, world: World
) -> None:
    page = browser.get(authorize_query(world.third.client.id))
    assert page.status_int == 200
    assert set(page.forms[0].fields) >= {"username", "password", "csrf_token"}
    assert page.forms[0].method.upper() == "POST"
    assert page.forms[0]["password"] is not None
    assert "to continue to <strong>partner</strong>" in page.text


def _normalised(page: TestResponse) -> str:
    # Each page has its own style nonce; the CSRF token depends on the cookie.
    text = re.sub(r'nonce="[^"]*"', 'nonce=""', page.text)
    return re.sub(r'name="csrf_token" value="[^"]*"', "", text)


def test_wrong_password_unknown_user_and_disabled_user_look_the_same(
    world: World,
) -> None:
    world.auth.users.create("leaver", password=PASSWORD, roles={"employee"})
    world.auth.users.disable("leaver")
    query = authorize_query(world.third.client.id)
    pages = []
    for username, password in [
        ("manager", "not the password at all"),
        ("nobody", PASSWORD),
        ("leaver", PASSWORD),
    ]:
        browser = Browser(world.endpoints)
        pages.append(browser.login(browser.get(query), username, password))
    assert [p.status_int for p in pages] == [400, 400, 400]
    assert {alert(p) for p in pages} == {"Invalid username or password."}
    assert len({_normalised(p) for p in pages}) == 1
    for page in pages:
        assert "authmw_session" not in page.headers.get("Set-Cookie", "")
        assert_page_headers(page.headers)
    assert world.event_names().count("login.failed") == 3


def test_an_empty_field_asks_for_both(browser: Browser, world: World) -> None:
    page = browser.login(browser.get(authorize_query(world.third.client.id)), "manager", "")
    assert page.status_int == 400
    assert alert(page) == "Enter your username and password."


def test_failed_logins_are_throttled_with_a_429_page(
    make_authenticator: AuthenticatorFactory,
) -> None:
    world = build_world(make_authenticator)
    # The throttle's clock is injected, so the window ends without sleeping.
    endpoints = AuthEndpoints(world.auth, throttle=LoginThrottle(clock=world.clock))
    browser = Browser(endpoints)
    query = authorize_query(world.third.client.id)
    page = browser.get(query)
    for _ in range(5):
        page = browser.login(page, "manager", "wrong password, again")
        assert page.status_int == 400
    page = browser.login(page, "manager", PASSWORD)
    assert page.status_int == 429
    assert alert(page) == "Too many failed attempts. Try again in about 5 min."
    assert 0 < int(page.headers["Retry-After"]) <= 300
    assert "authmw_session" not in page.headers.get("Set-Cookie", "")
    assert_page_headers(page.headers)
    assert "login.throttled" in world.event_names()
    world.clock.advance(600)
    page = browser.login(page, "manager", PASSWORD)
    assert page.status_int == 200
    assert "wants to access your account" in page.text


def test_a_login_sets_the_session_cookie_without_secure_on_loopback(
    browser: Browser, world: World
) -> None:
    first = browser.get(authorize_query(world.third.client.id))
    assert cookie_attributes(first, "authmw_csrf") == {
        "Path=/oauth",
        "Max-Age",
        "HttpOnly",
        "SameSite=Lax",
    }
    page = browser.login(first)
    assert page.status_int == 200
    assert cookie_attributes(page, "authmw_session") == {
        "Path=/oauth",
        "Max-Age",
        "HttpOnly",
        "SameSite=Lax",
    }


@pytest.mark.parametrize("host", ["auth.example.com", "auth.example.com:8443", "10.0.0.5"])
def test_a_login_sets_a_secure_session_cookie_off_loopback(world: World, host: str) -> None:
    browser = Browser(world.endpoints, host=host)
    first = browser.get(authorize_query(world.third.client.id))
    assert "Secure" in cookie_attributes(first, "authmw_csrf")
    page = browser.login(first)
    assert page.status_int == 200, page.text
    assert cookie_attributes(page, "authmw_session") == {
        "Path=/oauth",
        "Max-Age",
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
    }


def test_a_session_skips_the_login_page_next_time(browser: Browser, world: World) -> None:
    browser.code(world.third.client.id, Pkce.new())
    page = browser.get(authorize_query(world.third.client.id))
    assert page.status_int == 302
    assert "code" in redirect_params(page.headers["Location"])


def test_a_forged_session_cookie_is_no_session(browser: Browser, world: World) -> None:
    browser.app.set_cookie("authmw_session", "manager:0")
    assert is_login_page(browser.get(authorize_query(world.third.client.id)))


@pytest.mark.parametrize(
    "change",
    [
        lambda w: w.auth.users.set_password("manager", "another correct horse battery"),
        lambda w: w.auth.users.disable("manager"),
        lambda w: w.auth.users.set_roles("manager", ["employee"]),
    ],
    ids=["password", "disabled", "roles"],
)
def test_a_credential_change_ends_the_session(browser: Browser, world: World, change: Any) -> None:
    query = authorize_query(world.third.client.id)
    consent = browser.login(browser.get(query))
    assert "wants to access your account" in consent.text
    assert not is_login_page(browser.get(query))
    change(world)
    assert is_login_page(browser.get(query))
    # The form already on screen does not act for the old session either.
    assert is_login_page(browser.decide(consent, "allow"))


# -- CSRF ----------------------------------------------------------------------------------------


def _login_form(browser: Browser, world: World) -> dict[str, str]:
    page = browser.get(authorize_query(world.third.client.id))
    fields = dict(page.forms[0].submit_fields())
    return {**fields, "username": "manager", "password": PASSWORD}


def _post(browser: Browser, world: World, fields: dict[str, str]) -> TestResponse:
    url = f"{AUTHORIZE}?{authorize_query(world.third.client.id)}"
    return browser.app.post(url, fields, expect_errors=True)


def test_a_post_without_the_csrf_cookie_is_refused(browser: Browser, world: World) -> None:
    fields = _login_form(browser, world)
    browser.app.reset()  # the cookie is gone, the form is not
    page = _post(browser, world, fields)
    assert_error_page(page, 403)
    assert "authmw_session" not in page.headers.get("Set-Cookie", "")
    assert "login.succeeded" not in world.event_names()


@pytest.mark.parametrize("token", ["", "0" * 64, "not-a-token"])
def test_a_post_with_a_wrong_csrf_token_is_refused(
    browser: Browser, world: World, token: str
) -> None:
    fields = _login_form(browser, world)
    page = _post(browser, world, {**fields, "csrf_token": token})
    assert_error_page(page, 403)
    assert "login.succeeded" not in world.event_names()


def test_a_csrf_token_of_another_cookie_is_refused(world: World) -> None:
    attacker, victim = Browser(world.endpoints), Browser(world.endpoints)
    forged = _login_form(attacker, world)
    victim.get(authorize_query(world.third.client.id))  # the victim has a cookie of its own
    assert_error_page(_post(victim, world, forged), 403)
    # The same form with the attacker's own cookie passes: the check is the pairing.
    assert _post(attacker, world, forged).status_int == 200


def test_the_consent_form_is_csrf_protected(browser: Browser, world: World) -> None:
    consent = browser.login(browser.get(authorize_query(world.third.client.id)))
    fields = dict(consent.forms[0].submit_fields())
    page = _post(browser, world, {**fields, "decision": "allow", "csrf_token": "0" * 64})
    assert_error_page(page, 403)
    assert world.auth.store.get_consent("manager", world.third.client.id) is None


def test_the_login_forms_token_does_not_pass_for_the_consent_form(
    browser: Browser, world: World
) -> None:
    # Both forms share the nonce cookie; the consent form's token also names the
    # user. A token made for no one (the login form's, which whoever plants the
    # cookie can obtain) cannot submit a consent.
    login = browser.get(authorize_query(world.third.client.id))
    anonymous_token = dict(login.forms[0].submit_fields())["csrf_token"]
    consent = browser.login(login)
    fields = dict(consent.forms[0].submit_fields())
    assert fields["csrf_token"] != anonymous_token
    forged = {**fields, "decision": "allow", "csrf_token": anonymous_token}
    assert_error_page(_post(browser, world, forged), 403)
    assert world.auth.store.get_consent("manager", world.third.client.id) is None
    # The consent form's own token still works.
    assert _post(browser, world, {**fields, "decision": "allow"}).status_int == 302


def test_a_post_that_is_not_a_form_is_an_error_page(browser: Browser, world: World) -> None:
    browser.get(authorize_query(world.third.client.id))
    url = f"{AUTHORIZE}?{authorize_query(world.third.client.id)}"
    page = browser.app.post(
        url, b"{}", headers={"Content-Type": "application/json"}, expect_errors=True
    )
    assert_error_page(page, 400)


# -- headers on every page ------------------------------------------------------------------


def test_every_page_has_the_frame_cache_and_csp_headers_and_no_cors(
    browser: Browser, world: World
) -> None:
    origin = {"Origin": "https://evil.example"}
    query = authorize_query(world.third.client.id)
    pages = [
        browser.get(query, **origin),  # login
        browser.get(authorize_query("nosuchclient"), **origin),  # error
        browser.app.post(f"{AUTHORIZE}?{query}", {}, headers=origin, expect_errors=True),  # 403
    ]
    login = browser.login(pages[0], "manager", "wrong")
    pages.append(login)  # failed login
    consent = browser.login(login)
    assert "wants to access your account" in consent.text
    pages.append(consent)
    for page in pages:
        assert_page_headers(page.headers)
    redirect = browser.decide(consent, "allow")
    assert redirect.status_int == 302
    assert redirect.headers["Cache-Control"] == "no-store"
    assert not [h for h in redirect.headers if h.lower().startswith("access-control-")]


@pytest.mark.parametrize("method", ["OPTIONS", "PUT", "DELETE"])
def test_other_methods_get_405_with_allow_and_no_cors(
    browser: Browser, world: World, method: str
) -> None:
    page = browser.app.request(
        f"{AUTHORIZE}?{authorize_query(world.third.client.id)}",
        method=method,
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
        },
        expect_errors=True,
    )
    assert_error_page(page, 405)
    assert page.headers["Allow"] == "GET, POST"


def test_the_csp_lets_the_form_post_and_then_redirect_to_the_app(
    browser: Browser, world: World
) -> None:
    page = browser.get(authorize_query(world.third.client.id))
    csp = page.headers["Content-Security-Policy"]
    assert "form-action 'self' https://app.example;" in csp
    nonce = re.search(r"style-src 'nonce-([^']+)'", csp)
    assert nonce is not None
    assert f'<style nonce="{nonce.group(1)}">' in page.text


def test_without_a_redirect_uri_the_csp_names_the_registered_ones_origin(
    browser: Browser, world: World
) -> None:
    # RFC 6749 section 3.1.2.3: left out, the app's one registered URI is used; the
    # browser must be let to follow the form's redirect there.
    page = browser.get(authorize_query(world.third.client.id, redirect_uri=None))
    assert "form-action 'self' https://app.example;" in page.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("grant_type", "password"), ("user", "x"), ("response_mode", "fragment"), ("nonce", "n")],
)
def test_parameters_the_endpoint_does_not_know_are_ignored(
    browser: Browser, world: World, name: str, value: str
) -> None:
    # RFC 6749 section 3.1; oauthlib would make each an attribute of its request.
    pkce = Pkce.new()
    page = browser.get(authorize_query(world.third.client.id, pkce) + f"&{name}={value}")
    assert is_login_page(page), page.status
    assert name not in dict(parse_qsl(urlsplit(page.forms[0].action).query))
    back = browser.decide(browser.login(page), "allow")
    assert back.headers["Location"].startswith(REDIRECT + "?code="), back.headers["Location"]


# -- templates -------------------------------------------------------------------------------


def test_an_application_template_directory_overrides_a_page(world: World, tmp_path: Path) -> None:
    (tmp_path / "login.html").write_text(
        '{% extends "base.html" %}{% block content %}<h1>Welcome to Acme, {{ app }}</h1>'
        '<form method="post" action="{{ action }}">'
        '<input type="hidden" name="csrf_token" value="{{ csrf_token }}">'
        '<input type="hidden" name="action" value="login">'
        '<input name="username"><input name="password" type="password">'
        "</form>{% endblock %}"
    )
    browser = Browser(AuthEndpoints(world.auth, templates=tmp_path, platform_name="Acme ID"))
    page = browser.get(authorize_query(world.third.client.id))
    assert "<h1>Welcome to Acme, partner</h1>" in page.text
    assert "Secured by Acme ID" in page.text  # base.html still comes from authmw
    consent = browser.login(page)
    assert "wants to access your account" in consent.text  # not overridden: the default


def test_an_app_name_is_escaped(browser: Browser, world: World) -> None:
    name = "<script>alert(1)</script>"
    app = world.auth.clients.create_app(name, redirect_uris=[REDIRECT])
    page = browser.get(authorize_query(app.client.id))
    consent = browser.login(page)
    for shown in (page, consent):
        assert "<script>" not in shown.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown.text


def test_a_state_with_markup_is_escaped_in_the_form_action(browser: Browser, world: World) -> None:
    page = browser.get(authorize_query(world.third.client.id, state='"><script>x</script>'))
    assert "<script>x" not in page.text
    assert page.forms[0].action.startswith(AUTHORIZE + "?")


# -- server metadata (RFC 8414) ----------------------------------------------------------------

METADATA = "/.well-known/oauth-authorization-server"


def _check_metadata(body: dict[str, Any], issuer: str) -> None:
    assert body["issuer"] == issuer
    assert body["authorization_endpoint"] == issuer + "/oauth/authorize"
    assert body["token_endpoint"] == issuer + "/oauth/token"
    assert body["revocation_endpoint"] == issuer + "/oauth/revoke"
    assert body["introspection_endpoint"] == issuer + "/oauth/introspect"
    assert set(body["grant_types_supported"]) == {
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "password",
    }
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["response_types_supported"] == ["code"]
    assert set(body["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "none",
    }
    assert "appointments:read" in body["scopes_supported"]


def test_metadata_with_a_configured_issuer(world: World) -> None:
    endpoints = AuthEndpoints(world.auth, issuer="https://auth.example.com/")
    reply = Browser(endpoints, host="attacker.example").app.get(METADATA)
    assert reply.status_int == 200
    assert reply.headers["Content-Type"] == "application/json"
    assert "Access-Control-Allow-Origin" not in reply.headers
    _check_metadata(reply.json, "https://auth.example.com")


def test_metadata_issuer_defaults_to_the_request_origin(browser: Browser) -> None:
    reply = browser.app.get(METADATA)
    _check_metadata(reply.json, f"http://{LOOPBACK_HOST}")


def test_metadata_is_get_only(browser: Browser) -> None:
    refused = browser.app.post(METADATA, expect_errors=True)
    assert (refused.status_int, refused.headers["Allow"]) == (405, "GET, HEAD")


# -- the same rules over ASGI ------------------------------------------------------------------


async def test_the_whole_flow_over_asgi(world: World) -> None:
    pkce = Pkce.new()
    app = world.endpoints.asgi()
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
        page = await http.get(f"{AUTHORIZE}?{authorize_query(world.third.client.id, pkce)}")
        assert page.status_code == 200
        assert_page_headers(page.headers)
        assert "Secure" not in page.headers["set-cookie"]
        login = FormFinder(page.text)
        assert login.action is not None
        page = await http.post(
            login.action.replace("&amp;", "&"),
            data={**login.fields, "username": "manager", "password": PASSWORD},
        )
        assert page.status_code == 200
        assert "authmw_session=" in page.headers["set-cookie"]
        consent = FormFinder(page.text)
        assert consent.action is not None
        # A forged token is refused here as under WSGI.
        forged = await http.post(
            consent.action.replace("&amp;", "&"),
            data={**consent.fields, "csrf_token": "0" * 64, "decision": "allow"},
        )
        assert forged.status_code == 403
        assert_page_headers(forged.headers)
        back = await http.post(
            consent.action.replace("&amp;", "&"), data={**consent.fields, "decision": "allow"}
        )
        assert back.status_code == 302
        params = redirect_params(back.headers["location"])
        assert params["state"] == "xyz"
        token = await http.post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": params["code"],
                "redirect_uri": REDIRECT,
                "code_verifier": pkce.verifier,
                **world.creds(world.third),
            },
        )
    assert token.status_code == 200, token.text
    principal = world.principal(token.json()["access_token"])
    assert principal is not None
    assert principal.kind == "delegated"


async def test_error_pages_and_redirects_over_asgi(world: World) -> None:
    transport = httpx.ASGITransport(app=world.endpoints.asgi())
    async with httpx.AsyncClient(transport=transport, base_url="https://auth.example.com") as h:
        bad_uri = authorize_query(world.third.client.id, redirect_uri=REDIRECT + "/")
        page = await h.get(f"{AUTHORIZE}?{bad_uri}", headers={"Origin": "https://x.example"})
        assert page.status_code == 400
        assert "location" not in page.headers
        assert_page_headers(page.headers)
        page = await h.get(f"{AUTHORIZE}?{authorize_query(world.third.client.id)}")
        assert "Secure" in page.headers["set-cookie"]
        plain = authorize_query(world.third.client.id, code_challenge_method="plain")
        page = await h.get(f"{AUTHORIZE}?{plain}")
        assert page.status_code == 302
        assert redirect_params(page.headers["location"])["error"] == "invalid_request"
        page = await h.options(AUTHORIZE, headers={"Origin": "https://x.example"})
        assert page.status_code == 405
        assert_page_headers(page.headers)


# -- fuzz: the query string never makes a 5xx ---------------------------------------------------

_PARAMS = sorted(AUTHORIZE_PARAMETERS)
_FUZZ_WORLDS: dict[int, World] = {}


def _fuzz_world(make_authenticator: AuthenticatorFactory) -> World:
    key = id(make_authenticator)
    if key not in _FUZZ_WORLDS:
        _FUZZ_WORLDS.clear()
        _FUZZ_WORLDS[key] = build_world(make_authenticator)
    return _FUZZ_WORLDS[key]


@st.composite
def _queries(draw: st.DrawFn, world: World) -> str:
    known = [
        "code",
        "token",
        "S256",
        "plain",
        REDIRECT,
        "http://127.0.0.1:1/cb",
        world.third.client.id,
        world.public.client.id,
        world.machine.client.id,
        Pkce.new().challenge,
        "appointments:read",
        "admin",
    ]
    if draw(st.booleans()):
        # Raw text, as a careless client or an attacker may send it.
        return draw(st.text(st.characters(min_codepoint=1, max_codepoint=0x2FF), max_size=200))
    base = {
        "response_type": "code",
        "client_id": world.third.client.id,
        "redirect_uri": REDIRECT,
        "code_challenge": Pkce.new().challenge,
        "code_challenge_method": "S256",
    }
    name = st.sampled_from(_PARAMS) | st.text(max_size=10)
    value = st.sampled_from(known) | st.text(max_size=40)
    changes = draw(st.lists(st.tuples(name, value), max_size=6))
    pairs = [*base.items(), *changes] if draw(st.booleans()) else changes
    if draw(st.booleans()):
        return "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in pairs)  # unencoded


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzz_the_authorize_query_never_a_5xx(
    make_authenticator: AuthenticatorFactory, data: st.DataObject
) -> None:
    world = _fuzz_world(make_authenticator)
    query = data.draw(_queries(world))
    environ = {
        "PATH_INFO": AUTHORIZE,
        "QUERY_STRING": query.encode("utf-8", "surrogateescape").decode("latin-1"),
        "REQUEST_METHOD": "GET",
        "HTTP_HOST": LOOPBACK_HOST,
    }
    status, headers, body = _call_wsgi(world.endpoints, environ)
    assert status < 500, body
    if status == 302:
        location = dict(headers)["Location"]
        assert location.startswith((REDIRECT + "?", "http://127.0.0.1:1/cb?")), location
    else:
        assert dict(headers)["Content-Type"] == "text/html; charset=utf-8"
        assert dict(headers)["X-Frame-Options"] == "DENY"


def _call_wsgi(
    endpoints: AuthEndpoints, environ: dict[str, Any]
) -> tuple[int, list[tuple[str, str]], bytes]:
    # A bare WSGI call: WebTest would refuse (rightly) some of the queries we want to send.
    full = {
        "wsgi.input": io.BytesIO(b""),
        "wsgi.url_scheme": "http",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "REMOTE_ADDR": "198.51.100.7",
        **environ,
    }
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = int(status.split(maxsplit=1)[0]), headers

    body = b"".join(endpoints.wsgi()(full, start_response))
    return seen["status"], seen["headers"], body


def test_raw_characters_in_the_query_are_not_a_server_error(
    make_authenticator: AuthenticatorFactory,
) -> None:
    world = build_world(make_authenticator)
    base = authorize_query(world.third.client.id)
    for extra in ("&x=<>", '&state=a"b', "&x={|}", "&x=\x01", "&x=%ff", "&%zz"):
        status, _, _ = _call_wsgi(
            world.endpoints, {"PATH_INFO": AUTHORIZE, "QUERY_STRING": base + extra}
        )
        assert status in (200, 400), (extra, status)
