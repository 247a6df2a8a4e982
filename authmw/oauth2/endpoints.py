"""The auth endpoints as one framework-neutral app: token, revocation, introspection.

>>> endpoints = AuthEndpoints(authenticator)                        # doctest: +SKIP
>>> app = endpoints.asgi(app)        # FastAPI / Starlette           # doctest: +SKIP
>>> app.wsgi_app = endpoints.wsgi(app.wsgi_app)   # Flask            # doctest: +SKIP

The wrapper serves ``/oauth/token``, ``/oauth/revoke`` and ``/oauth/introspect``
and passes every other request to the application unchanged. Each request is
checked here first (POST only, no query string, strict form body, one method of
client authentication); oauthlib then runs the grant, asking
:class:`~authmw.oauth2._validator.Validator` for every decision. Under ASGI the
whole request runs in a worker thread: a login hashes a password, and that must
never hold up the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from oauthlib.oauth2 import BearerToken, IntrospectEndpoint, RevocationEndpoint, TokenEndpoint
from oauthlib.oauth2.rfc6749 import errors as oauth_errors
from oauthlib.oauth2.rfc6749.grant_types import (
    ClientCredentialsGrant,
    RefreshTokenGrant,
    ResourceOwnerPasswordCredentialsGrant,
)

from authmw.authenticator import _to_thread

try:  # anyio runs on asyncio and trio alike; Starlette brings it.
    import anyio
    import anyio.to_thread as _anyio_thread
except ImportError:  # pragma: no cover - the framework-free install has plain asyncio
    _anyio_thread = None  # type: ignore[assignment]
from authmw.errors import AuthError, MissingCredentials
from authmw.oauth2._http import (
    ASGIApp,
    FormError,
    HttpRequest,
    HttpResponse,
    WSGIApp,
    asgi_adapter,
    parse_form,
    wsgi_adapter,
)
from authmw.oauth2._validator import CallContext, Validator, call_context
from authmw.oauth2.authorize import AUTHORIZE_PATH, Authorization
from authmw.principal import Principal
from authmw.throttle import LoginThrottle

if TYPE_CHECKING:
    from authmw.authenticator import Authenticator

__all__ = ["AuthEndpoints"]

log = logging.getLogger("authmw")

TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path
REVOKE_PATH = "/oauth/revoke"
INTROSPECT_PATH = "/oauth/introspect"
CONSENTS_PATH = "/oauth/consents"
METADATA_PATH = "/.well-known/oauth-authorization-server"

#: The grants the token endpoint speaks (authorization_code joins with the consent page).
GRANT_TYPES = ("authorization_code", "password", "refresh_token", "client_credentials")

# The parameters each endpoint hands oauthlib; the rest are dropped (RFC 6749
# section 3.2: unrecognized parameters MUST be ignored). oauthlib makes every
# parameter it receives an attribute of its request object, where the validator
# keeps its own state (the user, the tokens just issued): a parameter named like
# that state would take its place. The client's secret is never handed on: it
# travels in the call context (see _context).
_TOKEN_PARAMETERS = frozenset(
    {
        "grant_type",
        "client_id",
        "scope",
        "code",
        "redirect_uri",
        "code_verifier",
        "refresh_token",
        "username",
        "password",
    }
)
#: The methods of the endpoints that only read (server metadata, a user's
#: consents). RFC 9110 section 9.3.2: HEAD answers as GET would, without the
#: content (the adapters drop the body, keeping its Content-Length).
_READ_METHODS = frozenset({"GET", "HEAD"})
_TOKEN_HANDLING_PARAMETERS = frozenset({"client_id", "token", "token_type_hint"})

#: RFC 6749 section 3.3: scope = scope-token *( SP scope-token ).
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+(?: [\x21\x23-\x5b\x5d-\x7e]+)*")


class _DropOauthlibDebug(logging.Filter):
    """Drop oauthlib's records below INFO: its DEBUG lines quote secrets.

    oauthlib logs the refresh token it validates and the whole token response it
    issues (access and refresh token) at DEBUG. authmw never logs a secret, and
    an application that turns on DEBUG everywhere to chase a bug must not
    thereby write live tokens to its logs. Holding the ``oauthlib`` logger at
    INFO is not enough: the application may set it (or the child loggers) to
    DEBUG itself. So the records are dropped where they are made, by a filter on
    each oauthlib logger (a logger's filters do not apply to its children's
    records, hence one per logger). The cost: oauthlib's DEBUG lines are never
    seen in a process serving these endpoints; its INFO and above still are.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO


