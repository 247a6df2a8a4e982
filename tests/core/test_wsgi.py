"""authmw.wsgi: the WSGI middleware around a plain WSGI app, driven by WebTest."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from authmw import Authenticator, InsufficientScope, InvalidRequest, Settings
from authmw.context import current
from authmw.decorators import Requirement, guard
from authmw.errors import AuthError, Forbidden, InvalidToken
from authmw.principal import Principal
from authmw.store.sql import SQLStore, metadata
from authmw.wsgi import ERROR_KEY, PRINCIPAL_KEY, AuthMiddleware
from tests.conftest import AuthenticatorFactory
from tests.core.conftest import sqlite_file_url

with warnings.catch_warnings():
    # WebOb, under WebTest, still imports the stdlib ``cgi`` module, which warns
    # on Python 3.11-3.12; the suite otherwise turns every warning into an error.
    warnings.filterwarnings("ignore", "'cgi' is deprecated", DeprecationWarning)
    import webtest

StartResponse = Callable[..., Any]
Environ = dict[str, Any]

BEARER = 'Bearer realm="api", apikey realm="api"'


def respond(start_response: StartResponse, payload: Mapping[str, Any]) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def whoami(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Report what the middleware found, from the environ and from the context."""
    principal: Principal | None = environ[PRINCIPAL_KEY]
    error: AuthError | None = environ[ERROR_KEY]
    in_context = current().principal
    assert in_context is principal
    return respond(
        start_response,
        {
            "principal": principal.to_json() if principal else None,
            "error": type(error).__name__ if error else None,
        },
    )


def _no_params(auth: Any, kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    return {}


def _team_from_path(auth: Any, kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    # /teams/<team>/usage
    return {"team": auth.request["PATH_INFO"].split("/")[2]}


@guard(Requirement.build(roles={"manager"}), _no_params)
def reports(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    return respond(start_response, {"reports": []})


@guard(Requirement.build(scopes={"appointments:read"}), _no_params)
def appointments(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    return respond(start_response, {"appointments": []})


@guard(Requirement.build(team_param="team"), _team_from_path)
def team_usage(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    return respond(start_response, {"usage": 0})


@guard(Requirement.build(kinds={"user"}), _no_params)
def change_password(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    return respond(start_response, {"changed": True})


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """A tiny demo API: routes by path, no framework."""
    path = environ["PATH_INFO"]
    if path == "/reports":
        return reports(environ, start_response)
    if path == "/appointments":
        return appointments(environ, start_response)
    if path.startswith("/teams/"):
        return team_usage(environ, start_response)
    if path == "/account/password":
        return change_password(environ, start_response)
    if path == "/raise":
        raise Forbidden()
    return whoami(environ, start_response)


def client(auth: Authenticator, **options: Any) -> webtest.TestApp:
    return webtest.TestApp(AuthMiddleware(app, auth, **options))


def assert_error(
    response: Any, status: str, code: str, challenge: str | None, description: str | None = None
) -> None:
    assert response.status == status
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Length"] == str(len(response.body))
    assert response.headers.get("WWW-Authenticate") == challenge
    assert response.json["error"] == code
    if description is not None:
        assert response.json["error_description"] == description


@pytest.fixture
def keys(authenticator: Authenticator) -> dict[str, str]:
    return {
        "admin": authenticator.keys.create(name="a", owner="admin").key,
        "sales": authenticator.keys.create(name="s", team="sales").key,
        "reader": authenticator.keys.create(
            name="r", team="sales", scopes=["appointments:read"]
        ).key,
    }


# -- passing through -----------------------------------------------------------------------


def test_anonymous_request_passes_with_no_principal(authenticator: Authenticator) -> None:
    response = client(authenticator).get("/me")
    assert response.json == {"principal": None, "error": None}


@pytest.mark.parametrize(
    "headers",
    [
        lambda k: {"Authorization": f"apikey {k}"},
        lambda k: {"Authorization": f"Bearer {k}"},
        lambda k: {"X-API-Key": k},
    ],
    ids=["apikey", "bearer", "x-api-key"],
)
def test_principal_is_put_in_the_environ(
    authenticator: Authenticator,
    keys: dict[str, str],
    headers: Callable[[str], dict[str, str]],
) -> None:
    response = client(authenticator).get("/me", headers=headers(keys["admin"]))
    assert response.json["error"] is None
    assert response.json["principal"]["kind"] == "api_key"
    assert response.json["principal"]["subject"] == "admin"


def test_bad_credential_is_stashed_not_refused(authenticator: Authenticator) -> None:
    # The middleware never refuses by itself (docs/decisions/0005): a public route
    # still answers, and a protected one raises the stashed error.
    test = client(authenticator)
    response = test.get("/me", headers={"X-API-Key": "amk_bogus"})
    assert response.json == {"principal": None, "error": "InvalidToken"}
    response = test.get("/me", headers={"Authorization": "Bearer a b"})
    assert response.json == {"principal": None, "error": "InvalidRequest"}
    response = test.get("/reports", headers={"X-API-Key": "amk_bogus"}, status=401)
    assert_error(response, "401 Unauthorized", "invalid_token", InvalidToken().www_authenticate())


def test_context_is_reset_after_the_request(authenticator: Authenticator) -> None:
    client(authenticator).get("/me")
    with pytest.raises(RuntimeError, match="middleware"):
        current()


# -- errors raised by the app ------------------------------------------------------------------


def test_guarded_routes(authenticator: Authenticator, keys: dict[str, str]) -> None:
    test = client(authenticator)
    reader = {"X-API-Key": keys["reader"]}
    sales = {"X-API-Key": keys["sales"]}
    admin = {"X-API-Key": keys["admin"]}
    assert test.get("/reports", headers=admin).json == {"reports": []}
    assert test.get("/appointments", headers=reader).json == {"appointments": []}
    assert test.get("/teams/sales/usage", headers=sales).json == {"usage": 0}
    assert test.get("/teams/ops/usage", headers=admin).json == {"usage": 0}

    response = test.get("/reports", headers=reader, status=403)
    assert_error(response, "403 Forbidden", "insufficient_role", None)
    response = test.get("/teams/ops/usage", headers=sales, status=403)
    assert_error(response, "403 Forbidden", "forbidden", None)
    response = test.get("/account/password", headers=admin, status=403)
    assert_error(response, "403 Forbidden", "forbidden", None)
    response = test.get("/reports", status=401)
    assert_error(response, "401 Unauthorized", "missing_credentials", BEARER)


def test_insufficient_scope_names_the_scope(authenticator: Authenticator) -> None:
    key = authenticator.keys.create(name="w", team="sales", scopes=["reports:read"]).key
    response = client(authenticator).get("/appointments", headers={"X-API-Key": key}, status=403)
    expected = InsufficientScope(frozenset({"appointments:read"}))
    assert_error(response, "403 Forbidden", "insufficient_scope", expected.www_authenticate(), None)
    assert response.json["scope"] == "appointments:read"


def test_auth_error_raised_by_the_app_is_rendered(authenticator: Authenticator) -> None:
    response = client(authenticator).get("/raise", status=403)
    assert_error(response, "403 Forbidden", "forbidden", None, Forbidden().description)


def test_other_exceptions_are_not_swallowed(authenticator: Authenticator) -> None:
    def broken(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        webtest.TestApp(AuthMiddleware(broken, authenticator)).get("/")


# -- require_auth and public paths ----------------------------------------------------------------


def test_require_auth_refuses_anonymous(authenticator: Authenticator) -> None:
    response = client(authenticator, require_auth=True).get("/me", status=401)
    assert_error(response, "401 Unauthorized", "missing_credentials", BEARER)


def test_require_auth_renders_the_credentials_error(authenticator: Authenticator) -> None:
    test = client(authenticator, require_auth=True)
    response = test.get("/me", headers={"X-API-Key": "amk_bogus"}, status=401)
    assert_error(response, "401 Unauthorized", "invalid_token", InvalidToken().www_authenticate())
    response = test.get("/me", headers={"Authorization": "Bearer a,b"}, status=400)
    malformed = InvalidRequest("The Authorization header is malformed.")
    assert_error(response, "400 Bad Request", "invalid_request", malformed.www_authenticate())


def test_require_auth_lets_credentials_through(
    authenticator: Authenticator, keys: dict[str, str]
) -> None:
    response = client(authenticator, require_auth=True).get(
        "/me", headers={"X-API-Key": keys["sales"]}
    )
    assert response.json["principal"]["team"] == "sales"


@pytest.mark.parametrize(
    ("path", "public"),
    [
        ("/health", True),
        ("/health/", False),
        ("/healthz", False),
        ("/docs", True),
        ("/docs/", True),
        ("/docs/oauth2-redirect", True),
        ("/doc", False),
        ("/", False),
        ("/me", False),
    ],
)
def test_public_paths_exact_and_prefix(
    authenticator: Authenticator, path: str, public: bool
) -> None:
    test = client(authenticator, require_auth=True, public_paths=["/health", "/docs*"])
    response = test.get(path, status=200 if public else 401)
    if public:
        assert response.json == {"principal": None, "error": None}


def test_public_paths_must_be_absolute(authenticator: Authenticator) -> None:
    with pytest.raises(ValueError, match="must start with '/'"):
        AuthMiddleware(app, authenticator, public_paths=["health"])


def test_store_down_is_503_with_retry_after(
    make_authenticator: AuthenticatorFactory, tmp_path: Path
) -> None:
    auth = make_authenticator(sqlite_file_url(tmp_path), settings=Settings(cache_ttl=0))
    key = auth.keys.create(name="k", owner="admin").key
    store = auth.store
    assert isinstance(store, SQLStore)
    metadata.drop_all(store.engine)
    test = client(auth, require_auth=True)
    response = test.get("/me", headers={"X-API-Key": key}, status=503)
    assert_error(response, "503 Service Unavailable", "temporarily_unavailable", None)
    assert response.headers["Retry-After"] == "1"
    # Without require_auth the error is stashed; a protected route answers with it.
    response = client(auth).get("/reports", headers={"X-API-Key": key}, status=503)
    assert response.json["error"] == "temporarily_unavailable"


def test_realm_comes_from_the_settings(make_authenticator: AuthenticatorFactory) -> None:
    auth = make_authenticator(settings=Settings(realm="billing"), seed=False)
    response = client(auth, require_auth=True).get("/me", status=401)
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="billing", apikey realm="billing"'
    )


def test_an_error_after_start_response_goes_through_exc_info(
    authenticator: Authenticator, keys: dict[str, str]
) -> None:
    # PEP 3333: a second start_response must carry exc_info, so the server can
    # replace unsent headers or re-raise when they are already on the wire.
    def late(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        raise InsufficientScope(frozenset({"late"}))

    calls: list[tuple[str, Any]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        calls.append((status, exc_info))
        return lambda data: None

    middleware = AuthMiddleware(late, authenticator)
    environ = {"PATH_INFO": "/late", "REQUEST_METHOD": "GET", "HTTP_X_API_KEY": keys["admin"]}
    body = middleware(environ, start_response)
    assert [status for status, _ in calls] == ["200 OK", "403 Forbidden"]
    assert calls[0][1] is None
    assert calls[1][1] is not None
    assert isinstance(calls[1][1][1], InsufficientScope)
    assert json.loads(b"".join(body))["error"] == "insufficient_scope"
