"""The middleware: where the result goes, both drivers, REQUIRE_AUTH, failing closed, settings."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, override_settings

import authmw.wsgi
from authmw import Authenticator, InvalidRequest, Policy, Role, ServiceUnavailable
from authmw.store.sql import SQLStore
from authmw_django import AuthMiddleware, get_authenticator
from authmw_django.conf import get_config
from tests.core.oauth_support import basic as basic_auth
from tests.django.support import call_wsgi

pytestmark = pytest.mark.anyio

#: A module-level authenticator and a factory, for the dotted-path settings.
MODULE_AUTH: Authenticator | None = None


def make_authenticator() -> Authenticator:
    assert MODULE_AUTH is not None
    return MODULE_AUTH


def headers_of(response: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in response.items()}


def test_capabilities() -> None:
    assert AuthMiddleware.sync_capable is True
    assert AuthMiddleware.async_capable is True

    async def async_get_response(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    def sync_get_response(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    from asgiref.sync import iscoroutinefunction  # noqa: PLC0415

    assert iscoroutinefunction(AuthMiddleware(async_get_response))
    assert not iscoroutinefunction(AuthMiddleware(sync_get_response))


@pytest.mark.parametrize("path", ["/open", "/open-async"])
def test_principal_on_request_state_and_context(keys: dict[str, str], path: str) -> None:
    response = Client().get(path, headers={"X-API-Key": keys["team_blue"]})
    assert response.json() == {
        "subject": "team:blue",
        "state": "team:blue",
        "context": True,
        "error": None,
    }


@pytest.mark.parametrize("path", ["/open", "/open-async"])
async def test_async_path_records_the_same(keys: dict[str, str], path: str) -> None:
    response = await AsyncClient().get(path, headers={"Authorization": f"apikey {keys['admin']}"})
    assert response.json()["subject"] == "admin"
    assert response.json()["context"] is True


def test_anonymous_and_bad_credentials_pass_an_open_view(keys: dict[str, str]) -> None:
    client = Client()
    assert client.get("/open").json() == {
        "subject": None,
        "state": None,
        "context": True,
        "error": None,
    }
    revoked = client.get("/open", headers={"X-API-Key": keys["revoked"]})
    assert revoked.status_code == 200
    assert revoked.json()["error"] == "invalid_token"
    malformed = client.get("/open", headers={"Authorization": "Bearer a b"})
    assert malformed.json()["error"] == "invalid_request"


def test_two_credentials_are_refused_where_one_is_required(keys: dict[str, str]) -> None:
    response = Client().get(
        "/function/me",
        headers={"Authorization": f"Bearer {keys['admin']}", "X-API-Key": keys["admin"]},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_view_raising_an_auth_error_gets_the_core_rendering(auth: Authenticator) -> None:
    response = Client().get("/raises")
    rendered = InvalidRequest("The view refused this.").render(auth.settings.realm)
    assert response.status_code == rendered.status
    assert response.content == rendered.body
    assert response["WWW-Authenticate"] == dict(rendered.headers)["WWW-Authenticate"]


def test_other_exceptions_are_left_to_django(auth: Authenticator) -> None:
    with pytest.raises(ValueError, match="not an authmw error"):
        Client().get("/boom")
    response = Client(raise_request_exception=False).get("/boom")
    assert response.status_code == 500
    assert "WWW-Authenticate" not in response


def test_same_bytes_as_the_wsgi_core(auth: Authenticator, keys: dict[str, str]) -> None:
    def protected(environ: Any, start_response: Any) -> list[bytes]:
        authmw.current().require(roles=["manager"])
        start_response("200 OK", [])
        return [b""]

    core = authmw.wsgi.AuthMiddleware(protected, auth)
    for path, headers in [
        ("/function/reports", {}),
        ("/function/reports", {"X-API-Key": keys["revoked"]}),
        ("/function/reports", {"X-API-Key": keys["restricted"]}),
        ("/function/reports", {"Authorization": "Bearer a b"}),
    ]:
        ours = Client().get(path, headers=headers)
        status, their_headers, body = call_wsgi(core, "GET", path, headers)
        assert ours.status_code == status
        assert ours.content == body
        assert headers_of(ours) == {name.lower(): value for name, value in their_headers}


@pytest.fixture
def require_auth(auth: Authenticator) -> Iterator[None]:
    options = {"AUTHENTICATOR": auth, "REQUIRE_AUTH": True, "PUBLIC_PATHS": ["/public/*"]}
    with override_settings(AUTHMW=options):
        yield


def test_require_auth_refuses_anonymous_requests(require_auth: None, auth: Authenticator) -> None:
    response = Client().get("/open")
    rendered = auth.settings.realm
    assert response.status_code == 401
    assert response.content == b'{"error":"missing_credentials",' + (
        b'"error_description":"This endpoint requires authentication."}'
    )
    assert response["WWW-Authenticate"].startswith(f'Bearer realm="{rendered}"')


def test_require_auth_leaves_the_oauth_endpoints_open(
    require_auth: None, auth: Authenticator
) -> None:
    # A client comes to them for a credential: no PUBLIC_PATHS entry needed.
    machine = auth.clients.create_client("billing", team="ops", roles=["employee"])
    assert machine.secret is not None
    client = Client()
    token = client.post(
        "/oauth/token",
        "grant_type=client_credentials",
        content_type="application/x-www-form-urlencoded",
        headers={"Authorization": basic_auth(machine.client.id, machine.secret)},
    )
    assert token.status_code == 200, token.content
    metadata = client.get("/.well-known/oauth-authorization-server")
    assert metadata.status_code == 200
    # HEAD answers as GET, with the Content-Length a GET gets (RFC 9110 section 9.3.2).
    head = client.head("/.well-known/oauth-authorization-server")
    assert head.status_code == 200
    assert head["Content-Length"] == str(len(metadata.content))
    # The consents API still wants the user's token, as everywhere: the view's own 401.
    consents = client.get("/oauth/consents")
    assert consents.status_code == 401
    assert consents["WWW-Authenticate"].startswith("Bearer")
    # Everything else stays closed, paths that route nowhere included.
    assert client.get("/open").status_code == 401
    assert client.get("/oauth/nowhere").status_code == 401
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert client.get("/open", headers=bearer).status_code == 200


async def test_require_auth_async(require_auth: None, keys: dict[str, str]) -> None:
    client = AsyncClient()
    assert (await client.get("/open")).status_code == 401
    revoked = await client.get("/open", headers={"X-API-Key": keys["revoked"]})
    assert revoked.status_code == 401
    assert revoked.json()["error"] == "invalid_token"
    assert (await client.get("/open", headers={"X-API-Key": keys["admin"]})).status_code == 200
    assert (await client.get("/public/open")).status_code == 200


def test_require_auth_lets_public_paths_and_credentials_through(
    require_auth: None, keys: dict[str, str]
) -> None:
    client = Client()
    assert client.get("/public/open").status_code == 200
    assert client.get("/open", headers={"X-API-Key": keys["admin"]}).status_code == 200
    assert client.get("/open", headers={"X-API-Key": keys["revoked"]}).status_code == 401


class BrokenStore(SQLStore):
    def find_key(self, key_id: str) -> Any:
        raise ConnectionError("database is down")


@pytest.fixture
def broken(keys: dict[str, str], auth: Authenticator) -> Iterator[str]:
    down = Authenticator(BrokenStore("sqlite://"), settings=auth.settings)
    with override_settings(AUTHMW={"AUTHENTICATOR": down}):
        yield keys["admin"]
    down.close()


def test_fails_closed_sync(broken: str, caplog: pytest.LogCaptureFixture) -> None:
    response = Client().get("/function/me", headers={"X-API-Key": broken})
    rendered = ServiceUnavailable().render()
    assert (response.status_code, response.content) == (503, rendered.body)
    assert response["Retry-After"] == "1"
    # An open view still answers, anonymously: nothing was let in.
    assert Client().get("/open", headers={"X-API-Key": broken}).json()["subject"] is None


async def test_fails_closed_async(broken: str, caplog: pytest.LogCaptureFixture) -> None:
    response = await AsyncClient().get("/async/me", headers={"X-API-Key": broken})
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    drf = await AsyncClient().get("/drf/me", headers={"X-API-Key": broken})
    assert (drf.status_code, drf.content) == (503, response.content)


# -- settings


def test_authenticator_by_dotted_path_to_an_instance_or_a_factory(auth: Authenticator) -> None:
    global MODULE_AUTH  # noqa: PLW0603
    MODULE_AUTH = auth
    try:
        for spec in (f"{__name__}.MODULE_AUTH", f"{__name__}.make_authenticator"):
            with override_settings(AUTHMW={"AUTHENTICATOR": spec}):
                assert get_authenticator() is auth
    finally:
        MODULE_AUTH = None


def test_built_once_and_rebuilt_when_replaced(auth: Authenticator) -> None:
    assert get_config() is get_config()
    first = get_config()
    with override_settings(AUTHMW={"AUTHENTICATOR": auth, "REQUIRE_AUTH": True}):
        assert get_config() is not first
        assert get_config().require_auth is True
    # One cache slot: the restored setting is read anew, to the same authenticator.
    assert get_config() is not first
    assert get_config() is get_config()
    assert get_config().authenticator is auth


def test_database_url_and_policy(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with override_settings(
        AUTHMW={"DATABASE_URL": url, "POLICY": "tests.django.test_middleware:tiny_policy"}
    ):
        built = get_authenticator()
        assert str(built.store.engine.url) == url  # type: ignore[attr-defined]
        assert built.policy.all_roles == {"reader"}
        assert get_config().owned is True
    policy = tiny_policy()
    with override_settings(AUTHMW={"DATABASE_URL": "sqlite://", "POLICY": policy}):
        assert get_authenticator().policy is policy


def tiny_policy() -> Policy:
    return Policy({"reader": Role.of(scopes=["read"])})


@pytest.mark.parametrize(
    "options",
    [
        {"REQUIRE_AUTHENTICATION": True},
        {"AUTHENTICATOR": "tests.django.test_middleware.tiny_policy"},
        {"AUTHENTICATOR": 42},
        {"PUBLIC_PATHS": ["health"]},
        {"POLICY": 3},
        ["not", "a", "dict"],
    ],
)
def test_bad_settings_fail_loudly(options: Any) -> None:
    with override_settings(AUTHMW=options), pytest.raises(ImproperlyConfigured):
        get_config()


class _ClassState(HttpRequest):  # type: ignore[misc]  # Django ships no types
    """A request class whose ``state`` is its own (as another library might define it)."""

    _shared = SimpleNamespace(tenant="acme")

    @property
    def state(self) -> SimpleNamespace:
        return self._shared


@pytest.mark.parametrize("where", ["instance", "class"])
def test_an_existing_request_state_is_kept(
    auth: Authenticator, keys: dict[str, str], where: str
) -> None:
    request: Any = _ClassState() if where == "class" else HttpRequest()
    if where == "instance":
        request.state = SimpleNamespace(tenant="acme")
    request.META["HTTP_X_API_KEY"] = keys["admin"]
    seen: dict[str, Any] = {}

    def view(request: HttpRequest) -> HttpResponse:
        seen.update(vars(request.state))
        return HttpResponse()

    with override_settings(AUTHMW={"AUTHENTICATOR": auth}):
        AuthMiddleware(view)(request)
    assert seen["tenant"] == "acme"
    assert seen["principal"].subject == "admin"
    assert seen["auth_error"] is None


# -- a check in a middleware of the application's own (docs/django.md) ---------------------


def admin_area(get_response: Any) -> Any:
    """The page's example, as written there."""
    from authmw import AuthError, current  # noqa: PLC0415
    from authmw_django import render_error  # noqa: PLC0415

    def middleware(request: HttpRequest) -> Any:
        if request.path_info.startswith("/admin-api/"):
            try:
                current().require(roles={"admin"})
            except AuthError as exc:
                return render_error(exc, current().authenticator.settings.realm)
        return get_response(request)

    return middleware


def test_a_middleware_of_the_apps_own_returns_the_refusal(
    auth: Authenticator, keys: dict[str, str]
) -> None:
    middleware = ["authmw_django.AuthMiddleware", f"{__name__}.admin_area"]
    with override_settings(MIDDLEWARE=middleware, AUTHMW={"AUTHENTICATOR": auth}):
        client = Client()
        anonymous = client.get("/admin-api/reports")
        restricted = client.get("/admin-api/reports", headers={"X-API-Key": keys["restricted"]})
        admin = client.get("/admin-api/reports", headers={"X-API-Key": keys["admin"]})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "missing_credentials"
    assert restricted.status_code == 403
    assert admin.status_code == 404  # let through, to a path with no route
