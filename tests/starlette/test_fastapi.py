"""FastAPI: the dependencies, and the decorators on path operations.

What each check allows is the rule table (``test_rule_table.py``, which runs it
through both); this module covers what is particular to FastAPI: injection, the
order of authentication and request validation, routers, WebSocket routes,
signatures seen through the decorators, and misuse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, WebSocket
from fastapi.exceptions import FastAPIError
from pydantic import BaseModel

from authmw import Authenticator, Principal, current
from authmw.decorators import Requirement
from authmw_starlette import AuthMiddleware, requires_auth, requires_role
from authmw_starlette.fastapi import (
    CurrentPrincipal,
    RequireAuth,
    RequireRole,
    Requires,
    RequireScope,
    RequireTeam,
    bearer_scheme,
)
from tests.starlette.support import client_for, drive, ws_scope

pytestmark = pytest.mark.anyio


NO_MIDDLEWARE = "no authentication context; is authmw's middleware installed on this app?"


class PasswordChange(BaseModel):
    current_password: str
    new_password: str


def make_app(auth: Authenticator, **options: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(AuthMiddleware, authenticator=auth, **options)
    return app


# -- injection ----------------------------------------------------------------------------------


async def test_current_principal_injects_the_middlewares_principal(
    auth: Authenticator, credentials: dict[str, dict[str, str]]
) -> None:
    app = make_app(auth)

    @app.get("/me")
    async def me(principal: CurrentPrincipal, request: Request) -> dict[str, Any]:
        return {"same": principal is request.state.principal, **principal.to_json()}

    async with client_for(app) as client:
        response = await client.get("/me", headers=credentials["user_manager"])
        anonymous = await client.get("/me")
    assert response.status_code == 200
    assert response.json() == {
        "same": True,
        "kind": "user",
        "subject": "manager",
        "roles": ["employee", "manager"],
        "scopes": ["appointments:read", "appointments:write", "reports:read"],
        "team": None,
        "teams": ["blue"],
        "credential_id": "t-manager",
        "client_id": "test-app",
    }
    assert anonymous.status_code == 401


async def test_sync_path_operation_gets_the_principal_and_the_context(
    auth: Authenticator, credentials: dict[str, dict[str, str]]
) -> None:
    # FastAPI runs a sync path operation in a worker thread: the context follows it.
    app = make_app(auth)

    @app.get("/reports")
    def reports(principal: Annotated[Principal, Depends(RequireRole("manager"))]) -> list[str]:
        return [principal.subject, current().require(roles={"manager"}).subject]

    async with client_for(app) as client:
        response = await client.get("/reports", headers=credentials["team_blue"])
    assert response.json() == ["team:blue", "team:blue"]


async def test_dependencies_stack_and_combine_with_decorators(
    auth: Authenticator, credentials: dict[str, dict[str, str]]
) -> None:
    app = make_app(auth)

    @app.get(
        "/teams/{team}/reports",
        dependencies=[Depends(RequireRole("manager")), Depends(RequireScope("reports:read"))],
    )
    @requires_auth(kinds={"user"})
    async def team_reports(
        team: str, principal: Annotated[Principal, Depends(RequireTeam())]
    ) -> str:
        return f"{principal.subject}@{team}"

    async with client_for(app) as client:
        allowed = await client.get("/teams/blue/reports", headers=credentials["user_manager"])
        wrong_team = await client.get("/teams/red/reports", headers=credentials["user_manager"])
        wrong_role = await client.get("/teams/red/reports", headers=credentials["user_employee"])
        wrong_kind = await client.get("/teams/blue/reports", headers=credentials["team_blue"])
    assert allowed.json() == "manager@blue"
    assert wrong_team.json()["error"] == "forbidden"
    assert wrong_role.json()["error"] == "insufficient_role"
    assert (wrong_kind.status_code, wrong_kind.json()["error"]) == (403, "forbidden")


async def test_router_level_dependencies(
    auth: Authenticator, credentials: dict[str, dict[str, str]]
) -> None:
    app = make_app(auth)
    router = APIRouter(prefix="/admin", dependencies=[Depends(RequireRole("admin"))])

    @router.get("/stats")
    async def stats() -> str:
        return "stats"

    @app.get("/health")
    async def health() -> str:
        return "ok"

    app.include_router(router)
    async with client_for(app) as client:
        admin = await client.get("/admin/stats", headers=credentials["admin"])
        manager = await client.get("/admin/stats", headers=credentials["user_manager"])
        anonymous = await client.get("/admin/stats")
        health_response = await client.get("/health")
    assert admin.json() == "stats"
    assert manager.json()["error"] == "insufficient_role"
    assert anonymous.status_code == 401
    assert health_response.json() == "ok"


async def test_require_team_reads_a_named_parameter_and_fails_loudly_without_it(
    auth: Authenticator, credentials: dict[str, dict[str, str]]
) -> None:
    app = make_app(auth)

    @app.get("/orgs/{org}", dependencies=[Depends(RequireTeam("org"))])
    async def org(org: str) -> str:
        return org

    @app.get("/usage", dependencies=[Depends(RequireTeam())])
    async def usage() -> str:
        return "never"

    async with client_for(app) as client:
        own = await client.get("/orgs/blue", headers=credentials["team_blue"])
        other = await client.get("/orgs/red", headers=credentials["team_blue"])
        with pytest.raises(LookupError, match="the route has no path parameter 'team'"):
            await client.get("/usage", headers=credentials["admin"])
    assert own.json() == "blue"
    assert other.json()["error"] == "forbidden"


async def test_dependency_without_middleware_is_a_loud_configuration_error() -> None:
    app = FastAPI()

    @app.get("/me")
    async def me(principal: CurrentPrincipal) -> str:
        return principal.subject

    async with client_for(app) as client:
        with pytest.raises(RuntimeError, match=NO_MIDDLEWARE):
            await client.get("/me")


def test_factories_validate_at_import_time() -> None:
    with pytest.raises(ValueError, match="unknown principal kind"):
        RequireAuth(kinds={"robot"})
    requires = RequireRole("manager", kinds={"user"})
    assert requires.requirement == Requirement(
        roles=frozenset({"manager"}), kinds=frozenset({"user"})
    )
    assert repr(requires).startswith("Requires(Requirement(")


def test_a_dependency_asks_fastapi_to_resolve_one_thing_more() -> None:
    # FastAPI resolves every sub-dependency and parameter of a dependency on every
    # request, at several microseconds each: the dependency is itself the X-API-Key
    # scheme, so only the bearer scheme is left to resolve, and nothing is read
    # from the request that the middleware has not already recorded.
    app = FastAPI()
    app.get("/reports", dependencies=[Depends(RequireTeam())])(lambda: "ok")
    (route,) = (r for r in app.routes if getattr(r, "path", None) == "/reports")
    (requires,) = route.dependant.dependencies  # type: ignore[attr-defined]
    assert [d.call for d in requires.dependencies] == [bearer_scheme]
    assert not requires.path_params
    assert not requires.query_params
    assert requires.request_param_name is None
    assert requires.websocket_param_name is None


@pytest.mark.parametrize("factory", [RequireAuth, RequireRole, RequireScope, RequireTeam])
def test_forgetting_the_parentheses_never_leaves_a_route_open(
    factory: Callable[..., Requires],
) -> None:
    # ``Depends(RequireAuth)`` would make FastAPI call the factory per request and
    # discard the checker it returns. It must fail when the route is declared.
    app = FastAPI()
    with pytest.raises(FastAPIError, match="valid Pydantic field type"):
        app.get("/open", dependencies=[Depends(factory)])(lambda: "secret")
    assert all(getattr(route, "path", None) != "/open" for route in app.routes)


# -- authentication before request validation --------------------------------------------------


def password_app(auth: Authenticator, style: str, **options: Any) -> FastAPI:
    app = make_app(auth, **options)
    if style == "parameter":

        @app.post("/account/password")
        async def change(
            body: PasswordChange,
            principal: Annotated[Principal, Depends(RequireAuth(kinds={"user"}))],
        ) -> str:
            return principal.subject

    elif style == "dependencies":

        @app.post("/account/password", dependencies=[Depends(RequireAuth(kinds={"user"}))])
        async def change_dep(body: PasswordChange) -> str:
            return current().require().subject

    else:

        @app.post("/account/password")
        @requires_auth(kinds={"user"})
        async def change_decorated(body: PasswordChange) -> str:
            return current().require().subject

    return app


GOOD_BODY = {"current_password": "old-password", "new_password": "new-password"}
BAD_BODY = {"current_password": 12, "unexpected": True}


@pytest.mark.parametrize("style", ["parameter", "dependencies"])
@pytest.mark.parametrize(
    ("credential", "body", "status", "error"),
    [
        ("none", BAD_BODY, 401, "missing_credentials"),
        ("none", None, 401, "missing_credentials"),
        ("revoked", BAD_BODY, 401, "invalid_token"),
        ("admin", BAD_BODY, 403, "forbidden"),
        ("user_manager", BAD_BODY, 422, None),
        ("user_manager", GOOD_BODY, 200, None),
    ],
)
async def test_dependency_authenticates_before_body_validation(
    *,
    auth: Authenticator,
    credentials: dict[str, dict[str, str]],
    style: str,
    credential: str,
    body: dict[str, Any] | None,
    status: int,
    error: str | None,
) -> None:
    async with client_for(password_app(auth, style)) as client:
        response = await client.post(
            "/account/password", json=body, headers=credentials[credential]
        )
    assert response.status_code == status, response.text
    if error is not None:
        assert response.json()["error"] == error
    elif status == 200:
        assert response.json() == "manager"


async def test_unparsable_json_is_refused_by_fastapi_before_any_dependency(
    auth: Authenticator,
) -> None:
    # FastAPI parses the JSON before solving dependencies, so broken JSON from an
    # anonymous caller gets FastAPI's 422. Only require_auth=True refuses earlier.
    json_type = {"content-type": "application/json"}
    async with client_for(password_app(auth, "dependencies")) as client:
        by_dependency = await client.post("/account/password", content=b"{not", headers=json_type)
    async with client_for(password_app(auth, "dependencies", require_auth=True)) as client:
        by_middleware = await client.post("/account/password", content=b"{not", headers=json_type)
    assert by_dependency.status_code == 422
    assert by_middleware.status_code == 401


async def test_decorator_runs_after_fastapi_validation(
    auth: Authenticator, credentials: dict[str, dict[str, str]]
) -> None:
    # A decorator wraps the endpoint, and FastAPI validates the request before it
    # calls the endpoint: an anonymous bad body gets 422. Routes that take a body
    # should use the dependencies, which run first (see the test above).
    async with client_for(password_app(auth, "decorator")) as client:
        bad = await client.post("/account/password", json=BAD_BODY)
        good = await client.post("/account/password", json=GOOD_BODY)
        allowed = await client.post(
            "/account/password", json=GOOD_BODY, headers=credentials["user_employee"]
        )
    assert bad.status_code == 422
    assert good.status_code == 401
    assert good.json()["error"] == "missing_credentials"
    assert allowed.json() == "employee"


# -- decorated path operations keep their signature ------------------------------------------


async def test_decorated_path_operation_keeps_its_parameters(
    auth: Authenticator, credentials: dict[str, dict[str, str]]
) -> None:
    app = make_app(auth)

    @app.get("/search/{kind}")
    @requires_role("employee")
    async def search(kind: str, q: str, limit: int = 10) -> dict[str, Any]:
        return {"kind": kind, "q": q, "limit": limit}

    async with client_for(app) as client:
        found = await client.get(
            "/search/books", params={"q": "x", "limit": "3"}, headers=credentials["user_employee"]
        )
        missing_q = await client.get("/search/books", headers=credentials["user_employee"])
        schema = (await client.get("/openapi.json")).json()
    assert found.json() == {"kind": "books", "q": "x", "limit": 3}
    assert missing_q.status_code == 422
    parameters = schema["paths"]["/search/{kind}"]["get"]["parameters"]
    assert [(p["name"], p["in"], p["required"]) for p in parameters] == [
        ("kind", "path", True),
        ("q", "query", True),
        ("limit", "query", False),
    ]


# -- WebSocket routes ----------------------------------------------------------------------------


def websocket_app(auth: Authenticator) -> FastAPI:
    app = make_app(auth)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, principal: CurrentPrincipal) -> None:
        await websocket.accept()
        await websocket.send_text(principal.subject)
        await websocket.close()

    @app.websocket("/ws/teams/{team}", dependencies=[Depends(RequireTeam())])
    async def ws_team(websocket: WebSocket, team: str) -> None:
        await websocket.accept()
        await websocket.send_text(team)
        await websocket.close()

    return app


async def test_dependencies_guard_websocket_routes(
    auth: Authenticator, keys: dict[str, str]
) -> None:
    app = websocket_app(auth)
    key = [(b"x-api-key", keys["team_blue"].encode())]
    connect = [{"type": "websocket.connect"}]
    accepted = await drive(app, ws_scope("/ws", key), connect)
    anonymous = await drive(app, ws_scope("/ws", []), connect)
    own_team = await drive(app, ws_scope("/ws/teams/blue", key), connect)
    other_team = await drive(app, ws_scope("/ws/teams/red", key), connect)
    assert accepted[0]["type"] == "websocket.accept"
    assert accepted[1] == {"type": "websocket.send", "text": "team:blue"}
    assert anonymous == [{"type": "websocket.close", "code": 1008}]
    assert own_team[1] == {"type": "websocket.send", "text": "blue"}
    assert other_team == [{"type": "websocket.close", "code": 1008}]
