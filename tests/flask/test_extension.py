"""The extension: installing it, configuring it, and what it gives a Flask app.

What each decorator allows is the rule table (``test_rule_table.py``); this module
covers the wiring: ``init_app`` and ``app.config``, ``g.principal`` and
``request.state.principal``, anonymous requests, ``require_auth`` with public
paths, the error handler, blueprints, async views, failing closed and misuse.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
from importlib.resources import files
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Blueprint, Flask, Request, g, request
from flask.ctx import _AppCtxGlobals
from flask.typing import ResponseReturnValue

import authmw_flask
from authmw import (
    Authenticator,
    Forbidden,
    InsufficientRole,
    InvalidRequest,
    InvalidToken,
    MissingCredentials,
    Principal,
    ServiceUnavailable,
    Settings,
    current,
)
from authmw.store.sql import SQLStore
from authmw.wsgi import AuthMiddleware
from authmw_flask import AuthMW, get_principal, requires_auth, requires_role, requires_team
from tests.flask.conftest import MakeAuth
from tests.flask.support import assert_rendered

NO_MIDDLEWARE = "no authentication context; is authmw's middleware installed on this app?"


def whoami() -> dict[str, Any]:
    """Report the principal as each of the plugin's ways of reading it sees it."""
    principal = get_principal()
    assert g.principal is principal
    assert request.state.principal is principal  # type: ignore[attr-defined]
    assert current().principal is principal
    return {"subject": None if principal is None else principal.subject}


