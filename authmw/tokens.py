"""Access and refresh tokens: format, issuing, rotation, revocation and verification.

**Access tokens** are self-contained: ``amt_`` followed by an itsdangerous-signed
payload (HMAC-SHA256 over compact JSON). The payload carries who the token is for
(subject, kind, roles, scopes, teams, client), the user's credential epoch, a
token id for revocation and, for tokens issued from a login, the id of the refresh
family they came from. Verifying one needs no store hit in the common case:

* the signature and the expiry are checked from the token itself;
* revocations are held in memory (:class:`RevocationList`), brought up to date
  from the store at most once per ``cache_ttl``;
* the user (or client) behind the token is read at most once per ``cache_ttl``
  (its epoch, disabled flag and current roles), so a password change, a role
  change or a disabled account reaches every live token within that bound, and at
  once in the process that made the change.

Signing keys come newest first from ``AUTHMW_SECRET_KEY``; a token signed with an
older key still verifies, so keys rotate without logging anyone out.

**Refresh tokens** are opaque, in the identifiable format of API keys
(``amr_<id>_<secret><checksum>``), and stored as a hash. Each use rotates: the
presented token is marked used and a successor issued, in one conditional
``UPDATE`` so that, of many simultaneous refreshes, exactly one wins. A used token
that comes back is a replay (RFC 9700 section 4.14.2): its whole family is revoked,
access tokens issued from it included.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable, Container, Generator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeGuard, TypeVar

import msgspec
from itsdangerous import Signer
from itsdangerous.encoding import base64_encode

from authmw import keys as _keys
from authmw.errors import InvalidToken, ServiceUnavailable
from authmw.principal import Principal
from authmw.shared import Invalidation
from authmw.store import Client, RefreshToken, Revocation, User

if TYPE_CHECKING:
    from authmw.authenticator import Authenticator

__all__ = [
    "ACCESS_PREFIX",
    "REFRESH_PREFIX",
    "AccessClaims",
    "AccessTokenCodec",
    "GrantError",
    "IssuedTokens",
    "RevocationList",
    "Tokens",
]

log = logging.getLogger("authmw")

ACCESS_PREFIX = "amt"
REFRESH_PREFIX = "amr"
# The salt separates access tokens from anything else the same keys might sign.
_SALT = "authmw.access-token.v1"
_PAYLOAD_VERSION = 1
#: Keys shorter than this are refused: HMAC is only as strong as its key.
MIN_SECRET_KEY_LENGTH = 32

TokenKind = Literal["user", "client", "delegated"]

T = TypeVar("T")
Flow = Generator[Callable[[], Any], Any, T]


class GrantError(Exception):
    """A token request that must fail with an RFC 6749 section 5.2 error.

    ``error`` is the RFC's code (``invalid_grant``, ``invalid_scope``...);
    ``description`` is fixed text, never anything the client sent.
    """

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


# -- access tokens --------------------------------------------------------------------


#: Timestamps and epochs at or beyond this (a timestamp in 2242) are not ours: datetime
#: could not even hold some.
_MAX_TIMESTAMP = 2**33
_Number = Annotated[int, msgspec.Meta(ge=0, lt=_MAX_TIMESTAMP)]


class AccessClaims(
    msgspec.Struct, frozen=True, omit_defaults=True, tag_field="v", tag=_PAYLOAD_VERSION
):
    """What an access token says, after its signature has been checked.

    The class is also the payload's schema: each field says the short key it has
    on the wire (it goes on every request) and the type it must have. Decoding
    validates every field in one pass, so a payload from an older release, or
    one that is merely well signed, fails as a 401, never as a 500. The ``v`` tag
    names the payload version; a token of another version does not decode.
    """

    token_id: str = msgspec.field(name="jti")
    kind: TokenKind = msgspec.field(name="knd")
    subject: str = msgspec.field(name="sub")
    client_id: str = msgspec.field(name="cid")
    issued_at: _Number = msgspec.field(name="iat")
    expires_at: _Number = msgspec.field(name="exp")
    roles: frozenset[str] = msgspec.field(default=frozenset(), name="rol")
    scopes: frozenset[str] = msgspec.field(default=frozenset(), name="scp")
    teams: frozenset[str] = msgspec.field(default=frozenset(), name="tms")
    team: str | None = msgspec.field(default=None, name="tm")
    #: The user's credential epoch when the token was issued (``None`` for clients).
    epoch: _Number | None = msgspec.field(default=None, name="ep")
    #: The refresh family the token was issued from (``None`` for client tokens).
    family_id: str | None = msgspec.field(default=None, name="fam")

    def to_payload(self) -> dict[str, Any]:
        """Return the payload that is signed, as plain JSON values (sets as sorted lists)."""
        payload: dict[str, Any] = msgspec.to_builtins(self, order="sorted")
        return payload


# Sorted keys and sets: the same claims always give the same token.
_ENCODER = msgspec.json.Encoder(order="sorted")
_DECODER = msgspec.json.Decoder(AccessClaims)


class AccessTokenCodec:
    """Sign and verify access tokens with a list of keys, newest first.

    >>> codec = AccessTokenCodec(["k" * 32])
    >>> claims = AccessClaims("t1", "user", "alice", "app1", 0, 2**31)
    >>> codec.decode(codec.encode(claims)) == claims
    True
    """

    __slots__ = ("_head", "_macs")

    def __init__(self, secret_keys: Iterable[str], *, prefix: str = ACCESS_PREFIX) -> None:
        keys = list(secret_keys)
        if not keys:
            raise ValueError(
                "issuing access tokens needs a signing key: set AUTHMW_SECRET_KEY "
                "or run `authmw init`"
            )
        if any(len(key) < MIN_SECRET_KEY_LENGTH for key in keys):
            raise ValueError(f"each signing key needs at least {MIN_SECRET_KEY_LENGTH} characters")
        self._head = f"{_keys.check_prefix(prefix)}_"
        # The format is itsdangerous's Signer: base64url(payload) "." base64url(mac),
        # the mac an HMAC-SHA256 under the key itsdangerous derives from each secret
        # and the salt, so its tools read our tokens (a test holds us to that). The
        # HMAC itself is computed here: unsign() built objects and re-encoded values
        # per call, a third of the cold path. Each key's HMAC is set up once and
        # copied per token, which skips OpenSSL's per-call key schedule.
        derive = Signer(keys[0], salt=_SALT, digest_method=hashlib.sha256).derive_key
        # Newest first: tokens are signed with the first.
        self._macs = tuple(hmac.new(derive(key), digestmod=hashlib.sha256) for key in keys)

    def owns(self, value: str) -> bool:
        """Whether ``value`` has the access-token prefix (says nothing about validity)."""
        return value.startswith(self._head)

    def encode(self, claims: AccessClaims) -> str:
        """Return the signed token for ``claims``."""
        return self._seal(claims)

    def _seal(self, payload: object) -> str:
        body = base64_encode(_ENCODER.encode(payload))
        mac = base64_encode(self._mac(self._macs[0], body))
        return f"{self._head}{body.decode('ascii')}.{mac.decode('ascii')}"

    def decode(self, value: str) -> AccessClaims:
        """Check the signature and return the claims; :class:`InvalidToken` otherwise.

        Expiry is not checked here: the caller holds the clock.
        """
        if not value.startswith(self._head):
            raise InvalidToken()
        try:
            body, dot, mac = value[len(self._head) :].encode("ascii").rpartition(b".")
            if dot and self._signed(body, _b64decode(mac)):
                return _DECODER.decode(_b64decode(body))
        except (ValueError, msgspec.DecodeError):  # binascii.Error and UnicodeError included
            pass
        raise InvalidToken()

    def _signed(self, body: bytes, mac: bytes) -> bool:
        # Every key is tried, so the time taken does not say which one matched.
        valid = False
        for keyed in self._macs:
            valid |= hmac.compare_digest(mac, self._mac(keyed, body))
        return valid

    @staticmethod
    def _mac(keyed: hmac.HMAC, body: bytes) -> bytes:
        mac = keyed.copy()
        mac.update(body)
        return mac.digest()


# base64url to standard base64. "+", "/" and "=" map to characters that strict
# decoding refuses, so each token has exactly one spelling: unpadded base64url.
_FROM_URLSAFE = bytes.maketrans(b"-_+/=", b"+/-_*")


def _b64decode(data: bytes) -> bytes:
    """Decode unpadded base64url strictly: one spelling per value, anything else an error."""
    standard = data.translate(_FROM_URLSAFE)
    decoded = binascii.a2b_base64(standard + b"=" * (-len(data) % 4), strict_mode=True)
    # Strict mode still ignores the unused low bits of the last character, so a
    # MAC would have four spellings: only the one encoding gives back is accepted.
    if binascii.b2a_base64(decoded, newline=False).rstrip(b"=") != standard:
        raise binascii.Error("not the canonical encoding")
    return decoded


# -- revocations ----------------------------------------------------------------------


class RevocationList:
    """The revoked access tokens and refresh families this process knows of.

    Entries are dropped once the tokens they name would have expired anyway, so
    the list holds at most ``access_token_ttl`` worth of revocations. ``synced_at``
    (monotonic) says when it last caught up with the store; the token flow asks
    the store again once it is older than the staleness bound.
    """

    def __init__(self) -> None:
        self._revoked: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self.synced_at = float("-inf")
        #: Wall-clock time up to which the store's revocations have been read.
        self.read_until: datetime | None = None

    def __len__(self) -> int:
        return len(self._revoked)

    def add(self, kind: str, ident: str, expires_at: datetime) -> None:
        """Remember a revocation until ``expires_at``."""
        with self._lock:
            self._revoked[(kind, ident)] = expires_at.timestamp()

    def apply(
        self, rows: Iterable[Revocation], *, now: float, read_until: datetime
    ) -> list[Revocation]:
        """Merge revocations read from the store and prune expired entries.

        Returns the rows that were new to this process (reads overlap, so most
        rows of a sync are usually known already).
        """
        wall = time.time()
        new = []
        with self._lock:
            revoked = self._revoked
            for row in rows:
                key = (row.kind, row.id)
                if key not in revoked:
                    new.append(row)
                revoked[key] = row.expires_at.timestamp()
            for key in [k for k, expiry in revoked.items() if expiry <= wall]:
                del revoked[key]
            self.synced_at = now
            self.read_until = read_until
        return new

    def is_revoked(self, claims: AccessClaims) -> bool:
        """Whether the token, or the refresh family it came from, was revoked."""
        return _names_revoked(self._revoked, claims)


def _names_revoked(revoked: Container[tuple[str, str]], claims: AccessClaims) -> bool:
    """Whether ``revoked`` (``(kind, id)`` pairs) names the token or its refresh family."""
    if ("token", claims.token_id) in revoked:
        return True
    return claims.family_id is not None and ("family", claims.family_id) in revoked


# -- issuing ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    """A successful token response (RFC 6749 section 5.1). Secrets never in ``repr``."""

    access_token: str = field(repr=False)
    expires_in: int
    scopes: frozenset[str]
    refresh_token: str | None = field(default=None, repr=False)
    token_id: str = ""
    family_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the response body."""
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": " ".join(sorted(self.scopes)),
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body


