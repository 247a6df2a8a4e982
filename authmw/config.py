"""Settings, and reading them from the environment for the CLI and the demo.

===========================  ===================================================
``AUTHMW_DATABASE_URL``      SQLAlchemy URL (default ``sqlite:///authmw.db``)
``AUTHMW_SECRET_KEY``        signing keys, comma-separated, newest first
``AUTHMW_POLICY``            ``module:attribute`` naming the application's Policy
``AUTHMW_REDIS_URL``         Redis URL for shared state between instances
``AUTHMW_TRUSTED_PROXIES``   proxies whose ``X-Forwarded-For`` is believed,
                             comma-separated addresses or networks (default none)
``AUTHMW_CACHE_TTL``         the staleness bound in seconds (default 5)
===========================  ===================================================
"""

from __future__ import annotations

import importlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from authmw.addresses import parse_trusted_proxies
from authmw.errors import DEFAULT_REALM
from authmw.keys import DEFAULT_PREFIX, check_prefix
from authmw.policy import Policy

__all__ = [
    "DEFAULT_CACHE_TTL",
    "DEFAULT_DATABASE_URL",
    "Settings",
    "cache_ttl",
    "database_url",
    "load_policy",
    "secret_file_for",
    "secret_keys",
    "sqlite_file",
    "trusted_proxies",
]

DEFAULT_DATABASE_URL = "sqlite:///authmw.db"
#: The default staleness bound, in seconds.
DEFAULT_CACHE_TTL = 5.0


@dataclass(frozen=True, slots=True)
class Settings:
    """Tunables of an :class:`~authmw.authenticator.Authenticator`.

    ``cache_ttl`` is the *staleness bound*: how long a verified credential may be
    served from memory before the store is asked again. A revocation made through
    the same authenticator takes effect at once; one made elsewhere (another
    process, the CLI) takes effect within ``cache_ttl`` seconds. Set it to 0 to
    ask the store on every request.
    """

    key_prefix: str = DEFAULT_PREFIX
    #: The prefix of OAuth2 client secrets (same format as API keys, see authmw.clients).
    client_secret_prefix: str = "amcs"  # noqa: S105 - a prefix, not a secret
    #: Prefixes of access tokens and refresh tokens (see :mod:`authmw.tokens`).
    token_prefix: str = "amt"  # noqa: S105 - a prefix, not a secret
    refresh_prefix: str = "amr"
    #: Prefix of authorization codes, and how many seconds a code lives (RFC 6749
    #: section 4.1.2 recommends at most 10 minutes; a browser redirect needs seconds).
    code_prefix: str = "amac"
    code_ttl: int = 60
    #: Access-token lifetime in seconds. Short, because an access token is checked
    #: without the store: revocation reaches it through the revocation list.
    access_token_ttl: int = 900
    #: A refresh family ends this long after the login, however often it rotates...
    refresh_token_ttl: int = 30 * 24 * 3600
    #: ...and a refresh token unused for this long dies (an abandoned session).
    refresh_idle_ttl: int = 7 * 24 * 3600
    cache_ttl: float = DEFAULT_CACHE_TTL
    #: What a request gets when its credential cannot be checked because the store
    #: is down: 503 ``temporarily_unavailable`` (default) or 401 ``invalid_token``.
    #: Never a pass: authmw fails closed either way.
    outage_status: int = 503
    cache_size: int = 10_000
    realm: str = DEFAULT_REALM
    #: How often ``last_used_at`` is written, batched, off the request path.
    usage_flush_interval: float = 30.0
    secret_keys: tuple[str, ...] = field(default=(), repr=False)
    #: Addresses or networks of the proxies in front of the app ("10.0.0.0/8",
    #: "::1"). Only a request from one of them has its X-Forwarded-For believed
    #: (see :mod:`authmw.addresses`); by default none is, and the peer is the client.
    trusted_proxies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_prefix(self.key_prefix)
        check_prefix(self.client_secret_prefix)
        prefixes = (
            self.key_prefix,
            self.client_secret_prefix,
            check_prefix(self.token_prefix),
            check_prefix(self.refresh_prefix),
            check_prefix(self.code_prefix),
        )
        if len(set(prefixes)) != len(prefixes):
            # The prefix tells a credential's kind apart, for us and for secret
            # scanners: a leaked string says at once what it is.
            raise ValueError("key, client secret, token, refresh and code prefixes must all differ")
        if not 0 < self.access_token_ttl <= 24 * 3600:
            raise ValueError("access_token_ttl is 1 second to 24 hours")
        if not 0 < self.code_ttl <= 600:
            raise ValueError("code_ttl is 1 to 600 seconds")
        if not 0 < self.refresh_idle_ttl <= self.refresh_token_ttl:
            raise ValueError("refresh_idle_ttl must be positive and at most refresh_token_ttl")
        if self.outage_status not in (401, 503):
            raise ValueError("outage_status is 503 or 401")
        if self.cache_ttl < 0 or self.cache_size < 0:
            raise ValueError("cache_ttl and cache_size must not be negative")
        if self.usage_flush_interval <= 0:
            raise ValueError("usage_flush_interval must be positive")
        # The realm goes into every WWW-Authenticate header: a character that header
        # cannot carry (non-latin-1, CR/LF) would turn each 401 into a 500 or split
        # the header, so the realm is held to printable ASCII.
        if not (self.realm.isascii() and self.realm.isprintable()):
            raise ValueError("realm must be printable ASCII")
        if '"' in self.realm or "\\" in self.realm:
            raise ValueError("realm must not contain quotes or backslashes")
        parse_trusted_proxies(self.trusted_proxies)


