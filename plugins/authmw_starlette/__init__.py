"""authmw for Starlette and FastAPI.

>>> app.add_middleware(AuthMiddleware, authenticator=auth)   # doctest: +SKIP
>>> @app.get("/reports")                                     # doctest: +SKIP
... @requires_role("manager")
... async def reports(): ...

The middleware is authmw's ASGI middleware; the decorators work on Starlette
endpoints (functions and ``HTTPEndpoint`` methods) and FastAPI path operations
alike. For FastAPI, :mod:`authmw_starlette.fastapi` offers the same checks as
dependencies that also document themselves in OpenAPI. Prefer those on FastAPI
routes that take a body: a decorator wraps the endpoint, so it runs only after
FastAPI has validated the request (an anonymous bad body gets 422, not 401),
while a dependency runs first.

Install the middleware with ``add_middleware`` or ``middleware=[...]``: it then
sits inside Starlette's error handling and renders the ``AuthError`` a decorator
raises. Wrapped around the app instead (``AuthMiddleware(app, authenticator=auth)``),
it would see that error only after Starlette's outermost layer had answered 500,
so it registers a handler for ``AuthError`` on the app that renders the same bytes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from authmw import asgi as _asgi
from authmw.authenticator import Authenticator
from authmw.context import RequestAuth
from authmw.decorators import Decorators
from authmw.errors import AuthError
from authmw.principal import Principal

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection
    from starlette.responses import Response

__all__ = [
    "AuthMiddleware",
    "get_principal",
    "requires_auth",
    "requires_role",
    "requires_scope",
    "requires_team",
]

# The return types below spell out ``Callable[[Callable[P, R]], Callable[P, R]]``
# instead of going through a generic alias: mypy binds ``P`` and ``R`` to the
# returned decorator only when they appear literally, and through an alias it
# solves them to ``Never`` at the call, rejecting every decorated view.


class AuthMiddleware(_asgi.AuthMiddleware):
    """authmw's ASGI middleware (:class:`authmw.asgi.AuthMiddleware`), for Starlette and FastAPI.

    Only its construction differs: wrapped directly around a Starlette or FastAPI
    app, it gives the app a handler for ``AuthError`` (unless the app has one),
    since Starlette's own error handling would answer a refusal raised in a route
    with 500 before this middleware saw it. Requests run the core's code unchanged.
    """

    def __init__(
        self,
        app: _asgi.ASGIApp,
        authenticator: Authenticator,
        *,
        require_auth: bool = False,
        public_paths: Iterable[str] = (),
    ) -> None:
        super().__init__(app, authenticator, require_auth=require_auth, public_paths=public_paths)
        # Imported here, not with the module: importing the plugin needs no Starlette.
        from starlette.applications import Starlette  # noqa: PLC0415

        if isinstance(app, Starlette) and AuthError not in app.exception_handlers:
            # Starlette types HTTP and WebSocket handlers apart; this one is both.
            handler: Any = _renderer(authenticator.settings.realm)
            app.add_exception_handler(AuthError, handler)


def _renderer(realm: str) -> Callable[[HTTPConnection, Exception], Awaitable[Response | None]]:
    """Return an exception handler answering an ``AuthError`` as the core middleware does."""
    from starlette.responses import Response  # noqa: PLC0415
    from starlette.websockets import WebSocket  # noqa: PLC0415

    async def render(conn: HTTPConnection, exc: Exception) -> Response | None:
        if not isinstance(exc, AuthError):  # registered for AuthError only
            raise exc
        if isinstance(conn, WebSocket):
            await conn.close(code=_asgi.WS_POLICY_VIOLATION)
            return None
        rendered = exc.render(realm)
        return Response(rendered.body, rendered.status, headers=dict(rendered.headers))

    return render


def _path_params(auth: RequestAuth, _kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    # Starlette's router writes the matched path parameters into the scope.
    params: Mapping[str, Any] = auth.request.get("path_params", {})
    return params


# Starlette and FastAPI tell an async endpoint by asyncio.iscoroutinefunction (on
# Python 3.11 and 3.12), which honours the marker guard() sets on its wrapper.
_decorators = Decorators(_path_params, asyncio_marker=True)
requires_auth = _decorators.requires_auth
requires_role = _decorators.requires_role
requires_scope = _decorators.requires_scope
requires_team = _decorators.requires_team


def get_principal(request: HTTPConnection) -> Principal | None:
    """Return ``request.state.principal`` (``None`` when anonymous); a WebSocket works too."""
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal
