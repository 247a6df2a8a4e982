"""The demo API's views: plain Django function views with authmw's decorators.

Each answers exactly as the FastAPI demo does: the same JSON, byte for byte
(compact, as FastAPI writes it), and the same statuses.
"""

from __future__ import annotations

import json
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

View = Callable[..., HttpResponse]


def json_response(data: Any, status: int = 200) -> HttpResponse:
    """Serialise ``data`` as FastAPI's ``JSONResponse`` does."""
    body = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return HttpResponse(body.encode(), status=status, content_type="application/json")


def allow(*methods: str) -> Callable[[View], View]:
    """Answer other methods with 405 before anything else runs, as FastAPI's router does."""

    def decorate(view: View) -> View:
        @wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                response = json_response({"detail": "Method Not Allowed"}, status=405)
                response["Allow"] = ", ".join(methods)
                return response
            return view(request, *args, **kwargs)

        return checked

    return decorate


def _principal(request: HttpRequest) -> Principal:
    principal: Principal = request.principal  # set by the middleware; the guard checked it
    return principal


def _invalid(loc: str, kind: str, message: str) -> HttpResponse:
    # FastAPI's 422 shape, minus the "input" it echoes: here that would be a password.
    return json_response({"detail": [{"type": kind, "loc": ["body", loc], "msg": message}]}, 422)


def _json_body(request: HttpRequest) -> tuple[Any, HttpResponse | None]:
    if not request.body:
        return None, None
    try:
        return json.loads(request.body), None
    except ValueError:
        return None, _invalid("body", "json_invalid", "JSON decode error")


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
def update_settings(request: HttpRequest) -> HttpResponse:
    """Change the application settings. Role admin. Body (optional): ``{"maintenance_mode"}``."""
    data, error = _json_body(request)
    if error is not None:
        return error
    data = {} if data is None else data
    if not isinstance(data, dict):
        return _invalid("body", "model_attributes_type", "Input should be an object")
    maintenance = data.get("maintenance_mode", False)
    if not isinstance(maintenance, bool):
        return _invalid("maintenance_mode", "bool_type", "Input should be a valid boolean")
    return json_response({"saved": {"maintenance_mode": maintenance}})


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
def change_password(request: HttpRequest) -> HttpResponse:
    """Change the caller's own password. User tokens only: an API key has no password."""
    data, error = _json_body(request)
    if error is not None:
        return error
    if not isinstance(data, dict):
        return _invalid(
            "body", "missing" if data is None else "model_attributes_type", "Field required"
        )
    for field in ("current_password", "new_password"):
        if field not in data:
            return _invalid(field, "missing", "Field required")
        if not isinstance(data[field], str):
            return _invalid(field, "string_type", "Input should be a valid string")
    auth = get_authenticator()
    auth.users.change_password(
        _principal(request).subject, data["current_password"], data["new_password"]
    )
    # Changing the password ends the user's tokens, this one included.
    return json_response({"status": "password changed; sign in again"})


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Answer an unknown path as FastAPI does."""
    return json_response({"detail": "Not Found"}, status=404)