_DROP_OAUTHLIB_DEBUG = _DropOauthlibDebug()


def _drop_oauthlib_debug() -> None:
    # Every oauthlib module the endpoints run is imported by now (oauthlib.oauth2
    # imports them all); AuthEndpoints() calls this again for any loaded since.
    # addFilter() ignores a filter already added.
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and (
            name == "oauthlib" or name.startswith("oauthlib.")
        ):
            logger.addFilter(_DROP_OAUTHLIB_DEBUG)


_drop_oauthlib_debug()


class _ClientCredentialsError(Exception):
    """Client credentials sent in a way RFC 6749 section 2.3.1 does not allow."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def _error(status: int, error: str, description: str, *headers: tuple[str, str]) -> HttpResponse:
    return HttpResponse.json(status, {"error": error, "error_description": description}, headers)


class AuthEndpoints:
    """The token, revocation and introspection endpoints of an :class:`~authmw.Authenticator`."""

    def __init__(
        self,
        authenticator: Authenticator,
        *,
        throttle: LoginThrottle | None = None,
        login_concurrency: int | None = None,
        platform_name: str = "authmw",
        scope_descriptions: Mapping[str, str] | None = None,
        templates: str | Path | None = None,
        issuer: str | None = None,
    ) -> None:
        self.authenticator = authenticator
        #: The ``issuer`` of the server metadata (RFC 8414); else derived from each request.
        self.issuer = issuer.rstrip("/") if issuer else None
        #: How many logins, and so password verifications, run at once (default: half the cores).
        self.login_concurrency = login_concurrency or max(1, (os.cpu_count() or 2) // 2)
        # An ASGI login runs whole in this pool, so a burst of logins queues here
        # instead of taking the worker threads the application's endpoints share.
        self._logins = ThreadPoolExecutor(
            max_workers=self.login_concurrency, thread_name_prefix="authmw-login"
        )
        # Password verifications run in this pool alone, at the lowest scheduling
        # priority: a verification takes a core for tens of milliseconds, and any
        # other thread that wants that core gets it at once. Only the hash runs
        # there, not the rest of a login, because a thread that holds the GIL must
        # not be one the scheduler leaves waiting.
        self._hashing = ThreadPoolExecutor(
            max_workers=self.login_concurrency,
            thread_name_prefix="authmw-hash",
            initializer=_lowest_priority,
        )
        self._login_limiter: Any = None
        # The authenticator's: shared with password changes, and by every instance
        # when the authenticator has Redis counters.
        self.throttle = throttle or authenticator.login_throttle
        _drop_oauthlib_debug()
        validator = Validator(authenticator, self.throttle, self._hashing)
        self._validator = validator
        bearer = BearerToken(
            validator,
            token_generator=lambda request: validator.issue(request).access_token,
            refresh_token_generator=lambda request: validator.issue(request).refresh_token,
            expires_in=lambda request: validator.issue(request).expires_in,
        )
        self._authorization = Authorization(
            authenticator,
            validator,
            bearer,
            platform_name=platform_name,
            scope_descriptions=scope_descriptions or {},
            templates=templates,
            address_of=self._address,
        )
        grants: dict[str, Any] = {
            "authorization_code": self._authorization.grant,
            "password": ResourceOwnerPasswordCredentialsGrant(validator),
            "refresh_token": RefreshTokenGrant(validator, issue_new_refresh_tokens=True),
            "client_credentials": ClientCredentialsGrant(validator),
        }
        self._token = TokenEndpoint("client_credentials", bearer, grants)
        self._revoke = RevocationEndpoint(validator, ("access_token", "refresh_token"))
        self._introspect = IntrospectEndpoint(validator, ("access_token", "refresh_token"))
        self._pages: Mapping[str, Callable[[HttpRequest], HttpResponse]] = {
            AUTHORIZE_PATH: self._authorization.handle,
            METADATA_PATH: self._metadata_request,
            CONSENTS_PATH: self._consent_request,
        }
        self._routes: Mapping[str, Callable[[HttpRequest, dict[str, str]], HttpResponse]] = {
            TOKEN_PATH: self._token_request,
            REVOKE_PATH: self._revoke_request,
            INTROSPECT_PATH: self._introspect_request,
        }

    # -- mounting ----------------------------------------------------------------------

    def handles(self, path: str) -> bool:
        """Whether ``path`` is one of these endpoints."""
        return path in self._routes or path in self._pages or path.startswith(CONSENTS_PATH + "/")

    def wsgi(self, app: WSGIApp | None = None) -> WSGIApp:
        """Return a WSGI app serving the endpoints and passing other paths to ``app``."""
        return wsgi_adapter(self.handles, self.handle, app)

    def asgi(self, app: ASGIApp | None = None) -> ASGIApp:
        """Return an ASGI app serving the endpoints (in a worker thread), others to ``app``."""

        async def handle(request: HttpRequest) -> HttpResponse:
            if _is_login(request):
                return await self._login_thread(lambda: self.handle(request))
            return await _to_thread(lambda: self.handle(request))

        return asgi_adapter(self.handles, handle, app)

    async def _login_thread(self, call: Callable[[], HttpResponse]) -> HttpResponse:
        # A login runs whole in the login pool. It waits for a thread of that pool
        # on the event loop, so a burst of logins never takes the worker threads
        # the application's own endpoints share.
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - anyio on trio: bounded, not reniced
            if self._login_limiter is None:
                self._login_limiter = anyio.CapacityLimiter(self.login_concurrency)
            response: HttpResponse = await _anyio_thread.run_sync(call, limiter=self._login_limiter)
            return response
        return await asyncio.wrap_future(self._logins.submit(call))

    # -- handling ----------------------------------------------------------------------

    def handle(self, request: HttpRequest) -> HttpResponse:  # noqa: PLR0911 - one per check
        """Answer one request to an endpoint (blocking). Never raises."""
        special = self._pages.get(request.path)
        if special is not None:
            return self._guarded(special, request)
        if request.path.startswith(CONSENTS_PATH + "/"):
            return self._guarded(self._consent_request, request)
        route = self._routes.get(request.path)
        if route is None:
            return _error(404, "not_found", "No such endpoint.")
        if request.method != "POST":
            return _error(405, "invalid_request", "Use POST.", ("Allow", "POST"))
        if request.query:
            # RFC 6749 section 2.3.1 and RFC 9700 section 4.3.2: credentials in a URL leak.
            return _error(
                400, "invalid_request", "Parameters in the query string are not accepted."
            )
        try:
            form = parse_form(request)
        except FormError as exc:
            return _error(400, "invalid_request", str(exc))
        try:
            return route(request, form)
        except _ClientCredentialsError as exc:
            return self._client_error(exc.error, exc.description)
        except Exception:
            return self._unavailable(request)

    def _guarded(
        self, handler: Callable[[HttpRequest], HttpResponse], request: HttpRequest
    ) -> HttpResponse:
        try:
            return handler(request)
        except Exception:
            return self._unavailable(request)

    def _unavailable(self, request: HttpRequest) -> HttpResponse:
        # A store that is down, or a bug: fail closed, say so, log the cause (the
        # traceback holds no secret: tokens and passwords stay in locals that
        # logging does not print).
        log.error("authmw: the %s endpoint failed", request.path, exc_info=True)
        return _error(
            503,
            "temporarily_unavailable",
            "The authorization server is temporarily unavailable.",
            ("Retry-After", "5"),
        )

    # -- metadata and consents ---------------------------------------------------------

    def _metadata_request(self, request: HttpRequest) -> HttpResponse:
        """RFC 8414 server metadata."""
        if request.method not in _READ_METHODS:
            return _error(405, "invalid_request", "Use GET.", ("Allow", "GET, HEAD"))
        issuer = self.issuer or _issuer_of(request, self._address(request) != request.peer)
        body = {
            "issuer": issuer,
            "authorization_endpoint": issuer + AUTHORIZE_PATH,
            "token_endpoint": issuer + TOKEN_PATH,
            "revocation_endpoint": issuer + REVOKE_PATH,
            "introspection_endpoint": issuer + INTROSPECT_PATH,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "client_credentials",
                "password",
            ],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "revocation_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "introspection_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
            ],
            "scopes_supported": sorted(self.authenticator.policy.all_scopes),
        }
        # Public and cacheable for a while: it says nothing about anyone.
        response = HttpResponse.json(200, body)
        headers = [h for h in response.headers if h[0] not in ("Cache-Control", "Pragma")]
        return HttpResponse(200, (*headers, ("Cache-Control", "max-age=300")), response.body)

    def _user_of(self, request: HttpRequest) -> Principal | HttpResponse:
        """Authenticate a consents request: a user's own access token, nothing else."""
        try:
            principal = self.authenticator.authenticate_headers(request.headers)
            if principal is None:
                raise MissingCredentials()
            self.authenticator.policy.authorize(principal, kinds={"user"})
        except AuthError as exc:
            rendered = exc.render(self.authenticator.settings.realm)
            return HttpResponse(rendered.status, tuple(rendered.headers), rendered.body)
        return principal

    def _consent_request(self, request: HttpRequest) -> HttpResponse:
        """``GET /oauth/consents`` and ``DELETE /oauth/consents/{client_id}`` for kind ``user``."""
        caller = self._user_of(request)
        if isinstance(caller, HttpResponse):
            return caller
        if request.path == CONSENTS_PATH:
            if request.method not in _READ_METHODS:
                return _error(405, "invalid_request", "Use GET.", ("Allow", "GET, HEAD"))
            consents = self.authenticator.store.list_consents(subject=caller.subject)
            names = {c.id: c.name for c in self.authenticator.store.list_clients(kind="app")}
            return HttpResponse.json(
                200,
                {
                    "consents": [
                        {
                            "client_id": c.client_id,
                            "app": names.get(c.client_id),
                            "scopes": sorted(c.scopes),
                            "granted_at": c.created_at.isoformat(),
                            "updated_at": c.updated_at.isoformat(),
                        }
                        for c in consents
                    ]
                },
            )
        if request.method != "DELETE":
            return _error(405, "invalid_request", "Use DELETE.", ("Allow", "DELETE"))
        client_id = request.path[len(CONSENTS_PATH) + 1 :]
        if not self.authenticator.tokens.revoke_consent(caller.subject, client_id):
            return _error(404, "not_found", "You have not given this app your consent.")
        return HttpResponse(204, (("Cache-Control", "no-store"),))

    def _client_error(self, error: str, description: str) -> HttpResponse:
        headers: tuple[tuple[str, str], ...] = ()
        if error == "invalid_client":
            # RFC 6749 section 5.2: name the scheme the client may authenticate with.
            realm = self.authenticator.settings.realm
            headers = (("WWW-Authenticate", f'Basic realm="{realm}"'),)
        status = 401 if error == "invalid_client" else 400
        return _error(status, error, description, *headers)

    def _context(
        self, request: HttpRequest, form: dict[str, str], *, require_secret: bool = False
    ) -> CallContext:
        client_id, secret = _client_credentials(request, form)
        address = self._address(request)
        return CallContext(client_id, secret, address, require_secret=require_secret)

    def _address(self, request: HttpRequest) -> str | None:
        return self.authenticator.client_address(request.peer, request.header("x-forwarded-for"))

    def _call(
        self,
        ctx: CallContext,
        form: dict[str, str],
        parameters: frozenset[str],
        run: Callable[[list[tuple[str, str]]], tuple[dict[str, str], str, int]],
    ) -> HttpResponse:
        # oauthlib reads parameters from the body it is given: only those it should.
        body = [(k, v) for k, v in form.items() if k in parameters]
        token = call_context.set(ctx)
        try:
            headers, text, status = run(body)
        except oauth_errors.OAuth2Error as exc:
            headers, text, status = dict(exc.headers), exc.json, exc.status_code
        finally:
            call_context.reset(token)
        payload = json.loads(text) if text else None
        if status == 401 and isinstance(payload, dict) and payload.get("error") == "invalid_client":
            return self._client_error("invalid_client", _INVALID_CLIENT)
        extra = [(k, v) for k, v in headers.items() if k.lower() == "retry-after"]
        if payload is None:
            return HttpResponse(status, (("Cache-Control", "no-store"),))
        return HttpResponse.json(status, _described(payload), extra)

    def _token_request(self, request: HttpRequest, form: dict[str, str]) -> HttpResponse:
        grant_type = form.get("grant_type")
        if grant_type is None:
            return _error(400, "invalid_request", "The grant_type parameter is missing.")
        if grant_type not in GRANT_TYPES:
            return _error(400, "unsupported_grant_type", "This grant type is not supported.")
        scope = form.get("scope")
        if scope is not None and _SCOPE.fullmatch(scope) is None:
            # Refused here, before any grant runs: a refresh token is rotated while
            # oauthlib validates the request, and oauthlib would read a scope split
            # by other rules than ours only afterwards.
            return _error(400, "invalid_scope", "The scope parameter is malformed.")
        ctx = self._context(request, form)
        return self._call(
            ctx,
            form,
            _TOKEN_PARAMETERS,
            lambda body: self._token.create_token_response(
                TOKEN_PATH, "POST", body=body, headers={}
            ),
        )

    def _revoke_request(self, request: HttpRequest, form: dict[str, str]) -> HttpResponse:
        ctx = self._context(request, form)
        # RFC 7009 section 2.1: an unknown hint is ignored, never an error.
        if form.get("token_type_hint") not in (None, "access_token", "refresh_token"):
            form = {k: v for k, v in form.items() if k != "token_type_hint"}
        return self._call(
            ctx,
            form,
            _TOKEN_HANDLING_PARAMETERS,
            lambda body: self._revoke.create_revocation_response(
                REVOKE_PATH, "POST", body=body, headers={}
            ),
        )

    def _introspect_request(self, request: HttpRequest, form: dict[str, str]) -> HttpResponse:
        ctx = self._context(request, form, require_secret=True)
        return self._call(
            ctx,
            form,
            _TOKEN_HANDLING_PARAMETERS,
            lambda body: self._introspect.create_introspect_response(
                INTROSPECT_PATH, "POST", body=body, headers={}
            ),
        )


