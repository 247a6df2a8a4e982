"""API keys: format, generation, hashing, verification and lifecycle.

A key looks like ``amk_3kTq0XvB9cWz_Rb8...Yp2x1Q`` and reads as::

    <prefix> _ <key id: 12 chars> _ <secret: 32 chars><checksum: 6 chars>

* The **prefix** (configurable) makes a leaked key recognisable to a secret scanner.
* The **key id** is public: it is the primary key for the one lookup verification
  makes, and what ``authmw keys list`` shows. It reveals nothing about the secret.
* The **secret** is 32 characters of base62 from :mod:`secrets`: about 190 bits.
* The **checksum** (CRC-32 of everything before it) catches typos and truncated
  copies, and lets scanners tell a real key from look-alike noise, without a
  database round trip.

Only ``[A-Za-z0-9_]`` appears, so a key survives double-click selection, URLs,
shell quoting and environment variables unchanged.

The store keeps a SHA-256 of the key id and secret, tagged with a version. A fast
hash is right here and a password KDF would be wrong: the secret has 190 bits of
entropy, so there is nothing to brute-force, and verification must stay cheap
on every request (RFC 9700 and ASVS 5.0 V11.4 reserve slow KDFs for human
passwords).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol, TypeVar

from authmw.errors import InvalidToken
from authmw.store import ApiKey, Conflict, KeyMatch, NotFound

if TYPE_CHECKING:
    from authmw.authenticator import Authenticator

__all__ = [
    "DEFAULT_PREFIX",
    "DUMMY_HASH",
    "ApiKeys",
    "IssuedKey",
    "ParsedKey",
    "find_stored",
    "generate",
    "hash_secret",
    "parse",
    "verify",
]

DEFAULT_PREFIX = "amk"
_ALPHABET = string.ascii_letters + string.digits
ID_LENGTH = 12
SECRET_LENGTH = 32
CHECKSUM_LENGTH = 6
_PREFIX_RE = re.compile(r"[a-z][a-z0-9]{1,15}")
_BODY_RE = re.compile(
    rf"[A-Za-z0-9]{{{ID_LENGTH}}}_[A-Za-z0-9]{{{SECRET_LENGTH + CHECKSUM_LENGTH}}}"
)
_ID_RE = re.compile(rf"[A-Za-z0-9]{{{ID_LENGTH}}}")
_NAME_RE = re.compile(r"[^\x00-\x1f\x7f]{1,200}")
_TEAM_RE = re.compile(r"[A-Za-z0-9_.:-]{1,150}")
_HASH_VERSION = "v1"


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is 2-16 lower-case letters and digits, starting with a letter."""
    if _PREFIX_RE.fullmatch(prefix) is None:
        raise ValueError(
            "a key prefix is 2-16 lower-case letters or digits, starting with a letter"
        )
    return prefix


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _checksum(text: str) -> str:
    value = zlib.crc32(text.encode())
    out = []
    for _ in range(CHECKSUM_LENGTH):
        value, digit = divmod(value, 62)
        out.append(_ALPHABET[digit])
    return "".join(reversed(out))


@dataclass(frozen=True, slots=True)
class ParsedKey:
    """A key that passed the format and checksum checks (not yet verified)."""

    key_id: str
    secret: str

    def __repr__(self) -> str:
        return f"ParsedKey(key_id={self.key_id!r}, secret=<redacted>)"


def generate(prefix: str = DEFAULT_PREFIX, key_id: str | None = None) -> tuple[str, ParsedKey]:
    """Return a new key string and its parts.

    ``key_id`` keeps a given id (12 base62 characters) and draws only a new
    secret: an OAuth2 client's secret embeds its ``client_id`` and keeps it
    across rotations. By default the id is new too.
    """
    if key_id is None:
        key_id = _random(ID_LENGTH)
    elif _ID_RE.fullmatch(key_id) is None:
        raise ValueError(f"a key id is {ID_LENGTH} letters or digits")
    secret = _random(SECRET_LENGTH)
    head = f"{prefix}_{key_id}_{secret}"
    return head + _checksum(head), ParsedKey(key_id, secret)


