"""Django's CSRF middleware, as ``startproject`` installs it, and authmw's guarded views.

A guarded view admits only requests carrying an authmw credential in a header,
which a browser never adds to a cross-site request by itself, so the decorators
exempt it from the CSRF check (as DRF's ``APIView`` is): a credentialed POST
reaches the view and an anonymous one gets authmw's 401, not Django's CSRF page.
Every view authmw does not guard keeps Django's protection.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, override_settings

from authmw import Authenticator, MissingCredentials
from authmw_django import requires_auth, requires_role, requires_scope, requires_team

pytestmark = pytest.mark.anyio

#: ``django-admin startproject``'s MIDDLEWARE, with authmw's added last as docs/django.md says.
STARTPROJECT_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "authmw_django.AuthMiddleware",
]

#: Guarded POST views, one per decorator and view kind, with a credential each admits.
GUARDED = [
    pytest.param("/function/admin/settings", "admin", id="requires_role-sync"),
    pytest.param("/async/admin/settings", "team_blue", id="requires_role-async"),
    pytest.param("/function/me", "restricted", id="requires_auth-sync"),
    pytest.param("/async/appointments", "restricted", id="requires_scope-async"),
    pytest.param("/function/teams/blue/usage", "team_blue", id="requires_team-sync"),
    pytest.param("/csrf/exempt-dispatch", "admin", id="class-exempt-dispatch"),
    pytest.param("/csrf/guarded-dispatch", "admin", id="class-guarded-dispatch"),
]


@pytest.fixture(autouse=True)
def csrf_middleware(auth: Authenticator) -> Iterator[None]:
    with override_settings(MIDDLEWARE=STARTPROJECT_MIDDLEWARE):
        yield


def assert_csrf_refusal(response: Any) -> None:
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    assert b"CSRF" in response.content


def assert_missing_credentials(response: Any, auth: Authenticator) -> None:
    rendered = MissingCredentials().render(auth.settings.realm)
    assert (response.status_code, response.content) == (rendered.status, rendered.body)
    # The core's headers, WWW-Authenticate first; Django's security middlewares add theirs.
    for name, value in rendered.headers:
        assert response[name] == value
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("path", "who"), GUARDED)
def test_a_credentialed_post_reaches_a_guarded_view(
    path: str, who: str, credentials: dict[str, dict[str, str]]
) -> None:
    response = Client(enforce_csrf_checks=True).post(path, headers=credentials[who])
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(("path", "who"), GUARDED)
async def test_the_async_middleware_path_too(
    path: str, who: str, credentials: dict[str, dict[str, str]]
) -> None:
    response = await AsyncClient(enforce_csrf_checks=True).post(path, headers=credentials[who])
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(("path", "_who"), GUARDED)
def test_an_anonymous_post_gets_authmws_401(path: str, _who: str, auth: Authenticator) -> None:
    response = Client(enforce_csrf_checks=True).post(path)
    assert_missing_credentials(response, auth)


def test_a_foreign_scheme_is_no_credential(auth: Authenticator) -> None:
    # Basic is what a browser may replay on its own: authmw does not take it.
    headers = {"Authorization": "Basic YWRtaW46YWRtaW4="}
    response = Client(enforce_csrf_checks=True).post("/function/me", headers=headers)
    assert_missing_credentials(response, auth)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/open", id="undecorated-function"),
        # The guard on ``post`` alone: Django checks the view as_view() returned.
        pytest.param("/class/admin/settings", id="class-guarded-method-only"),
    ],
)
def test_views_authmw_does_not_exempt_keep_djangos_check(
    path: str, credentials: dict[str, dict[str, str]]
) -> None:
    response = Client(enforce_csrf_checks=True).post(path, headers=credentials["admin"])
    assert_csrf_refusal(response)


def test_an_unguarded_get_of_an_exempt_class_stays_open(
    credentials: dict[str, dict[str, str]],
) -> None:
    response = Client(enforce_csrf_checks=True).get("/csrf/exempt-dispatch")
    assert response.status_code == 200
    assert response.json()["subject"] is None


@pytest.mark.parametrize("decorator", [requires_auth(), requires_role("a"), requires_scope("s:r")])
def test_the_mark_is_on_the_wrapper_not_on_the_view(decorator: Any) -> None:
    def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    assert decorator(view).csrf_exempt is True
    assert not hasattr(view, "csrf_exempt")


def test_requires_team_marks_too() -> None:
    @requires_team("team")
    async def view(request: HttpRequest, team: str) -> HttpResponse:
        return HttpResponse()

    assert view.csrf_exempt is True  # type: ignore[attr-defined]
