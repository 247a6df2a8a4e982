"""FastAPI dependencies: the same checks as the decorators, documented in OpenAPI.

>>> @app.get("/reports", dependencies=[Depends(RequireRole("manager"))])   # doctest: +SKIP
... async def reports(): ...
>>> @app.get("/me")                                                          # doctest: +SKIP
... async def me(principal: CurrentPrincipal): ...

Each dependency declares the two security schemes authmw accepts (``X-API-Key``
and HTTP bearer), so ``/docs`` shows an Authorize button whose values reach the
middleware unchanged. The dependency itself reads the principal the middleware
resolved; it never parses a header a second time.
"""

# No ``from __future__ import annotations`` here: FastAPI reads these signatures at
# runtime, and releases before 0.116 cannot resolve string annotations on a callable
# instance such as ``Requires``.

from collections.abc import Collection
from typing import Annotated

from fastapi import Depends, Security
from fastapi.requests import HTTPConnection
from fastapi.security import APIKeyHeader, HTTPBearer

from authmw.context import current
from authmw.decorators import Requirement
from authmw.principal import Principal
from authmw_starlette import _path_params

__all__ = [
    "CurrentPrincipal",
    "RequireAuth",
    "RequireRole",
    "RequireScope",
    "RequireTeam",
    "Requires",
    "api_key_scheme",
    "bearer_scheme",
]


class _ApiKeyScheme(APIKeyHeader):
    """Declares the ``X-API-Key`` scheme in OpenAPI; reads nothing.

    The middleware has already parsed the credential, with the one parser. This
    also takes an ``HTTPConnection`` where FastAPI's own classes want a
    ``Request``, which older FastAPI releases cannot supply on WebSocket routes.
    """

    async def __call__(self, connection: HTTPConnection) -> None:
        """Contribute nothing at request time: the scheme is documentation."""


class _BearerScheme(HTTPBearer):
    """Declares the HTTP bearer scheme in OpenAPI; reads nothing (see ``_ApiKeyScheme``)."""

    async def __call__(self, connection: HTTPConnection) -> None:
        """Contribute nothing at request time: the scheme is documentation."""


# The X-API-Key scheme's OpenAPI entry, shared by ``api_key_scheme`` and every ``Requires``.
_API_KEY = {"name": "X-API-Key", "scheme_name": "ApiKey", "description": "An authmw API key."}

#: OpenAPI scheme for ``X-API-Key: <key>``.
api_key_scheme = _ApiKeyScheme(**_API_KEY, auto_error=False)
#: OpenAPI scheme for ``Authorization: Bearer <key or token>``.
bearer_scheme = _BearerScheme(
    scheme_name="Bearer",
    description="An authmw API key or access token.",
    auto_error=False,
)


class Requires(APIKeyHeader):
    """A FastAPI dependency enforcing one :class:`~authmw.decorators.Requirement`.

    Returns the :class:`~authmw.principal.Principal`, so it can be injected.

    It is itself the ``X-API-Key`` scheme in OpenAPI, and takes the bearer scheme
    as its one sub-dependency. FastAPI resolves every sub-dependency on every
    request, at a cost of several microseconds each; a scheme of its own, a
    connection parameter for the path parameters (now read from the scope the
    middleware recorded) and a sub-dependency per scheme cost a route about a
    third more than this.
    """

    def __init__(self, requirement: Requirement) -> None:
        super().__init__(**_API_KEY, auto_error=False)
        self.requirement = requirement

    async def __call__(  # type: ignore[override]  # a dependency, not a header reader
        self, _bearer: Annotated[None, Security(bearer_scheme)] = None
    ) -> Principal:
        """Check the requirement against the principal the middleware resolved."""
        auth = current()
        # The path parameters from the scope, as the decorators read them, on HTTP
        # and WebSocket routes alike.
        return self.requirement.check(auth, _path_params(auth, {}))

    def __repr__(self) -> str:
        return f"Requires({self.requirement!r})"


# The factories keep ``kinds: Collection[str] | None``: FastAPI cannot make that a
# query parameter, so ``Depends(RequireAuth)`` (no parentheses, which would have
# FastAPI call the factory and drop the checker) fails when the route is declared
# instead of leaving the route open. A test guards this.


def RequireAuth(*, kinds: Collection[str] | None = None) -> Requires:
    """Dependency: any valid credential (optionally only of ``kinds``)."""
    return Requires(Requirement.build(kinds=kinds))


def RequireRole(*roles: str, kinds: Collection[str] | None = None) -> Requires:
    """Dependency: one of ``roles``."""
    return Requires(Requirement.build(roles=roles, kinds=kinds))


def RequireScope(*scopes: str, kinds: Collection[str] | None = None) -> Requires:
    """Dependency: all of ``scopes``."""
    return Requires(Requirement.build(scopes=scopes, kinds=kinds))


def RequireTeam(param: str = "team", *, kinds: Collection[str] | None = None) -> Requires:
    """Dependency: the team named by path parameter ``param``."""
    return Requires(Requirement.build(team_param=param, kinds=kinds))


#: ``principal: CurrentPrincipal`` injects the caller, refusing anonymous requests.
CurrentPrincipal = Annotated[Principal, Depends(RequireAuth())]
