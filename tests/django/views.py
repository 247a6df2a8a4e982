"""The rule-table API of the Django tests, built four ways.

Sync function views, async function views, class-based views with
``method_decorator`` (one sync, one async class per route), and DRF ``APIView``
classes with the permission classes. Every view answers ``{"subject": ...}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from authmw import Principal, current
from authmw_django import (
    get_principal,
    requires_auth,
    requires_role,
    requires_scope,
    requires_team,
)
from authmw_django.rest_framework import (
    HasKind,
    HasPrincipal,
    HasRole,
    HasScope,
    HasTeam,
    PrincipalUser,
)

#: Route name -> URL pattern; the same for every way the API is built.
ROUTES = {
    "me": "me",
    "reports": "reports",
    "admin": "admin/settings",
    "appointments": "appointments",
    "report_data": "reports/data",
    "usage": "teams/<str:team>/usage",
    "password": "account/password",
    "user_reports": "user/reports",
}


def answer(request: HttpRequest) -> HttpResponse:
    principal = get_principal(request)
    assert principal is not None
    subject = principal.subject
    # The middleware's three places agree.
    assert request.state.principal is principal
    assert current().principal is principal
    return JsonResponse({"subject": subject})


# -- sync function views


@requires_auth()
def f_me(request: HttpRequest) -> HttpResponse:
    return answer(request)


@requires_role("manager")
def f_reports(request: HttpRequest) -> HttpResponse:
    return answer(request)


@requires_role("admin")
def f_admin(request: HttpRequest) -> HttpResponse:
    return answer(request)


@requires_scope("appointments:read")
def f_appointments(request: HttpRequest) -> HttpResponse:
    return answer(request)


@requires_scope("reports:read")
def f_report_data(request: HttpRequest) -> HttpResponse:
    return answer(request)


@requires_team()
def f_usage(request: HttpRequest, team: str) -> HttpResponse:
    return answer(request)


@requires_auth(kinds={"user"})
def f_password(request: HttpRequest) -> HttpResponse:
    return answer(request)


@requires_role("manager", kinds={"user"})
def f_user_reports(request: HttpRequest) -> HttpResponse:
    return answer(request)


# -- async function views


@requires_auth()
async def a_me(request: HttpRequest) -> HttpResponse:
    return answer(request)


@requires_role("manager")
async def a_reports(request: HttpRequest) -> HttpResponse:
    return answer(request)


@requires_role("admin")
async def a_admin(request: HttpRequest) -> HttpResponse:
    return answer(request)


@requires_scope("appointments:read")
async def a_appointments(request: HttpRequest) -> HttpResponse:
    return answer(request)


@requires_scope("reports:read")
async def a_report_data(request: HttpRequest) -> HttpResponse:
    return answer(request)


@requires_team()
async def a_usage(request: HttpRequest, team: str) -> HttpResponse:
    return answer(request)


@requires_auth(kinds={"user"})
async def a_password(request: HttpRequest) -> HttpResponse:
    return answer(request)


@requires_role("manager", kinds={"user"})
async def a_user_reports(request: HttpRequest) -> HttpResponse:
    return answer(request)


# -- class-based views: method_decorator, sync and async handlers


@method_decorator(requires_auth(), name="get")
class MeView(View):  # type: ignore[misc]
    def get(self, request: HttpRequest) -> HttpResponse:
        return answer(request)


@method_decorator(requires_role("manager"), name="get")
class ReportsView(View):  # type: ignore[misc]
    async def get(self, request: HttpRequest) -> HttpResponse:
        return answer(request)


class AdminView(View):  # type: ignore[misc]
    @method_decorator(requires_role("admin"))  # type: ignore[untyped-decorator]
    def post(self, request: HttpRequest) -> HttpResponse:
        return answer(request)


@method_decorator(requires_scope("appointments:read"), name="get")
class AppointmentsView(View):  # type: ignore[misc]
    async def get(self, request: HttpRequest) -> HttpResponse:
        return answer(request)


@method_decorator(requires_scope("reports:read"), name="get")
class ReportDataView(View):  # type: ignore[misc]
    def get(self, request: HttpRequest) -> HttpResponse:
        return answer(request)


@method_decorator(requires_team("team"), name="get")
class UsageView(View):  # type: ignore[misc]
    async def get(self, request: HttpRequest, team: str) -> HttpResponse:
        return answer(request)


@method_decorator(requires_auth(kinds={"user"}), name="post")
class PasswordView(View):  # type: ignore[misc]
    def post(self, request: HttpRequest) -> HttpResponse:
        return answer(request)


@method_decorator(requires_role("manager", kinds={"user"}), name="get")
class UserReportsView(View):  # type: ignore[misc]
    async def get(self, request: HttpRequest) -> HttpResponse:
        return answer(request)


# -- Django REST framework


class DrfView(APIView):  # type: ignore[misc]
    def respond(self, request: Request) -> Response:
        assert isinstance(request.user, PrincipalUser)
        assert request.user.principal is request.auth
        assert request.auth is get_principal(request)
        principal: Principal = request.auth
        return Response({"subject": principal.subject})

    def get(self, request: Request, **kwargs: Any) -> Response:
        return self.respond(request)

    def post(self, request: Request, **kwargs: Any) -> Response:
        return self.respond(request)


class DrfMe(DrfView):
    permission_classes: ClassVar[list[Any]] = [HasPrincipal]


class DrfReports(DrfView):
    permission_classes: ClassVar[list[Any]] = [HasRole("manager")]


class DrfAdmin(DrfView):
    permission_classes: ClassVar[list[Any]] = [HasRole("admin")]


class DrfAppointments(DrfView):
    permission_classes: ClassVar[list[Any]] = [HasScope("appointments:read")]


class DrfReportData(DrfView):
    permission_classes: ClassVar[list[Any]] = [HasScope("reports:read")]


class DrfUsage(DrfView):
    permission_classes: ClassVar[list[Any]] = [HasTeam("team")]


class DrfPassword(DrfView):
    permission_classes: ClassVar[list[Any]] = [HasKind("user")]


class DrfUserReports(DrfView):
    # Composed: DRF's ``&`` on two authmw classes.
    permission_classes: ClassVar[list[Any]] = [
        HasKind("user") & HasRole("manager")  # type: ignore[operator]  # DRF's metaclass
    ]


VARIANTS: dict[str, dict[str, Callable[..., Any]]] = {
    "function": {
        "me": f_me,
        "reports": f_reports,
        "admin": f_admin,
        "appointments": f_appointments,
        "report_data": f_report_data,
        "usage": f_usage,
        "password": f_password,
        "user_reports": f_user_reports,
    },
    "async": {
        "me": a_me,
        "reports": a_reports,
        "admin": a_admin,
        "appointments": a_appointments,
        "report_data": a_report_data,
        "usage": a_usage,
        "password": a_password,
        "user_reports": a_user_reports,
    },
    "class": {
        "me": MeView.as_view(),
        "reports": ReportsView.as_view(),
        "admin": AdminView.as_view(),
        "appointments": AppointmentsView.as_view(),
        "report_data": ReportDataView.as_view(),
        "usage": UsageView.as_view(),
        "password": PasswordView.as_view(),
        "user_reports": UserReportsView.as_view(),
    },
    "drf": {
        "me": DrfMe.as_view(),
        "reports": DrfReports.as_view(),
        "admin": DrfAdmin.as_view(),
        "appointments": DrfAppointments.as_view(),
        "report_data": DrfReportData.as_view(),
        "usage": DrfUsage.as_view(),
        "password": DrfPassword.as_view(),
        "user_reports": DrfUserReports.as_view(),
    },
}
