"""The authmw demo API on Flask.

The same routes, answers and protection as the FastAPI demo. To serve it on
your own database::

    authmw init
    flask --app authmw_examples.flask_app.app:create_app run
"""

from typing import Any

from flask import Blueprint, Flask, g, request

from authmw import Authenticator, InvalidRequest, Principal, current
from authmw.demo import SCOPE_DESCRIPTIONS
from authmw.oauth2 import AuthEndpoints
from authmw_flask import AuthMW, requires_auth, requires_role, requires_scope, requires_team

api = Blueprint("demo", __name__)


def json_body(*required: str) -> dict[str, Any]:
    """Return the request's JSON object; refuse one that lacks a required text field."""
    body = request.get_json(silent=True)
    if body is None and not required:
        return {}
    if not isinstance(body, dict) or not all(isinstance(body.get(f), str) for f in required):
        raise InvalidRequest(f"The body must be a JSON object with {' and '.join(required)}.")
    return body


@api.get("/health")
def health() -> dict[str, str]:
    """Report that the service is up. Public: no credential needed."""
    return {"status": "ok"}


@api.get("/me")
@requires_auth()
def me() -> dict[str, Any]:
    """Return the caller as authmw resolved it. Any valid credential."""
    principal: Principal = g.principal
    return principal.to_json()


@api.get("/catalog")
@requires_auth()
def catalog() -> dict[str, list[str]]:
    """List the services offered: global master data, for any valid credential."""
    return {"services": ["check-up", "consultation", "follow-up"]}


@api.get("/reports")
@requires_role("manager")
def reports() -> dict[str, Any]:
    """List the reports. Role manager (or above)."""
    principal: Principal = g.principal
    return {"reports": ["monthly-revenue", "no-shows"], "requested_by": principal.subject}


@api.post("/admin/settings")
@requires_role("admin")
def update_settings() -> dict[str, Any]:
    """Change the application settings. Role admin."""
    maintenance_mode = json_body().get("maintenance_mode", False)
    if not isinstance(maintenance_mode, bool):
        raise InvalidRequest("maintenance_mode must be true or false.")
    return {"saved": {"maintenance_mode": maintenance_mode}}


@api.get("/appointments")
@requires_scope("appointments:read")
def appointments() -> dict[str, list[dict[str, str]]]:
    """List the appointments. Scope ``appointments:read``."""
    return {"appointments": [{"id": "a1", "at": "2030-01-07T09:30:00Z", "service": "check-up"}]}


@api.get("/teams/<team>/usage")
@requires_team("team")
def team_usage(team: str) -> dict[str, Any]:
    """Show a team's usage, to credentials that may act for that team."""
    return {"team": team, "requests_this_month": 1234}


@api.post("/account/password")
@requires_auth(kinds={"user"})
def change_password() -> dict[str, str]:
    """Change the caller's own password. User tokens only: an API key has no password."""
    change = json_body("current_password", "new_password")
    principal: Principal = g.principal
    auth = current().authenticator  # the authenticator that let this request in
    auth.users.change_password(
        principal.subject, change["current_password"], change["new_password"]
    )
    # Changing the password ends the user's tokens, this one included.
    return {"status": "password changed; sign in again"}


def create_app(authenticator: Authenticator | None = None) -> Flask:
    """Build the demo app; without an authenticator, configure one from the environment."""
    app = Flask(__name__)
    AuthMW(app, authenticator=authenticator)
    app.register_blueprint(api)
    # The OAuth2 endpoints wrap the whole WSGI app, outside authmw's middleware.
    endpoints = AuthEndpoints(
        app.extensions["authmw"].authenticator,
        platform_name="authmw demo",
        scope_descriptions=SCOPE_DESCRIPTIONS,
    )
    app.wsgi_app = endpoints.wsgi(app.wsgi_app)  # type: ignore[method-assign,assignment]
    return app
