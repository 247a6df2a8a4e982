"""The rule table through HTTP, identical for every way the plugin protects a route.

One matrix of (credential, route) -> (status, error) runs against the same API
built seven ways: Starlette function endpoints (async and sync), ``HTTPEndpoint``
methods, FastAPI path operations with the decorators (async and sync), and FastAPI
with the dependencies (in ``dependencies=[...]`` and as an injected parameter).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authmw import Authenticator, Principal, current
from authmw_starlette import (
    AuthMiddleware,
    get_principal,
    requires_auth,
    requires_role,
    requires_scope,
    requires_team,
)
from authmw_starlette.fastapi import (
    CurrentPrincipal,
    RequireAuth,
    RequireRole,
    RequireScope,
    RequireTeam,
)
from tests.starlette.support import client_for

pytestmark = pytest.mark.anyio


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

OK = (200, None)
MISSING = (401, "missing_credentials")
INVALID = (401, "invalid_token")
ROLE = (403, "insufficient_role")
SCOPE = (403, "insufficient_scope")
FORBIDDEN = (403, "forbidden")

MATRIX: list[tuple[str, tuple[str, str], tuple[int, str | None]]] = [
    # A personal key of an admin is global.
    ("admin", ME, OK),
    ("admin", REPORTS, OK),
    ("admin", ADMIN, OK),
    ("admin", APPOINTMENTS, OK),
    ("admin", REPORT_DATA, OK),
    ("admin", BLUE, OK),
    ("admin", RED, OK),
    ("admin", PASSWORD, FORBIDDEN),
    ("admin", USER_REPORTS, FORBIDDEN),
    # A team key is global within its team.
    ("team_blue", ME, OK),
    ("team_blue", REPORTS, OK),
    ("team_blue", ADMIN, OK),
    ("team_blue", REPORT_DATA, OK),
    ("team_blue", BLUE, OK),
    ("team_blue", RED, FORBIDDEN),
    ("team_blue", PASSWORD, FORBIDDEN),
    # A restricted key passes only its scopes, and no role check.
    ("restricted", ME, OK),
    ("restricted", REPORTS, ROLE),
    ("restricted", ADMIN, ROLE),
    ("restricted", APPOINTMENTS, OK),
    ("restricted", REPORT_DATA, SCOPE),
    ("restricted", RED, OK),
    ("restricted", PASSWORD, FORBIDDEN),
    # A user's token carries the user's roles (through the hierarchy) and teams.
    ("user_manager", ME, OK),
    ("user_manager", REPORTS, OK),
    ("user_manager", ADMIN, ROLE),
    ("user_manager", APPOINTMENTS, OK),
    ("user_manager", REPORT_DATA, OK),
    ("user_manager", BLUE, OK),
    ("user_manager", RED, FORBIDDEN),
    ("user_manager", PASSWORD, OK),
    ("user_manager", USER_REPORTS, OK),
    ("user_employee", REPORTS, ROLE),
    ("user_employee", APPOINTMENTS, OK),
    ("user_employee", REPORT_DATA, SCOPE),
    ("user_employee", RED, OK),
    ("user_employee", BLUE, FORBIDDEN),
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


# -- Starlette: async function endpoints (the request parameter is not called "request")


@requires_auth()
async def s_me(req: Request) -> Response:
    return JSONResponse(body(get_principal(req)))


@requires_role("manager")
async def s_reports(req: Request) -> Response:
    return JSONResponse(body(get_principal(req)))


@requires_role("admin")
async def s_admin(req: Request) -> Response:
    return JSONResponse(body(get_principal(req)))


@requires_scope("appointments:read")
async def s_appointments(req: Request) -> Response:
    return JSONResponse(body(get_principal(req)))


@requires_scope("reports:read")
async def s_report_data(_: Request) -> Response:
    return JSONResponse(body(current().principal))


@requires_team()
async def s_usage(req: Request) -> Response:
    return JSONResponse(body(get_principal(req)))


@requires_auth(kinds={"user"})
async def s_password(req: Request) -> Response:
    return JSONResponse(body(get_principal(req)))


@requires_role("manager", kinds={"user"})
async def s_user_reports(req: Request) -> Response:
    return JSONResponse(body(get_principal(req)))


def starlette_async(auth: Authenticator) -> Starlette:
    return Starlette(
        routes=[
            Route("/me", s_me),
            Route("/reports", s_reports),
            Route("/admin/settings", s_admin, methods=["POST"]),
            Route("/appointments", s_appointments),
            Route("/reports/data", s_report_data),
            Route("/teams/{team}/usage", s_usage),
            Route("/account/password", s_password, methods=["POST"]),
            Route("/user/reports", s_user_reports),
        ],
        middleware=[Middleware(AuthMiddleware, authenticator=auth)],
    )


# -- Starlette: sync function endpoints (run in a worker thread by Starlette)


@requires_auth()
def ss_me(req: Request) -> Response:
    return JSONResponse(body(get_principal(req)))


@requires_role("manager")
def ss_reports(req: Request) -> Response:
    return JSONResponse(body(get_principal(req)))


@requires_role("admin")
def ss_admin(req: Request) -> Response:
    return JSONResponse(body(get_principal(req)))


@requires_scope("appointments:read")
def ss_appointments(req: Request) -> Response:
    return JSONResponse(body(get_principal(req)))


@requires_scope("reports:read")
def ss_report_data(_: Request) -> Response:
    return JSONResponse(body(current().principal))


@requires_team()
def ss_usage(req: Request) -> Response:
    return JSONResponse(body(get_principal(req)))


@requires_auth(kinds={"user"})
def ss_password(req: Request) -> Response:
    return JSONResponse(body(get_principal(req)))


@requires_role("manager", kinds={"user"})
def ss_user_reports(req: Request) -> Response:
    return JSONResponse(body(get_principal(req)))


def starlette_sync(auth: Authenticator) -> Starlette:
    return Starlette(
        routes=[
            Route("/me", ss_me),
            Route("/reports", ss_reports),
            Route("/admin/settings", ss_admin, methods=["POST"]),
            Route("/appointments", ss_appointments),
            Route("/reports/data", ss_report_data),
            Route("/teams/{team}/usage", ss_usage),
            Route("/account/password", ss_password, methods=["POST"]),
            Route("/user/reports", ss_user_reports),
        ],
        middleware=[Middleware(AuthMiddleware, authenticator=auth)],
    )


# -- Starlette: HTTPEndpoint methods, async and sync


class MeEndpoint(HTTPEndpoint):
    @requires_auth()
    async def get(self, request: Request) -> Response:
        return JSONResponse(body(get_principal(request)))


class ReportsEndpoint(HTTPEndpoint):
    @requires_role("manager")
    async def get(self, request: Request) -> Response:
        return JSONResponse(body(get_principal(request)))


class AdminEndpoint(HTTPEndpoint):
    @requires_role("admin")
    def post(self, request: Request) -> Response:
        return JSONResponse(body(get_principal(request)))


class AppointmentsEndpoint(HTTPEndpoint):
    @requires_scope("appointments:read")
    def get(self, request: Request) -> Response:
        return JSONResponse(body(get_principal(request)))


class ReportDataEndpoint(HTTPEndpoint):
    @requires_scope("reports:read")
    async def get(self, request: Request) -> Response:
        return JSONResponse(body(get_principal(request)))


class UsageEndpoint(HTTPEndpoint):
    @requires_team()
    async def get(self, request: Request) -> Response:
        return JSONResponse(body(get_principal(request)))


class PasswordEndpoint(HTTPEndpoint):
    @requires_auth(kinds={"user"})
    async def post(self, request: Request) -> Response:
        return JSONResponse(body(get_principal(request)))


class UserReportsEndpoint(HTTPEndpoint):
    @requires_role("manager", kinds={"user"})
    def get(self, request: Request) -> Response:
        return JSONResponse(body(get_principal(request)))


def starlette_endpoints(auth: Authenticator) -> Starlette:
    return Starlette(
        routes=[
            Route("/me", MeEndpoint),
            Route("/reports", ReportsEndpoint),
            Route("/admin/settings", AdminEndpoint),
            Route("/appointments", AppointmentsEndpoint),
            Route("/reports/data", ReportDataEndpoint),
            Route("/teams/{team}/usage", UsageEndpoint),
            Route("/account/password", PasswordEndpoint),
            Route("/user/reports", UserReportsEndpoint),
        ],
        middleware=[Middleware(AuthMiddleware, authenticator=auth)],
    )


# -- FastAPI: the decorators on path operations


def fastapi_decorated_async(auth: Authenticator) -> FastAPI:
    app = FastAPI()
    app.add_middleware(AuthMiddleware, authenticator=auth)

    @app.get("/me")
    @requires_auth()
    async def me() -> dict[str, Any]:
        return body(current().principal)

    @app.get("/reports")
    @requires_role("manager")
    async def reports(incoming: Request) -> dict[str, Any]:
        return body(get_principal(incoming))

    @app.post("/admin/settings")
    @requires_role("admin")
    async def admin() -> dict[str, Any]:
        return body(current().principal)

    @app.get("/appointments")
    @requires_scope("appointments:read")
    async def appointments() -> dict[str, Any]:
        return body(current().principal)

    @app.get("/reports/data")
    @requires_scope("reports:read")
    async def report_data() -> dict[str, Any]:
        return body(current().principal)

    @app.get("/teams/{team}/usage")
    @requires_team()
    async def usage(team: str) -> dict[str, Any]:
        return body(current().principal)

    @app.post("/account/password")
    @requires_auth(kinds={"user"})
    async def password() -> dict[str, Any]:
        return body(current().principal)

    @app.get("/user/reports")
    @requires_role("manager", kinds={"user"})
    async def user_reports() -> dict[str, Any]:
        return body(current().principal)

    return app


def fastapi_decorated_sync(auth: Authenticator) -> FastAPI:
    # Sync path operations run in FastAPI's threadpool: the context must follow.
    app = FastAPI()
    app.add_middleware(AuthMiddleware, authenticator=auth)

    @app.get("/me")
    @requires_auth()
    def me() -> dict[str, Any]:
        return body(current().principal)

    @app.get("/reports")
    @requires_role("manager")
    def reports(incoming: Request) -> dict[str, Any]:
        return body(get_principal(incoming))

    @app.post("/admin/settings")
    @requires_role("admin")
    def admin() -> dict[str, Any]:
        return body(current().principal)

    @app.get("/appointments")
    @requires_scope("appointments:read")
    def appointments() -> dict[str, Any]:
        return body(current().principal)

    @app.get("/reports/data")
    @requires_scope("reports:read")
    def report_data() -> dict[str, Any]:
        return body(current().principal)

    @app.get("/teams/{team}/usage")
    @requires_team()
    def usage(team: str) -> dict[str, Any]:
        return body(current().principal)

    @app.post("/account/password")
    @requires_auth(kinds={"user"})
    def password() -> dict[str, Any]:
        return body(current().principal)

    @app.get("/user/reports")
    @requires_role("manager", kinds={"user"})
    def user_reports() -> dict[str, Any]:
        return body(current().principal)

    return app


# -- FastAPI: the dependencies


def fastapi_dependencies(auth: Authenticator) -> FastAPI:
    app = FastAPI()
    app.add_middleware(AuthMiddleware, authenticator=auth)

    @app.get("/me", dependencies=[Depends(RequireAuth())])
    async def me() -> dict[str, Any]:
        return body(current().principal)

    @app.get("/reports", dependencies=[Depends(RequireRole("manager"))])
    async def reports() -> dict[str, Any]:
        return body(current().principal)

    @app.post("/admin/settings", dependencies=[Depends(RequireRole("admin"))])
    def admin() -> dict[str, Any]:
        return body(current().principal)

    @app.get("/appointments", dependencies=[Depends(RequireScope("appointments:read"))])
    async def appointments() -> dict[str, Any]:
        return body(current().principal)

    @app.get("/reports/data", dependencies=[Depends(RequireScope("reports:read"))])
    def report_data() -> dict[str, Any]:
        return body(current().principal)

    @app.get("/teams/{team}/usage", dependencies=[Depends(RequireTeam())])
    async def usage(team: str) -> dict[str, Any]:
        return body(current().principal)

    @app.post("/account/password", dependencies=[Depends(RequireAuth(kinds={"user"}))])
    async def password() -> dict[str, Any]:
        return body(current().principal)

    @app.get("/user/reports", dependencies=[Depends(RequireRole("manager", kinds={"user"}))])
    async def user_reports() -> dict[str, Any]:
        return body(current().principal)

    return app


def fastapi_parameters(auth: Authenticator) -> FastAPI:
    app = FastAPI()
    app.add_middleware(AuthMiddleware, authenticator=auth)

    @app.get("/me")
    async def me(principal: CurrentPrincipal) -> dict[str, Any]:
        return body(principal)

    @app.get("/reports")
    async def reports(
        principal: Annotated[Principal, Depends(RequireRole("manager"))],
    ) -> dict[str, Any]:
        return body(principal)

    @app.post("/admin/settings")
    def admin(principal: Annotated[Principal, Depends(RequireRole("admin"))]) -> dict[str, Any]:
        return body(principal)

    @app.get("/appointments")
    async def appointments(
        principal: Annotated[Principal, Depends(RequireScope("appointments:read"))],
    ) -> dict[str, Any]:
        return body(principal)

    @app.get("/reports/data")
    def report_data(
        principal: Annotated[Principal, Depends(RequireScope("reports:read"))],
    ) -> dict[str, Any]:
        return body(principal)

    @app.get("/teams/{team}/usage")
    async def usage(
        team: str, principal: Annotated[Principal, Depends(RequireTeam())]
    ) -> dict[str, Any]:
        return body(principal)

    @app.post("/account/password")
    async def password(
        principal: Annotated[Principal, Depends(RequireAuth(kinds={"user"}))],
    ) -> dict[str, Any]:
        return body(principal)

    @app.get("/user/reports")
    async def user_reports(
        principal: Annotated[Principal, Depends(RequireRole("manager", kinds={"user"}))],
    ) -> dict[str, Any]:
        return body(principal)

    return app


FLAVORS: dict[str, Callable[[Authenticator], Any]] = {
    "starlette-async": starlette_async,
    "starlette-sync": starlette_sync,
    "starlette-endpoint": starlette_endpoints,
    "fastapi-decorator-async": fastapi_decorated_async,
    "fastapi-decorator-sync": fastapi_decorated_sync,
    "fastapi-dependencies": fastapi_dependencies,
    "fastapi-parameters": fastapi_parameters,
}


@pytest.mark.parametrize("flavor", list(FLAVORS))
@pytest.mark.parametrize(
    ("credential", "route", "expected"),
    MATRIX,
    ids=[f"{c}-{m} {p}" for c, (m, p), _ in MATRIX],
)
async def test_rule_table(
    *,
    auth: Authenticator,
    credentials: dict[str, dict[str, str]],
    flavor: str,
    credential: str,
    route: tuple[str, str],
    expected: tuple[int, str | None],
) -> None:
    method, path = route
    status, error = expected
    async with client_for(FLAVORS[flavor](auth)) as client:
        response = await client.request(method, path, headers=credentials[credential])
    assert response.status_code == status, response.text
    if error is None:
        assert response.json() == {"subject": SUBJECTS[credential]}
        return
    assert response.json()["error"] == error
    challenge = response.headers.get("www-authenticate")
    if error == "insufficient_scope":
        assert response.json()["scope"] == "reports:read"
        assert challenge is not None
        assert 'Bearer realm="api", error="insufficient_scope"' in challenge
        assert 'scope="reports:read"' in challenge
    elif error == "missing_credentials":
        assert challenge == 'Bearer realm="api", apikey realm="api"'
    elif error == "invalid_token":
        assert challenge is not None
        assert 'error="invalid_token"' in challenge
    else:
        # 403 for a role, a kind or a team: retrying with another token of the
        # same client will not help, so there is no challenge (RFC 6750 section 3).
        assert challenge is None


@pytest.mark.parametrize("flavor", list(FLAVORS))
@pytest.mark.parametrize("style", ["apikey", "bearer", "x-api-key"])
async def test_every_header_style_reaches_the_guard(
    auth: Authenticator,
    keys: dict[str, str],
    flavor: str,
    style: str,
) -> None:
    key = keys["restricted"]
    headers = {
        "apikey": {"Authorization": f"apikey {key}"},
        "bearer": {"Authorization": f"Bearer {key}"},
        "x-api-key": {"X-API-Key": key},
    }[style]
    async with client_for(FLAVORS[flavor](auth)) as client:
        allowed = await client.get("/appointments", headers=headers)
        denied = await client.get("/reports/data", headers=headers)
    assert allowed.status_code == 200
    assert denied.status_code == 403
    assert denied.json()["error"] == "insufficient_scope"
