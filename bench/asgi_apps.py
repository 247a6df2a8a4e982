"""The apps under test: one protected ``GET /reports`` per framework and way of protecting it.

Every variant answers the same request (``X-API-Key`` carrying a valid key that
may act as a manager) with the same small ``JSONResponse``; they differ only in
what checks the key and the role:

Starlette
    ``bare``          no authentication at all (the baseline)
    ``authmw``        ``authmw_starlette.AuthMiddleware`` + ``@requires_role("manager")``
    ``starlette-auth`` Starlette's ``AuthenticationMiddleware`` with a backend that
                      looks the key up in a dict + ``@requires("manager")``
    ``pure-asgi``     a hand-written pure-ASGI middleware doing the dict lookup and
                      the role check itself (about the least any Python layer can do)
FastAPI
    ``bare``          no authentication
    ``authmw-dep``    the same middleware + ``Depends(RequireRole("manager"))``
    ``authmw-deco``   the same middleware + ``@requires_role("manager")``
    ``APIKeyHeader``  FastAPI's ``APIKeyHeader`` security dependency checking a dict
    ``pure-asgi``     the same hand-written middleware as for Starlette: the floor
                      for any check that runs in a middleware layer

The peers check a dict; authmw checks its real credential cache (a key verified
against SQLite on first use, then served from memory for ``cache_ttl`` seconds),
with its default settings.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Security
from fastapi.security import APIKeyHeader
from starlette.applications import Starlette
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    SimpleUser,
    requires,
)
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from authmw import Authenticator, Settings
from authmw_starlette import AuthMiddleware, requires_role
from authmw_starlette.fastapi import RequireRole
from bench.harness import Variant, make_scope

__all__ = ["PATH", "fastapi_variants", "make_authenticator", "starlette_variants"]

PATH = "/reports"
_BODY = {"report": "quarterly", "total": 42}
_MANAGER_ROLES = frozenset({"admin", "manager", "employee"})


def make_authenticator(settings: Settings | None = None) -> tuple[Authenticator, str]:
    """An authenticator on in-memory SQLite holding one admin and one personal API key."""
    auth = Authenticator.from_url("sqlite://", settings=settings or Settings())
    auth.store.create_schema()
    # The store directly, not auth.users.create: no password, so no argon2 hash to wait for.
    auth.store.add_user("admin", password_hash=None, roles=frozenset({"admin"}), teams=frozenset())
    issued = auth.keys.create(name="bench", owner="admin")
    return auth, issued.key


# -- Starlette ------------------------------------------------------------------------------


async def _report(request: Request) -> JSONResponse:
    return JSONResponse(_BODY)


@requires_role("manager")
async def _report_authmw(request: Request) -> JSONResponse:
    return JSONResponse(_BODY)


@requires("manager")
async def _report_starlette(request: Request) -> JSONResponse:
    return JSONResponse(_BODY)


class DictBackend(AuthenticationBackend):
    """A minimal Starlette backend: the ``X-API-Key`` header looked up in a dict."""

    def __init__(self, keys: dict[str, tuple[str, frozenset[str]]]) -> None:
        self.keys = {k: (name, sorted(roles)) for k, (name, roles) in keys.items()}

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        """Return the key's scopes (its roles, for ``@requires``) and user, or ``None``."""
        value = conn.headers.get("x-api-key")
        if value is None:
            return None
        found = self.keys.get(value)
        if found is None:
            return None
        name, roles = found
        return AuthCredentials(roles), SimpleUser(name)


class DictKeyMiddleware:
    """A hand-written pure-ASGI middleware: header, dict lookup, role check, nothing else."""

    def __init__(
        self, app: ASGIApp, keys: dict[str, tuple[str, frozenset[str]]], role: str
    ) -> None:
        self.app = app
        self.keys = {k.encode("latin-1"): v for k, v in keys.items()}
        self.role = role

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 401/403 itself, or pass the request on with ``state["principal"]`` set."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = None
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                found = self.keys.get(value)
                break
        if found is None or self.role not in found[1]:
            status = 401 if found is None else 403
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        scope.setdefault("state", {})["principal"] = found[0]
        await self.app(scope, receive, send)


