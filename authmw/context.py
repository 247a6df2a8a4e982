"""The authentication result of the request being handled, for decorators to check.

The middleware resolves the credential once per request and records the result
here (and in the framework's own request state). Decorators then need no
``request`` argument: they never sniff a parameter by name, and they work on
endpoints that take no request at all, as FastAPI endpoints often do.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import msgspec

from authmw.errors import AuthError, MissingCredentials
from authmw.principal import Principal

if TYPE_CHECKING:
    from authmw.authenticator import Authenticator

__all__ = ["RequestAuth", "current"]


class RequestAuth(msgspec.Struct, frozen=True):
    """What the middleware found: a principal, or the error that stopped one.

    ``request`` is the ASGI scope or WSGI environ, so a plugin can read what its
    framework puts there (path parameters, for team-bound routes).

    One is built for every request, so it is a msgspec ``Struct``: built in C,
    where a Python ``__init__`` setting four attributes cost twice as much.
    """

    authenticator: Authenticator
    principal: Principal | None
    error: AuthError | None
    request: Mapping[str, Any]

    def __repr__(self) -> str:
        # Not the generated repr: ``request`` holds the headers, credentials included.
        return f"RequestAuth(principal={self.principal!r}, error={self.error!r})"

    def require(
        self,
        *,
        roles: Collection[str] = (),
        scopes: Collection[str] = (),
        kinds: Collection[str] | None = None,
        team: str | None = None,
    ) -> Principal:
        """Return the principal if it may proceed; raise the right ``AuthError`` if not.

        No principal: the error the credential met (401 ``invalid_token``, 400, 503),
        or 401 without an error code when none was sent.
        """
        return self.check(roles, scopes, kinds, team)

    def check(
        self,
        roles: Collection[str],
        scopes: Collection[str],
        kinds: Collection[str] | None,
        team: str | None,
    ) -> Principal:
        """:meth:`require` with positional arguments, for guards that run on every request."""
        principal = self.principal
        if principal is None:
            raise self.error if self.error is not None else MissingCredentials()
        self.authenticator.policy.check(principal, roles, scopes, kinds, team)
        return principal


_current: ContextVar[RequestAuth | None] = ContextVar("authmw_request_auth", default=None)


def current() -> RequestAuth:
    """Return the current request's authentication result.

    Raises ``RuntimeError`` outside a request handled by authmw's middleware: a
    protected route without the middleware is a configuration error, and failing
    loudly beats letting the request through.
    """
    state = _current.get()
    if state is None:
        raise RuntimeError(
            "authmw: no authentication context; is authmw's middleware installed on this app?"
        )
    return state
