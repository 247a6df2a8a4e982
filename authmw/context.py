"""The authentication result of the request being handled, for decorators to check.

The middleware resolves the credential once per request and records the result
here (and in the framework's own request state). Decorators then need no
``request`` argument: they never sniff a parameter by name, and they work on
endpoints that take no request at all, as FastAPI endpoints often do.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NoReturn

import msgspec

from authmw.errors import AuthError, MissingCredentials
from authmw.principal import Principal

if TYPE_CHECKING:
    from authmw.authenticator import Authenticator

__all__ = ["Found", "RequestAuth", "check_found", "current", "refusal"]

#: What travels with the request in the context variable: ``(authenticator,
#: principal, error, request)``, the fields of :class:`RequestAuth` in order.
Found = tuple["Authenticator", Principal | None, AuthError | None, Mapping[str, Any]]


class RequestAuth(msgspec.Struct, frozen=True):
    """What the middleware found: a principal, or the error that stopped one.

    ``request`` is the ASGI scope or WSGI environ, so a plugin can read what its
    framework puts there (path parameters, for team-bound routes).

    :func:`current` builds one from what the middleware recorded; the hot path
    never does (see ``_current``).
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
        return check_found(
            (self.authenticator, self.principal, self.error, self.request),
            roles,
            scopes,
            kinds,
            team,
        )


def check_found(
    found: Found,
    roles: Collection[str],
    scopes: Collection[str],
    kinds: Collection[str] | None,
    team: str | None,
) -> Principal:
    """:meth:`RequestAuth.check` on what the middleware recorded (see ``_current``).

    The guards and the DRF permission classes call this on every request, without
    building a :class:`RequestAuth`.
    """
    authenticator, principal, error, _request = found
    if principal is None:
        raise refusal(error)
    if principal.unrestricted and kinds is None and team is None:
        # What Policy.check answers here without being called: a global API key
        # passes every role and scope requirement (Principal.unrestricted), and
        # nothing else is asked. The commonest check of a service-to-service API,
        # one Python call fewer; a test holds the two answers equal.
        return principal
    authenticator.policy.check(principal, roles, scopes, kinds, team)
    return principal


def refusal(error: AuthError | None) -> AuthError:
    """Return the error to refuse a request that has no principal with.

    The error its credential met (401 ``invalid_token``, 400, 503), or a 401
    without an error code when none was sent.
    """
    return error if error is not None else MissingCredentials()


# The middlewares record a plain tuple, not a RequestAuth: a tuple is built and
# unpacked by the interpreter's commonest instructions, which a framework's own
# request has just run, while a RequestAuth brings code of its own into the CPU's
# caches on every request. Measured inside FastAPI, the difference was 0.1-0.3 us
# a request, out of the 3.5-4 us authmw adds there (docs/decisions/0011).
_current: ContextVar[Found | None] = ContextVar("authmw_request_auth", default=None)


def current() -> RequestAuth:
    """Return the current request's authentication result.

    Raises ``RuntimeError`` outside a request handled by authmw's middleware: a
    protected route without the middleware is a configuration error, and failing
    loudly beats letting the request through.
    """
    found = _current.get() or _no_context()
    return RequestAuth(*found)


def _no_context() -> NoReturn:
    raise RuntimeError(
        "authmw: no authentication context; is authmw's middleware installed on this app?"
    )