def starlette_variants(auth: Authenticator, key: str) -> list[Variant]:
    """The Starlette variants, all answering ``GET /reports`` with ``key``."""
    peers = {key: ("admin", _MANAGER_ROLES)}
    scope = make_scope(PATH, [(b"x-api-key", key.encode())])
    return [
        Variant(
            "Starlette",
            "bare",
            Starlette(routes=[Route(PATH, _report)]),
            scope,
            bare=True,
            description="no authentication",
        ),
        Variant(
            "Starlette",
            "authmw",
            Starlette(
                routes=[Route(PATH, _report_authmw)],
                middleware=[Middleware(AuthMiddleware, authenticator=auth)],
            ),
            scope,
            authmw=True,
            description='AuthMiddleware + @requires_role("manager")',
        ),
        Variant(
            "Starlette",
            "starlette-auth",
            Starlette(
                routes=[Route(PATH, _report_starlette)],
                middleware=[Middleware(AuthenticationMiddleware, backend=DictBackend(peers))],
            ),
            scope,
            description='AuthenticationMiddleware (dict backend) + @requires("manager")',
        ),
        Variant(
            "Starlette",
            "pure-asgi",
            Starlette(
                routes=[Route(PATH, _report)],
                middleware=[Middleware(DictKeyMiddleware, keys=peers, role="manager")],
            ),
            scope,
            description="hand-written ASGI middleware: dict lookup + role check",
        ),
    ]


# -- FastAPI --------------------------------------------------------------------------------


_api_key_header = APIKeyHeader(name="X-API-Key")


class DictKeyDependency:
    """FastAPI's own way: an ``APIKeyHeader`` security dependency, then a dict lookup."""

    def __init__(self, keys: dict[str, tuple[str, frozenset[str]]], role: str) -> None:
        self.keys = keys
        self.role = role

    async def __call__(self, value: Annotated[str, Security(_api_key_header)]) -> str:
        """Return the caller's name, or raise the 401/403 ``HTTPException``."""
        found = self.keys.get(value)
        if found is None:
            raise HTTPException(status_code=401, detail="invalid API key")
        if self.role not in found[1]:
            raise HTTPException(status_code=403, detail="not allowed")
        return found[0]


def fastapi_variants(auth: Authenticator, key: str) -> list[Variant]:
    """The FastAPI variants, all answering ``GET /reports`` with ``key``."""
    peers = {key: ("admin", _MANAGER_ROLES)}
    scope = make_scope(PATH, [(b"x-api-key", key.encode())])

    bare = FastAPI()

    @bare.get(PATH)
    async def report_bare() -> JSONResponse:
        return JSONResponse(_BODY)

    middleware = [Middleware(AuthMiddleware, authenticator=auth)]
    dep = FastAPI(middleware=middleware)

    @dep.get(PATH, dependencies=[Depends(RequireRole("manager"))])
    async def report_dep() -> JSONResponse:
        return JSONResponse(_BODY)

    deco = FastAPI(middleware=middleware)

    @deco.get(PATH)
    @requires_role("manager")
    async def report_deco() -> JSONResponse:
        return JSONResponse(_BODY)

    peer = FastAPI()

    @peer.get(PATH, dependencies=[Depends(DictKeyDependency(peers, "manager"))])
    async def report_peer() -> JSONResponse:
        return JSONResponse(_BODY)

    floor = FastAPI(middleware=[Middleware(DictKeyMiddleware, keys=peers, role="manager")])

    @floor.get(PATH)
    async def report_floor() -> JSONResponse:
        return JSONResponse(_BODY)

    return [
        Variant("FastAPI", "bare", bare, scope, bare=True, description="no authentication"),
        Variant(
            "FastAPI",
            "authmw-dep",
            dep,
            scope,
            authmw=True,
            description='AuthMiddleware + Depends(RequireRole("manager"))',
        ),
        Variant(
            "FastAPI",
            "authmw-deco",
            deco,
            scope,
            authmw=True,
            description='AuthMiddleware + @requires_role("manager")',
        ),
        Variant(
            "FastAPI",
            "APIKeyHeader",
            peer,
            scope,
            description="APIKeyHeader security dependency checking a dict",
        ),
        Variant(
            "FastAPI",
            "pure-asgi",
            floor,
            scope,
            description="hand-written ASGI middleware: dict lookup + role check",
        ),
    ]