def parse(value: str, prefix: str = DEFAULT_PREFIX) -> ParsedKey:
    """Check a key's format and checksum; raise :class:`~authmw.errors.InvalidToken` if wrong."""
    if not value.startswith(prefix) or value[len(prefix) : len(prefix) + 1] != "_":
        raise InvalidToken()
    body = value[len(prefix) + 1 :]
    if _BODY_RE.fullmatch(body) is None:
        raise InvalidToken()
    head, checksum = value[:-CHECKSUM_LENGTH], value[-CHECKSUM_LENGTH:]
    if not hmac.compare_digest(_checksum(head), checksum):
        raise InvalidToken()
    return ParsedKey(body[:ID_LENGTH], body[ID_LENGTH + 1 : -CHECKSUM_LENGTH])


def hash_secret(parsed: ParsedKey) -> str:
    """Return the versioned hash stored for a key (binds the secret to its id)."""
    digest = hashlib.sha256(f"{parsed.key_id}:{parsed.secret}".encode()).hexdigest()
    return f"{_HASH_VERSION}${digest}"


#: Compared against when a lookup finds no record, so that an unknown id costs the
#: same hash and comparison as a wrong secret (timing tells the two apart otherwise).
DUMMY_HASH = hash_secret(ParsedKey("0" * ID_LENGTH, "0" * SECRET_LENGTH))


class HasSecretHash(Protocol):
    """A stored record with the hash of its secret (a refresh token, a code...)."""

    @property
    def secret_hash(self) -> str:
        """The versioned hash of the secret."""
        ...


R = TypeVar("R", bound=HasSecretHash)


def find_stored(value: str, prefix: str, fetch: Callable[[str], R | None]) -> R | None:
    """Return the record ``value`` names if its secret matches; ``None`` otherwise.

    For every secret in this format: a malformed value is refused without a store
    hit; an unknown id is compared against :data:`DUMMY_HASH`, in constant time.
    """
    try:
        parsed = parse(value, prefix)
    except InvalidToken:
        return None
    record = fetch(parsed.key_id)
    expected = record.secret_hash if record is not None else DUMMY_HASH
    if not hmac.compare_digest(expected, hash_secret(parsed)) or record is None:
        return None
    return record


