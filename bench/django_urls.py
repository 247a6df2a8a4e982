"""The Django views and URL conf of the benchmark (``ROOT_URLCONF``; see ``wsgi_apps.py``).

Imported by Django once ``bench.wsgi_apps`` has configured it: importing it first
fails, as DRF, knox and the API-key models need configured settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.urls import path
from knox.auth import TokenAuthentication
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_api_key.permissions import HasAPIKey

from authmw_django import requires_role
from authmw_django.rest_framework import AuthmwAuthentication, HasRole
from bench.wsgi_apps import BODY

__all__ = ["urlpatterns"]


class BareReports(APIView):  # type: ignore[misc]  # DRF is untyped
    """No authentication at all: the DRF baseline."""

    authentication_classes: ClassVar[list[type[Any]]] = []
    permission_classes: ClassVar[list[type[Any]]] = [AllowAny]

    def get(self, request: Any) -> Response:
        return Response(BODY)


class AuthmwReports(APIView):  # type: ignore[misc]
    """authmw: the principal the middleware resolved, checked by ``HasRole``."""

    authentication_classes: ClassVar[list[type[Any]]] = [AuthmwAuthentication]
    permission_classes: ClassVar[list[type[Any]]] = [HasRole("manager")]

    def get(self, request: Any) -> Response:
        return Response(BODY)


class ApiKeyReports(APIView):  # type: ignore[misc]
    """djangorestframework-api-key: a permission that looks the key up in its table."""

    authentication_classes: ClassVar[list[type[Any]]] = []
    permission_classes: ClassVar[list[type[Any]]] = [HasAPIKey]

    def get(self, request: Any) -> Response:
        return Response(BODY)


class KnoxReports(APIView):  # type: ignore[misc]
    """django-rest-knox: token authentication, then DRF's staff check as the role."""

    authentication_classes: ClassVar[list[type[Any]]] = [TokenAuthentication]
    permission_classes: ClassVar[list[type[Any]]] = [IsAdminUser]

    def get(self, request: Any) -> Response:
        return Response(BODY)


def bare_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(BODY)


@requires_role("manager")
def authmw_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(BODY)


#: Every variant's view, by the two path segments that name it.
VIEWS: dict[tuple[str, str], Callable[[HttpRequest], HttpResponseBase]] = {
    ("drf", "bare"): BareReports.as_view(),
    ("django", "bare"): bare_view,
    ("drf", "authmw"): AuthmwReports.as_view(),
    ("drf", "hasapikey"): ApiKeyReports.as_view(),
    ("drf", "knox"): KnoxReports.as_view(),
    ("django", "authmw"): authmw_view,
}


def by_variant(request: HttpRequest, framework: str, variant: str) -> HttpResponseBase:
    """Call the variant's view. Every variant costs the resolver the same this way.

    With one pattern per variant, the resolver tries them in order, and each pattern
    it passes over costs about 5,000 instructions: a variant listed fourth paid some
    20,000 more per request than one listed first, whatever protected it.
    """
    return VIEWS[framework, variant](request)


urlpatterns = [path("<slug:framework>/<slug:variant>/reports", by_variant)]
