"""``GET|POST /oauth/authorize``: the login and consent pages of the authorization-code grant.

The request is checked by oauthlib's authorization endpoint, which tells apart
the errors that must be *shown* (unknown client, a redirect URI that is not
registered: sending the user there would make us an open redirector) from the
errors that may be *redirected* to the app with ``error`` and ``state``.
authmw adds what the RFC leaves to the server:

* **S256 only.** A missing ``code_challenge`` or any method but ``S256`` is
  ``invalid_request`` (RFC 9700 section 2.1.1: ``plain`` protects nothing an
  attacker who sees the request cannot undo).
* **A login page** with the token endpoint's rules (throttling, uniform errors),
  then a session cookie: ``HttpOnly``, ``SameSite=Lax``, ``Secure`` unless the
  page is served on loopback, signed, bound to the user's credential epoch (a
  password change ends it), scoped to ``/oauth``.
* **A consent page** naming the app and the scopes it asks for, of which the user
  gets only those their roles allow. A consent is remembered per user and app;
  the same scopes are not asked for twice, except of a public app sending the
  user to a loopback (``http`` or ``https``) or private-use redirect URI, which
  any app on the device could claim (RFC 8252 section 8.6): it is asked every time.
* **CSRF tokens** on both forms (a random cookie and, in the form, its HMAC
  with the signed-in user's name, so a page on another site can neither read
  nor forge the pair, and a cookie planted by a sibling subdomain is no use
  for forging a consent), ``X-Frame-Options:
  DENY``, a strict Content-Security-Policy with a per-response nonce for the one
  inline stylesheet, ``Cache-Control: no-store``, and no CORS headers at all.

Pages are Jinja2 templates (``authmw/oauth2/templates``); an application can
override any of them by giving a directory of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jinja2
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from oauthlib.oauth2 import AuthorizationEndpoint
from oauthlib.oauth2.rfc6749 import errors as oauth_errors
from oauthlib.oauth2.rfc6749.grant_types import AuthorizationCodeGrant

from authmw.clients import LOOPBACK_HOSTS
from authmw.oauth2._http import FormError, HttpRequest, HttpResponse, parse_form
from authmw.oauth2._validator import CallContext, LoginRefused, Validator, call_context
from authmw.store import Client, User

if TYPE_CHECKING:
    from oauthlib.oauth2 import BearerToken

    from authmw.authenticator import Authenticator

__all__ = ["AUTHORIZE_PATH", "Authorization", "S256OnlyCodeGrant"]

log = logging.getLogger("authmw")

AUTHORIZE_PATH = "/oauth/authorize"
SESSION_COOKIE = "authmw_session"
CSRF_COOKIE = "authmw_csrf"
#: How long a login on the authorization page lasts.
SESSION_MAX_AGE = 3600
_COOKIE_PATH = "/oauth"
_TEMPLATES = Path(__file__).resolve().parent / "templates"

#: The parameters of an authorization request that oauthlib is given; the rest are
#: dropped (RFC 6749 section 3.1: unrecognized parameters MUST be ignored). oauthlib
#: makes every parameter it receives an attribute of its request object, where
#: the validator keeps its own state (the user, for one): a parameter named like
#: that state would take its place.
AUTHORIZE_PARAMETERS = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
    }
)


class S256OnlyCodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    """oauthlib's authorization-code grant without the ``plain`` PKCE method."""

    _code_challenge_methods = {  # noqa: RUF012 - oauthlib's own class attribute
        "S256": AuthorizationCodeGrant._code_challenge_methods["S256"]
    }


@dataclass(frozen=True, slots=True)
class _Page:
    template: str
    status: int
    context: Mapping[str, Any]
    #: Seconds to wait before trying again (a throttled login), sent as ``Retry-After``.
    retry_after: int | None = None


_LOGIN_PAGE = _Page("login.html", 200, {"error": None})