def make_app(auth: Authenticator | None = None, **config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(config)
    AuthMW(app, authenticator=auth)
    app.add_url_rule("/whoami", view_func=whoami)
    app.add_url_rule("/health", "health", lambda: {"status": "ok"})
    app.add_url_rule("/docs/<path:page>", "docs", lambda page: {"page": page})
    app.add_url_rule("/reports", view_func=requires_role("manager")(whoami), endpoint="reports")
    return app


# -- installing ---------------------------------------------------------------------------


def test_the_app_runs_behind_the_core_middleware(auth: Authenticator) -> None:
    app = make_app(auth)
    middleware = app.extensions["authmw"]
    assert isinstance(middleware, AuthMiddleware)
    assert app.wsgi_app is middleware
    assert middleware.authenticator is auth
    assert middleware.require_auth is False


def test_init_app_serves_several_apps(auth: Authenticator, keys: dict[str, str]) -> None:
    extension = AuthMW(authenticator=auth)
    apps = [Flask("one"), Flask("two")]
    for app in apps:
        extension.init_app(app)
        app.add_url_rule("/whoami", view_func=whoami)
    for app in apps:
        response = app.test_client().get("/whoami", headers={"X-API-Key": keys["team_blue"]})
        assert response.json == {"subject": "team:blue"}


def test_the_authenticator_can_come_from_the_config(
    auth: Authenticator, keys: dict[str, str]
) -> None:
    app = Flask(__name__)
    app.config["AUTHMW_AUTHENTICATOR"] = auth
    AuthMW().init_app(app)
    app.add_url_rule("/whoami", view_func=whoami)
    assert app.extensions["authmw"].authenticator is auth
    response = app.test_client().get("/whoami", headers={"X-API-Key": keys["admin"]})
    assert response.json == {"subject": "admin"}


def test_the_argument_wins_over_the_config(auth: Authenticator, make_auth: MakeAuth) -> None:
    app = Flask(__name__)
    app.config["AUTHMW_AUTHENTICATOR"] = make_auth(SQLStore("sqlite://"))
    AuthMW(app, authenticator=auth)
    assert app.extensions["authmw"].authenticator is auth


def test_the_database_url_can_come_from_the_config(
    make_auth: MakeAuth, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AUTHMW_DATABASE_URL", "AUTHMW_SECRET_KEY", "AUTHMW_POLICY"):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'app.db'}"
    key = make_auth(SQLStore(url)).keys.create(name="k", team="blue").key
    app = make_app(AUTHMW_DATABASE_URL=url)
    built = app.extensions["authmw"].authenticator
    try:
        assert isinstance(built, Authenticator)
        assert isinstance(built.store, SQLStore)
        assert built.store.engine.url.database == str(tmp_path / "app.db")
        response = app.test_client().get("/whoami", headers={"X-API-Key": key})
        assert response.json == {"subject": "team:blue"}
    finally:
        built.close()


def test_the_config_must_hold_an_authenticator() -> None:
    app = Flask(__name__)
    app.config["AUTHMW_AUTHENTICATOR"] = "sqlite://"
    with pytest.raises(TypeError, match="AUTHMW_AUTHENTICATOR must be an authmw Authenticator"):
        AuthMW(app)
    assert "authmw" not in app.extensions


KNOWN_KEYS = "AUTHMW_AUTHENTICATOR, AUTHMW_DATABASE_URL, AUTHMW_REQUIRE_AUTH, AUTHMW_PUBLIC_PATHS"


def test_a_misspelled_config_key_is_refused(auth: Authenticator) -> None:
    # Ignored, this typo would leave every route open to anonymous requests.
    app = Flask(__name__)
    app.config["AUTHMW_REQUIRE_AUTHS"] = True
    with pytest.raises(ValueError, match="AUTHMW_REQUIRE_AUTHS") as caught:
        AuthMW(app, authenticator=auth)
    assert str(caught.value) == (
        f"unknown authmw app.config key(s): AUTHMW_REQUIRE_AUTHS (known keys: {KNOWN_KEYS}"
        "; the other AUTHMW_* settings are environment variables, read by"
        " Authenticator.from_env())"
    )
    assert "authmw" not in app.extensions
    assert not isinstance(app.wsgi_app, AuthMiddleware)


def test_every_unknown_key_is_named(
    auth: Authenticator,
) -> None:
    app = Flask(__name__)
    app.config.update(
        AUTHMW_SECRET_KEY="s" * 32, AUTHMW_PUBLIC_PATH=["/health"], AUTHMW_POLICY="x:y"
    )
    with pytest.raises(ValueError, match=r"unknown authmw app\.config key") as caught:
        AuthMW(authenticator=auth).init_app(app)
    assert str(caught.value).startswith(
        "unknown authmw app.config key(s): AUTHMW_POLICY, AUTHMW_PUBLIC_PATH, AUTHMW_SECRET_KEY"
        f" (known keys: {KNOWN_KEYS}; "
    )


def test_the_known_keys_and_other_prefixes_are_accepted(
    auth: Authenticator, keys: dict[str, str]
) -> None:
    app = make_app(
        auth,
        AUTHMW_AUTHENTICATOR=auth,
        AUTHMW_DATABASE_URL="sqlite://",
        AUTHMW_REQUIRE_AUTH=True,
        AUTHMW_PUBLIC_PATHS=["/health"],
        # Only the extension's own prefix is checked: the app's keys are its own.
        AUTHMWX_REQUIRE_AUTHS=True,
        MY_AUTHMW_REQUIRE_AUTHS=True,
        SECRET_KEY="flask's own",
    )
    client = app.test_client()
    assert client.get("/health").status_code == 200
    assert client.get("/whoami").status_code == 401
    assert client.get("/whoami", headers={"X-API-Key": keys["admin"]}).json == {"subject": "admin"}


def test_installing_twice_is_refused(auth: Authenticator) -> None:
    # Two middlewares would authenticate every request twice.
    app = make_app(auth)
    with pytest.raises(RuntimeError, match="already installed"):
        AuthMW(app, authenticator=auth)


# -- the principal on g and request.state ------------------------------------------------------


def test_anonymous_requests_pass_with_no_principal(auth: Authenticator) -> None:
    response = make_app(auth).test_client().get("/whoami")
    assert response.status_code == 200
    assert response.json == {"subject": None}


@pytest.mark.parametrize(
    ("credential", "subject"),
    [("admin", "admin"), ("team_blue", "team:blue"), ("user_employee", "employee")],
)
def test_the_principal_is_on_g_and_request_state(
    auth: Authenticator, credentials: dict[str, dict[str, str]], credential: str, subject: str
) -> None:
    response = make_app(auth).test_client().get("/whoami", headers=credentials[credential])
    assert response.json == {"subject": subject}


def test_a_bad_credential_is_refused_only_where_a_route_asks(
    auth: Authenticator, keys: dict[str, str]
) -> None:
    client = make_app(auth).test_client()
    revoked = {"X-API-Key": keys["revoked"]}
    assert client.get("/whoami", headers=revoked).json == {"subject": None}
    assert_rendered(client.get("/reports", headers=revoked), InvalidToken())
    malformed = {"Authorization": "Bearer a b"}
    assert client.get("/whoami", headers=malformed).json == {"subject": None}
    malformed_error = InvalidRequest("The Authorization header is malformed.")
    assert_rendered(client.get("/reports", headers=malformed), malformed_error)


def test_the_apps_own_hooks_see_the_principal(auth: Authenticator, keys: dict[str, str]) -> None:
    app = Flask(__name__)
    seen: list[Principal | None] = []
    # Registered before the extension is installed, and still run after its hook.
    app.before_request(lambda: seen.append(g.principal))
    AuthMW(app, authenticator=auth)
    app.before_request(lambda: seen.append(request.state.principal))  # type: ignore[attr-defined]
    app.add_url_rule("/whoami", view_func=whoami)
    app.test_client().get("/whoami", headers={"X-API-Key": keys["admin"]})
    assert [p.subject if p else None for p in seen] == ["admin", "admin"]


def test_an_existing_request_state_is_kept(auth: Authenticator, keys: dict[str, str]) -> None:
    class StateRequest(Request):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.state = SimpleNamespace(tenant="acme")

    app = make_app(auth)
    app.request_class = StateRequest
    app.add_url_rule(
        "/state",
        "state",
        lambda: sorted(vars(request.state)),  # type: ignore[attr-defined]
    )
    response = app.test_client().get("/state", headers={"X-API-Key": keys["admin"]})
    assert response.json == ["principal", "tenant"]


def test_g_as_a_mapping_has_the_principal_before_anyone_read_it(
    auth: Authenticator, keys: dict[str, str]
) -> None:
    # g.principal is made on first use; g's mapping methods must not miss it before.
    app = make_app(auth)
    app.add_url_rule(
        "/g",
        "g",
        lambda: {
            "contains": "principal" in g,
            "names": sorted(g),
            "get": getattr(g.get("principal"), "subject", None),
        },
    )
    client = app.test_client()
    response = client.get("/g", headers={"X-API-Key": keys["admin"]})
    assert response.json == {"contains": True, "names": ["principal"], "get": "admin"}
    anonymous = client.get("/g")
    assert anonymous.json == {"contains": True, "names": ["principal"], "get": None}


def test_g_setdefault_and_pop_see_the_principal(auth: Authenticator, keys: dict[str, str]) -> None:
    app = make_app(auth)

    def view() -> dict[str, Any]:
        kept = g.setdefault("principal", "not this")
        popped = g.pop("principal")
        return {"kept": kept.subject, "same": popped is kept}

    app.add_url_rule("/g", "g", view)
    response = app.test_client().get("/g", headers={"X-API-Key": keys["admin"]})
    assert response.json == {"kept": "admin", "same": True}


def test_the_apps_own_g_class_is_extended_even_when_set_after_init(
    auth: Authenticator, keys: dict[str, str]
) -> None:
    class Globals(_AppCtxGlobals):
        def __init__(self) -> None:
            self.tenant = "acme"

    app = make_app(auth)
    app.app_ctx_globals_class = Globals
    app.add_url_rule("/g", "g", lambda: {"tenant": g.tenant, "subject": g.principal.subject})
    response = app.test_client().get("/g", headers={"X-API-Key": keys["admin"]})
    assert response.json == {"tenant": "acme", "subject": "admin"}


def test_after_its_first_request_the_app_runs_the_core_middleware_alone(
    auth: Authenticator, keys: dict[str, str]
) -> None:
    # The app's classes are checked up to the first request, as Flask allows setup
    # up to then; later requests pay for no check and no extra call.
    app = make_app(auth)
    app.request_class = type("Late", (Request,), {})
    app.add_url_rule("/state", "state", lambda: request.state.principal.subject)  # type: ignore[attr-defined]
    middleware = app.extensions["authmw"]
    assert type(middleware) is not AuthMiddleware
    client = app.test_client()
    for _ in range(2):
        assert client.get("/state", headers={"X-API-Key": keys["admin"]}).text == "admin"
        assert type(middleware) is AuthMiddleware
        assert app.wsgi_app is middleware
        assert app.request_class.__qualname__ == "Late"
        assert app.request_class._authmw_extended  # type: ignore[attr-defined]


def test_a_check_in_the_view_is_rendered_as_a_decorators_refusal(
    auth: Authenticator, keys: dict[str, str]
) -> None:
    app = make_app(auth)
    app.add_url_rule("/owner", "owner", lambda: current().require(roles={"manager"}).subject)
    client = app.test_client()
    assert client.get("/owner", headers={"X-API-Key": keys["admin"]}).text == "admin"
    assert_rendered(
        client.get("/owner", headers={"X-API-Key": keys["restricted"]}), InsufficientRole()
    )
    assert_rendered(client.get("/owner"), MissingCredentials())


def test_outside_a_request_g_principal_is_none(auth: Authenticator) -> None:
    app = make_app(auth)
    with app.app_context():
        assert g.principal is None


def test_requests_sharing_an_app_context_each_see_their_own_principal(
    auth: Authenticator, keys: dict[str, str]
) -> None:
    # Flask reuses an app context already pushed (a test fixture's, say), and g
    # with it: g.principal must still be each request's own.
    app = make_app(auth)
    app.add_url_rule("/g", "g", lambda: {"subject": getattr(g.principal, "subject", None)})
    client = app.test_client()
    with app.app_context():
        admin = client.get("/g", headers={"X-API-Key": keys["admin"]}).json
        anonymous = client.get("/g").json
        team = client.get("/g", headers={"X-API-Key": keys["team_blue"]}).json
    assert [admin, anonymous, team] == [
        {"subject": "admin"},
        {"subject": None},
        {"subject": "team:blue"},
    ]


def test_g_principal_cannot_be_set(auth: Authenticator) -> None:
    app = make_app(auth)
    with app.app_context(), pytest.raises(AttributeError, match="cannot be set"):
        g.principal = "someone else"


def test_a_request_class_defining_state_gets_the_principal_in_it(
    auth: Authenticator, keys: dict[str, str]
) -> None:
    class StateRequest(Request):
        @property
        def state(self) -> SimpleNamespace:
            state: SimpleNamespace = self.environ.setdefault("test.state", SimpleNamespace())
            state.tenant = "acme"
            return state

    app = Flask(__name__)
    app.request_class = StateRequest
    AuthMW(app, authenticator=auth)
    app.add_url_rule(
        "/state",
        "state",
        lambda: {
            "names": sorted(vars(request.state)),  # type: ignore[attr-defined]
            "subject": request.state.principal.subject,  # type: ignore[attr-defined]
        },
    )
    response = app.test_client().get("/state", headers={"X-API-Key": keys["admin"]})
    assert response.json == {"names": ["principal", "tenant"], "subject": "admin"}


# -- require_auth and public paths --------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "public"),
    [
        ("/health", True),
        ("/docs/index", True),
        ("/health/", False),
        ("/whoami", False),
        ("/no-such-route", False),
    ],
)
def test_require_auth_with_public_paths(auth: Authenticator, path: str, public: bool) -> None:
    app = make_app(auth, AUTHMW_REQUIRE_AUTH=True, AUTHMW_PUBLIC_PATHS=["/health", "/docs/*"])
    response = app.test_client().get(path)
    if public:
        assert response.status_code == 200
    else:
        # Refused before routing: an anonymous caller cannot even learn what exists.
        assert_rendered(response, MissingCredentials())


def test_require_auth_lets_credentials_through_and_renders_their_errors(
    auth: Authenticator, keys: dict[str, str]
) -> None:
    client = make_app(auth, AUTHMW_REQUIRE_AUTH=True).test_client()
    ok = client.get("/whoami", headers={"X-API-Key": keys["team_blue"]})
    assert ok.json == {"subject": "team:blue"}
    assert_rendered(client.get("/whoami", headers={"X-API-Key": "amk_bogus"}), InvalidToken())
    malformed = client.get("/whoami", headers={"Authorization": "Bearer a,b"})
    assert_rendered(malformed, InvalidRequest("The Authorization header is malformed."))


# -- the error handler ---------------------------------------------------------------------------


def test_an_auth_error_raised_in_a_view_is_rendered_not_a_500(
    auth: Authenticator, keys: dict[str, str]
) -> None:
    app = make_app(auth)
    handled: list[str] = []

    @app.errorhandler(Exception)
    def everything_else(exc: Exception) -> ResponseReturnValue:
        handled.append(type(exc).__name__)
        return "oops", 500

    @app.get("/raise")
    def raising() -> str:
        raise Forbidden()

    @app.after_request
    def tag(response: Any) -> Any:
        response.headers["X-Request-Id"] = "r1"
        return response

    response = app.test_client().get("/raise", headers={"X-API-Key": keys["admin"]})
    # Flask picks the most specific handler: the app's catch-all never sees it.
    assert handled == []
    assert response.headers.pop("X-Request-Id") == "r1"  # after_request hooks still run
    assert_rendered(response, Forbidden())


def test_the_error_handler_uses_the_authenticators_realm(make_auth: MakeAuth) -> None:
    auth = make_auth(SQLStore("sqlite://"), Settings(realm="billing"))
    response = make_app(auth).test_client().get("/reports")
    assert_rendered(response, MissingCredentials(), realm="billing")
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="billing", apikey realm="billing"'
    )


