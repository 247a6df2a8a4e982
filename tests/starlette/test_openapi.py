"""OpenAPI: the dependencies document authmw's schemes, and Swagger's values work."""

from __future__ import annotations

from typing import Annotated, Any

import fastapi
import pytest
from fastapi import APIRouter, Depends, FastAPI

from authmw import Authenticator, Principal
from authmw_starlette import AuthMiddleware
from authmw_starlette.fastapi import (
    CurrentPrincipal,
    RequireAuth,
    RequireRole,
    RequireScope,
    RequireTeam,
)
from tests.starlette.support import client_for

pytestmark = pytest.mark.anyio


EITHER_SCHEME: list[dict[str, list[str]]] = [{"ApiKey": []}, {"Bearer": []}]

# Each authmw dependency is itself the ApiKey scheme. FastAPI merges an operation's
# requirements of one scheme since 0.123.8; before, a route with two authmw
# dependencies lists the ApiKey alternative twice, which means the same.
MERGES_SCHEMES = tuple(int(part) for part in fastapi.__version__.split(".")[:3]) >= (0, 123, 8)


def alternatives(security: list[dict[str, list[str]]]) -> list[dict[str, list[str]]]:
    """The operation's security requirements, a repeated one counted once on old FastAPI."""
    if MERGES_SCHEMES:
        return security
    return [item for i, item in enumerate(security) if item not in security[:i]]


def make_app(auth: Authenticator, **options: Any) -> FastAPI:
    app = FastAPI(title="demo", version="1")
    app.add_middleware(AuthMiddleware, authenticator=auth, **options)

    @app.get("/health")
    async def health() -> str:
        return "ok"

    @app.get("/me")
    async def me(principal: CurrentPrincipal) -> str:
        return principal.subject

    @app.get("/reports", dependencies=[Depends(RequireRole("manager"))])
    async def reports() -> str:
        return "reports"

    @app.get(
        "/appointments",
        dependencies=[Depends(RequireAuth()), Depends(RequireScope("appointments:read"))],
    )
    async def appointments() -> str:
        return "appointments"

    @app.get("/teams/{team}/usage")
    async def usage(team: str, principal: Annotated[Principal, Depends(RequireTeam())]) -> str:
        return team

    router = APIRouter(prefix="/admin", dependencies=[Depends(RequireRole("admin"))])

    @router.post("/settings")
    async def settings() -> str:
        return "saved"

    app.include_router(router)
    return app


async def openapi(app: FastAPI) -> dict[str, Any]:
    async with client_for(app) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    schema: dict[str, Any] = response.json()
    return schema


async def test_security_schemes(auth: Authenticator) -> None:
    schema = await openapi(make_app(auth))
    assert schema["components"]["securitySchemes"] == {
        "ApiKey": {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "An authmw API key.",
        },
        "Bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "An authmw API key or access token.",
        },
    }


@pytest.mark.parametrize(
    ("method", "path", "protected"),
    [
        ("get", "/health", False),
        ("get", "/me", True),
        ("get", "/reports", True),
        ("get", "/appointments", True),
        ("get", "/teams/{team}/usage", True),
        ("post", "/admin/settings", True),
    ],
)
async def test_protected_operations_list_the_schemes_public_ones_do_not(
    auth: Authenticator, method: str, path: str, protected: bool
) -> None:
    operation = (await openapi(make_app(auth)))["paths"][path][method]
    if protected:
        # Two requirement objects: either scheme will do (OpenAPI 3.1 section 4.8.30).
        assert alternatives(operation["security"]) == EITHER_SCHEME
    else:
        assert "security" not in operation


async def test_dependencies_add_no_parameters_of_their_own(auth: Authenticator) -> None:
    # The credential is documented as a security scheme, not as a header parameter,
    # and ``request`` does not leak into the operation.
    paths = (await openapi(make_app(auth)))["paths"]
    assert "parameters" not in paths["/me"]["get"]
    assert [p["name"] for p in paths["/teams/{team}/usage"]["get"]["parameters"]] == ["team"]


@pytest.mark.parametrize("scheme_name", ["ApiKey", "Bearer"])
async def test_values_swagger_sends_reach_the_middleware(
    auth: Authenticator, keys: dict[str, str], scheme_name: str
) -> None:
    # Build the request the way Swagger UI does from the published scheme.
    app = make_app(auth)
    scheme = (await openapi(app))["components"]["securitySchemes"][scheme_name]
    if scheme["type"] == "apiKey":
        assert scheme["in"] == "header"
        headers = {scheme["name"]: keys["admin"]}
    else:
        assert scheme["scheme"] == "bearer"
        headers = {"Authorization": f"Bearer {keys['admin']}"}
    async with client_for(app) as client:
        me = await client.get("/me", headers=headers)
        settings = await client.post("/admin/settings", headers=headers)
    assert (me.status_code, me.json()) == (200, "admin")
    assert (settings.status_code, settings.json()) == (200, "saved")


async def test_docs_stay_reachable_under_require_auth(auth: Authenticator) -> None:
    app = make_app(auth, require_auth=True, public_paths=["/health", "/openapi.json", "/docs*"])
    async with client_for(app) as client:
        docs = await client.get("/docs")
        redirect = await client.get("/docs/oauth2-redirect")
        schema = await client.get("/openapi.json")
        me = await client.get("/me")
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text
    assert redirect.status_code == 200
    assert schema.json()["info"]["title"] == "demo"
    assert me.status_code == 401
