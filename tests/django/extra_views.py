"""Views for the middleware and DRF tests that the rule table does not need."""

from __future__ import annotations

from typing import Any, ClassVar

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from authmw import InvalidRequest, current
from authmw_django import get_principal, requires_auth, requires_role


def describe(request: Any) -> dict[str, Any]:
    principal = get_principal(request)
    error = request.auth_error
    context = current()
    return {
        "subject": None if principal is None else principal.subject,
        "state": None if request.state.principal is None else request.state.principal.subject,
        "context": context.principal is principal and context.error is error,
        "error": None if error is None else error.error,
    }


def open_view(request: HttpRequest) -> HttpResponse:
    return JsonResponse(describe(request))


async def open_async(request: HttpRequest) -> HttpResponse:
    return JsonResponse(describe(request))


def raises(request: HttpRequest) -> HttpResponse:
    raise InvalidRequest("The view refused this.")


def boom(request: HttpRequest) -> HttpResponse:
    raise ValueError("not an authmw error")


class DrfOpen(APIView):  # type: ignore[misc]
    permission_classes: ClassVar[list[Any]] = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response({"user": repr(request.user), "auth": repr(request.auth)})


class DrfDjangoIsAuthenticated(APIView):  # type: ignore[misc]
    permission_classes: ClassVar[list[Any]] = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response({"user": str(request.user)})


class DrfDefault(APIView):  # type: ignore[misc]
    def get(self, request: Request) -> Response:
        return Response({})


# -- class-based views under Django's CSRF middleware (tests/django/test_csrf.py)


@method_decorator(csrf_exempt, name="dispatch")  # every unsafe method below is guarded
@method_decorator(requires_role("admin"), name="post")
class ExemptDispatch(View):  # type: ignore[misc]
    def get(self, request: HttpRequest) -> HttpResponse:
        return JsonResponse(describe(request))

    def post(self, request: HttpRequest) -> HttpResponse:
        return JsonResponse(describe(request))


@method_decorator(requires_auth(), name="dispatch")  # guards, and so exempts, every method
class GuardedDispatch(View):  # type: ignore[misc]
    async def post(self, request: HttpRequest) -> HttpResponse:
        return JsonResponse(describe(request))


urlpatterns = [
    path("csrf/exempt-dispatch", ExemptDispatch.as_view()),
    path("csrf/guarded-dispatch", GuardedDispatch.as_view()),
    path("drf-default", DrfDefault.as_view()),
    path("open", open_view),
    path("open-async", open_async),
    path("public/open", open_view),
    path("raises", raises),
    path("boom", boom),
    path("drf-open", DrfOpen.as_view()),
    path("drf-is-authenticated", DrfDjangoIsAuthenticated.as_view()),
]
