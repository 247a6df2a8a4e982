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

from collections.abc import Mapping
from typing import Any

from authmw.context import RequestAuth
from authmw.decorators import Decorators

__all__ = ["requires_auth", "requires_role", "requires_scope", "requires_team"]


def _path_params(_auth: RequestAuth, kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    # Django calls a view with the request and the URL pattern's captured kwargs.
    return kwargs


# Django tells an async view by asgiref's iscoroutinefunction, which on Python 3.11
# is asyncio's: it honours the marker guard() sets on its wrapper.
_decorators = Decorators(_path_params, asyncio_marker=True)
requires_auth = _decorators.requires_auth
requires_role = _decorators.requires_role
requires_scope = _decorators.requires_scope
requires_team = _decorators.requires_team
