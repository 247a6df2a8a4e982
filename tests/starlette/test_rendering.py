"""One error, one response: byte-identical through a decorator, a dependency and require_auth.

Every channel's response is compared with what the core renderer produces for the
error, so no plugin path can add, drop or reorder a header or reformat the body.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from authmw import (
    Authenticator,
    AuthError,
    Forbidden,
    InsufficientRole,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    MissingCredentials,
    ServiceUnavailable,
)
from authmw.keys import generate
from authmw.store.sql import SQLStore
from authmw_starlette import AuthMiddleware, requires_auth, requires_role, requires_scope
from authmw_starlette.fastapi import RequireAuth, RequireRole, RequireScope
from tests.starlette.support import client_for

pytestmark = pytest.mark.anyio

Raw = tuple[int, list[tuple[bytes, bytes]], bytes]


@requires_scope("reports:read")
async def s_scope(request: Request) -> Response:
    return PlainTextResponse("ok")


@requires_role("manager")
async def s_role(request: Request) -> Response:
    return PlainTextResponse("ok")


@requires_auth(kinds={"user"})
def s_kind(request: Request) -> Response:
    return PlainTextResponse("ok")


async def plain(request: Request) -> Response:
    return PlainTextResponse("ok")


def starlette_decorators(auth: Authenticator) -> Starlette:
    return Starlette(
        routes=[Route("/scope", s_scope), Route("/role", s_role), Route("/kind", s_kind)],
        middleware=[Middleware(AuthMiddleware, authenticator=auth)],
    )


def starlette_require_auth(auth: Authenticator) -> Starlette:
    return Starlette(
        routes=[Route("/scope", plain), Route("/role", plain), Route("/kind", plain)],
        middleware=[Middleware(AuthMiddleware, authenticator=auth, require_auth=True)],
    )


def fastapi_dependencies(auth: Authenticator) -> FastAPI:
    app = FastAPI()
    app.add_middleware(AuthMiddleware, authenticator=auth)

    @app.get("/scope", dependencies=[Depends(RequireScope("reports:read"))])
    async def scope() -> str:
        return "ok"

    @app.get("/role", dependencies=[Depends(RequireRole("manager"))])
    async def role() -> str:
        return "ok"

    @app.get("/kind", dependencies=[Depends(RequireAuth(kinds={"user"}))])
    def kind() -> str:
        return "ok"

    return app


def fastapi_decorators(auth: Authenticator) -> FastAPI:
    app = FastAPI()
    app.add_middleware(AuthMiddleware, authenticator=auth)

    @app.get("/scope")
    @requires_scope("reports:read")
    async def scope() -> str:
        return "ok"

    @app.get("/role")
    @requires_role("manager")
    def role() -> str:
        return "ok"

    @app.get("/kind")
    @requires_auth(kinds={"user"})
    async def kind() -> str:
        return "ok"

    return app


def fastapi_require_auth(auth: Authenticator) -> FastAPI:
    app = FastAPI()
    app.add_middleware(AuthMiddleware, authenticator=auth, require_auth=True)

    @app.get("/scope")
    async def scope() -> str:
        return "ok"

    return app


GUARDS: dict[str, Callable[[Authenticator], Any]] = {
    "starlette-decorator": starlette_decorators,
    "fastapi-dependency": fastapi_dependencies,
    "fastapi-decorator": fastapi_decorators,
}
EVERY_CHANNEL: dict[str, Callable[[Authenticator], Any]] = {
    **GUARDS,
    "starlette-require-auth": starlette_require_auth,
    "fastapi-require-auth": fastapi_require_auth,
}


def expected(error: AuthError) -> Raw:
    rendered = error.render("api")
    headers = [(k.lower().encode(), v.encode()) for k, v in rendered.headers]
    headers.append((b"content-length", str(len(rendered.body)).encode()))
    return rendered.status, headers, rendered.body


async def collect(
    channels: dict[str, Callable[[Authenticator], Any]],
    auth: Authenticator,
    path: str,
    headers: dict[str, str],
) -> dict[str, Raw]:
    out: dict[str, Raw] = {}
    for name, build in channels.items():
        async with client_for(build(auth)) as client:
            response = await client.get(path, headers=headers)
        out[name] = (response.status_code, list(response.headers.raw), response.content)
    return out


@pytest.mark.parametrize(
    ("credential", "error"),
    [
        ("none", MissingCredentials()),
        ("revoked", InvalidToken()),
        ("malformed", InvalidRequest("The Authorization header is malformed.")),
        (
            "two",
            InvalidRequest(
                "Send exactly one credential: one Authorization header or one X-API-Key header."
            ),
        ),
    ],
    ids=["missing", "invalid_token", "invalid_request", "two_credentials"],
)
async def test_credential_errors_render_identically_everywhere(
    auth: Authenticator,
    keys: dict[str, str],
    credential: str,
    error: AuthError,
) -> None:
    headers = {
        "none": {},
        "revoked": {"Authorization": f"Bearer {keys['revoked']}"},
        "malformed": {"Authorization": "Bearer a b"},
        "two": {"Authorization": f"Bearer {keys['admin']}", "X-API-Key": keys["admin"]},
    }[credential]
    responses = await collect(EVERY_CHANNEL, auth, "/scope", headers)
    assert responses == dict.fromkeys(EVERY_CHANNEL, expected(error))


async def test_store_outage_renders_identically_everywhere(tmp_path: Path) -> None:
    dead = Authenticator(SQLStore(f"sqlite:///{tmp_path / 'missing' / 'authmw.db'}"))
    key, _ = generate()
    try:
        responses = await collect(EVERY_CHANNEL, dead, "/scope", {"X-API-Key": key})
    finally:
        dead.close()
    assert responses == dict.fromkeys(EVERY_CHANNEL, expected(ServiceUnavailable()))


@pytest.mark.parametrize(
    ("path", "credential", "error"),
    [
        ("/scope", "restricted", InsufficientScope(frozenset({"reports:read"}))),
        ("/role", "user_employee", InsufficientRole()),
        ("/kind", "admin", Forbidden("This kind of credential may not call this endpoint.")),
    ],
    ids=["insufficient_scope", "insufficient_role", "forbidden"],
)
async def test_authorization_errors_render_identically_in_every_guard(
    *,
    auth: Authenticator,
    credentials: dict[str, dict[str, str]],
    path: str,
    credential: str,
    error: AuthError,
) -> None:
    responses = await collect(GUARDS, auth, path, credentials[credential])
    assert responses == dict.fromkeys(GUARDS, expected(error))