def _new_id() -> str:
    return secrets.token_urlsafe(12)


class Tokens:
    """Issue, refresh, revoke, introspect and verify tokens. Reached as ``authenticator.tokens``."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator
        self._codec: AccessTokenCodec | None = None
        self.revocations = RevocationList()
        # Users and clients behind tokens, as read at monotonic time t: name -> (t, record).
        self._users: dict[str, tuple[float, User | None]] = {}
        self._clients: dict[str, tuple[float, Client | None]] = {}
        # Counts forget() calls: a record read while one ran may predate the change
        # that caused it, and is used for its request but not remembered.
        self._forgotten = 0
        self._memo_lock = threading.Lock()

    @property
    def codec(self) -> AccessTokenCodec:
        """The signer (built on first use, so an app without tokens needs no key)."""
        if self._codec is None:
            settings = self._auth.settings
            self._codec = AccessTokenCodec(settings.secret_keys, prefix=settings.token_prefix)
        return self._codec

    def owns(self, value: str) -> bool:
        """Whether ``value`` looks like one of our access tokens (prefix only)."""
        return value.startswith(self._auth.settings.token_prefix + "_")

    def _decode(self, value: str) -> AccessClaims:
        """:meth:`AccessTokenCodec.decode`; without a signing key, no token is ours.

        An app of API keys alone needs no key, and a client sending something
        shaped like a token must get the 401 any invalid token gets, not the
        configuration error that issuing one would be.
        """
        if not self._auth.settings.secret_keys:
            raise InvalidToken()
        return self.codec.decode(value)

    # -- issuing -----------------------------------------------------------------------

    def _access_token(
        self,
        *,
        kind: TokenKind,
        subject: str,
        client: Client,
        scopes: frozenset[str],
        roles: frozenset[str],
        teams: frozenset[str],
        team: str | None,
        epoch: int | None,
        family_id: str | None,
        now: int,
    ) -> tuple[str, AccessClaims]:
        claims = AccessClaims(
            token_id=_new_id(),
            kind=kind,
            subject=subject,
            client_id=client.id,
            issued_at=now,
            expires_at=now + int(self._auth.settings.access_token_ttl),
            roles=roles,
            scopes=scopes,
            teams=teams,
            team=team,
            epoch=epoch,
            family_id=family_id,
        )
        return self.codec.encode(claims), claims

    def _user_access_token(
        self, user: User, client: Client, scopes: frozenset[str], kind: TokenKind, family: str
    ) -> tuple[str, AccessClaims]:
        policy = self._auth.policy
        return self._access_token(
            kind=kind,
            subject=user.username,
            client=client,
            scopes=scopes & policy.scopes_for(user.roles),
            roles=policy.effective_roles(user.roles),
            teams=user.teams,
            team=None,
            epoch=user.credential_epoch,
            family_id=family,
            now=int(time.time()),
        )

    def issue_for_user(
        self,
        user: User,
        client: Client,
        scopes: frozenset[str],
        *,
        kind: TokenKind = "user",
        family_id: str | None = None,
    ) -> IssuedTokens:
        """Issue an access token and the first refresh token of a new family (a login).

        ``scopes`` must already be checked against the user's roles and the client.
        ``family_id`` names the family in advance (a code exchange records it first).
        """
        settings = self._auth.settings
        now = datetime.now(UTC)
        value, parsed = _keys.generate(settings.refresh_prefix)
        record = RefreshToken(
            id=parsed.key_id,
            family_id=family_id or parsed.key_id,
            client_id=client.id,
            subject=user.username,
            kind=kind,
            scopes=scopes,
            credential_epoch=user.credential_epoch,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.refresh_token_ttl),
            idle_expires_at=now + timedelta(seconds=settings.refresh_idle_ttl),
            secret_hash=_keys.hash_secret(parsed),
        )
        self._auth.store.add_refresh_token(record)
        access, claims = self._user_access_token(user, client, scopes, kind, record.family_id)
        return IssuedTokens(
            access_token=access,
            expires_in=claims.expires_at - claims.issued_at,
            scopes=claims.scopes,
            refresh_token=value,
            token_id=claims.token_id,
            family_id=record.family_id,
        )

    def issue_for_client(self, client: Client, scopes: frozenset[str]) -> IssuedTokens:
        """Issue a client-credentials access token (no refresh token: RFC 6749 section 4.4.3)."""
        policy = self._auth.policy
        team = client.team
        access, claims = self._access_token(
            kind="client",
            subject=client.id,
            client=client,
            scopes=scopes,
            roles=policy.effective_roles(client.roles),
            teams=frozenset() if team is None else frozenset({team}),
            team=team,
            epoch=None,
            family_id=None,
            now=int(time.time()),
        )
        return IssuedTokens(
            access_token=access,
            expires_in=claims.expires_at - claims.issued_at,
            scopes=claims.scopes,
            token_id=claims.token_id,
        )

    # -- refresh -------------------------------------------------------------------------

    def _find_refresh(self, value: str) -> RefreshToken | None:
        """Return the stored refresh token ``value`` names, if its secret matches."""
        store = self._auth.store
        return _keys.find_stored(value, self._auth.settings.refresh_prefix, store.get_refresh_token)

    def refresh(self, value: str, client: Client, requested: frozenset[str] | None) -> IssuedTokens:
        """Rotate a refresh token: its successor and a new access token, or a :class:`GrantError`.

        A refresh may narrow the scope of the access token, never widen it; the new
        refresh token keeps the family's scope (RFC 6749 section 6).
        """
        record = self._find_refresh(value)
        invalid = GrantError("invalid_grant", "The refresh token is invalid, expired or revoked.")
        # A token of another client is answered exactly like an unknown one.
        if record is None or record.client_id != client.id or record.revoked_at is not None:
            raise invalid
        if client.predates_reenable(record.created_at):
            raise invalid  # issued before the client was last re-enabled: dead for good
        now = datetime.now(UTC)
        if record.used_at is not None:
            self._replayed(record, now)
            raise invalid
        if record.expires_at <= now or record.idle_expires_at <= now:
            raise invalid
        user = self._auth.store.get_user(record.subject)
        if user is None or user.disabled or user.credential_epoch != record.credential_epoch:
            raise invalid
        if requested is not None and not requested <= record.scopes:
            raise GrantError("invalid_scope", "The requested scope exceeds the original grant.")
        settings = self._auth.settings
        successor_value, parsed = _keys.generate(settings.refresh_prefix)
        successor = RefreshToken(
            id=parsed.key_id,
            family_id=record.family_id,
            client_id=record.client_id,
            subject=record.subject,
            kind=record.kind,
            scopes=record.scopes,
            credential_epoch=record.credential_epoch,
            created_at=now,
            expires_at=record.expires_at,
            idle_expires_at=min(
                record.expires_at, now + timedelta(seconds=settings.refresh_idle_ttl)
            ),
            secret_hash=_keys.hash_secret(parsed),
        )
        if not self._auth.store.rotate_refresh_token(record.id, successor, now):
            # Another request used this token between our read and our write: the
            # same token presented twice, which is what a replay looks like.
            self._replayed(record, now)
            raise invalid
        kind: TokenKind = "delegated" if record.kind == "delegated" else "user"
        scopes = record.scopes if requested is None else requested
        access, claims = self._user_access_token(user, client, scopes, kind, record.family_id)
        self._auth.audit.emit(
            "token.refreshed",
            user=user.username,
            client_id=client.id,
            family_id=record.family_id,
            token_id=claims.token_id,
        )
        return IssuedTokens(
            access_token=access,
            expires_in=claims.expires_at - claims.issued_at,
            scopes=claims.scopes,
            refresh_token=successor_value,
            token_id=claims.token_id,
            family_id=record.family_id,
        )

    def _replayed(self, record: RefreshToken, now: datetime) -> None:
        self._auth.audit.emit(
            "refresh.reused",
            user=record.subject,
            client_id=record.client_id,
            family_id=record.family_id,
        )
        self.revoke_family(record.family_id, record.subject, now)

    # -- revocation ----------------------------------------------------------------------

    def revoke_family(self, family_id: str, subject: str, now: datetime | None = None) -> None:
        """Revoke a refresh family and every access token issued from it."""
        now = now or datetime.now(UTC)
        store = self._auth.store
        # Access tokens of the family live at most access_token_ttl from now.
        expires = now + timedelta(seconds=self._auth.settings.access_token_ttl + 60)
        # The revocation is written before the refresh tokens are marked: a code
        # exchange racing a replay stores its refresh token, then looks for this
        # row (Validator._revoke_if_replayed), so one of the two always sees the other.
        store.add_revocation(Revocation(family_id, "family", subject, expires, now))
        store.revoke_refresh_family(family_id, now)
        self.revocations.add("family", family_id, expires)
        self._auth.broadcast(Invalidation("family", family_id, expires.timestamp()))
        self._auth.invalidate(subject=subject)

    def revoke_consent(self, subject: str, client_id: str) -> bool:
        """Withdraw a user's consent to an app and end the app's tokens for that user.

        Returns ``False`` if there was no consent. Refresh families of the app for
        the user are revoked whether or not a consent remained.
        """
        now = datetime.now(UTC)
        store = self._auth.store
        removed = store.delete_consent(subject, client_id)
        for family_id in store.revoke_refresh_tokens(subject=subject, client_id=client_id, at=now):
            self.revoke_family(family_id, subject, now)
        if removed:
            self._auth.audit.emit("consent.revoked", user=subject, client_id=client_id)
        return removed

    def revoke(self, value: str, client: Client) -> bool:
        """Revoke an access or refresh token of ``client`` (RFC 7009). ``True`` if one was.

        Unknown, malformed and foreign tokens are ignored: the endpoint answers
        200 either way, so it tells a caller nothing about other clients' tokens.
        Revoking a refresh token revokes its family, access tokens included.
        """
        now = datetime.now(UTC)
        if self.owns(value):
            try:
                claims = self._decode(value)
            except InvalidToken:
                return False
            if claims.client_id != client.id or claims.expires_at <= now.timestamp():
                return False
            expires = datetime.fromtimestamp(claims.expires_at, UTC)
            self._auth.store.add_revocation(
                Revocation(claims.token_id, "token", claims.subject, expires, now)
            )
            self.revocations.add("token", claims.token_id, expires)
            self._auth.broadcast(Invalidation("token", claims.token_id, claims.expires_at))
            self._auth.invalidate(credential_id=claims.token_id)
            self._auth.audit.emit(
                "token.revoked", token_id=claims.token_id, client_id=client.id, kind="access"
            )
            return True
        record = self._find_refresh(value)
        if record is None or record.client_id != client.id:
            return False
        self.revoke_family(record.family_id, record.subject, now)
        self._auth.audit.emit(
            "token.revoked", family_id=record.family_id, client_id=client.id, kind="refresh"
        )
        return True

    # -- introspection -------------------------------------------------------------------

    def introspect(self, value: str) -> dict[str, Any]:
        """RFC 7662 response for ``value``: ``{"active": false}`` for anything not live.

        Authoritative: it reads the store (revocations, the user, the refresh
        token) instead of trusting this process's caches.
        """
        inactive: dict[str, Any] = {"active": False}
        if self.owns(value):
            try:
                principal, claims = self._check_access_now(value)
            except (InvalidToken, ServiceUnavailable):
                return inactive
            return {
                "active": True,
                "token_type": "Bearer",
                "scope": " ".join(sorted(principal.scopes)),
                "client_id": claims.client_id,
                "sub": claims.subject,
                "username": claims.subject if claims.kind != "client" else None,
                "exp": claims.expires_at,
                "iat": claims.issued_at,
                "jti": claims.token_id,
                "authmw_kind": claims.kind,
            }
        record = self._find_refresh(value)
        now = datetime.now(UTC)
        if (
            record is None
            or record.revoked_at is not None
            or record.used_at is not None
            or min(record.expires_at, record.idle_expires_at) <= now
        ):
            return inactive
        if not _still_issued_to(self._auth.store.get_client(record.client_id), record.created_at):
            return inactive
        user = self._auth.store.get_user(record.subject)
        if user is None or user.disabled or user.credential_epoch != record.credential_epoch:
            return inactive
        return {
            "active": True,
            "token_type": "refresh_token",
            "scope": " ".join(sorted(record.scopes)),
            "client_id": record.client_id,
            "sub": record.subject,
            "username": record.subject,
            "exp": int(min(record.expires_at, record.idle_expires_at).timestamp()),
            "iat": int(record.created_at.timestamp()),
        }

    def _check_access_now(self, value: str) -> tuple[Principal, AccessClaims]:
        claims = self._decode(value)
        now = time.time()
        if claims.expires_at <= now:
            raise InvalidToken()
        store = self._auth.store
        since = datetime.fromtimestamp(claims.issued_at, UTC)
        if _names_revoked({(r.kind, r.id) for r in store.revocations_since(since)}, claims):
            raise InvalidToken()
        client = store.get_client(claims.client_id)
        if claims.kind == "client":
            principal = self._client_principal(claims, client)
        else:
            _check_issued_to(client, claims.issued_at)
            principal = self._user_principal(claims, store.get_user(claims.subject))
        return principal, claims

    # -- verification (the authenticator's cold path for access tokens) -----------------

    def _client_principal(self, claims: AccessClaims, client: Client | None) -> Principal:
        return self._auth.policy.client_principal(
            _check_issued_to(client, claims.issued_at),
            scopes=claims.scopes,
            credential_id=claims.token_id,
            expires_at=datetime.fromtimestamp(claims.expires_at, UTC),
        )

    def _user_principal(self, claims: AccessClaims, user: User | None) -> Principal:
        if user is None or user.disabled or user.credential_epoch != claims.epoch:
            raise InvalidToken()
        kind: Literal["user", "delegated"] = "delegated" if claims.kind == "delegated" else "user"
        # Built from the user's *current* roles: the token's scopes can only shrink.
        return self._auth.policy.user_principal(
            user,
            kind=kind,
            scopes=claims.scopes,
            credential_id=claims.token_id,
            client_id=claims.client_id,
            expires_at=datetime.fromtimestamp(claims.expires_at, UTC),
        )

    def verify(self, value: str, now: float) -> Flow[tuple[Principal, float]]:
        """Verify an access token; return its principal and how long it may be cached.

        A generator in the authenticator's style: it yields the few store calls it
        needs (at most one revocation sync and one user or client read per
        ``cache_ttl``) and raises :class:`InvalidToken` or
        :class:`ServiceUnavailable`.
        """
        claims = self._decode(value)
        wall = time.time()
        if claims.expires_at <= wall:
            raise InvalidToken()
        ttl = self._auth.settings.cache_ttl
        revocations = self.revocations
        if now - revocations.synced_at >= ttl:
            yield from self._sync_revocations(now)
        if revocations.is_revoked(claims):
            raise InvalidToken()
        if claims.kind == "client":
            fetched, client = yield from self._fresh(
                self._clients, claims.client_id, now, self._auth.store.get_client
            )
            principal = self._client_principal(claims, client)
        else:
            # A user's token also ends with the app it was issued to.
            fetched, client = yield from self._fresh(
                self._clients, claims.client_id, now, self._auth.store.get_client
            )
            _check_issued_to(client, claims.issued_at)
            fetched_user, user = yield from self._fresh(
                self._users, claims.subject, now, self._auth.store.get_user
            )
            fetched = min(fetched, fetched_user)
            principal = self._user_principal(claims, user)
        # Cache no longer than any input stays fresh: the token's own expiry, the
        # record read above and the revocation list all bound it.
        lifetime = min(
            claims.expires_at - wall,
            fetched + ttl - now,
            revocations.synced_at + ttl - now,
        )
        return principal, lifetime

    def _fresh(
        self,
        memo: dict[str, tuple[float, T | None]],
        name: str,
        now: float,
        read: Callable[[str], T | None],
    ) -> Flow[tuple[float, T | None]]:
        entry = memo.get(name)
        if entry is not None and now - entry[0] < self._auth.settings.cache_ttl:
            return entry
        forgotten = self._forgotten
        record = yield from _ask(lambda: read(name))
        with self._memo_lock:
            # A user disabled (or changed) while this read ran: the record may be
            # the one from before, and remembered it would outlive the change by up
            # to cache_ttl in the very process that made it.
            if forgotten == self._forgotten:
                if len(memo) >= self._auth.settings.cache_size:
                    memo.clear()  # bounded; a miss only costs one read
                memo[name] = (now, record)
        return now, record

    def _sync_revocations(self, now: float) -> Flow[None]:
        revocations = self.revocations
        wall = datetime.now(UTC)
        ttl = self._auth.settings.access_token_ttl
        if revocations.read_until is None:
            # No access token lives longer than access_token_ttl, so older
            # revocations name tokens that could not verify anyway.
            since = wall - timedelta(seconds=ttl + 60)
        else:
            # Read again a margin back: a revocation committed by another process
            # with a slightly earlier timestamp is not missed.
            since = revocations.read_until - timedelta(seconds=60)
        rows = yield from _ask(lambda: self._auth.store.revocations_since(since))
        # Only revocations this process has not seen drop cache entries: entries
        # cached after an earlier sync were verified against that revocation already.
        for row in revocations.apply(rows, now=now, read_until=wall):
            if row.kind == "token":
                self._auth.invalidate(credential_id=row.id)
            elif row.subject is not None:
                self._auth.invalidate(subject=row.subject)

    def forget(self, subject: str | None = None) -> None:
        """Drop remembered users or clients (``None``: all); the next token re-reads them."""
        with self._memo_lock:
            self._forgotten += 1
            if subject is None:
                self._users.clear()
                self._clients.clear()
            else:
                self._users.pop(subject, None)
                self._clients.pop(subject, None)


def _still_issued_to(client: Client | None, issued_at: datetime | float) -> TypeGuard[Client]:
    """Whether what was issued to ``client`` at ``issued_at`` may still be used.

    Not if the client is gone, disabled, or was disabled after ``issued_at`` (and
    has been enabled again since).
    """
    return not (client is None or client.disabled or client.predates_reenable(issued_at))


def _check_issued_to(client: Client | None, issued_at: float) -> Client:
    """Return the client or app a token was issued to, or refuse the token."""
    if _still_issued_to(client, issued_at):
        return client
    raise InvalidToken()


def _ask(call: Callable[[], T]) -> Flow[T]:
    """Yield one store call; a failing store fails closed (503), never lets a request in."""
    try:
        result: T = yield call
    except Exception:
        log.error("authmw: credential store unavailable", exc_info=True)
        raise ServiceUnavailable() from None
    return result
