"""The bridge between oauthlib's grant machinery and authmw's stores and rules.

oauthlib parses and checks token requests (RFC 6749 section 4 and 6) and asks a
``RequestValidator`` every question that needs data: is this client who it says,
may it use this grant, are these scopes allowed, is this password right. This
module answers them, always through the core (``authenticator.clients``,
``authenticator.tokens``, the policy), never with rules of its own.

Why oauthlib, and what we do around it: ``docs/decisions/0007-oauthlib-for-grant-machinery.md``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from concurrent.futures import Executor
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from oauthlib.oauth2 import RequestValidator
from oauthlib.oauth2.rfc6749 import errors as oauth_errors

from authmw import keys as _keys
from authmw.errors import TooManyRequests
from authmw.oauth2.redirects import redirect_uri_allowed
from authmw.store import AuthorizationCode, Client, User
from authmw.throttle import LoginThrottle
from authmw.tokens import GrantError, IssuedTokens

if TYPE_CHECKING:
    from oauthlib.common import Request

    from authmw.authenticator import Authenticator

__all__ = [
    "CallContext",
    "ClientRef",
    "LoginRefused",
    "Throttled",
    "Validator",
    "call_context",
]

log = logging.getLogger("authmw")


@dataclass(frozen=True, slots=True)
class CallContext:
    """What the endpoint learnt about one request before handing it to oauthlib.

    Client credentials are parsed by the endpoint (Basic or form body, never
    both), so oauthlib never sees the ``Authorization`` header.
    """

    client_id: str | None
    client_secret: str | None
    address: str | None
    #: Introspection needs a client that proves itself with a secret.
    require_secret: bool = False


call_context: ContextVar[CallContext | None] = ContextVar("authmw_oauth_call", default=None)


def _context() -> CallContext:
    ctx = call_context.get()
    if ctx is None:  # pragma: no cover - only the endpoints call oauthlib
        raise RuntimeError("authmw: oauthlib called outside an authmw endpoint")
    return ctx


@dataclass(frozen=True, slots=True)
class ClientRef:
    """What oauthlib wants on ``request.client`` (a ``client_id``), holding our record."""

    record: Client

    @property
    def client_id(self) -> str:
        """The client's id, as oauthlib reads it."""
        return self.record.id


