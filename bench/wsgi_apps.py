"""The WSGI apps under test: Flask, Django REST framework and plain Django.

Every variant answers ``GET`` with a valid key of an admin (who may act as a
manager) with the same small JSON body; they differ only in what checks the
key and the role:

Flask (``GET /reports``)
    ``bare``             no authentication (the baseline)
    ``authmw``           ``AuthMW(app, authenticator=...)`` + ``@requires_role("manager")``
    ``Flask-HTTPAuth``   ``HTTPTokenAuth(scheme="Bearer", header="X-API-Key")`` with a
                         ``verify_token`` dict lookup, ``get_user_roles`` and
                         ``@auth.login_required(role="manager")``
    ``before_request``   a hand-written ``before_request`` hook: dict lookup + role check
DRF (``GET /drf/<variant>/reports``, views in ``bench/django_urls.py``)
    ``bare``             an ``APIView`` with no authentication classes and ``AllowAny``
    ``authmw``           ``authmw_django.AuthMiddleware`` + ``AuthmwAuthentication`` +
                         ``HasRole("manager")``
    ``HasAPIKey``        djangorestframework-api-key's ``HasAPIKey`` (key in ``X-API-Key``
                         via ``API_KEY_CUSTOM_HEADER``; it knows no roles)
    ``knox``             django-rest-knox's ``TokenAuthentication`` (``Authorization: Token``,
                         the only header it reads) + DRF's ``IsAdminUser`` as the role check
Django (``GET /django/<variant>/reports``)
    ``bare``             a plain function view returning a ``JsonResponse``
    ``authmw``           ``authmw_django.AuthMiddleware`` + ``@requires_role("manager")``

Django's settings exist once per process, so one settings object serves every
Django variant: one in-memory SQLite database (migrated once, at setup), one
URL conf with a path per variant. Only ``MIDDLEWARE`` differs: Django reads it
when a handler is built (``BaseHandler.load_middleware``) and never again, so two
``WSGIHandler`` instances are built, one under ``override_settings(MIDDLEWARE=[])``
for the bare views and the peers, one with ``authmw_django.AuthMiddleware`` for
the authmw views. Each variant therefore carries exactly the middleware it
needs, and all of them still run interleaved in this one process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import flask
from flask_httpauth import HTTPTokenAuth

from authmw import Authenticator
from authmw_flask import AuthMW
from authmw_flask import requires_role as flask_requires_role
from bench.harness import Variant, make_environ

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = ["PATH", "django_variants", "flask_variants"]

PATH = "/reports"
BODY = {"report": "quarterly", "total": 42}
_MANAGER_ROLES = frozenset({"admin", "manager", "employee"})
_BAD_KEY = "amk_notakey"


# -- Flask ----------------------------------------------------------------------------------


def flask_variants(auth: Authenticator, key: str) -> list[Variant]:
    """The Flask variants, all answering ``GET /reports`` with ``key`` in ``X-API-Key``."""
    peers: dict[str, tuple[str, frozenset[str]]] = {key: ("admin", _MANAGER_ROLES)}
    environ = make_environ(PATH, [("X-API-Key", key)])
    refused = make_environ(PATH, [("X-API-Key", _BAD_KEY)])

    bare = flask.Flask(__name__)

    @bare.get(PATH)
    def report_bare() -> dict[str, Any]:
        return BODY

    protected = flask.Flask(__name__)
    AuthMW(protected, authenticator=auth)

    @protected.get(PATH)
    @flask_requires_role("manager")
    def report_authmw() -> dict[str, Any]:
        return BODY

    httpauth = flask.Flask(__name__)
    token_auth = HTTPTokenAuth(scheme="Bearer", header="X-API-Key")

    @token_auth.verify_token  # type: ignore[untyped-decorator]  # Flask-HTTPAuth is untyped
    def verify_token(token: str) -> tuple[str, frozenset[str]] | None:
        return peers.get(token)

    # Flask-HTTPAuth takes a list or tuple of roles (any other value is one role).
    role_lists = {name: tuple(sorted(roles)) for name, roles in peers.values()}

    @token_auth.get_user_roles  # type: ignore[untyped-decorator]
    def get_user_roles(user: tuple[str, frozenset[str]]) -> tuple[str, ...]:
        return role_lists[user[0]]

    @httpauth.get(PATH)
    @token_auth.login_required(role="manager")  # type: ignore[untyped-decorator]
    def report_httpauth() -> dict[str, Any]:
        return BODY

    hook = flask.Flask(__name__)

    @hook.before_request
    def check_key() -> None:
        found = peers.get(flask.request.headers.get("X-API-Key", ""))
        if found is None:
            flask.abort(401)
        if "manager" not in found[1]:
            flask.abort(403)
        flask.g.principal = found[0]

    @hook.get(PATH)
    def report_hook() -> dict[str, Any]:
        return BODY

    def variant(name: str, app: flask.Flask, description: str, **kw: bool) -> Variant:
        return Variant(
            "Flask",
            name,
            app,
            environ,
            description=description,
            wsgi=True,
            refused=refused,
            **kw,
        )

    return [
        variant("bare", bare, "no authentication", bare=True),
        variant(
            "authmw",
            protected,
            'AuthMW(app) + @requires_role("manager")',
            authmw=True,
        ),
        variant(
            "Flask-HTTPAuth",
            httpauth,
            'HTTPTokenAuth(header="X-API-Key"), dict verify_token + login_required(role="manager")',
        ),
        variant("before_request", hook, "hand-written before_request: dict lookup + role check"),
    ]


# -- Django and DRF -------------------------------------------------------------------------


def _configure_django(auth: Authenticator) -> None:
    """Configure Django once for every Django variant, migrate the in-memory database."""
    import django  # noqa: PLC0415 - Django is set up only when its variants are asked for
    from django.conf import settings  # noqa: PLC0415
    from django.core.management import call_command  # noqa: PLC0415

    if settings.configured:
        raise RuntimeError("Django is already configured in this process")
    settings.configure(
        DEBUG=False,
        SECRET_KEY="authmw-bench-only-not-a-secret",  # noqa: S106 - a benchmark, no sessions
        ALLOWED_HOSTS=["*"],
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "rest_framework",
            "rest_framework_api_key",
            "knox",
            "authmw_django",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        ROOT_URLCONF="bench.django_urls",
        # The handlers are built with their own MIDDLEWARE (see the module docstring).
        MIDDLEWARE=[],
        AUTHMW={"AUTHENTICATOR": auth},
        API_KEY_CUSTOM_HEADER="HTTP_X_API_KEY",
        REST_FRAMEWORK={
            # JSON only, for every DRF variant: an API does not negotiate HTML.
            "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
            "DEFAULT_AUTHENTICATION_CLASSES": [],
            "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
        },
        # The refusal checks would log "Unauthorized: ..." warnings; they are expected.
        LOGGING={
            "version": 1,
            "disable_existing_loggers": False,
            "loggers": {"django.request": {"level": "ERROR"}},
        },
    )
    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def _handler(middleware: list[str]) -> WSGIApplication:
    from django.core.handlers.wsgi import WSGIHandler  # noqa: PLC0415
    from django.test.utils import override_settings  # noqa: PLC0415

    # load_middleware() reads settings.MIDDLEWARE once, here, and never again.
    with override_settings(MIDDLEWARE=middleware):
        handler: WSGIApplication = WSGIHandler()
    return handler


def django_variants(auth: Authenticator, key: str) -> list[Variant]:
    """The DRF and plain-Django variants: configures Django (once per process)."""
    _configure_django(auth)
    from django.contrib.auth import get_user_model  # noqa: PLC0415
    from knox.models import AuthToken  # noqa: PLC0415
    from rest_framework_api_key.models import APIKey  # noqa: PLC0415

    # The peers' own credentials, in their own tables: an API key and a knox
    # token of a staff user (DRF's IsAdminUser is knox's role check here).
    user = get_user_model().objects.create_user("admin", is_staff=True)
    _, api_key = APIKey.objects.create_key(name="bench")
    _, knox_token = AuthToken.objects.create(user=user)

    plain = _handler([])
    with_authmw = _handler(["authmw_django.AuthMiddleware"])

    def variant(
        framework: str,
        name: str,
        *,
        app: WSGIApplication,
        header: tuple[str, str],
        bad: tuple[str, str],
        description: str,
        **kw: bool,
    ) -> Variant:
        path = f"/{framework.lower()}/{name.lower()}/reports"
        return Variant(
            framework,
            name,
            app,
            make_environ(path, [header]),
            description=description,
            wsgi=True,
            refused=make_environ(path, [bad]),
            **kw,
        )

    good, bad = ("X-API-Key", key), ("X-API-Key", _BAD_KEY)
    return [
        variant(
            "DRF",
            "bare",
            app=plain,
            header=good,
            bad=bad,
            description="APIView, no authentication, AllowAny",
            bare=True,
        ),
        variant(
            "DRF",
            "authmw",
            app=with_authmw,
            header=good,
            bad=bad,
            description='AuthMiddleware + AuthmwAuthentication + HasRole("manager")',
            authmw=True,
        ),
        variant(
            "DRF",
            "HasAPIKey",
            app=plain,
            header=("X-API-Key", api_key),
            bad=("X-API-Key", "NotAKey1.notavalidsecretatall00000000"),
            description="djangorestframework-api-key HasAPIKey (SQLite lookup, no roles)",
        ),
        variant(
            "DRF",
            "knox",
            app=plain,
            header=("Authorization", f"Token {knox_token}"),
            bad=("Authorization", "Token " + "0" * len(knox_token)),
            description="django-rest-knox TokenAuthentication (SQLite lookup) + IsAdminUser",
        ),
        variant(
            "Django",
            "bare",
            app=plain,
            header=good,
            bad=bad,
            description="function view, no middleware",
            bare=True,
        ),
        variant(
            "Django",
            "authmw",
            app=with_authmw,
            header=good,
            bad=bad,
            description='AuthMiddleware + @requires_role("manager")',
            authmw=True,
        ),
    ]
