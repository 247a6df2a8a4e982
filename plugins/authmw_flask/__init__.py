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
* ``g.principal`` and ``request.state.principal`` (``None`` when anonymous), from
  subclasses of the app's ``g`` and request classes that find them when read;
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

Any other ``AUTHMW_*`` key in ``app.config`` is refused with a ``ValueError``, as
a misspelled ``AUTHMW_REQUIRE_AUTH`` would otherwise leave every route open.

The decorators work on view functions (sync and async), ``MethodView`` methods
and blueprint routes. Wrapping a no-argument function, they also protect a whole
blueprint: ``bp.before_request(requires_role("admin")(lambda: None))``.
"""

from __future__ import annotations

import atexit
from collections.abc import Iterable, Iterator, Mapping
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

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
from authmw.context import RequestAuth, _current
from authmw.decorators import Decorators
from authmw.errors import AuthError
from authmw.principal import Principal
from authmw.wsgi import PRINCIPAL_KEY, AuthMiddleware

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

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

#: The ``app.config`` keys :meth:`AuthMW.init_app` reads; it refuses any other ``AUTHMW_*``.
_CONFIG_KEYS = (
    "AUTHMW_AUTHENTICATOR",
    "AUTHMW_DATABASE_URL",
    "AUTHMW_REQUIRE_AUTH",
    "AUTHMW_PUBLIC_PATHS",
)


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
        _check_config(app.config)
        middleware = _FlaskMiddleware(
            app,
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


def _check_config(config: Mapping[Any, Any]) -> None:
    """Raise ``ValueError`` naming each ``AUTHMW_*`` key of ``config`` the extension ignores."""
    unknown = sorted(
        key
        for key in config
        if isinstance(key, str) and key.startswith("AUTHMW_") and key not in _CONFIG_KEYS
    )
    if not unknown:
        return
    # A typo ("AUTHMW_REQUIRE_AUTHS") must not silently leave routes open. The
    # core's other settings (AUTHMW_SECRET_KEY, AUTHMW_POLICY, ...) are environment
    # variables, the same for every framework: say so rather than list them twice.
    message = (
        f"unknown authmw app.config key(s): {', '.join(unknown)} "
        f"(known keys: {', '.join(_CONFIG_KEYS)}; the other AUTHMW_* settings are "
        "environment variables, read by Authenticator.from_env())"
    )
    raise ValueError(message)


class _FlaskMiddleware(AuthMiddleware):
    """The WSGI middleware, making sure the app's request and ``g`` classes are authmw's.

    ``g.principal`` and ``request.state.principal`` come from subclasses of the
    app's own classes (:func:`_state_request`, :func:`_principal_globals`) that
    find them on first use: a request that never reads them pays nothing. A
    ``before_request`` hook did this before, and cost more than the whole
    authentication. An app that replaces either class after ``init_app`` gets it
    extended again at its first request.
    """

    def __init__(self, app: flask.Flask, authenticator: Authenticator, **options: Any) -> None:
        super().__init__(app.wsgi_app, authenticator, **options)
        self.flask_app = app
        self._extend_classes()

    def _extend_classes(self) -> None:
        app = self.flask_app
        app.request_class = _state_request(app.request_class)
        app.app_ctx_globals_class = _principal_globals(app.app_ctx_globals_class)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Handle the app's first request: extend its classes, then become the core middleware."""
        self._extend_classes()  # classes already extended are kept as they are
        # Flask refuses setup once an app has handled its first request, so from
        # now on this is authmw's WSGI middleware and nothing more: checking the
        # classes again on every request, through one Python call more, cost about
        # a tenth of what authmw adds to a Flask request.
        self.__class__ = AuthMiddleware  # type: ignore[assignment]
        return AuthMiddleware.__call__(self, environ, start_response)


#: The subclasses made so far, by the class each extends (shared by every app).
_EXTENDED: dict[type, type] = {}


def _extend(base: type[Any], namespace: dict[str, Any]) -> type[Any]:
    """Return a subclass of ``base`` adding ``namespace``, made once per base."""
    if getattr(base, "_authmw_extended", False):
        return base
    extended = _EXTENDED.get(base)
    if extended is None:
        extended = type(base.__name__, (base,), {**namespace, "_authmw_extended": True})
        extended.__module__, extended.__qualname__ = base.__module__, base.__qualname__
        _EXTENDED[base] = extended
    return extended


