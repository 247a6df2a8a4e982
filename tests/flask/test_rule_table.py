"""The rule table through HTTP, identical for every way a Flask app protects a route.

One matrix of (credential, route) -> refusal runs against the same API built four
ways: plain view functions, async views, ``MethodView`` methods and blueprints.
Each refusal is compared byte for byte (status, header list, body) with what the
core renders for the error the rule table calls for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from flask import Blueprint, Flask, g, request
from flask.views import MethodView

from authmw import (
    Authenticator,
    AuthError,
    Forbidden,
    InsufficientRole,
    InsufficientScope,
    InvalidToken,
    MissingCredentials,
    Principal,
    current,
)
from authmw_flask import (
    AuthMW,
    get_principal,
    requires_auth,
    requires_role,
    requires_scope,
    requires_team,
)
from tests.flask.support import assert_rendered

SUBJECTS = {
    "admin": "admin",
    "team_blue": "team:blue",
    "restricted": "admin",
    "user_manager": "manager",
    "user_employee": "employee",
}

ME = ("GET", "/me")
REPORTS = ("GET", "/reports")
ADMIN = ("POST", "/admin/settings")
APPOINTMENTS = ("GET", "/appointments")
REPORT_DATA = ("GET", "/reports/data")
BLUE = ("GET", "/teams/blue/usage")
RED = ("GET", "/teams/red/usage")
PASSWORD = ("POST", "/account/password")
USER_REPORTS = ("GET", "/user/reports")

OK = None
MISSING = MissingCredentials()
INVALID = InvalidToken()
ROLE = InsufficientRole()
SCOPE = InsufficientScope(frozenset({"reports:read"}))
KIND = Forbidden("This kind of credential may not call this endpoint.")
TEAM = Forbidden("This credential is not allowed to act for this team.")

MATRIX: list[tuple[str, tuple[str, str], AuthError | None]] = [
    # A personal key of an admin is global.
    ("admin", ME, OK),
    ("admin", REPORTS, OK),
    ("admin", ADMIN, OK),
    ("admin", APPOINTMENTS, OK),
    ("admin", REPORT_DATA, OK),
    ("admin", BLUE, OK),
    ("admin", RED, OK),
    ("admin", PASSWORD, KIND),
    ("admin", USER_REPORTS, KIND),
    # A team key is global within its team.
    ("team_blue", ME, OK),
    ("team_blue", REPORTS, OK),
    ("team_blue", ADMIN, OK),
    ("team_blue", REPORT_DATA, OK),
    ("team_blue", BLUE, OK),
    ("team_blue", RED, TEAM),
    ("team_blue", PASSWORD, KIND),
    # A restricted key passes only its scopes, and no role check.
    ("restricted", ME, OK),
    ("restricted", REPORTS, ROLE),
    ("restricted", ADMIN, ROLE),
    ("restricted", APPOINTMENTS, OK),
    ("restricted", REPORT_DATA, SCOPE),
    ("restricted", RED, OK),
    ("restricted", PASSWORD, KIND),
    # A user's token carries the user's roles (through the hierarchy) and teams.
    ("user_manager", ME, OK),
    ("user_manager", REPORTS, OK),
    ("user_manager", ADMIN, ROLE),
    ("user_manager", APPOINTMENTS, OK),
    ("user_manager", REPORT_DATA, OK),
    ("user_manager", BLUE, OK),
    ("user_manager", RED, TEAM),
    ("user_manager", PASSWORD, OK),
    ("user_manager", USER_REPORTS, OK),
    ("user_employee", REPORTS, ROLE),
    ("user_employee", APPOINTMENTS, OK),
    ("user_employee", REPORT_DATA, SCOPE),
    ("user_employee", RED, OK),
    ("user_employee", BLUE, TEAM),
    ("user_employee", PASSWORD, OK),
    ("user_employee", USER_REPORTS, ROLE),
    # No credential, and a revoked one.
    ("none", ME, MISSING),
    ("none", REPORTS, MISSING),
    ("none", BLUE, MISSING),
    ("none", PASSWORD, MISSING),
    ("revoked", ME, INVALID),
    ("revoked", APPOINTMENTS, INVALID),
    ("revoked", PASSWORD, INVALID),
]


def body(principal: Principal | None) -> dict[str, Any]:
    assert principal is not None
    return {"subject": principal.subject}


# -- plain view functions, reading the principal every way the plugin offers


@requires_auth()
def me() -> dict[str, Any]:
    return body(g.principal)


@requires_role("manager")
def reports() -> dict[str, Any]:
    return body(request.state.principal)  # type: ignore[attr-defined]


@requires_role("admin")
def admin() -> dict[str, Any]:
    return body(get_principal())


@requires_scope("appointments:read")
def appointments() -> dict[str, Any]:
    return body(current().principal)


@requires_scope("reports:read")
def report_data() -> dict[str, Any]:
    return body(g.principal)


@requires_team()
def usage(team: str) -> dict[str, Any]:
    assert team in {"blue", "red"}
    return body(g.principal)


@requires_auth(kinds={"user"})
def password() -> dict[str, Any]:
    return body(g.principal)


@requires_role("manager", kinds={"user"})
def user_reports() -> dict[str, Any]:
    return body(g.principal)


# -- async views (Flask runs each in an event loop of its own, through asgiref)


@requires_auth()
async def a_me() -> dict[str, Any]:
    return body(g.principal)


@requires_role("manager")
async def a_reports() -> dict[str, Any]:
    return body(current().principal)


@requires_role("admin")
async def a_admin() -> dict[str, Any]:
    return body(get_principal())


@requires_scope("appointments:read")
async def a_appointments() -> dict[str, Any]:
    return body(current().principal)


@requires_scope("reports:read")
async def a_report_data() -> dict[str, Any]:
    return body(request.state.principal)  # type: ignore[attr-defined]


@requires_team()
async def a_usage(team: str) -> dict[str, Any]:
    return body(current().principal)


@requires_auth(kinds={"user"})
async def a_password() -> dict[str, Any]:
    return body(current().principal)


@requires_role("manager", kinds={"user"})
async def a_user_reports() -> dict[str, Any]:
    return body(current().principal)


ROUTES: list[tuple[str, str, Callable[..., Any], Callable[..., Any]]] = [
    # (method, rule, sync view, async view)
    ("GET", "/me", me, a_me),
    ("GET", "/reports", reports, a_reports),
    ("POST", "/admin/settings", admin, a_admin),
    ("GET", "/appointments", appointments, a_appointments),
    ("GET", "/reports/data", report_data, a_report_data),
    ("GET", "/teams/<team>/usage", usage, a_usage),
    ("POST", "/account/password", password, a_password),
    ("GET", "/user/reports", user_reports, a_user_reports),
]


def make_app(auth: Authenticator) -> Flask:
    app = Flask(__name__)
    AuthMW(app, authenticator=auth)
    return app


def flask_sync(auth: Authenticator) -> Flask:
    app = make_app(auth)
    for method, rule, view, _ in ROUTES:
        app.add_url_rule(rule, view_func=view, methods=[method])
    return app


def flask_async(auth: Authenticator) -> Flask:
    app = make_app(auth)
    for method, rule, _, view in ROUTES:
        app.add_url_rule(rule, view_func=view, methods=[method])
    return app


# -- MethodView: decorated methods (sync and async), and the class-level ``decorators``


class MeView(MethodView):
    decorators: ClassVar[list[Callable[..., Any]]] = [requires_auth()]

    def get(self) -> dict[str, Any]:
        return body(g.principal)


class ReportsView(MethodView):
    @requires_role("manager")
    def get(self) -> dict[str, Any]:
        return body(g.principal)


class AdminView(MethodView):
    @requires_role("admin")
    async def post(self) -> dict[str, Any]:
        return body(current().principal)


class AppointmentsView(MethodView):
    @requires_scope("appointments:read")
    def get(self) -> dict[str, Any]:
        return body(g.principal)


class ReportDataView(MethodView):
    decorators: ClassVar[list[Callable[..., Any]]] = [requires_scope("reports:read")]

    async def get(self) -> dict[str, Any]:
        return body(current().principal)


class UsageView(MethodView):
    @requires_team()
    def get(self, team: str) -> dict[str, Any]:
        return body(g.principal)


class PasswordView(MethodView):
    @requires_auth(kinds={"user"})
    def post(self) -> dict[str, Any]:
        return body(g.principal)


class UserReportsView(MethodView):
    @requires_role("manager", kinds={"user"})
    def get(self) -> dict[str, Any]:
        return body(g.principal)


def flask_method_views(auth: Authenticator) -> Flask:
    app = make_app(auth)
    views: list[tuple[str, type[MethodView]]] = [
        ("/me", MeView),
        ("/reports", ReportsView),
        ("/admin/settings", AdminView),
        ("/appointments", AppointmentsView),
        ("/reports/data", ReportDataView),
        ("/teams/<team>/usage", UsageView),
        ("/account/password", PasswordView),
        ("/user/reports", UserReportsView),
    ]
    for rule, view in views:
        app.add_url_rule(rule, view_func=view.as_view(view.__name__))
    return app


# -- blueprints, one nested, with the team in the nested blueprint's path


def flask_blueprints(auth: Authenticator) -> Flask:
    api = Blueprint("api", __name__)
    teams = Blueprint("teams", __name__, url_prefix="/teams")
    for method, rule, view, _ in ROUTES:
        if rule.startswith("/teams/"):
            teams.add_url_rule(rule.removeprefix("/teams"), view_func=view, methods=[method])
        else:
            api.add_url_rule(rule, view_func=view, methods=[method])
    api.register_blueprint(teams)
    app = make_app(auth)
    app.register_blueprint(api)
    return app


FLAVORS: dict[str, Callable[[Authenticator], Flask]] = {
    "views": flask_sync,
    "async-views": flask_async,
    "method-views": flask_method_views,
    "blueprints": flask_blueprints,
}


@pytest.mark.parametrize("flavor", list(FLAVORS))
@pytest.mark.parametrize(
    ("credential", "route", "expected"),
    MATRIX,
    ids=[f"{c}-{m} {p}" for c, (m, p), _ in MATRIX],
)
def test_rule_table(
    *,
    auth: Authenticator,
    credentials: dict[str, dict[str, str]],
    flavor: str,
    credential: str,
    route: tuple[str, str],
    expected: AuthError | None,
) -> None:
    method, path = route
    client = FLAVORS[flavor](auth).test_client()
    response = client.open(path, method=method, headers=credentials[credential])
    if expected is None:
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.json == {"subject": SUBJECTS[credential]}
    else:
        assert_rendered(response, expected)


@pytest.mark.parametrize("flavor", list(FLAVORS))
@pytest.mark.parametrize("style", ["apikey", "bearer", "x-api-key"])
def test_every_header_style_reaches_the_guard(
    auth: Authenticator, keys: dict[str, str], flavor: str, style: str
) -> None:
    key = keys["restricted"]
    headers = {
        "apikey": {"Authorization": f"apikey {key}"},
        "bearer": {"Authorization": f"Bearer {key}"},
        "x-api-key": {"X-API-Key": key},
    }[style]
    client = FLAVORS[flavor](auth).test_client()
    assert client.get("/appointments", headers=headers).json == {"subject": "admin"}
    assert_rendered(client.get("/reports/data", headers=headers), SCOPE)
