"""document_oauth2: Swagger UI learns authmw's OAuth2 flows, without touching requests."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from authmw_starlette.fastapi import RequireRole
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

    document_oauth2(app, scopes=SCOPES, **options)
    return app


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
