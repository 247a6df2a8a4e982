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

Install the middleware with ``add_middleware`` or ``middleware=[...]`` so it sits
inside Starlette's error handling and renders the ``AuthError`` a decorator raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from authmw.asgi import AuthMiddleware
from authmw.context import RequestAuth
from authmw.decorators import Decorators
from authmw.principal import Principal

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

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