# -- blueprints --------------------------------------------------------------------------------


def test_a_guard_in_before_request_protects_a_whole_blueprint(
    auth: Authenticator, credentials: dict[str, dict[str, str]]
) -> None:
    admin = Blueprint("admin", __name__, url_prefix="/admin")
    admin.before_request(requires_role("admin")(lambda: None))
    admin.add_url_rule("/stats", view_func=lambda: {"stats": 1})
    team = Blueprint("team", __name__, url_prefix="/teams/<team>")
    team.before_request(requires_team()(lambda: None))
    team.add_url_rule("/usage", view_func=lambda team: {"team": team})
    app = make_app(auth)
    app.register_blueprint(admin)
    app.register_blueprint(team)
    client = app.test_client()

    assert client.get("/admin/stats", headers=credentials["team_blue"]).json == {"stats": 1}
    assert client.get("/admin/stats", headers=credentials["user_manager"]).status_code == 403
    assert_rendered(client.get("/admin/stats"), MissingCredentials())
    assert client.get("/health").json == {"status": "ok"}  # outside the blueprint
    own = client.get("/teams/blue/usage", headers=credentials["user_manager"])
    other = client.get("/teams/red/usage", headers=credentials["user_manager"])
    assert own.json == {"team": "blue"}
    assert_rendered(other, Forbidden("This credential is not allowed to act for this team."))


