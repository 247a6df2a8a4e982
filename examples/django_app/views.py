"""The demo API's views: plain Django function views with authmw's decorators.

Each answers exactly as the FastAPI demo does: the same JSON, byte for byte
(compact, as FastAPI writes it), and the same statuses.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse

from authmw import Principal
from authmw_django import (
    get_authenticator,
    requires_auth,
    requires_role,
    requires_scope,
    requires_team,
)

from ..fastapi_style import (
    APP_SETTINGS,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    PASSWORD_CHANGE,
    Body,
    BodyError,
    render,
)

View = Callable[..., HttpResponse]


def json_response(data: Any, status: int = 200) -> HttpResponse:
    """Serialise ``data`` as FastAPI's ``JSONResponse`` does."""
    return HttpResponse(render(data), status=status, content_type="application/json")


def allow(*methods: str) -> Callable[[View], View]:
    """Answer other methods with 405 before anything else runs, as FastAPI's router does."""

    def decorate(view: View) -> View:
        @wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                response = json_response(METHOD_NOT_ALLOWED, status=405)
                response["Allow"] = ", ".join(methods)
                return response
            return view(request, *args, **kwargs)

        return checked

    return decorate


def _principal(request: HttpRequest) -> Principal:
    principal: Principal = request.principal  # set by the middleware; the guard checked it
    return principal


def json_body(body: Body) -> Callable[[View], View]:
    """Hand the view the request's JSON body as ``data``, checked as the FastAPI demo checks it.

    A body refused gets FastAPI's answer (a 422 with pydantic's entries, without
    the input), before the view runs. Put it below the guard: as in the FastAPI
    demo, the caller is checked before the body.
    """

    def decorate(view: View) -> View:
        @wraps(view)
        def parsed(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                data = body.parse(request.META.get("CONTENT_TYPE"), request.body)
            except BodyError as error:
                return json_response(error.payload, error.status)
            return view(request, *args, data=data, **kwargs)

        return parsed

    return decorate


@allow("GET")
def health(request: HttpRequest) -> HttpResponse:
    """Report that the service is up. Public: no credential needed."""
    return json_response({"status": "ok"})


@allow("GET")
@requires_auth()
def me(request: HttpRequest) -> HttpResponse:
    """Return the caller as authmw resolved it. Any valid credential."""
    return json_response(_principal(request).to_json())


@allow("GET")
@requires_auth()
def catalog(request: HttpRequest) -> HttpResponse:
    """List the services offered: global master data, for any valid credential."""
    return json_response({"services": ["check-up", "consultation", "follow-up"]})


@allow("GET")
@requires_role("manager")
def reports(request: HttpRequest) -> HttpResponse:
    """List the reports. Role manager (or above)."""
    return json_response(
        {"reports": ["monthly-revenue", "no-shows"], "requested_by": _principal(request).subject}
    )


@allow("POST")
@requires_role("admin")
@json_body(APP_SETTINGS)
def update_settings(request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
    """Change the application settings. Role admin. Body (optional): ``{"maintenance_mode"}``."""
    return json_response({"saved": data})


@allow("GET")
@requires_scope("appointments:read")
def appointments(request: HttpRequest) -> HttpResponse:
    """List the appointments. Scope ``appointments:read``."""
    return json_response(
        {"appointments": [{"id": "a1", "at": "2030-01-07T09:30:00Z", "service": "check-up"}]}
    )


@allow("GET")
@requires_team("team")
def team_usage(request: HttpRequest, team: str) -> HttpResponse:
    """Show a team's usage, to credentials that may act for that team."""
    return json_response({"team": team, "requests_this_month": 1234})


@allow("POST")
@requires_auth(kinds={"user"})
@json_body(PASSWORD_CHANGE)
def change_password(request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
    """Change the caller's own password. User tokens only: an API key has no password."""
    auth = get_authenticator()
    # Wrong current passwords count in the login throttle, per account and per client.
    address = auth.client_address(
        request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR")
    )
    auth.users.change_password(
        _principal(request).subject,
        data["current_password"],
        data["new_password"],
        address=address,
    )
    # Changing the password ends the user's tokens, this one included.
    return json_response({"status": "password changed; sign in again"})


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Answer an unknown path as FastAPI does."""
    return json_response(NOT_FOUND, status=404)
