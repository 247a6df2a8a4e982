"""Route decorators for Django views: the core's guards, reading the view's URL kwargs.

>>> @requires_role("manager")                                   # doctest: +SKIP
... def reports(request): ...
>>> @requires_team("team")                                      # doctest: +SKIP
... async def usage(request, team): ...                         # path("teams/<team>/usage", usage)

They work on sync and async function views. On a class-based view, apply them
with Django's ``method_decorator``::

    @method_decorator(requires_role("manager"), name="get")
    class Reports(View): ...

A refusal raises the core's :class:`~authmw.errors.AuthError`, which
:class:`~authmw_django.AuthMiddleware` renders; the middleware must be installed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, ParamSpec, TypeVar

from authmw.context import RequestAuth
from authmw.decorators import Requirement, guard

__all__ = ["requires_auth", "requires_role", "requires_scope", "requires_team"]

P = ParamSpec("P")
R = TypeVar("R")
# As in authmw_starlette: the decorator types are spelled out, not aliased, so
# mypy binds P and R at each use.


def _path_params(_auth: RequestAuth, kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    # Django calls a view with the request and the URL pattern's captured kwargs.
    return kwargs


def requires_auth(
    *, kinds: Collection[str] | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Require any valid credential (optionally only of the given ``kinds``)."""
    return guard(Requirement.build(kinds=kinds), _path_params)


def requires_role(
    *roles: str, kinds: Collection[str] | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Require one of ``roles`` (through the hierarchy). Global API keys pass."""
    return guard(Requirement.build(roles=roles, kinds=kinds), _path_params)


def requires_scope(
    *scopes: str, kinds: Collection[str] | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Require all of ``scopes``; a 403 ``insufficient_scope`` names them otherwise."""
    return guard(Requirement.build(scopes=scopes, kinds=kinds), _path_params)


def requires_team(
    param: str = "team", *, kinds: Collection[str] | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Require the principal to act for the team named by URL kwarg ``param``."""
    return guard(Requirement.build(team_param=param, kinds=kinds), _path_params)