# -- async views ------------------------------------------------------------------------------


def test_the_context_reaches_async_views(auth: Authenticator, keys: dict[str, str]) -> None:
    # Flask runs an async view through asgiref, in an event loop on another thread,
    # in a copy of the request's context: the middleware's context variable is there.
    app = make_app(auth)

    @app.get("/async")
    async def undecorated() -> dict[str, Any]:
        await asyncio.sleep(0)
        principal = current().principal
        subject = None if principal is None else principal.subject
        return {"subject": subject, "same_on_g": g.principal is principal}

    @app.get("/async/reports")
    @requires_role("manager")
    async def decorated() -> dict[str, Any]:
        await asyncio.sleep(0)
        return whoami()

    assert inspect.iscoroutinefunction(decorated)
    client = app.test_client()
    headers = {"X-API-Key": keys["team_blue"]}
    response = client.get("/async", headers=headers)
    assert response.json == {"subject": "team:blue", "same_on_g": True}
    assert client.get("/async").json == {"subject": None, "same_on_g": True}
    assert client.get("/async/reports", headers=headers).json == {"subject": "team:blue"}
    restricted = client.get("/async/reports", headers={"X-API-Key": keys["restricted"]})
    assert_rendered(restricted, InsufficientRole())


# -- failing closed -----------------------------------------------------------------------------