_INVALID_CLIENT = "Client authentication failed."

# oauthlib's descriptions are good but a few are missing; every error gets one.
_DEFAULT_DESCRIPTIONS = {
    "invalid_grant": "The grant is invalid, expired or revoked.",
    "invalid_scope": "The requested scope is invalid or exceeds what is allowed.",
    "unauthorized_client": "This client may not use this grant type.",
    "invalid_request": "The request is missing a parameter or is malformed.",
}


def _described(payload: dict[str, Any]) -> dict[str, Any]:
    error = payload.get("error")
    if isinstance(error, str) and not payload.get("error_description"):
        payload["error_description"] = _DEFAULT_DESCRIPTIONS.get(error, "The request failed.")
    return payload


def _client_credentials(
    request: HttpRequest, form: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """Return ``(client_id, client_secret)`` from HTTP Basic or the form, never both.

    RFC 6749 section 2.3.1: with Basic, id and secret are form-urlencoded before
    being joined with ``:``, so both are decoded here.
    """
    body_id, body_secret = form.get("client_id"), form.get("client_secret")
    if request.header_count("authorization") > 1:
        raise _ClientCredentialsError("invalid_request", "Send one Authorization header.")
    authorization = request.header("authorization")
    if authorization is None:
        return body_id, body_secret
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise _ClientCredentialsError("invalid_client", _INVALID_CLIENT)
    if body_secret is not None:
        raise _ClientCredentialsError(
            "invalid_request", "Authenticate the client one way: HTTP Basic or the form, not both."
        )
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise _ClientCredentialsError("invalid_client", _INVALID_CLIENT) from None
    raw_id, sep, raw_secret = decoded.partition(":")
    if not sep:
        raise _ClientCredentialsError("invalid_client", _INVALID_CLIENT)
    client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
    if body_id is not None and body_id != client_id:
        raise _ClientCredentialsError(
            "invalid_request", "The client_id in the form differs from the one in HTTP Basic."
        )
    return client_id, secret


def _lowest_priority() -> None:
    """Start a hashing thread at the lowest scheduling priority the system grants.

    On Linux that is ``SCHED_IDLE``: the thread runs only on a core no other
    thread wants, and gives it up the moment one does. A lowered nice value
    is not enough: the scheduler then lets the hash finish its time slice
    first, a few milliseconds that other requests wait. The policy cannot be
    undone without privileges, hence threads of their own. Elsewhere, or
    without permission, the thread gets nice +19 or keeps its priority: the
    pool still bounds how many verifications run at once.
    """
    tid = threading.get_native_id()
    try:
        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, tid, 19)


def _is_login(request: HttpRequest) -> bool:
    """Guess, for scheduling only, whether a request is a password grant.

    A wrong guess changes only which queue the request waits in: the password
    slots bound the hashing work either way.
    """
    return request.path == TOKEN_PATH and b"grant_type=password" in request.body


def _issuer_of(request: HttpRequest, proxied: bool) -> str:
    """Derive the issuer when none is configured: this request's own origin.

    Set ``AuthEndpoints(issuer=...)`` in production: the issuer must be one
    fixed URL, not whatever Host header a client sends.
    """
    host = request.header("host") or "localhost"
    scheme = request.scheme
    if proxied:  # a trusted proxy terminated TLS and says so
        forwarded = (request.header("x-forwarded-proto") or "").split(",")[0].strip()
        scheme = "https" if forwarded == "https" else scheme
    return f"{scheme}://{host}"
