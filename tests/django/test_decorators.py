"""The decorators themselves: view kinds, URL kwargs, and a missing middleware."""

from __future__ import annotations

import pytest
from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from authmw.authenticator import Authenticator
from authmw.context import _current
from authmw.store.sql import SQLStore
from authmw_django import requires_auth, requires_team
from tests.django.views import VARIANTS


def test_async_views_stay_coroutine_functions() -> None:
    # Asked the way Django asks: asgiref's check (asyncio's on Python 3.11).
    assert iscoroutinefunction(VARIANTS["async"]["me"])
    assert not iscoroutinefunction(VARIANTS["function"]["me"])


def test_without_the_middleware_a_guarded_view_fails_loudly() -> None:
    @requires_auth()
    def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    with pytest.raises(RuntimeError, match="middleware"):
        view(RequestFactory().get("/"))


def test_a_team_route_needs_its_url_kwarg() -> None:
    @requires_team("org")
    def view(request: HttpRequest, team: str) -> HttpResponse:
        return HttpResponse()

    auth = Authenticator(SQLStore("sqlite://"))
    token = _current.set((auth, None, None, {}))
    try:
        with pytest.raises(LookupError, match="'org'"):
            view(RequestFactory().get("/"), team="blue")
    finally:
        _current.reset(token)
        auth.close()
