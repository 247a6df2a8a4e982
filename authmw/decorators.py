"""Route guards, written once for every plugin.

A plugin turns :func:`guard` into its public ``requires_*`` decorators by saying
one thing: where its framework keeps path parameters (for team-bound routes).
The check itself is the one policy's, as in
:meth:`authmw.context.RequestAuth.require`. Sync and async views get a wrapper
of their own kind, so an async view stays a coroutine function and frameworks
keep awaiting it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import sys
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from authmw.context import RequestAuth, _current, _no_context, check_found
from authmw.policy import check_kinds
from authmw.principal import Principal

__all__ = ["Decorators", "PathParams", "Requirement", "guard", "requirements_of"]

P = ParamSpec("P")
R = TypeVar("R")
#: Given the request's auth context and the view's keyword arguments, return its path parameters.
PathParams = Callable[[RequestAuth, Mapping[str, Any]], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Requirement:
    """What a route requires: any of ``roles``, all of ``scopes``, one of ``kinds``, a team."""

    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    kinds: frozenset[str] | None = None
    #: Name of the path parameter holding the team the resource belongs to.
    team_param: str | None = None

    @classmethod
    def build(
        cls,
        *,
        roles: Collection[str] = (),
        scopes: Collection[str] = (),
        kinds: Collection[str] | None = None,
        team_param: str | None = None,
    ) -> Requirement:
        """Validate arguments once, at decoration time."""
        if isinstance(roles, str) or isinstance(scopes, str):
            raise TypeError("pass roles and scopes as separate arguments, not one string")
        for name in (*roles, *scopes, *(() if team_param is None else (team_param,))):
            if not isinstance(name, str):
                # ``@requires_role`` without arguments passes the view itself here.
                raise TypeError(
                    f"expected a role, scope or parameter name, got {name!r}; "
                    "call the decorator with parentheses: @requires_role('admin')"
                )
        return cls(frozenset(roles), frozenset(scopes), check_kinds(kinds), team_param)

    def check(self, auth: RequestAuth, path_params: Mapping[str, Any]) -> Principal:
        """Return the principal or raise the ``AuthError`` that answers the request."""
        team = None
        if self.team_param is not None:
            value = path_params.get(self.team_param)
            if value is None:
                raise LookupError(f"authmw: the route has no path parameter {self.team_param!r}")
            team = str(value)
        return auth.check(self.roles, self.scopes, self.kinds, team)


#: Where a guarded view lists the requirements its guards check, for documentation
#: (a plugin's OpenAPI); the checks themselves never read it.
_REQUIREMENTS = "__authmw_requirements__"


def requirements_of(view: Callable[..., Any]) -> tuple[Requirement, ...]:
    """Return what authmw's guards check before ``view`` runs, innermost first.

    Empty for a view no guard wraps. Stacked guards each add theirs, and a
    request must meet them all.
    """
    found = getattr(view, _REQUIREMENTS, ())
    return found if isinstance(found, tuple) else ()


if sys.version_info >= (3, 12):
    _mark_coroutine_function = inspect.markcoroutinefunction
    _MARK_SEEN_BY_INSPECT = True
else:

    def _mark_coroutine_function(func: Callable[P, R]) -> Callable[P, R]:
        # What ``inspect.markcoroutinefunction`` does on 3.12, as asgiref does it on
        # 3.11: asyncio.iscoroutinefunction() honours this marker, inspect's does not.
        func._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]
        return func

    _MARK_SEEN_BY_INSPECT = False


def guard(
    requirement: Requirement, path_params: PathParams, *, asyncio_marker: bool = False
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Return a decorator that checks ``requirement`` before the view runs.

    ``asyncio_marker``: the framework tells an async view by
    ``asyncio.iscoroutinefunction``, so on Python 3.11 too an async view can be
    wrapped by a plain function (see below).
    """
    # The check runs on every request of the route, so it calls as little as it can:
    # check_found() on what the middleware recorded, as RequestAuth.check() does,
    # without building a RequestAuth. Only team-bound routes build one, to ask the
    # plugin for their path parameters.
    roles, scopes, kinds = requirement.roles, requirement.scopes, requirement.kinds
    params = path_params if requirement.team_param is not None else None

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            found = _current.get() or _no_context()
            if params is None:
                check_found(found, roles, scopes, kinds, None)
            else:
                auth = RequestAuth(*found)
                requirement.check(auth, params(auth, kwargs))
            return view(*args, **kwargs)

        wrapped: Callable[P, R] = checked
        if inspect.iscoroutinefunction(view):
            if _MARK_SEEN_BY_INSPECT or asyncio_marker:
                # A plain function that checks, then returns the view's own coroutine
                # for the framework to await: one coroutine per request, not two.
                # Marked, so frameworks still await it instead of running it in a thread.
                wrapped = _mark_coroutine_function(checked)
            else:
                wrapped = _async_checked(view, checked)
        # Frameworks that read signatures (FastAPI) resolve string annotations
        # against the wrapper's module, not the view's; older FastAPI releases then
        # see unresolved names. Hand them the view's signature, evaluated where the
        # view was written.
        # A forward reference not defined yet raises: then keep the lazy signature.
        with contextlib.suppress(NameError, TypeError, ValueError):
            wrapped.__signature__ = inspect.signature(view, eval_str=True)  # type: ignore[attr-defined]
        # functools.wraps copied the inner guards' list; this guard adds its own.
        setattr(wrapped, _REQUIREMENTS, (*requirements_of(view), requirement))
        return wrapped

    return decorate


def _async_checked(view: Callable[P, Any], checked: Callable[P, R]) -> Callable[P, R]:
    """Wrap ``checked`` in a coroutine function, for frameworks that need one to await."""

    @functools.wraps(view)
    async def async_view(*args: P.args, **kwargs: P.kwargs) -> Any:
        return await checked(*args, **kwargs)  # type: ignore[misc]

    return async_view  # type: ignore[return-value]


class Decorators:
    """The four route decorators of a plugin, written once.

    A plugin says where its framework keeps path parameters, and whether it tells
    async views by ``asyncio.iscoroutinefunction`` (see :func:`guard`), and exports
    the bound methods: ``requires_role = Decorators(getter).requires_role``.
    """

    __slots__ = ("_asyncio_marker", "_path_params")

    def __init__(self, path_params: PathParams, *, asyncio_marker: bool = False) -> None:
        self._path_params = path_params
        self._asyncio_marker = asyncio_marker

    def _guard(self, requirement: Requirement) -> Callable[[Callable[P, R]], Callable[P, R]]:
        return guard(requirement, self._path_params, asyncio_marker=self._asyncio_marker)

    def requires_auth(
        self, *, kinds: Collection[str] | None = None
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Require any valid credential (optionally only of the given ``kinds``)."""
        return self._guard(Requirement.build(kinds=kinds))

    def requires_role(
        self, *roles: str, kinds: Collection[str] | None = None
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Require one of ``roles`` (through the hierarchy). Global API keys pass."""
        return self._guard(Requirement.build(roles=roles, kinds=kinds))

    def requires_scope(
        self, *scopes: str, kinds: Collection[str] | None = None
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Require all of ``scopes``; a 403 ``insufficient_scope`` names them otherwise."""
        return self._guard(Requirement.build(scopes=scopes, kinds=kinds))

    def requires_team(
        self, param: str = "team", *, kinds: Collection[str] | None = None
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Require the principal to act for the team named by path parameter ``param``."""
        return self._guard(Requirement.build(team_param=param, kinds=kinds))
