"""WSGI middleware: resolve the credential, put the principal in the environ.

The principal is ``environ["authmw.principal"]`` (``None`` when anonymous) and
the error a presented credential met, if any, ``environ["authmw.error"]``.
Anonymous requests pass unless ``require_auth=True``. An
:class:`~authmw.errors.AuthError` raised by the wrapped app is rendered here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from authmw._paths import PublicPaths
from authmw.authenticator import Authenticator
from authmw.context import _current
from authmw.credentials import wsgi_raw
from authmw.errors import AuthError, MissingCredentials
from authmw.principal import Principal

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["ERROR_KEY", "PRINCIPAL_KEY", "AuthMiddleware"]

PRINCIPAL_KEY = "authmw.principal"
ERROR_KEY = "authmw.error"


class AuthMiddleware:
    """Authenticate every request of a WSGI app."""

    def __init__(
        self,
        app: WSGIApplication,
        authenticator: Authenticator,
        *,
        require_auth: bool = False,
        public_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.require_auth = require_auth
        self.public_paths = PublicPaths(public_paths)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Handle one WSGI request."""
        principal: Principal | None = None
        error: AuthError | None = None
        auth = self.authenticator
        try:
            raw = wsgi_raw(environ)
            if raw is not None:
                # Warm: one dict lookup. Cold: parse and verify.
                principal = auth.lookup_raw(raw) or auth.authenticate_raw(raw)
        except AuthError as exc:
            error = exc
        environ[PRINCIPAL_KEY] = principal
        environ[ERROR_KEY] = error
        if (
            principal is None
            and self.require_auth
            and (environ.get("PATH_INFO", "") or "/") not in self.public_paths
        ):
            return self._refuse(error or MissingCredentials(), start_response)
        token = _current.set((auth, principal, error, environ))
        try:
            return self.app(environ, start_response)
        except AuthError as exc:
            # PEP 3333: with exc_info, start_response replaces headers not yet sent
            # and re-raises if they were, so a late error never garbles a response.
            return self._refuse(exc, start_response, sys.exc_info())
        finally:
            # A streamed body is produced after this returns; decorators have run by then.
            _current.reset(token)

    def _refuse(
        self, error: AuthError, start_response: Callable[..., Any], exc_info: Any = None
    ) -> list[bytes]:
        rendered = error.render(self.authenticator.settings.realm)
        status = f"{rendered.status} {HTTPStatus(rendered.status).phrase}"
        headers = [*rendered.headers, ("Content-Length", str(len(rendered.body)))]
        start_response(status, headers, exc_info)
        return [rendered.body]