def verify(match: KeyMatch | None, parsed: ParsedKey, now: datetime) -> ApiKey | None:
    """Return the key if ``parsed`` is its secret and it is neither revoked nor expired.

    Unknown, wrong-secret, revoked and expired keys all return ``None``; the
    caller answers each with the same 401.
    """
    if match is None:
        return None
    key = match.key
    if not hmac.compare_digest(key.secret_hash, hash_secret(parsed)):
        return None
    if key.revoked_at is not None:
        return None
    if key.expires_at is not None and key.expires_at <= now:
        return None
    return key


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key just created: its record, and the key itself, shown this once only."""

    record: ApiKey
    key: str

    def __repr__(self) -> str:
        return f"IssuedKey(record={self.record!r}, key=<redacted>)"


class ApiKeys:
    """Create, list, revoke and rotate API keys.

    Reached as ``authenticator.keys``. Every change also drops the key from the
    authenticator's cache, so a revocation in this process takes effect on the
    very next request.
    """

    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator

    def _new(
        self,
        *,
        name: str,
        owner: str | None,
        team: str | None,
        scopes: frozenset[str] | None,
        expires_at: datetime | None,
        now: datetime,
    ) -> IssuedKey:
        value, parsed = generate(self._auth.settings.key_prefix)
        record = ApiKey(
            id=parsed.key_id,
            name=name,
            owner=owner,
            team=team,
            scopes=scopes,
            created_at=now,
            expires_at=expires_at,
            secret_hash=hash_secret(parsed),
        )
        return IssuedKey(record, value)

    def _check(
        self,
        *,
        name: str,
        owner: str | None,
        team: str | None,
        scopes: Iterable[str] | None,
        expires_in: timedelta | None,
    ) -> frozenset[str] | None:
        """Validate the arguments of :meth:`create`; return the scopes as a set."""
        policy = self._auth.policy
        if _NAME_RE.fullmatch(name) is None or not name.strip():
            raise ValueError("a key name is 1-200 printable characters")
        if (owner is None) == (team is None):
            raise ValueError("a key has exactly one of an owner (personal key) or a team")
        if team is not None and _TEAM_RE.fullmatch(team) is None:
            raise ValueError("a team name is 1-150 letters, digits or _.:-")
        wanted = None if scopes is None else frozenset(scopes)
        if wanted is not None:
            if not wanted:
                raise ValueError("a restricted key needs at least one scope")
            unknown = wanted - policy.all_scopes
            if unknown:
                raise ValueError(f"unknown scope(s): {', '.join(sorted(unknown))}")
        if expires_in is not None and expires_in <= timedelta(0):
            raise ValueError("expiry must be in the future")
        if owner is not None:
            user = self._auth.store.get_user(owner)
            if user is None:
                raise NotFound(f"no user named {owner!r}")
            if user.disabled:
                raise ValueError(f"user {owner!r} is disabled")
            if policy.api_keys == "global" and not policy.may_own_global_key(user.roles):
                top = ", ".join(sorted(policy.top_roles))
                raise ValueError(
                    f"personal keys are global: only a user with role {top} may own one"
                )
        return wanted

    def create(
        self,
        *,
        name: str,
        owner: str | None = None,
        team: str | None = None,
        scopes: Iterable[str] | None = None,
        expires_in: timedelta | None = None,
    ) -> IssuedKey:
        """Create a personal key (``owner=``) or a team key (``team=``).

        ``scopes`` makes the key *restricted*: it then passes only checks for
        those scopes and no role check. Raises ``ValueError`` for bad input,
        :class:`~authmw.store.NotFound` for an unknown owner and
        :class:`~authmw.store.Conflict` for a duplicate name.
        """
        wanted = self._check(
            name=name, owner=owner, team=team, scopes=scopes, expires_in=expires_in
        )
        now = datetime.now(UTC)
        for existing in self._auth.store.list_keys(owner=owner, team=team):
            # Only an active key holds its name: a revoked, expired or rotated-out
            # one no longer answers to it, so the name is free for a new key.
            if existing.name == name and existing.status(now) == "active":
                raise Conflict(f"an active key named {name!r} already exists")
        issued = self._new(
            name=name,
            owner=owner,
            team=team,
            scopes=wanted,
            expires_at=None if expires_in is None else now + expires_in,
            now=now,
        )
        self._auth.store.add_key(issued.record)
        self._auth.audit.emit(
            "key.created",
            key_id=issued.record.id,
            user=owner,
            team=team,
            scope=None if wanted is None else " ".join(sorted(wanted)),
        )
        return issued

    def get(self, key_id: str) -> ApiKey:
        """Return a key record; :class:`~authmw.store.NotFound` if there is none."""
        key = self._auth.store.get_key(key_id)
        if key is None:
            raise NotFound(f"no key with id {key_id!r}")
        return key

    def list(self, *, owner: str | None = None, team: str | None = None) -> list[ApiKey]:
        """Return keys, newest first."""
        return list(self._auth.store.list_keys(owner=owner, team=team))

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key for good. Takes effect at once in this process."""
        key = self._auth.store.revoke_key(key_id, datetime.now(UTC))
        self._auth.invalidate(credential_id=key_id)
        self._auth.audit.emit("key.revoked", key_id=key_id)
        return key

    def rotate(self, key_id: str, *, grace: timedelta = timedelta(0)) -> IssuedKey:
        """Issue a successor with the same name, owner, team and scopes.

        The old key keeps working for ``grace`` (zero: it stops now), so clients
        can switch over without downtime. The successor gets the same lifetime
        the old key had, counted from now.
        """
        if grace < timedelta(0):
            raise ValueError("grace must not be negative")
        old = self.get(key_id)
        now = datetime.now(UTC)
        if old.replaced_by is None and old.status(now) == "expired":
            # Rotating would revive a key that has already lapsed: create a new one instead.
            raise Conflict(f"key {key_id!r} has expired; create a new key instead")
        # The successor must be one the owner may still hold (not disabled, still
        # a top role in global mode), or rotation would mint a key that never works.
        self._check(
            name=old.name, owner=old.owner, team=old.team, scopes=old.scopes, expires_in=None
        )
        lifetime = None if old.expires_at is None else old.expires_at - old.created_at
        issued = self._new(
            name=old.name,
            owner=old.owner,
            team=old.team,
            scopes=old.scopes,
            expires_at=None if lifetime is None else now + lifetime,
            now=now,
        )
        self._auth.store.rotate_key(key_id, issued.record, now + grace)
        self._auth.invalidate(credential_id=key_id)
        self._auth.audit.emit("key.rotated", key_id=key_id, user=old.owner, team=old.team)
        return issued
