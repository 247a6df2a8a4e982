"""authmw for Flask.

>>> authmw = AuthMW(app, authenticator=auth)     # doctest: +SKIP
>>> @app.get("/reports")                          # doctest: +SKIP
... @requires_role("manager")
... def reports(): ...

The extension wraps ``app.wsgi_app`` in authmw's WSGI middleware, so every
request is authenticated once, before Flask routes it. It adds three things
Flask needs on top:

* an error handler for :class:`~authmw.errors.AuthError`: Flask turns an
  exception raised in a view into a 500 before WSGI middleware could see it, so
  the handler copies the core's rendering into a ``Response`` (byte for byte the
  one the middleware sends), and ``after_request`` hooks still run on it;
* ``g.principal`` and ``request.state.principal`` (``None`` when anonymous);
* the ``flask authmw`` commands (``init``, ``users``, ``keys``), acting on the
  app's own authenticator.

Configuration, read by :meth:`AuthMW.init_app` from ``app.config``:

=========================  ==============================================================
``AUTHMW_AUTHENTICATOR``   an :class:`~authmw.Authenticator` (else one is built from:)
``AUTHMW_DATABASE_URL``    passed to :meth:`Authenticator.from_env
                           <authmw.Authenticator.from_env>` (secret keys and policy come
                           from the environment, as for the ``authmw`` command)
``AUTHMW_REQUIRE_AUTH``    refuse anonymous requests outside the public paths (default off)
``AUTHMW_PUBLIC_PATHS``    paths open under ``AUTHMW_REQUIRE_AUTH``; ``"/docs*"`` is a prefix
=========================  ==============================================================

The decorators work on view functions (sync and async), ``MethodView`` methods
and blueprint routes. Wrapping a no-argument function, they also protect a whole
blueprint: ``bp.before_request(requires_role("admin")(lambda: None))``.
"""

from __future__ import annotations

import atexit
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any, cast

try:
    import flask
    from flask.cli import AppGroup, with_appcontext
except ImportError as exc:  # pragma: no cover - exercised by a test that hides Flask
    raise ModuleNotFoundError(
        "authmw_flask needs Flask; install it with: pip install 'authmw[flask]'", name=exc.name
    ) from exc

import click
import sqlalchemy as sa

from authmw import cli as _cli
from authmw.authenticator import Authenticator
from authmw.config import database_url
from authmw.context import RequestAuth
from authmw.decorators import Decorators
from authmw.errors import AuthError
from authmw.principal import Principal
from authmw.wsgi import PRINCIPAL_KEY, AuthMiddleware

__all__ = [
    "AuthMW",
    "get_principal",
    "requires_auth",
    "requires_role",
    "requires_scope",
    "requires_team",
]


#: The key of ``app.extensions``: the app's :class:`~authmw.wsgi.AuthMiddleware`.
_EXTENSION = "authmw"


class AuthMW:
    """The Flask extension: ``AuthMW(app)``, or ``AuthMW()`` then ``init_app(app)``.

    ``authenticator`` takes precedence over ``AUTHMW_AUTHENTICATOR``. One
    extension may serve several apps; each keeps its own middleware in
    ``app.extensions["authmw"]``.
    """

    def __init__(
        self, app: flask.Flask | None = None, *, authenticator: Authenticator | None = None
    ) -> None:
        self.authenticator = authenticator
        if app is not None:
            self.init_app(app)

    def init_app(self, app: flask.Flask) -> None:
        """Install authmw on ``app``."""
        if _EXTENSION in app.extensions:
            raise RuntimeError("authmw is already installed on this app")
        middleware = AuthMiddleware(
            app.wsgi_app,
            self._authenticator(app.config),
            require_auth=bool(app.config.get("AUTHMW_REQUIRE_AUTH", False)),
            public_paths=app.config.get("AUTHMW_PUBLIC_PATHS", ()),
        )
        app.wsgi_app = middleware  # type: ignore[method-assign]
        app.extensions[_EXTENSION] = middleware
        realm = middleware.authenticator.settings.realm

        def render(error: AuthError) -> flask.Response:
            rendered = error.render(realm)
            return flask.Response(rendered.body, rendered.status, list(rendered.headers))

        app.register_error_handler(AuthError, render)
        # First of the app's hooks, so the app's own hooks can read g.principal.
        app.before_request_funcs.setdefault(None, []).insert(0, _expose_principal)
        app.cli.add_command(commands)

    def _authenticator(self, config: Mapping[str, Any]) -> Authenticator:
        configured = self.authenticator
        if configured is None:
            configured = config.get("AUTHMW_AUTHENTICATOR")
        if configured is not None:
            if not isinstance(configured, Authenticator):
                raise TypeError("AUTHMW_AUTHENTICATOR must be an authmw Authenticator")
            return configured
        built = Authenticator.from_env(config.get("AUTHMW_DATABASE_URL"))
        # Flask has no shutdown hook: write pending key usage when the process exits.
        atexit.register(built.close)
        return built


def _expose_principal() -> None:
    # Every access through the flask.request and flask.g proxies looks the context
    # up again; this hook runs on every request, so it resolves each proxy once.
    request: Any = cast(Any, flask.request)._get_current_object()
    principal = request.environ.get(PRINCIPAL_KEY)
    cast(Any, flask.g)._get_current_object().principal = principal
    # Parity with Starlette and Django. Flask's Request has no ``state``; another
    # extension may have made one, so add to it rather than replace it. Looked up
    # in the instance dict: a failed getattr() raises and catches an AttributeError,
    # which cost this hook more than the rest of its work.
    state = request.__dict__.get("state")
    if state is None:
        state = getattr(request, "state", None)  # a Request subclass may define it
        if state is None:
            request.state = SimpleNamespace(principal=principal)
            return
    state.principal = principal


def get_principal() -> Principal | None:
    """Return the current request's principal (``None`` when anonymous): typed ``g.principal``."""
    principal: Principal | None = flask.request.environ.get(PRINCIPAL_KEY)
    return principal


# -- decorators ---------------------------------------------------------------------------


def _path_params(_auth: RequestAuth, _kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    # Flask's router keeps the matched path parameters on the request.
    return flask.request.view_args or {}


_decorators = Decorators(_path_params)
requires_auth = _decorators.requires_auth
requires_role = _decorators.requires_role
requires_scope = _decorators.requires_scope
requires_team = _decorators.requires_team


# -- flask authmw ... ---------------------------------------------------------------------


class _Commands(_cli.CommandGroup, AppGroup):
    """``flask authmw``: the ``authmw`` command's errors-as-one-line handling, in an AppGroup."""


@click.group("authmw", cls=_Commands)
@with_appcontext
@click.pass_context
def commands(ctx: click.Context) -> None:
    """Manage the users and API keys of this app's authmw database."""
    auth: Authenticator = flask.current_app.extensions[_EXTENSION].authenticator
    # The commands of ``authmw`` act on the app's own authenticator (its store and
    # policy), which stays open: it belongs to the app, not to this command.
    ctx.obj = _cli.CommandState(_url(auth), app_authenticator=auth)


def _url(auth: Authenticator) -> str:
    """Return the database URL, for ``init``: it keeps the signing secret beside a file database."""
    engine = getattr(auth.store, "engine", None)
    if isinstance(engine, sa.Engine):
        return engine.url.render_as_string(hide_password=False)
    return database_url(flask.current_app.config.get("AUTHMW_DATABASE_URL"))


for _command in (_cli.init, _cli.users, _cli.keys):
    commands.add_command(_command)
