"""Django middleware: resolve the credential, put the principal on the request.

Add ``"authmw_django.AuthMiddleware"`` to ``settings.MIDDLEWARE``. Every request
then carries ``request.principal`` (``None`` when anonymous), the same value as
``request.state.principal`` in every authmw framework; around the view,
:func:`authmw.current` returns what the decorators and DRF classes check.

It runs sync under WSGI and async under ASGI (Django picks the mode from its
neighbours): the same flow of the core, driven by ``authenticate()`` or
``authenticate_async()``. An :class:`~authmw.errors.AuthError` raised by a view
(a decorator, a DRF permission, the view itself) is rendered by
:meth:`AuthMiddleware.process_exception`, byte for byte as the WSGI and ASGI
middlewares render it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import Resolver404, resolve

from authmw.context import _current
from authmw.credentials import wsgi_raw
from authmw.errors import AuthError, MissingCredentials
from authmw.principal import Principal
from authmw_django.conf import Config, get_config

__all__ = ["AuthMiddleware", "render_error"]

GetResponse = Callable[[HttpRequest], HttpResponseBase]
AsyncGetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]


def render_error(error: AuthError, realm: str) -> HttpResponse:
    """Copy the core's rendering of ``error`` into an ``HttpResponse``.

    The core puts every challenge into one ``WWW-Authenticate`` header, so a
    Django response, which holds one value per header name, carries it whole.
    """
    rendered = error.render(realm)
    headers = dict(rendered.headers)
    headers["Content-Length"] = str(len(rendered.body))
    return HttpResponse(rendered.body, status=rendered.status, headers=headers)


class AuthMiddleware:
    """Authenticate every request; sync or async, as the middleware chain around it is."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse | AsyncGetResponse) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            # Django awaits an async-mode middleware only if it looks like a coroutine function.
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        """Handle one request (returns a coroutine in async mode)."""
        if self.async_mode:
            return self._acall(request)
        config = get_config()
        principal: Principal | None = None
        error: AuthError | None = None
        auth = config.authenticator
        try:
            # META, not request.headers: the headers mapping is built from all of META
            # on first use, which cost more than the rest of this. META holds the same
            # values (HTTP_* names) under WSGI and ASGI alike.
            raw = wsgi_raw(request.META)
            if raw is not None:
                principal = auth.lookup_raw(raw) or auth.authenticate_raw(raw)
        except AuthError as exc:
            error = exc
        refusal = _record(request, config, principal, error)
        if refusal is not None:
            return refusal
        # META: a WSGI environ under WSGI, Django's own mapping under ASGI.
        token = _current.set((auth, principal, error, request.META))
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        config = get_config()
        principal: Principal | None = None
        error: AuthError | None = None
        auth = config.authenticator
        try:
            raw = wsgi_raw(request.META)  # META: see __call__
            if raw is not None:
                principal = auth.lookup_raw(raw) or await auth.authenticate_raw_async(raw)
        except AuthError as exc:
            error = exc
        refusal = _record(request, config, principal, error)
        if refusal is not None:
            return refusal
        token = _current.set((auth, principal, error, request.META))
        try:
            response: HttpResponseBase = await self.get_response(request)
            return response
        finally:
            _current.reset(token)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Render an ``AuthError`` a view raised; leave every other exception to Django."""
        if not isinstance(exception, AuthError):
            return None
        return render_error(exception, get_config().authenticator.settings.realm)


#: Whether a request class defines ``state`` itself (a property, a class attribute).
_CLASS_STATE: dict[type, bool] = {}


def _record(
    request: HttpRequest, config: Config, principal: Principal | None, error: AuthError | None
) -> HttpResponse | None:
    """Put the result on the request; return the refusal ``REQUIRE_AUTH`` calls for, if any."""
    request.principal = principal
    request.auth_error = error
    # Looked up in the instance dict first: on a plain HttpRequest a failed
    # getattr() raises and catches an AttributeError, which cost more than the
    # rest of this function. A request class may still define ``state`` itself.
    state = request.__dict__.get("state")
    if state is None:
        cls = type(request)
        defines = _CLASS_STATE.get(cls)
        if defines is None:
            defines = _CLASS_STATE[cls] = hasattr(cls, "state")
        if defines:
            state = getattr(request, "state", None)
    if state is None:
        request.state = SimpleNamespace(principal=principal, auth_error=error)
    else:
        state.principal = principal
        state.auth_error = error
    # path_info is the path the URL resolver matches: without the SCRIPT_NAME prefix.
    if (
        principal is None
        and config.require_auth
        and request.path_info not in config.public_paths
        and not _routes_to_public_view(request)
    ):
        return render_error(error or MissingCredentials(), config.authenticator.settings.realm)
    return None


#: The attribute that marks a view as reachable without a credential under
#: ``REQUIRE_AUTH``: authmw's OAuth2 endpoints, which a client calls to get one.
PUBLIC_VIEW = "authmw_public"


def _routes_to_public_view(request: HttpRequest) -> bool:
    """Whether the request's path resolves to a view marked :data:`PUBLIC_VIEW`.

    Under Flask and Starlette the OAuth2 endpoints wrap the app from outside, so
    ``REQUIRE_AUTH`` never sees them; under Django they are views like any other.
    Asked only of a request about to be refused, so it costs the others nothing.
    """
    try:
        match = resolve(request.path_info, getattr(request, "urlconf", None))
    except Resolver404:
        return False
    return bool(getattr(match.func, PUBLIC_VIEW, False))