class FlakyStore(SQLStore):
    """A real store that can be taken down."""

    down = False

    def find_key(self, key_id: str) -> Any:
        if self.down:
            raise OSError("connection refused")
        return super().find_key(key_id)


def test_a_store_that_raises_gives_503(make_auth: MakeAuth) -> None:
    store = FlakyStore("sqlite://")
    auth = make_auth(store, Settings(cache_ttl=0))
    key = {"X-API-Key": auth.keys.create(name="k", owner="admin").key}
    assert make_app(auth).test_client().get("/reports", headers=key).status_code == 200
    store.down = True
    for app in (make_app(auth), make_app(auth, AUTHMW_REQUIRE_AUTH=True)):
        response = app.test_client().get("/reports", headers=key)
        assert_rendered(response, ServiceUnavailable())
        assert response.headers["Retry-After"] == "1"
    # A public route still answers, without a principal.
    assert make_app(auth).test_client().get("/whoami", headers=key).json == {"subject": None}


# -- misuse --------------------------------------------------------------------------------------


def test_a_guarded_view_without_the_extension_fails_loudly() -> None:
    app = Flask(__name__)
    app.testing = True  # let the exception reach the test instead of becoming a 500
    app.add_url_rule("/reports", "reports", requires_role("manager")(lambda: "secret"))
    with pytest.raises(RuntimeError, match=NO_MIDDLEWARE):
        app.test_client().get("/reports")


