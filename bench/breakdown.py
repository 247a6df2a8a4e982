"""Where authmw's per-request time goes, step by step, inside a real app.

The middleware is rebuilt in cumulative steps (each variant does what the one
before it did, plus one thing), then the real ``AuthMiddleware`` and the real
middleware + ``@requires_role``. The difference between neighbours is what that
step costs *in context*: with the framework's own code around it, which evicts
authmw's code and data from the CPU caches, a step costs about 1.5-3 times what
it costs in a tight loop.

The steps mirror ``authmw/asgi.py``; the last two rows are the real thing, so
whatever the steps leave out shows up there and is never lost.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from authmw import Authenticator
from authmw.context import _current
from authmw.credentials import asgi_raw
from authmw_starlette import AuthMiddleware, requires_role
from bench.harness import Variant

__all__ = ["STEPS", "breakdown_variants"]

#: (name, what the step adds); step i does everything steps 0..i do.
STEPS = [
    ("bare", "no middleware"),
    ("layer", "a pure-ASGI middleware that only passes the request on"),
    ("scan", "+ find the credential headers (`credentials.asgi_raw`)"),
    ("verify", "+ warm `authenticator.lookup_raw()` (one dict lookup, no parse)"),
    ("state", '+ `scope["state"]` principal and auth_error'),
    ("context", "+ what it found in the ContextVar (set, reset)"),
    ("AuthMiddleware", "the real `AuthMiddleware` (the rest: response tracking, checks)"),
    ("+requires_role", 'the real `AuthMiddleware` + `@requires_role("manager")`'),
]


class StepMiddleware:
    """``AuthMiddleware`` cut off after step ``level`` (see ``STEPS``)."""

    def __init__(self, app: ASGIApp, level: int, auth: Authenticator) -> None:
        self.app = app
        self.level = level
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Do steps 2..level, then pass the request on."""
        level, auth = self.level, self.auth
        raw = asgi_raw(scope["headers"]) if level >= 2 else None
        principal = None
        if level >= 3 and raw is not None:
            principal = auth.lookup_raw(raw) or await auth.authenticate_raw_async(raw)
        if level >= 4:
            state = scope.get("state")
            if state is None:
                state = scope["state"] = {}
            state["principal"] = principal
            state["auth_error"] = None
        if level >= 5:
            token = _current.set((auth, principal, None, scope))
            try:
                await self.app(scope, receive, send)
            finally:
                _current.reset(token)
            return
        await self.app(scope, receive, send)


_BODY = {"report": "quarterly", "total": 42}


def _middleware(level: int, auth: Authenticator) -> list[Middleware]:
    if level == 0:
        return []
    if level >= 6:
        return [Middleware(AuthMiddleware, authenticator=auth)]
    return [Middleware(StepMiddleware, level=level, auth=auth)]


def breakdown_variants(auth: Authenticator, scope: Scope, path: str) -> list[Variant]:
    """One variant per step per framework."""
    out = []
    for level, (name, description) in enumerate(STEPS):
        guarded = level == len(STEPS) - 1

        async def st_view(request: Request) -> JSONResponse:
            return JSONResponse(_BODY)

        async def fa_view() -> JSONResponse:
            return JSONResponse(_BODY)

        st_endpoint: Callable[[Request], object] = (
            requires_role("manager")(st_view) if guarded else st_view
        )
        fa_endpoint = requires_role("manager")(fa_view) if guarded else fa_view
        starlette = Starlette(
            routes=[Route(path, st_endpoint)], middleware=_middleware(level, auth)
        )
        fastapi = FastAPI(middleware=_middleware(level, auth))
        fastapi.get(path)(fa_endpoint)
        for framework, app in (("Starlette", starlette), ("FastAPI", fastapi)):
            out.append(
                Variant(framework, name, app, scope, bare=level == 0, description=description)
            )
    return out