def database_url(url: str | None = None) -> str:
    """Return ``url``, else ``AUTHMW_DATABASE_URL``, else the embedded SQLite default."""
    return url or os.environ.get("AUTHMW_DATABASE_URL") or DEFAULT_DATABASE_URL


def cache_ttl(value: str | None = None) -> float:
    """Return the staleness bound from ``value``, else ``AUTHMW_CACHE_TTL``, else 5 seconds."""
    if value is None:
        value = os.environ.get("AUTHMW_CACHE_TTL", "")
    if not value.strip():
        return DEFAULT_CACHE_TTL
    seconds = float(value)
    if not 0 <= seconds < float("inf"):
        raise ValueError("AUTHMW_CACHE_TTL is a number of seconds, 0 or more")
    return seconds


def trusted_proxies(value: str | None = None) -> tuple[str, ...]:
    """Split ``value``, else ``AUTHMW_TRUSTED_PROXIES``, into proxy addresses (default none)."""
    if value is None:
        value = os.environ.get("AUTHMW_TRUSTED_PROXIES", "")
    proxies = tuple(v.strip() for v in value.split(",") if v.strip())
    parse_trusted_proxies(proxies)
    return proxies


def sqlite_file(url: str) -> Path | None:
    """Return the file a SQLite URL opens; ``None`` for another database, memory or a bad URL.

    Parsed as SQLAlchemy parses it, so "sqlite+pysqlite:///x.db" and a URL with
    query options ("?mode=ro") name the file the engine opens. A ``file:`` URI is
    left to SQLite: its path is not simply the database name.
    """
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        return None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return None if database.startswith("file:") else Path(database)


def secret_file_for(url: str) -> Path | None:
    """Where the signing secret of a file database lives: beside the database."""
    path = sqlite_file(url)
    return None if path is None else path.with_name(path.name + ".secret")


def secret_keys(url: str, *, create: bool = False) -> tuple[str, ...]:
    """Return the signing keys: ``AUTHMW_SECRET_KEY``, else the file beside the database.

    With ``create=True`` a missing file is created with a fresh 256-bit key,
    readable by its owner only. Keys never live in code or on the command line.
    """
    from_env = os.environ.get("AUTHMW_SECRET_KEY", "")
    keys = tuple(k.strip() for k in from_env.split(",") if k.strip())
    if keys:
        return keys
    path = secret_file_for(url)
    if path is None:
        return ()
    if path.exists():
        return tuple(k.strip() for k in path.read_text().split(",") if k.strip())
    if not create:
        return ()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(32) + "\n")
    return secret_keys(url)


def load_policy(spec: str | None = None) -> Policy:
    """Load the policy named by ``spec`` or ``AUTHMW_POLICY`` (``module:attr``); default demo."""
    spec = spec or os.environ.get("AUTHMW_POLICY")
    if not spec:
        return Policy.default()
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ValueError("AUTHMW_POLICY is 'module:attribute'")
    value = getattr(importlib.import_module(module_name), attr)
    policy = value() if callable(value) and not isinstance(value, Policy) else value
    if not isinstance(policy, Policy):
        raise TypeError(f"{spec} is not an authmw Policy")
    return policy