class _RequestState:
    """``request.state``, made on first use with the request's principal, then kept.

    A non-data descriptor: once made, the instance's own ``state`` is found first.
    """

    def __get__(self, request: Any, owner: type | None = None) -> Any:
        if request is None:
            return self
        state = request.__dict__["state"] = SimpleNamespace(
            principal=request.environ.get(PRINCIPAL_KEY)
        )
        return state


def _state_request(base: type[flask.Request]) -> type[flask.Request]:
    """Extend ``base`` so that ``request.state.principal`` is the request's principal."""
    if base.__init__ is flask.Request.__init__ and not hasattr(base, "state"):
        return cast("type[flask.Request]", _extend(base, {"state": _RequestState()}))

    # The app's class builds requests its own way, and may give them a ``state``
    # (parity with Starlette and Django): add the principal to it, eagerly.
    def __init__(self: Any, environ: WSGIEnvironment, *args: Any, **kwargs: Any) -> None:
        base.__init__(self, environ, *args, **kwargs)
        # Looked up in the instance dict first: a failed getattr() raises and catches
        # an AttributeError, which costs more than the rest of this.
        state = self.__dict__.get("state")
        if state is None:
            state = getattr(self, "state", None)
        if state is None:
            self.state = state = SimpleNamespace()
        state.principal = environ.get(PRINCIPAL_KEY)

    return cast("type[flask.Request]", _extend(base, {"__init__": __init__}))


class _GlobalsPrincipal:
    """``g.principal``: the principal of the request being handled, read on each use.

    A data descriptor, read afresh every time, never a value kept on ``g``: ``g``
    belongs to the app context, and requests handled while code holds one app
    context (a test fixture's ``with app.app_context():``) share it, so a kept
    value would name an earlier request's caller.
    """

    def __get__(self, g: Any, owner: type | None = None) -> Any:
        if g is None:
            return self
        # The middleware records the request's authentication around the whole app call.
        found = _current.get()
        principal = None if found is None else found[1]
        # Also in g's __dict__, which g's mapping methods (get, in, iteration) read.
        g.__dict__["principal"] = principal
        return principal

    def __set__(self, g: Any, value: Any) -> None:
        raise AttributeError(_READ_ONLY)


_READ_ONLY = "g.principal is the principal authmw found for this request; it cannot be set"


def _principal_globals(base: type[Any]) -> type[Any]:
    """Extend ``base`` (the class of ``g``) so that ``g.principal`` is the request's principal.

    ``g`` keeps its attributes in its ``__dict__``, which its mapping methods read:
    those bring ``principal`` up to date first. Outside a request it is ``None``.
    """
    principal = _GlobalsPrincipal()
    base_setattr: Any = base.__setattr__

    def real(g: Any) -> None:
        principal.__get__(g)

    def get(self: Any, name: str, default: Any = None) -> Any:
        real(self)
        return base.get(self, name, default)

    def pop(self: Any, name: str, *default: Any) -> Any:
        real(self)
        return base.pop(self, name, *default)

    def setdefault(self: Any, name: str, default: Any = None) -> Any:
        real(self)
        return base.setdefault(self, name, default)

    def __contains__(self: Any, name: str) -> bool:
        real(self)
        return base.__contains__(self, name)  # type: ignore[no-any-return]

    def __iter__(self: Any) -> Iterator[str]:
        real(self)
        return base.__iter__(self)  # type: ignore[no-any-return]

    def __setattr__(self: Any, name: str, value: Any) -> None:
        # Flask's g sets attributes straight into its __dict__, past the descriptor:
        # an assignment would be silently undone at the next read.
        if name == "principal":
            raise AttributeError(_READ_ONLY)
        base_setattr(self, name, value)

    namespace = {"principal": principal, "get": get, "pop": pop, "setdefault": setdefault}
    dunders = {"__contains__": __contains__, "__iter__": __iter__, "__setattr__": __setattr__}
    return _extend(base, {**namespace, **dunders})


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
