"""document_oauth2: Swagger UI learns authmw's OAuth2 flows, without touching requests."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI

from authmw_starlette import requires_role, requires_scope
from authmw_starlette.fastapi import RequireRole, RequireScope
from authmw_starlette.openapi import OAUTH2_SCHEME, document_oauth2

pytestmark = pytest.mark.anyio

SCOPES = {"reports:read": "Read the reports", "appointments:read": "Read appointments"}


def make_app(**options: Any) -> FastAPI:
    app = FastAPI(title="demo", version="1")

    @app.get("/health")
    async def health() -> str:
        return "ok"

    @app.get("/reports", dependencies=[Depends(RequireRole("manager"))])
    async def reports() -> str:
        return "reports"

    @app.get("/appointments", dependencies=[Depends(RequireScope("appointments:read"))])
    async def appointments() -> str:
        return "appointments"

    @app.get("/ledger")
    @requires_scope("reports:read")
    @requires_role("manager")
    async def ledger() -> str:
        return "ledger"

    @app.put("/ledger")
    @requires_scope("reports:read")
    async def write_ledger() -> str:
        return "written"

    # Routers, prefixed, with guards of their own and one on the router itself.
    v1 = APIRouter(prefix="/v1")

    @v1.get("/ledger")
    @requires_scope("reports:read")
    async def v1_ledger() -> str:
        return "ledger"

    @v1.get("/appointments", dependencies=[Depends(RequireScope("appointments:read"))])
    async def v1_appointments() -> str:
        return "appointments"

    app.include_router(v1)
    guarded = APIRouter()

    @guarded.get("/plain")
    async def plain() -> str:
        return "plain"

    app.include_router(guarded, prefix="/r", dependencies=[Depends(RequireScope("reports:read"))])

    document_oauth2(app, scopes=SCOPES, **options)
    return app


async def only_decorated_app() -> dict[str, Any]:
    # No authmw dependency anywhere: FastAPI itself declares no scheme at all.
    app = FastAPI(title="demo", version="1")

    @app.get("/reports")
    @requires_scope("reports:read")
    async def reports() -> str:
        return "reports"

    document_oauth2(app, scopes=SCOPES)
    schema: dict[str, Any] = (await fetch(app, "/openapi.json")).json()
    return schema


async def fetch(app: FastAPI, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        return await http.get(path)


async def test_the_flows_are_declared_once_for_authmw_routes_only() -> None:
    app = make_app(docs_client_id="docs-app")
    schema = (await fetch(app, "/openapi.json")).json()
    oauth2 = schema["components"]["securitySchemes"][OAUTH2_SCHEME]
    assert oauth2["type"] == "oauth2"
    code = oauth2["flows"]["authorizationCode"]
    assert code["authorizationUrl"] == "/oauth/authorize"
    assert code["tokenUrl"] == "/oauth/token"
    assert code["scopes"] == SCOPES
    assert oauth2["flows"]["clientCredentials"]["tokenUrl"] == "/oauth/token"
    assert {OAUTH2_SCHEME: []} in schema["paths"]["/reports"]["get"]["security"]
    assert "security" not in schema["paths"]["/health"]["get"]  # public stays public
    # Building the document again does not add the scheme twice.
    assert app.openapi() is app.openapi()
    assert schema["paths"]["/reports"]["get"]["security"].count({OAUTH2_SCHEME: []}) == 1


async def test_each_operation_lists_the_scopes_its_route_requires() -> None:
    paths = (await fetch(make_app(), "/openapi.json")).json()["paths"]
    assert {OAUTH2_SCHEME: ["appointments:read"]} in paths["/appointments"]["get"]["security"]
    assert {OAUTH2_SCHEME: []} in paths["/reports"]["get"]["security"]  # a role, no scope


async def test_routes_guarded_by_a_decorator_are_documented_too() -> None:
    # Swagger UI sends a credential only to operations that list its scheme: a
    # decorated route must list them, or "Try it out" calls it anonymously.
    paths = (await fetch(make_app(), "/openapi.json")).json()["paths"]
    for method in ("get", "put"):
        assert paths["/ledger"][method]["security"] == [
            {"ApiKey": []},
            {"Bearer": []},
            {OAUTH2_SCHEME: ["reports:read"]},
        ]


async def test_routes_of_included_routers_are_documented_like_the_apps_own() -> None:
    paths = (await fetch(make_app(), "/openapi.json")).json()["paths"]
    assert paths["/v1/ledger"]["get"]["security"] == paths["/ledger"]["put"]["security"]
    assert {OAUTH2_SCHEME: ["appointments:read"]} in paths["/v1/appointments"]["get"]["security"]
    assert {OAUTH2_SCHEME: ["reports:read"]} in paths["/r/plain"]["get"]["security"]


async def test_a_decorated_app_gets_the_scheme_definitions_a_dependency_would_add() -> None:
    schema = await only_decorated_app()
    with_dependency = (await fetch(make_app(), "/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    for name in ("ApiKey", "Bearer"):
        assert schemes[name] == with_dependency["components"]["securitySchemes"][name]
    assert schemes["ApiKey"] == {
        "type": "apiKey",
        "name": "X-API-Key",
        "in": "header",
        "description": "An authmw API key.",
    }
    assert schema["paths"]["/reports"]["get"]["security"][-1] == {OAUTH2_SCHEME: ["reports:read"]}


async def test_swagger_ui_uses_pkce_and_the_docs_app() -> None:
    app = make_app(docs_client_id="docs-app")
    assert app.swagger_ui_init_oauth == {
        "usePkceWithAuthorizationCodeGrant": True,
        "clientId": "docs-app",
    }
    page = (await fetch(app, "/docs")).text
    assert "usePkceWithAuthorizationCodeGrant" in page
    assert "docs-app" in page


async def test_without_a_docs_app_swagger_asks_for_a_client_id() -> None:
    app = make_app(authorization_url="https://auth.example.com/oauth/authorize")
    assert "clientId" not in (app.swagger_ui_init_oauth or {})
    schema = (await fetch(app, "/openapi.json")).json()
    flows = schema["components"]["securitySchemes"][OAUTH2_SCHEME]["flows"]
    assert (
        flows["authorizationCode"]["authorizationUrl"] == "https://auth.example.com/oauth/authorize"
    )