def test_a_team_guard_on_a_route_without_the_parameter_fails_loudly(
    auth: Authenticator, keys: dict[str, str]
) -> None:
    app = make_app(auth)
    app.testing = True
    app.add_url_rule("/usage", "usage", requires_team()(lambda: "never"))
    with pytest.raises(LookupError, match="the route has no path parameter 'team'"):
        app.test_client().get("/usage", headers={"X-API-Key": keys["admin"]})


def test_forgetting_the_parentheses_fails_at_import_time() -> None:
    with pytest.raises(TypeError, match="call the decorator with parentheses"):
        requires_role(whoami)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown principal kind"):
        requires_auth(kinds={"robot"})


# -- the package -----------------------------------------------------------------------------


def test_all_lists_exactly_the_public_names() -> None:
    defined = {
        name
        for name, value in vars(authmw_flask).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == authmw_flask.__name__
    }
    # Every public function or class defined here is declared...
    assert defined <= set(authmw_flask.__all__)
    # ...and every declared name exists and is documented (the decorators are the
    # bound methods of one authmw.decorators.Decorators).
    for name in authmw_flask.__all__:
        assert inspect.getdoc(getattr(authmw_flask, name)), name
    assert {"requires_auth", "requires_role", "requires_scope", "requires_team"} <= set(
        authmw_flask.__all__
    )
    assert len(authmw_flask.__all__) == len(set(authmw_flask.__all__))


def test_the_plugin_is_marked_typed() -> None:
    assert files("authmw_flask").joinpath("py.typed").is_file()


def test_without_flask_the_import_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "authmw_flask")
    monkeypatch.setitem(sys.modules, "flask", None)  # what an absent package looks like
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'authmw\[flask\]'") as caught:
        importlib.import_module("authmw_flask")
    assert caught.value.name == "flask"
