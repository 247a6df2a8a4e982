"""Fixtures of the Django tests: settings configured in code, a real authenticator per test.

Django has one set of settings per process, configured here once; each test
hands the middleware its own authenticator through ``override_settings``.
Requests go through Django's test ``Client`` (the sync middleware path) and
``AsyncClient`` (the async path).
"""

from __future__ import annotations

from collections.abc import Iterator

import django
import pytest
from django.conf import settings
from django.test import override_settings

from authmw import Authenticator
from authmw.store.sql import SQLStore
from tests.django.support import EMPLOYEE_TOKEN, MANAGER_TOKEN, build_authenticator, issue_keys

if not settings.configured:
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["testserver", "localhost"],
        SECRET_KEY="tests-only-not-a-secret",
        ROOT_URLCONF="tests.django.urls",
        # contenttypes and auth only for DRF's AnonymousUser; no database is ever queried.
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "rest_framework",
            "authmw_django",
        ],
        MIDDLEWARE=["authmw_django.AuthMiddleware"],
        DATABASES={},
        USE_TZ=True,
        # Harmless if a request ever runs outside a test's override: a fresh in-memory store.
        AUTHMW={"DATABASE_URL": "sqlite://"},
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": ["authmw_django.rest_framework.AuthmwAuthentication"],
            "DEFAULT_PERMISSION_CLASSES": ["authmw_django.rest_framework.HasPrincipal"],
            "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
        },
    )
    django.setup()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def auth() -> Iterator[Authenticator]:
    """The fixture world on in-memory SQLite, installed as ``AUTHMW["AUTHENTICATOR"]``."""
    authenticator = build_authenticator(SQLStore("sqlite://"))
    with override_settings(AUTHMW={"AUTHENTICATOR": authenticator}):
        yield authenticator
    authenticator.close()


@pytest.fixture
def keys(auth: Authenticator) -> dict[str, str]:
    return issue_keys(auth)


@pytest.fixture
def credentials(keys: dict[str, str]) -> dict[str, dict[str, str]]:
    """Request headers per credential name: every key, two user tokens, and ``none``."""
    out = {name: {"Authorization": f"Bearer {key}"} for name, key in keys.items()}
    out["user_manager"] = {"Authorization": f"Bearer {MANAGER_TOKEN}"}
    out["user_employee"] = {"Authorization": f"Bearer {EMPLOYEE_TOKEN}"}
    out["none"] = {}
    return out