class Throttled(oauth_errors.OAuth2Error):  # type: ignore[misc]
    """Too many failed logins: 429 with ``Retry-After`` (the body is an RFC 6749 error)."""

    error = "invalid_request"
    status_code = 429
    description = "Too many failed attempts; try again later."

    def __init__(self, retry_after: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        """``Retry-After`` in seconds."""
        return {"Retry-After": str(self.retry_after)}


_INVALID_CREDENTIALS = "Invalid username or password."


class LoginRefused(Exception):
    """A login that fails: throttled (``retry_after`` seconds), or bad credentials (``None``)."""

    def __init__(self, retry_after: int | None = None) -> None:
        super().__init__("throttled" if retry_after is not None else "bad credentials")
        self.retry_after = retry_after


class Validator(RequestValidator):  # type: ignore[misc]
    """Answers oauthlib's questions for the token, revocation and introspection endpoints."""

    def __init__(
        self,
        authenticator: Authenticator,
        throttle: LoginThrottle,
        hashing: Executor,
    ) -> None:
        super().__init__()
        self._auth = authenticator
        self._throttle = throttle
        self._hashing = hashing

    # -- client authentication (RFC 6749 section 2.3) ----------------------------------

    def client_authentication_required(self, request: Request, *args: Any, **kwargs: Any) -> bool:
        """Everyone authenticates except a public app naming itself by ``client_id``."""
        ctx = _context()
        if ctx.client_secret is not None or ctx.require_secret or ctx.client_id is None:
            return True
        client = self._auth.store.get_client(ctx.client_id)
        return client is None or not client.public

    def authenticate_client(self, request: Request, *args: Any, **kwargs: Any) -> bool:
        """Check the client's secret (constant time; unknown and wrong look the same)."""
        ctx = _context()
        client = None
        if ctx.client_id is not None and ctx.client_secret is not None:
            client = self._auth.clients.authenticate(ctx.client_id, ctx.client_secret)
        if client is None:
            self._auth.audit.emit(
                "client.authentication_failed", address=ctx.address, reason="bad_credentials"
            )
            return False
        request.client = ClientRef(client)
        request.client_id = client.id
        return True

    def authenticate_client_id(
        self, client_id: str, request: Request, *args: Any, **kwargs: Any
    ) -> bool:
        """Identify a public app by its id alone: it has no secret (PKCE protects its codes)."""
        ctx = _context()
        client = self._auth.store.get_client(ctx.client_id) if ctx.client_id else None
        if client is None or client.disabled or not client.public:
            self._auth.audit.emit(
                "client.authentication_failed", address=ctx.address, reason="unknown_public_client"
            )
            return False
        request.client = ClientRef(client)
        request.client_id = client.id
        return True

    # -- grants and scopes ---------------------------------------------------------------

    def validate_grant_type(
        self,
        client_id: str,
        grant_type: str,
        client: ClientRef,
        request: Request,
        *args: Any,
        **kwargs: Any,
    ) -> bool:
        """Machine clients use client credentials only; apps use the user grants."""
        record = client.record
        if record.kind == "client":
            return grant_type == "client_credentials"
        if grant_type == "password":
            return record.first_party
        return grant_type in ("refresh_token", "authorization_code")

    def validate_user(
        self,
        username: str,
        password: str,
        client: ClientRef,
        request: Request,
        *args: Any,
        **kwargs: Any,
    ) -> bool:
        """Check a password grant: first-party apps only, throttled, uniform failures."""
        if client.record.kind != "app" or not client.record.first_party:
            # RFC 9700 section 2.4: the password grant must not be used by third
            # parties. Refused before the password is even looked at.
            raise oauth_errors.UnauthorizedClientError(
                description="Only first-party apps may use the password grant.", request=request
            )
        try:
            request.user = self.login(
                username, password, address=_context().address, client_id=client.client_id
            )
        except LoginRefused as refused:
            if refused.retry_after is not None:
                raise Throttled(refused.retry_after, request=request) from None
            raise oauth_errors.InvalidGrantError(
                description=_INVALID_CREDENTIALS, request=request
            ) from None
        return True

    def login(
        self, username: str, password: str, *, address: str | None, client_id: str | None = None
    ) -> User:
        """Log a user in: the one rule of the token endpoint and of the login page.

        The throttle is asked first (a throttled attempt checks no password), then
        one hash is verified whatever the failure; the throttle and the audit log
        learn the outcome. Raises :class:`LoginRefused`.
        """
        ids = {} if client_id is None else {"client_id": client_id}
        try:
            user = self._throttle.attempt(
                username, address, lambda: self.check_password(username, password)
            )
        except TooManyRequests as throttled:
            self._auth.audit.emit("login.throttled", address=address, **ids)
            raise LoginRefused(throttled.retry_after) from None
        if user is None:
            self._auth.audit.emit("login.failed", address=address, **ids)
            raise LoginRefused()
        self._auth.audit.emit("login.succeeded", user=user.username, address=address, **ids)
        return user

    def check_password(self, username: str, password: str) -> User | None:
        """Return the user if the password is theirs and the account is enabled.

        Unknown user, wrong password and disabled account take the same path and
        the same time: each verifies one hash (a dummy one when there is no user).
        An outdated hash is upgraded on success.
        """
        user = self._auth.store.get_user(username)
        # A verification takes a core for tens of milliseconds, on purpose. It runs
        # in the small pool of lowest-priority threads AuthEndpoints keeps for this:
        # verifications queue among themselves, and the rest of the application
        # keeps the CPU it needs (see AuthEndpoints(login_concurrency=...)).
        stored = user.password_hash if user is not None else None
        ok, new_hash = self._hashing.submit(self._auth.passwords.verify, password, stored).result()
        if not ok or user is None or user.disabled:
            return None
        if new_hash is not None:
            # A rehash keeps the password, so the credential epoch stays.
            self._auth.store.update_user(user.username, password_hash=new_hash)
        return user

    def _allowed_scopes(self, request: Request) -> frozenset[str]:
        record: Client = request.client.record
        if request.grant_type == "client_credentials":
            return record.scopes
        if request.grant_type is None:
            # An authorization request: the user is not known yet. The app may ask
            # for the scopes it registered (any, if it registered none); what the
            # user's roles allow narrows the grant later, on the consent page.
            return record.scopes or self._auth.policy.all_scopes
        user: User = request.user
        allowed = self._auth.policy.scopes_for(user.roles)
        # An app registered with scopes may ask only for those.
        return allowed & record.scopes if record.scopes else allowed

    def get_default_scopes(
        self, client_id: str, request: Request, *args: Any, **kwargs: Any
    ) -> list[str]:
        """No ``scope`` asked for: everything the client (or the user, through the app) may have."""
        return sorted(self._allowed_scopes(request))

    def validate_scopes(
        self,
        client_id: str,
        scopes: list[str],
        client: ClientRef,
        request: Request,
        *args: Any,
        **kwargs: Any,
    ) -> bool:
        """Scopes asked for must be within what the client or the user's roles allow."""
        return frozenset(scopes) <= self._allowed_scopes(request)

    # -- refresh tokens ------------------------------------------------------------------

    def validate_refresh_token(
        self, refresh_token: str, client: ClientRef, request: Request, *args: Any, **kwargs: Any
    ) -> bool:
        """Check *and* rotate: rotation must be one atomic step, so it happens here."""
        requested = frozenset(request.scope.split()) if request.scope else None
        try:
            issued = self._auth.tokens.refresh(refresh_token, client.record, requested)
        except GrantError as exc:
            error = (
                oauth_errors.InvalidScopeError
                if exc.error == "invalid_scope"
                else oauth_errors.InvalidGrantError
            )
            raise error(description=exc.description, request=request) from None
        request.authmw_issued = issued
        return True

    def get_original_scopes(
        self, refresh_token: str, request: Request, *args: Any, **kwargs: Any
    ) -> list[str]:
        """Return the scopes granted, already checked by :meth:`validate_refresh_token`."""
        issued: IssuedTokens = request.authmw_issued
        requested = request.scope.split() if request.scope else []
        return sorted(issued.scopes | frozenset(requested))

    def rotate_refresh_token(self, request: Request) -> bool:
        """Rotate on every use (RFC 9700 section 4.14.2)."""
        return True

    # -- issuing -------------------------------------------------------------------------

    def issue(self, request: Request) -> IssuedTokens:
        """Mint the tokens of a successful request (once; oauthlib asks twice)."""
        issued: IssuedTokens | None = getattr(request, "authmw_issued", None)
        if issued is not None:
            request.scopes = sorted(issued.scopes)
            return issued
        record: Client = request.client.record
        scopes = frozenset(request.scopes or ())
        if request.grant_type == "client_credentials":
            issued = self._auth.tokens.issue_for_client(record, scopes)
        elif request.grant_type == "authorization_code":
            issued = self._auth.tokens.issue_for_user(
                request.user, record, scopes, kind="delegated", family_id=request.authmw_family
            )
            self._revoke_if_replayed(request.authmw_code)
            self._revoke_if_consent_withdrawn(request.authmw_code)
        else:
            issued = self._auth.tokens.issue_for_user(request.user, record, scopes)
        request.authmw_issued = issued
        # oauthlib reports request.scopes as the response's "scope": make it the
        # scope the token really carries (RFC 6749 section 5.1).
        request.scopes = sorted(issued.scopes)
        return issued

    def save_bearer_token(
        self, token: dict[str, Any], request: Request, *args: Any, **kwargs: Any
    ) -> None:
        """Tokens are stored when minted; here we only record the event."""
        issued: IssuedTokens = request.authmw_issued
        user: User | None = getattr(request, "user", None)
        self._auth.audit.emit(
            "token.issued",
            grant_type=request.grant_type,
            client_id=request.client.client_id,
            user=user.username if user is not None else None,
            token_id=issued.token_id,
            family_id=issued.family_id,
        )

    # -- revocation and introspection ---------------------------------------------------

    def revoke_token(
        self, token: str, token_type_hint: str | None, request: Request, *args: Any, **kwargs: Any
    ) -> None:
        """RFC 7009: the hint is only a hint; the prefix tells the type."""
        self._auth.tokens.revoke(token, request.client.record)

    def introspect_token(
        self, token: str, token_type_hint: str | None, request: Request, *args: Any, **kwargs: Any
    ) -> dict[str, Any] | None:
        """RFC 7662: the claims of a live token, ``None`` for anything else.

        Any client with a secret may ask about an access token: that is what a
        resource server does with the tokens presented to it. A refresh token is
        only ever presented by the client it was issued to, so only that client
        learns that it is live (RFC 7662 section 4); to any other it is inactive.
        """
        claims = self._auth.tokens.introspect(token)
        if (
            claims["active"]
            and claims.get("token_type") == "refresh_token"
            and claims.get("client_id") != request.client.client_id
        ):
            claims = {"active": False}
        # docs/audit.md: the caller and which token (the id of a live access token;
        # nothing names an inactive one, and a refresh token's claims carry no id).
        self._auth.audit.emit(
            "token.introspected", client_id=request.client.client_id, token_id=claims.get("jti")
        )
        if not claims["active"]:
            return None
        return {k: v for k, v in claims.items() if v is not None}

    # -- authorization code (RFC 6749 section 4.1, RFC 7636) ----------------------------

    def _app(self, client_id: str | None) -> Client | None:
        client = self._auth.store.get_client(client_id) if client_id else None
        if client is None or client.kind != "app" or client.disabled:
            return None
        return client

    def validate_client_id(
        self, client_id: str, request: Request, *args: Any, **kwargs: Any
    ) -> bool:
        """Accept an enabled app; machine clients have no users to ask."""
        client = self._app(client_id)
        if client is None:
            return False
        request.client = ClientRef(client)
        return True

    def validate_redirect_uri(
        self, client_id: str, redirect_uri: str, request: Request, *args: Any, **kwargs: Any
    ) -> bool:
        """Compare exactly with the registered URIs (RFC 9700 section 2.1)."""
        client = self._app(client_id)
        return client is not None and redirect_uri_allowed(client, redirect_uri)

    def get_default_redirect_uri(
        self, client_id: str, request: Request, *args: Any, **kwargs: Any
    ) -> str | None:
        """Return the registered URI when there is exactly one; else the request names one."""
        client = self._app(client_id)
        if client is None or len(client.redirect_uris) != 1:
            return None
        return client.redirect_uris[0]

    def validate_response_type(
        self,
        client_id: str,
        response_type: str,
        client: ClientRef,
        request: Request,
        *args: Any,
        **kwargs: Any,
    ) -> bool:
        """Accept ``code`` only: the implicit grant is gone (RFC 9700 section 2.1.2).

        oauthlib lets any value containing ``code`` (``code token``) reach this
        check and calls a ``False`` here ``unauthorized_client``; RFC 6749 section
        4.1.2.1 calls a response type the server does not offer
        ``unsupported_response_type``, whoever the client is.
        """
        if response_type != "code":
            raise oauth_errors.UnsupportedResponseTypeError(request=request)
        return True

    def is_pkce_required(self, client_id: str, request: Request) -> bool:
        """Require PKCE of every app, confidential ones too (RFC 9700 section 2.1.1)."""
        return True

    def save_authorization_code(
        self, client_id: str, code: dict[str, Any], request: Request, *args: Any, **kwargs: Any
    ) -> None:
        """Store the code as a hash and put our identifiable code in the redirect."""
        settings = self._auth.settings
        value, parsed = _keys.generate(settings.code_prefix)
        user: User = request.user
        now = datetime.now(UTC)
        self._auth.store.add_code(
            AuthorizationCode(
                id=parsed.key_id,
                client_id=client_id,
                subject=user.username,
                redirect_uri=request.redirect_uri,
                # What the user granted, which may be nothing (see Authorization._issue_code).
                scopes=request.authmw_granted,
                code_challenge=request.code_challenge,
                created_at=now,
                expires_at=now + timedelta(seconds=settings.code_ttl),
                credential_epoch=user.credential_epoch,
                secret_hash=_keys.hash_secret(parsed),
            )
        )
        code["code"] = value

    def validate_code(  # noqa: PLR0911 - one answer per check, in the order they run
        self,
        client_id: str,
        code: str,
        client: ClientRef,
        request: Request,
        *args: Any,
        **kwargs: Any,
    ) -> bool:
        """Check everything about the code, then spend it: one use, ever.

        The PKCE verifier, the redirect URI, the user and the consent are checked
        *before* the code is consumed, so a request that fails them leaves it to
        its owner; the consumption itself is one conditional update, so of two
        concurrent exchanges exactly one wins. A code presented again revokes the
        tokens its first use issued (RFC 6749 section 4.1.2), whatever verifier
        comes with it.
        """
        record = self._find_code(code)
        if record is not None and record.client_id != client.client_id:
            record = None  # another client's code is no code for this one
        now = datetime.now(UTC)
        if record is not None and record.used_at is not None:
            # A replay is a replay whatever verifier comes with it, a missing or
            # malformed one included: its tokens are revoked all the same.
            self._code_replayed(record, now)
            return False
        verifier = request.code_verifier
        if verifier is None:
            raise oauth_errors.MissingCodeVerifierError(request=request)
        if _VERIFIER.fullmatch(verifier) is None:
            raise oauth_errors.InvalidRequestError(
                description="code_verifier must be 43-128 characters of A-Z a-z 0-9 - . _ ~",
                request=request,
            )
        if record is None:
            return False
        if record.expires_at <= now or not _s256_matches(verifier, record.code_challenge):
            return False
        if client.record.predates_reenable(record.created_at):
            return False  # issued before the app was last re-enabled: dead for good
        redirect_uri = request.redirect_uri
        if redirect_uri is None:
            # Left out, oauthlib substitutes the one registered URI and compares it
            # after this method. Compared here instead, before the code is spent:
            # a code used with a loopback port must name that port (RFC 6749
            # section 4.1.3), and a mismatch is invalid_grant (section 5.2), not
            # the invalid_request oauthlib would answer once the code is gone.
            redirect_uri = self.get_default_redirect_uri(client.client_id, request)
        if redirect_uri != record.redirect_uri:
            return False
        user = self._auth.store.get_user(record.subject)
        if user is None or user.disabled or user.credential_epoch != record.credential_epoch:
            return False
        # Every code is issued under a consent covering its scopes; one withdrawn
        # since (or narrowed) takes the codes not yet exchanged with it.
        consent = self._auth.store.get_consent(record.subject, record.client_id)
        if consent is None or not record.scopes <= consent.scopes:
            return False
        if not self._auth.store.consume_code(record.id, now):
            self._code_replayed(record, now)
            return False
        # The refresh family is named after the code (its id is random and
        # unique), so a replay that races this exchange knows what to revoke
        # even before set_code_family or the tokens are written.
        family_id = record.id
        self._auth.store.set_code_family(record.id, family_id)
        request.user = user
        request.scopes = sorted(record.scopes)
        request.authmw_code = record
        request.authmw_family = family_id
        return True

    def _find_code(self, value: str) -> AuthorizationCode | None:
        return _keys.find_stored(value, self._auth.settings.code_prefix, self._auth.store.get_code)

    def _code_replayed(self, record: AuthorizationCode, now: datetime) -> None:
        self._auth.audit.emit(
            "code.reused",
            user=record.subject,
            client_id=record.client_id,
            family_id=record.family_id,
        )
        # The family of a code is the code's id (see validate_code): revoked even
        # when the first exchange has not issued its tokens yet.
        self._auth.tokens.revoke_family(record.id, record.subject, now)

    def _revoke_if_replayed(self, record: AuthorizationCode) -> None:
        """Revoke what this exchange just issued if a replay of its code came first.

        A replay racing the exchange revokes the family (the code's id) before
        its refresh token exists, so that token is not marked revoked. The
        replay writes the revocation *before* marking refresh tokens
        (:meth:`Tokens.revoke_family`) and this read comes *after* ours is
        stored: whichever order the two run in, one of them sees the other.
        """
        since = record.created_at - timedelta(seconds=1)
        if any(
            r.kind == "family" and r.id == record.id
            for r in self._auth.store.revocations_since(since)
        ):
            self._auth.tokens.revoke_family(record.id, record.subject)

    def _revoke_if_consent_withdrawn(self, record: AuthorizationCode) -> None:
        """Revoke what this exchange just issued if the user withdrew consent meanwhile.

        :meth:`Tokens.revoke_consent <authmw.tokens.Tokens.revoke_consent>` deletes
        the consent, then revokes the app's refresh tokens it finds. Read after
        ours is stored, the consent is either still there (so the withdrawal will
        find our token) or gone (so we revoke it here): it cannot slip between.
        """
        if self._auth.store.get_consent(record.subject, record.client_id) is None:
            self._auth.tokens.revoke_family(record.id, record.subject)

    def confirm_redirect_uri(
        self,
        client_id: str,
        code: str,
        redirect_uri: str,
        client: ClientRef,
        request: Request,
        *args: Any,
        **kwargs: Any,
    ) -> bool:
        """Require the authorization request's redirect URI, exactly."""
        record: AuthorizationCode = request.authmw_code
        return redirect_uri == record.redirect_uri

    def get_code_challenge(self, code: str, request: Request) -> str:
        """Return the challenge stored with the code (verified in :meth:`validate_code`)."""
        record: AuthorizationCode = request.authmw_code
        return record.code_challenge

    def get_code_challenge_method(self, code: str, request: Request) -> str:
        """Return S256: ``plain`` is refused at the authorization request."""
        return "S256"

    def invalidate_authorization_code(
        self, client_id: str, code: str, request: Request, *args: Any, **kwargs: Any
    ) -> None:
        """Do nothing: :meth:`validate_code` already spent the code."""


# RFC 7636 section 4.1: 43-128 characters of the unreserved set.
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def _s256_matches(verifier: str, challenge: str) -> bool:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return hmac.compare_digest(computed, challenge)
