"""Route decorators for Django views: the core's guards, reading the view's URL kwargs.

>>> @requires_role("manager")                                   # doctest: +SKIP
... def reports(request): ...
>>> @requires_team("team")                                      # doctest: +SKIP
... async def usage(request, team): ...                         # path("teams/<team>/usage", usage)

They work on sync and async function views. On a class-based view, apply them
with Django's ``method_decorator``::

    @method_decorator(csrf_exempt, name="dispatch")  # safe: every unsafe method is guarded
    @method_decorator(requires_role("manager"), name="post")
    class Reports(View): ...

A refusal raises the core's :class:`~authmw.errors.AuthError`, which
:class:`~authmw_django.AuthMiddleware` renders; the middleware must be installed.

The view a decorator returns is exempt from Django's CSRF middleware, as DRF's
``APIView`` is, and for the same reason: the guard admits only requests that
carry an authmw credential in a header, which a browser never adds to a
cross-site request by itself. Django's CSRF middleware looks at the callable the
URL pattern routes to, so on a class-based view the exemption must be on
``dispatch``: guarding ``dispatch`` itself puts it there, guarding single
methods does not (exempt ``dispatch`` then, once every method that changes
state is guarded).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from authmw.context import RequestAuth
from authmw.decorators import Decorators, Requirement

__all__ = ["requires_auth", "requires_role", "requires_scope", "requires_team"]

P = ParamSpec("P")
R = TypeVar("R")


def _path_params(_auth: RequestAuth, kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    # Django calls a view with the request and the URL pattern's captured kwargs.
    return kwargs


class _CsrfExemptDecorators(Decorators):
    """The core's decorators, marking the guarded view ``csrf_exempt`` for Django."""

    __slots__ = ()

    def _guard(self, requirement: Requirement) -> Callable[[Callable[P, R]], Callable[P, R]]:
        decorate = super()._guard(requirement)

        def exempt(view: Callable[P, R]) -> Callable[P, R]:
            wrapped = decorate(view)
            # Safe to skip Django's CSRF check here: CSRF abuses what a browser
            # attaches to a cross-site request on its own (cookies, Basic auth),
            # and authmw takes neither. Its principal comes only from an
            # Authorization (Bearer or apikey) or X-API-Key header, which a page on
            # another site can send only after a CORS preflight, and only with a
            # credential it already holds. The guard refuses every request without
            # such a header before the view runs. The attribute goes on the guard's
            # own wrapper, never on the caller's function, and costs nothing per
            # request (django.views.decorators.csrf.csrf_exempt would add a call).
            wrapped.csrf_exempt = True  # type: ignore[attr-defined]
            return wrapped

        return exempt


# Django tells an async view by asgiref's iscoroutinefunction, which on Python 3.11
# is asyncio's: it honours the marker guard() sets on its wrapper.
_decorators = _CsrfExemptDecorators(_path_params, asyncio_marker=True)
requires_auth = _decorators.requires_auth
requires_role = _decorators.requires_role
requires_scope = _decorators.requires_scope
requires_team = _decorators.requires_team
