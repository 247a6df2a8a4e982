"""Where credentials live: the :class:`Store` protocol and the records it returns.

The core never talks SQL. It asks a ``Store`` for one record by its id and
decides everything else itself, so a store is easy to write and easy to test.
:class:`~authmw.store.sql.SQLStore` is the implementation shipped (SQLite
embedded by default, PostgreSQL by URL).

Every method here is blocking. The ASGI driver runs them in a worker thread so
the event loop never waits on the database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = [
    "ApiKey",
    "AuthorizationCode",
    "Client",
    "Conflict",
    "Consent",
    "KeyMatch",
    "NotFound",
    "RefreshToken",
    "Revocation",
    "Store",
    "StoreError",
    "User",
]


class StoreError(Exception):
    """Base class for errors the store reports on purpose."""


class NotFound(StoreError):
    """The record named does not exist."""


class Conflict(StoreError):
    """A record with that unique name already exists."""


@dataclass(frozen=True, slots=True)
class User:
    """A user account: the owner of personal keys and, later, of tokens.

    ``credential_epoch`` grows whenever the user's password or roles change or
    the user is disabled; credentials issued under an older epoch stop working.
    """

    id: int
    username: str
    roles: frozenset[str]
    teams: frozenset[str]
    disabled: bool
    credential_epoch: int
    created_at: datetime
    password_hash: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key. The secret itself is never stored, only its hash.

    ``scopes is None`` means an unrestricted key; a set of scopes makes it restricted.
    Exactly one of ``owner`` (a username: a personal key) and ``team`` (a team
    service account) is set.
    """

    id: str
    name: str
    owner: str | None
    team: str | None
    scopes: frozenset[str] | None
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    replaced_by: str | None = None
    secret_hash: str = field(default="", repr=False)

    def status(self, now: datetime) -> str:
        """Return ``active``, ``expired``, ``revoked`` or ``rotating`` (in its grace period)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        if self.replaced_by is not None:
            return "rotating"
        return "active"


@dataclass(frozen=True, slots=True)
class KeyMatch:
    """The result of the one lookup verification makes: a key and, for a personal key, its owner."""

    key: ApiKey
    owner: User | None


@dataclass(frozen=True, slots=True)
class Client:
    """A registered OAuth2 client.

    Kind ``"client"`` is machine-to-machine (the client credentials grant) and
    bound to a ``team``; kind ``"app"`` is a third-party or first-party
    application acting for users (authorization code with PKCE; the password
    grant only if ``first_party``).

    ``id`` is the public ``client_id``: 12 base62 characters, like a key id. For
    a client, ``scopes`` are the scopes granted and ``roles`` the roles its tokens
    carry (none by default); for an app, ``scopes`` are the scopes it may ask for
    and ``roles`` is empty. ``redirect_uris`` (apps only) are exact strings, in
    registration order. A ``public`` app has no secret. During a secret rotation
    the previous secret's hash is kept until ``previous_secret_expires_at``.
    ``reenabled_at`` is when it was last enabled again after being disabled:
    what was issued to it before then (tokens, refresh tokens, codes) is dead.
    """

    id: str
    name: str
    kind: str
    team: str | None
    scopes: frozenset[str]
    roles: frozenset[str]
    redirect_uris: tuple[str, ...]
    public: bool
    first_party: bool
    created_at: datetime
    disabled: bool = False
    secret_hash: str | None = field(default=None, repr=False)
    previous_secret_hash: str | None = field(default=None, repr=False)
    previous_secret_expires_at: datetime | None = None
    reenabled_at: datetime | None = None

    def predates_reenable(self, issued_at: datetime | float) -> bool:
        """Whether ``issued_at`` comes before the client was last enabled again after a disable.

        Whatever was issued before then stays dead: what it held when it was
        disabled, and whatever a request already under way when it was disabled
        went on to issue. ``issued_at`` is a time or epoch seconds: an access
        token's ``iat``, a whole second rounded down, so a token issued in the
        very second of the re-enable counts as before it. That errs towards
        refusing: the client asks for another token.
        """
        if self.reenabled_at is None:
            return False
        if isinstance(issued_at, datetime):
            return issued_at < self.reenabled_at
        return issued_at < self.reenabled_at.timestamp()


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """One refresh token of a rotation family. Rotation marks it used and adds its successor.

    ``id`` is the public id part of the token (the lookup key, 12 base62
    characters); ``family_id`` is the id of the family's first token (the
    login). ``kind`` is ``"user"`` or ``"delegated"``. ``expires_at`` is absolute
    (family start plus the absolute lifetime, inherited by every successor);
    ``idle_expires_at`` is ``created_at`` plus the idle lifetime. ``used_at`` is
    set when the token is rotated (consumed).
    """

    id: str
    family_id: str
    client_id: str
    subject: str
    kind: str
    scopes: frozenset[str]
    credential_epoch: int
    created_at: datetime
    expires_at: datetime
    idle_expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None
    secret_hash: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class Revocation:
    """A revoked access token or refresh family, kept until ``expires_at``.

    Kind ``"token"`` names an access token by its ``jti``; kind ``"family"`` a
    refresh family by its family id. After ``expires_at`` the token could not
    verify anyway, so the row may be purged. ``subject`` (whose credential it
    was) lets other processes drop that subject's cache entries.
    """

    id: str
    kind: str
    subject: str | None
    expires_at: datetime
    revoked_at: datetime


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    """A one-time authorization code (RFC 6749 section 4.1.2), stored as a hash.

    ``id`` is the public id part of the code (the lookup key, 12 base62
    characters). ``redirect_uri`` is kept exactly as sent in the authorization
    request, because the token request must repeat it character for character
    (RFC 6749 section 4.1.3). ``code_challenge`` is the PKCE S256 challenge
    (RFC 7636 section 4.2). ``credential_epoch`` is the user's epoch when consent
    was given, so a password or role change in between voids the code.
    ``used_at`` is set when the code is exchanged; ``family_id`` names the
    refresh family issued then, so a replayed code can revoke what it produced
    (RFC 6749 section 4.1.2: "SHOULD revoke ... all tokens previously issued").
    """

    id: str
    client_id: str
    subject: str
    redirect_uri: str
    scopes: frozenset[str]
    code_challenge: str
    created_at: datetime
    expires_at: datetime
    credential_epoch: int
    used_at: datetime | None = None
    #: The refresh family issued when the code was exchanged (to revoke it on replay).
    family_id: str | None = None
    secret_hash: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class Consent:
    """What a user allowed an app: remembered so the user is not asked twice.

    ``subject`` is the username, ``client_id`` the app's id. ``scopes`` only
    grows (a later consent adds to it); ``created_at`` is the first consent,
    ``updated_at`` the latest.
    """

    subject: str
    client_id: str
    scopes: frozenset[str]
    created_at: datetime
    updated_at: datetime


@runtime_checkable
class Store(Protocol):
    """What authmw needs from a credential store.

    Implementations raise :class:`NotFound` and :class:`Conflict` where documented
    and let any other failure (a lost connection, a timeout) propagate: the core
    turns those into a fail-closed 503.
    """

    def create_schema(self) -> None:
        """Create the tables if they do not exist."""

    # -- users -------------------------------------------------------------------

    def add_user(
        self,
        username: str,
        *,
        password_hash: str | None,
        roles: frozenset[str],
        teams: frozenset[str],
    ) -> User:
        """Insert a user; :class:`Conflict` if the username is taken."""
        ...

    def get_user(self, username: str) -> User | None:
        """Return the user by name, or ``None``."""
        ...

    def list_users(self) -> Sequence[User]:
        """Return every user, ordered by name."""
        ...

    def update_user(
        self,
        username: str,
        *,
        password_hash: str | None = None,
        roles: frozenset[str] | None = None,
        teams: frozenset[str] | None = None,
        disabled: bool | None = None,
        bump_epoch: bool = False,
    ) -> User:
        """Change the given fields (``None`` leaves one as is); :class:`NotFound` if absent."""
        ...

    # -- API keys ----------------------------------------------------------------

    def add_key(self, key: ApiKey) -> ApiKey:
        """Insert a key record (its id is generated by the caller)."""
        ...

    def find_key(self, key_id: str) -> KeyMatch | None:
        """Return the key with its owner in one indexed lookup: the cold path of verification."""
        ...

    def get_key(self, key_id: str) -> ApiKey | None:
        """Return the key record, or ``None``."""
        ...

    def list_keys(self, *, owner: str | None = None, team: str | None = None) -> Sequence[ApiKey]:
        """Return keys, optionally only one owner's or one team's, newest first."""
        ...

    def revoke_key(self, key_id: str, at: datetime) -> ApiKey:
        """Mark the key revoked (final); :class:`NotFound` if absent."""
        ...

    def rotate_key(self, key_id: str, successor: ApiKey, old_expires_at: datetime) -> ApiKey:
        """Atomically add ``successor`` and let the old key expire at ``old_expires_at``."""
        ...

    def record_key_use(self, last_used: Mapping[str, datetime]) -> None:
        """Store ``last_used_at`` for many keys at once (called off the request path)."""
        ...

    # -- OAuth2 clients and apps ----------------------------------------------------

    def add_client(self, client: Client) -> Client:
        """Insert a client or app; :class:`Conflict` if the id exists."""
        ...

    def get_client(self, client_id: str) -> Client | None:
        """Return the client by id (one primary-key lookup), or ``None``."""
        ...

    def list_clients(self, *, kind: str | None = None) -> Sequence[Client]:
        """Return clients (optionally only one kind), ordered by name, then id."""
        ...

    def update_client(
        self,
        client_id: str,
        *,
        disabled: bool | None = None,
        secret_hash: str | None = None,
        previous_secret_hash: str | None = None,
        previous_secret_expires_at: datetime | None = None,
        clear_previous: bool = False,
    ) -> Client:
        """Change the given fields (``None`` leaves one as is); :class:`NotFound` if absent.

        ``clear_previous`` forgets the previous secret (hash and expiry).
        """
        ...

    def reenable_client(self, client_id: str, at: datetime) -> Client:
        """Enable a disabled client, recording ``at`` as its ``reenabled_at``.

        One conditional update: a client that is not disabled is returned
        unchanged, so of two overlapping calls only one draws the line.
        :class:`NotFound` if absent.
        """
        ...

    # -- refresh tokens ----------------------------------------------------------------

    def add_refresh_token(self, token: RefreshToken) -> RefreshToken:
        """Insert a refresh token; :class:`Conflict` if the id exists."""
        ...

    def get_refresh_token(self, token_id: str) -> RefreshToken | None:
        """Return the refresh token by id (one primary-key lookup), or ``None``."""
        ...

    def rotate_refresh_token(self, token_id: str, successor: RefreshToken, at: datetime) -> bool:
        """Mark the token used and insert ``successor``, in one transaction.

        Only a token neither used nor revoked is rotated; otherwise nothing is
        written and the answer is ``False``. Of any number of concurrent
        rotations of one token (threads or processes), exactly one returns ``True``.
        """
        ...

    def revoke_refresh_family(self, family_id: str, at: datetime) -> int:
        """Revoke every not yet revoked token of the family; return how many."""
        ...

    def revoke_refresh_tokens(
        self, *, subject: str, client_id: str | None = None, at: datetime
    ) -> list[str]:
        """Revoke a subject's live refresh tokens (optionally one client's).

        Returns the distinct family ids touched.
        """
        ...

    # -- authorization codes -------------------------------------------------------------

    def add_code(self, code: AuthorizationCode) -> AuthorizationCode:
        """Insert an authorization code; :class:`Conflict` if the id exists."""
        ...

    def get_code(self, code_id: str) -> AuthorizationCode | None:
        """Return the code by id (one primary-key lookup), or ``None``."""
        ...

    def consume_code(self, code_id: str, at: datetime) -> bool:
        """Mark the code used at ``at`` if it is not used yet; ``True`` iff this call did.

        Of any number of concurrent calls for one code (threads or processes),
        exactly one returns ``True``. An unknown code answers ``False``.
        """
        ...

    def set_code_family(self, code_id: str, family_id: str) -> None:
        """Record the refresh family issued from the code; :class:`NotFound` if absent."""
        ...

    def purge_codes(self, before: datetime) -> int:
        """Delete codes that expired before ``before``; return how many."""
        ...

    # -- consents ----------------------------------------------------------------------

    def get_consent(self, subject: str, client_id: str) -> Consent | None:
        """Return what ``subject`` allowed the app (one primary-key lookup), or ``None``."""
        ...

    def save_consent(
        self, subject: str, client_id: str, scopes: frozenset[str], at: datetime
    ) -> Consent:
        """Remember a consent and return it as stored.

        A first consent is created at ``at``. An existing one keeps its
        ``created_at``, gets the union of its scopes and ``scopes``, and
        ``updated_at = at``. Concurrent saves neither fail nor lose scopes.
        """
        ...

    def list_consents(
        self, *, subject: str | None = None, client_id: str | None = None
    ) -> Sequence[Consent]:
        """Return consents (optionally one subject's or one app's), by subject, then client id."""
        ...

    def delete_consent(self, subject: str, client_id: str) -> bool:
        """Forget a consent; ``True`` if there was one."""
        ...

    # -- revocations -------------------------------------------------------------------

    def add_revocation(self, revocation: Revocation) -> None:
        """Record a revocation; recording the same kind and id again keeps the first."""
        ...

    def revocations_since(self, since: datetime) -> Sequence[Revocation]:
        """Return revocations made at or after ``since`` that outlive it, oldest first."""
        ...

    def purge_revocations(self, before: datetime) -> int:
        """Delete revocations that expired before ``before``; return how many."""
        ...

    def close(self) -> None:
        """Release connections."""
