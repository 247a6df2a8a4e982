"""authmw for Django and Django REST framework.

In ``settings.py``::

    INSTALLED_APPS = [..., "authmw_django"]          # the ``authmw`` management command
    MIDDLEWARE = [..., "authmw_django.AuthMiddleware"]
    AUTHMW = {"DATABASE_URL": "sqlite:///authmw.db"}  # or {"AUTHENTICATOR": "myproject.auth.build"}

and on views::

    @requires_role("manager")
    def reports(request): ...

:class:`AuthMiddleware` resolves the credential (sync or async) and sets
``request.principal``; the decorators check the one policy and raise the core's
``AuthError``, which the middleware renders exactly as every other authmw plugin
does. For Django REST framework, see :mod:`authmw_django.rest_framework`.
"""

from __future__ import annotations

from typing import Any

from authmw.principal import Principal
from authmw_django.conf import get_authenticator
from authmw_django.decorators import requires_auth, requires_role, requires_scope, requires_team
from authmw_django.middleware import AuthMiddleware, render_error

__all__ = [
    "AuthMiddleware",
    "get_authenticator",
    "get_principal",
    "render_error",
    "requires_auth",
    "requires_role",
    "requires_scope",
    "requires_team",
]


def get_principal(request: Any) -> Principal | None:
    """Return ``request.principal`` (``None`` when anonymous); a DRF ``Request`` works too."""
    principal: Principal | None = getattr(request, "principal", None)
    return principal