class Authorization:
    """The authorization endpoint: validation by oauthlib, pages and session by authmw."""

    def __init__(
        self,
        authenticator: Authenticator,
        validator: Validator,
        bearer: BearerToken,
        *,
        platform_name: str,
        scope_descriptions: Mapping[str, str],
        templates: str | Path | None,
        address_of: Callable[[HttpRequest], str | None],
    ) -> None:
        self._auth = authenticator
        self._address_of = address_of
        self._validator = validator
        self.platform_name = platform_name
        self.scope_descriptions = dict(scope_descriptions)
        grant = S256OnlyCodeGrant(validator)
        self._endpoint = AuthorizationEndpoint("code", bearer, {"code": grant})
        self.grant = grant
        loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(_TEMPLATES)]
        if templates is not None:
            loaders.insert(0, jinja2.FileSystemLoader(templates))
        self._jinja = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )

    # -- keys --------------------------------------------------------------------------

    @property
    def _key(self) -> str:
        return self._auth.settings.secret_keys[0]

    def _session_signer(self) -> TimestampSigner:
        # Newest key first to sign; older keys still verify, as with tokens.
        return TimestampSigner(
            list(reversed(self._auth.settings.secret_keys)),
            salt="authmw.authorize-session",
            digest_method=hashlib.sha256,
        )

    def _csrf_for(self, nonce: str, user: User | None) -> str:
        """Sign the cookie's nonce and who the form is for: the form's token.

        The consent form's token names the signed-in user, so a nonce cookie
        planted by a sibling subdomain (same-site, so SameSite does not stop it)
        does not let its planter forge a consent; the login form's names no one.
        The nonce is URL-safe base64, so ``:`` separates the two unambiguously.
        """
        key = hashlib.sha256(b"authmw.csrf:" + self._key.encode()).digest()
        bound = f"{nonce}:{'' if user is None else user.username}"
        return hmac.new(key, bound.encode(), hashlib.sha256).hexdigest()

    # -- the request -------------------------------------------------------------------

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer ``GET`` (show a page) or ``POST`` (a login or a consent decision)."""
        if request.method not in ("GET", "POST"):
            # RFC 9110 section 15.5.6: a 405 names the methods that are allowed.
            page = self._error_page(405, "This page takes GET and POST only.")
            return HttpResponse(page.status, (*page.headers, ("Allow", "GET, POST")), page.body)
        repeated = _repeated(request.query)
        if repeated is not None:
            return self._error_page(400, f"The {repeated} parameter is repeated.")
        # The query is decoded once and encoded again before oauthlib reads it:
        # oauthlib raises ValueError (a 503 here) on characters a browser may
        # leave unencoded, such as < > " { |; and RFC 6749 section 3.1 says a
        # parameter without a value is treated as omitted, which parse_qsl does
        # by dropping blank values (so response_type= is invalid_request).
        params = [(k, v) for k, v in parse_qsl(request.query) if k in AUTHORIZE_PARAMETERS]
        uri = f"{AUTHORIZE_PATH}?{urlencode(params)}" if params else AUTHORIZE_PATH
        token = call_context.set(CallContext(None, None, None))
        try:
            try:
                scopes, info = self._endpoint.validate_authorization_request(uri, "GET", None, {})
            except oauth_errors.FatalClientError as exc:
                # Never redirect before the client and its redirect URI are known good.
                return self._error_page(400, _describe(exc))
            except oauth_errors.OAuth2Error as exc:
                return _redirect(_error_location(exc, exc.redirect_uri))
            problem = _pkce_problem(dict(params))
            if problem is not None:
                error = oauth_errors.InvalidRequestError(
                    description=problem, state=info.get("state")
                )
                return _redirect(error.in_uri(info["redirect_uri"]))
            return self._continue(request, uri, frozenset(scopes), info)
        finally:
            call_context.reset(token)

    def _continue(
        self, request: HttpRequest, uri: str, asked: frozenset[str], info: Mapping[str, Any]
    ) -> HttpResponse:
        """Walk the user through login and consent, one page per request."""
        client: Client = info["request"].client.record
        cookies = _cookies(request)
        form: dict[str, str] = {}
        user = self._session_user(cookies.get(SESSION_COOKIE))
        if request.method == "POST":
            try:
                form = parse_form(request)
            except FormError as exc:
                return self._error_page(400, str(exc))
            # The login form was made for no one, the consent form for the signed-in
            # user. A consent posted after the session ended does nothing (the login
            # page comes back), so only a form that can act is checked.
            login = form.get("action") == "login"
            acting = login or user is not None
            signer = None if login else user
            if acting and not self._csrf_ok(
                cookies.get(CSRF_COOKIE), form.get("csrf_token"), signer
            ):
                return self._error_page(
                    403, "The form expired or did not come from this page. Go back and try again."
                )
        set_cookies: list[str] = []
        if user is None:
            outcome = self._login(request, form) if form.get("action") == "login" else _LOGIN_PAGE
            if not isinstance(outcome, User):
                return self._render(request, info, uri, outcome, cookies, user=None)
            user = outcome
            set_cookies.append(self._session_cookie(request, user))
        granted = asked & self._auth.policy.scopes_for(user.roles)
        if form.get("action") == "consent":
            return self._decide(
                form.get("decision"),
                uri=uri,
                client=client,
                user=user,
                granted=granted,
                info=info,
                set_cookies=set_cookies,
            )
        consent = self._auth.store.get_consent(user.username, client.id)
        if (
            consent is not None
            and granted <= consent.scopes
            and _identity_assured(client, info["redirect_uri"])
        ):
            return self._issue_code(uri, user, granted, set_cookies)
        page = self._consent_page(user, granted, asked - granted)
        return self._render(request, info, uri, page, cookies, user=user, set_cookies=set_cookies)

    def _decide(
        self,
        decision: str | None,
        *,
        uri: str,
        client: Client,
        user: User,
        granted: frozenset[str],
        info: Mapping[str, Any],
        set_cookies: list[str],
    ) -> HttpResponse:
        """Act on the consent form: remember an allow and issue a code, or redirect a deny."""
        if decision == "deny":
            self._auth.audit.emit("consent.denied", user=user.username, client_id=client.id)
            error = oauth_errors.AccessDeniedError(
                description="The user denied the request.", state=info.get("state")
            )
            return _redirect(error.in_uri(info["redirect_uri"]), set_cookies)
        if decision != "allow":
            return self._error_page(400, "Choose allow or deny.")
        self._auth.store.save_consent(user.username, client.id, granted, datetime.now(UTC))
        self._auth.audit.emit(
            "consent.granted",
            user=user.username,
            client_id=client.id,
            scope=" ".join(sorted(granted)),
        )
        return self._issue_code(uri, user, granted, set_cookies)

    def _issue_code(
        self, uri: str, user: User, scopes: frozenset[str], set_cookies: list[str]
    ) -> HttpResponse:
        # The grant travels as its own attribute: oauthlib takes an empty scope list
        # for "not decided" and puts the requested scopes in its place.
        headers, _, status = self._endpoint.create_authorization_response(
            uri,
            "GET",
            None,
            {},
            scopes=sorted(scopes),
            credentials={"user": user, "authmw_granted": scopes},
        )
        return HttpResponse(
            status,
            (
                ("Location", headers["Location"]),
                ("Cache-Control", "no-store"),
                *(("Set-Cookie", c) for c in set_cookies),
            ),
        )

    # -- login -------------------------------------------------------------------------

    def _login(self, request: HttpRequest, form: Mapping[str, str]) -> User | _Page:
        username, password = form.get("username", ""), form.get("password", "")
        address = self._address_of(request)
        if not username or not password:
            return _Page("login.html", 400, {"error": "Enter your username and password."})
        try:
            return self._validator.login(username, password, address=address)
        except LoginRefused as refused:
            wait = refused.retry_after
            if wait is None:
                return _Page("login.html", 400, {"error": "Invalid username or password."})
            minutes = max(1, round(wait / 60))
            return _Page(
                "login.html",
                429,
                {"error": f"Too many failed attempts. Try again in about {minutes} min."},
                retry_after=wait,
            )

    def _session_cookie(self, request: HttpRequest, user: User) -> str:
        value = self._session_signer().sign(f"{user.username}:{user.credential_epoch}").decode()
        return _cookie(SESSION_COOKIE, value, request, max_age=SESSION_MAX_AGE)

    def _session_user(self, value: str | None) -> User | None:
        if not value or not self._auth.settings.secret_keys:
            return None
        try:
            raw = self._session_signer().unsign(value, max_age=SESSION_MAX_AGE).decode()
        except (BadSignature, SignatureExpired, UnicodeError):
            return None
        username, _, epoch = raw.rpartition(":")
        user = self._auth.store.get_user(username)
        # A password change, a role change or disabling the user ends the session.
        if user is None or user.disabled or str(user.credential_epoch) != epoch:
            return None
        return user

    def _csrf_ok(self, nonce: str | None, submitted: str | None, user: User | None) -> bool:
        if not nonce or not submitted:
            return False
        return hmac.compare_digest(self._csrf_for(nonce, user), submitted)

    # -- pages -------------------------------------------------------------------------

    def _consent_page(self, user: User, granted: frozenset[str], withheld: frozenset[str]) -> _Page:
        def described(scopes: Iterable[str]) -> list[dict[str, str]]:
            return [
                {"name": s, "description": self.scope_descriptions.get(s, s)}
                for s in sorted(scopes)
            ]

        return _Page(
            "consent.html",
            200,
            {
                "user": user.username,
                "scopes": described(granted),
                "withheld": described(withheld),
            },
        )

    def _render(
        self,
        request: HttpRequest,
        info: Mapping[str, Any],
        uri: str,
        page: _Page,
        cookies: Mapping[str, str],
        *,
        user: User | None,
        set_cookies: Iterable[str] = (),
    ) -> HttpResponse:
        nonce = cookies.get(CSRF_COOKIE)
        extra = list(set_cookies)
        if not nonce:
            nonce = secrets.token_urlsafe(24)
            extra.append(_cookie(CSRF_COOKIE, nonce, request, max_age=SESSION_MAX_AGE))
        client: Client = info["request"].client.record
        # Where the form's redirect goes: the request's redirect_uri, or, when it
        # left it out, the one URI the app registered (RFC 6749 section 3.1.2.3).
        redirect_origin = _origin(info["redirect_uri"])
        return self._html(
            page.template,
            page.status,
            {
                **page.context,
                "app": client.name,
                "first_party": client.first_party,
                "action": uri,
                "csrf_token": self._csrf_for(nonce, user),
            },
            extra,
            form_targets=(redirect_origin,) if redirect_origin else (),
            retry_after=page.retry_after,
        )

    def _error_page(self, status: int, message: str) -> HttpResponse:
        return self._html("error.html", status, {"message": message}, [], form_targets=())

    def _html(
        self,
        template: str,
        status: int,
        context: Mapping[str, Any],
        set_cookies: Iterable[str],
        *,
        form_targets: Iterable[str],
        retry_after: int | None = None,
    ) -> HttpResponse:
        style_nonce = secrets.token_urlsafe(16)
        body = self._jinja.get_template(template).render(
            platform=self.platform_name, style_nonce=style_nonce, **context
        )
        # After a form POST the browser follows our redirect to the app: Chrome
        # checks that redirect against form-action, so the app's origin is listed.
        form_action = " ".join(["'self'", *form_targets])
        csp = (
            f"default-src 'none'; style-src 'nonce-{style_nonce}'; img-src 'self' data:; "
            f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
        )
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Cache-Control", "no-store"),
            ("Pragma", "no-cache"),
            ("X-Frame-Options", "DENY"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("Content-Security-Policy", csp),
            *(("Set-Cookie", c) for c in set_cookies),
        ]
        if retry_after is not None:
            headers.append(("Retry-After", str(retry_after)))
        return HttpResponse(status, tuple(headers), body.encode())


_FATAL_MESSAGES: tuple[tuple[type[oauth_errors.OAuth2Error], str], ...] = (
    (oauth_errors.MissingClientIdError, "The request does not say which application is asking."),
    (oauth_errors.InvalidClientIdError, "This application is not registered, or is disabled."),
    (oauth_errors.MissingRedirectURIError, "The application must say where to send you back."),
    (oauth_errors.InvalidRedirectURIError, "The redirect URI is not a valid absolute URI."),
    (
        oauth_errors.MismatchingRedirectURIError,
        "The redirect URI is not one this application registered.",
    ),
)


def _describe(error: oauth_errors.OAuth2Error) -> str:
    # oauthlib gives all of these the code invalid_request; the class says which.
    for kind, message in _FATAL_MESSAGES:
        if isinstance(error, kind):
            return message
    return "The authorization request is malformed."


# RFC 6749 section 4.1.2.1 makes error_description optional; we always send one
# (fixed text) so the app's developer can tell the errors apart.
_REDIRECT_DESCRIPTIONS = {
    "unsupported_response_type": "Only response_type=code is supported.",
    "invalid_scope": "The requested scope is unknown or more than this app may ask for.",
    "unauthorized_client": "This app may not ask for an authorization code.",
    "invalid_request": "The authorization request is missing a parameter or is malformed.",
}


def _error_location(error: oauth_errors.OAuth2Error, redirect_uri: str) -> str:
    if not error.description:
        error.description = _REDIRECT_DESCRIPTIONS.get(error.error, "The request failed.")
    location: str = error.in_uri(redirect_uri)
    return location


# RFC 7636 section 4.2: an S256 challenge is BASE64URL(SHA256(verifier)) without
# padding, always 43 characters. Anything else can never match a verifier, so
# the code it would bind could never be redeemed: refuse it now, visibly.
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")


def _pkce_problem(params: Mapping[str, str]) -> str | None:
    if params.get("code_challenge_method") != "S256":
        return "PKCE is required: code_challenge_method must be S256."
    if _S256_CHALLENGE.fullmatch(params.get("code_challenge", "")) is None:
        return "code_challenge must be the 43-character base64url SHA-256 of the verifier."
    return None


def _repeated(query: str) -> str | None:
    seen: set[str] = set()
    for name, _ in parse_qsl(query, keep_blank_values=True):
        if name in seen:
            return name if name.isascii() and name.isprintable() and len(name) < 40 else "a"
        seen.add(name)
    return None


def _redirect(location: str, set_cookies: Iterable[str] = ()) -> HttpResponse:
    return HttpResponse(
        302,
        (
            ("Location", location),
            ("Cache-Control", "no-store"),
            *(("Set-Cookie", c) for c in set_cookies),
        ),
    )


def _origin(uri: str | None) -> str | None:
    if not uri:
        return None
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def _cookies(request: HttpRequest) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for header in (v for k, v in request.headers if k == "cookie"):
        try:
            jar.load(header)
        except Exception:  # noqa: S112 - a malformed cookie header is no session
            continue
    return {name: morsel.value for name, morsel in jar.items()}


def _identity_assured(client: Client, redirect_uri: str) -> bool:
    """Whether a repeat request may reuse the consent the user gave ``client`` unasked.

    RFC 8252 section 8.6 (and RFC 6749 section 10.2): unless the client's
    identity is assured, each request is processed as if none had been approved
    before. A confidential app proves it with its secret at the token endpoint;
    a public app's code can only go to an ``https`` redirect URI its domain
    serves. A loopback port (over ``https`` too) or a private-use scheme can be
    claimed by any app on the device, so an impersonator there must meet the
    consent page, not a code.
    """
    if not client.public:
        return True
    try:
        parts = urlsplit(redirect_uri)
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme.lower() == "https" and host is not None and host not in LOOPBACK_HOSTS


def _cookie(name: str, value: str, request: HttpRequest, *, max_age: int) -> str:
    parts = [f"{name}={value}", f"Path={_COOKIE_PATH}", f"Max-Age={max_age}"]
    parts += ["HttpOnly", "SameSite=Lax"]
    try:
        host = urlsplit(f"//{request.header('host') or ''}").hostname or ""
    except ValueError:
        host = ""
    # Browsers treat loopback as a secure context; everywhere else the cookie
    # must never travel over plain http.
    if host not in LOOPBACK_HOSTS:
        parts.append("Secure")
    return "; ".join(parts)
