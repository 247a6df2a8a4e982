"""The authmw demo API on Django: a whole project configured in code, no settings file.

``authmw demo --framework django`` serves it on a seeded database. To serve it
on your own, with any WSGI server::

    authmw init
    gunicorn 'authmw_examples.django_app.app:create_app()'

Django itself needs no database here (authmw keeps its accounts in its own
store), no sessions, no ``django.contrib.auth`` and no CSRF middleware: the API
takes no cookies, only credentials in headers. The OAuth2 endpoints (token,
revocation, introspection, the login and consent pages, consents and server
metadata) are ordinary routes in ``urls.py`` (``authmw_django.endpoints``); the
login and consent pages keep their own signed cookies and CSRF tokens.
"""

from __future__ import annotations

import secrets
from typing import Any

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

from authmw import Authenticator

__all__ = ["SETTINGS", "create_app"]

#: The project's settings, but for ``AUTHMW``, which :func:`create_app` adds.
SETTINGS: dict[str, Any] = {
    "DEBUG": False,
    # The demo answers on whatever address ``authmw demo --host`` binds; nothing in it
    # builds a URL from the Host header.
    "ALLOWED_HOSTS": ["*"],
    # Django wants one; nothing here signs with it (no sessions, no CSRF).
    "SECRET_KEY": secrets.token_urlsafe(32),
    "ROOT_URLCONF": f"{__package__}.urls",
    "INSTALLED_APPS": ["authmw_django"],
    "MIDDLEWARE": ["authmw_django.AuthMiddleware"],
    "DATABASES": {},
    "USE_TZ": True,
}


def create_app(authenticator: Authenticator | None = None) -> WSGIHandler:
    """Build the demo's WSGI app; without an authenticator, configure one from the environment.

    Django has one set of settings per process: the first call configures them,
    and a later call (or a process whose settings were configured elsewhere,
    with this package's ``urls`` as ``ROOT_URLCONF``) only hands Django the
    new authenticator.
    """
    auth = authenticator or Authenticator.from_env()
    if not settings.configured:
        settings.configure(**SETTINGS, AUTHMW={"AUTHENTICATOR": auth})
    else:
        settings.AUTHMW = {"AUTHENTICATOR": auth}
    django.setup(set_prefix=False)
    app = WSGIHandler()
    app.authenticator = auth
    return app
