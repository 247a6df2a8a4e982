"""The authmw demo API on Flask.

The same routes, answers and protection as the FastAPI demo. To serve it on
your own database::

    authmw init
    flask --app authmw_examples.flask_app.app:create_app run
"""

from typing import Any

from flask import Blueprint, Flask, Response, g, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import MethodNotAllowed, NotFound

from authmw import Authenticator, Principal, current
from authmw.demo import SCOPE_DESCRIPTIONS
from authmw.oauth2 import AuthEndpoints
from authmw_flask import AuthMW, requires_auth, requires_role, requires_scope, requires_team

from ..fastapi_style import (
    APP_SETTINGS,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    PASSWORD_CHANGE,
    Body,
    BodyError,
    render,
)

api = Blueprint("demo", __name__)

#: The methods Flask answers on a route of its own accord; FastAPI's router does not.
IMPLICIT_METHODS = frozenset({"HEAD", "OPTIONS"})


class FastAPIJSON(DefaultJSONProvider):
    """Flask's JSON, written as FastAPI writes it: keys in order, compact, no newline after."""

    sort_keys = False
    ensure_ascii = False

    def response(self, *args: Any, **kwargs: Any) -> Response:
        """Serialise ``jsonify``'s arguments, or a view's ``dict`` or ``list``, as FastAPI would."""
        if args and kwargs:
            raise TypeError("pass positional or keyword arguments, not both")
        # As Flask's own: one argument is the value, several a list, keywords an object.
        data = args[0] if len(args) == 1 else (list(args) or kwargs or None)
        return Response(render(data), mimetype="application/json")


def json_body(body: Body) -> dict[str, Any]:
    """Return the request's JSON body, checked as the FastAPI demo checks it (else a 422)."""
    return body.parse(request.headers.get("Content-Type"), request.get_data())


def body_refused(error: BodyError) -> tuple[dict[str, Any], int]:
    """Answer a refused body as FastAPI does: pydantic's entries, without the input."""
    return error.payload, error.status


def not_found(error: NotFound) -> tuple[dict[str, str], int]:
    """Answer an unknown path as FastAPI does, not with Flask's HTML page."""
    return NOT_FOUND, 404


def method_not_allowed(error: MethodNotAllowed) -> tuple[dict[str, str], int, dict[str, str]]:
    """Answer a method the route does not take as FastAPI does: JSON, and the declared methods."""
    declared = sorted(set(error.valid_methods or ()) - IMPLICIT_METHODS)
    return METHOD_NOT_ALLOWED, 405, {"Allow": ", ".join(declared)}


def declared_methods_only() -> None:
    """Refuse ``HEAD`` and ``OPTIONS`` on routes that do not name them, as FastAPI does.

    Werkzeug adds ``HEAD`` to every ``GET`` route and Flask answers ``OPTIONS``
    everywhere; both run after this hook, so it turns them into the 405 FastAPI gives.
    """
    rule = request.url_rule
    if rule is not None and request.method in IMPLICIT_METHODS:
        raise MethodNotAllowed(valid_methods=sorted(set(rule.methods or ()) - IMPLICIT_METHODS))


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
    return {"saved": json_body(APP_SETTINGS)}


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
    change = json_body(PASSWORD_CHANGE)
    principal: Principal = g.principal
    auth = current().authenticator  # the authenticator that let this request in
    # Wrong current passwords count in the login throttle, per account and per client.
    address = auth.client_address(
        request.remote_addr, ",".join(request.headers.getlist("X-Forwarded-For")) or None
    )
    auth.users.change_password(
        principal.subject, change["current_password"], change["new_password"], address=address
    )
    # Changing the password ends the user's tokens, this one included.
    return {"status": "password changed; sign in again"}


def create_app(authenticator: Authenticator | None = None) -> Flask:
    """Build the demo app; without an authenticator, configure one from the environment."""
    # No static route: the FastAPI demo has none either.
    app = Flask(__name__, static_folder=None)
    app.json = FastAPIJSON(app)
    AuthMW(app, authenticator=authenticator)
    app.register_blueprint(api)
    app.before_request(declared_methods_only)
    app.register_error_handler(BodyError, body_refused)
    app.register_error_handler(NotFound, not_found)
    app.register_error_handler(MethodNotAllowed, method_not_allowed)
    # The OAuth2 endpoints wrap the whole WSGI app, outside authmw's middleware.
    endpoints = AuthEndpoints(
        app.extensions["authmw"].authenticator,
        platform_name="authmw demo",
        scope_descriptions=SCOPE_DESCRIPTIONS,
    )
    app.wsgi_app = endpoints.wsgi(app.wsgi_app)  # type: ignore[method-assign,assignment]
    return app
