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
import math
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from authmw.addresses import parse_trusted_proxies
from authmw.errors import DEFAULT_REALM
from authmw.keys import DEFAULT_PREFIX, check_prefix
from authmw.policy import Policy
from authmw.tokens import MIN_SECRET_KEY_LENGTH

__all__ = [
    "DEFAULT_CACHE_TTL",
    "DEFAULT_DATABASE_URL",
    "IMPORT_PATH_FORMS",
    "Settings",
    "cache_ttl",
    "database_url",
    "import_path",
    "load_policy",
    "policy_at",
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
        # Written "not 0 <= x", so NaN fails too: a NaN staleness bound would keep
        # every cache entry for ever, the very thing the bound exists to prevent.
        if not (0 <= self.cache_ttl < math.inf) or self.cache_size < 0:
            raise ValueError(
                "cache_ttl must be a finite number of seconds; cache_size not negative"
            )
        if not 0 < self.usage_flush_interval < math.inf:
            raise ValueError("usage_flush_interval must be a finite, positive number of seconds")
        # The realm goes into every WWW-Authenticate header: a character that header
        # cannot carry (non-latin-1, CR/LF) would turn each 401 into a 500 or split
        # the header, so the realm is held to printable ASCII.
        if not (self.realm.isascii() and self.realm.isprintable()):
            raise ValueError("realm must be printable ASCII")
        if '"' in self.realm or "\\" in self.realm:
            raise ValueError("realm must not contain quotes or backslashes")
        parse_trusted_proxies(self.trusted_proxies)
        # Checked here, not at the first login: a short key would otherwise pass
        # start-up and turn every token request into a 503.
        if any(len(key) < MIN_SECRET_KEY_LENGTH for key in self.secret_keys):
            raise ValueError(f"each signing key needs at least {MIN_SECRET_KEY_LENGTH} characters")


def database_url(url: str | None = None) -> str:
    """Return ``url``, else ``AUTHMW_DATABASE_URL``, else the embedded SQLite default."""
    return url or os.environ.get("AUTHMW_DATABASE_URL") or DEFAULT_DATABASE_URL


def cache_ttl(value: str | None = None) -> float:
    """Return the staleness bound from ``value``, else ``AUTHMW_CACHE_TTL``, else 5 seconds."""
    if value is None:
        value = os.environ.get("AUTHMW_CACHE_TTL", "")
    if not value.strip():
        return DEFAULT_CACHE_TTL
    problem = f"AUTHMW_CACHE_TTL is a number of seconds, 0 or more, not {value!r}"
    try:
        seconds = float(value)
    except ValueError:
        # float()'s own message would not say which setting was wrong.
        raise ValueError(problem) from None
    if not 0 <= seconds < float("inf"):
        raise ValueError(problem)
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


#: How an import path may be written, for error messages.
IMPORT_PATH_FORMS = "'package.module.attribute' or 'package.module:attribute'"


def import_path(setting: str, spec: str) -> tuple[object, str]:
    """Return what ``spec`` names, and ``spec`` in the ``module:attribute`` spelling.

    ``spec`` is written either way, ``"pkg.mod.attr"`` (Django's) or
    ``"pkg.mod:attr"`` (entry points'), so neither is a trap for the other's
    users. Every mistake is a ``ValueError`` that names ``setting`` and ``spec``:
    an unimportable module reads as a missing database driver in the CLI
    otherwise, and a bare traceback shows only importlib. When the module exists
    but one of its own imports fails, that error stays chained as the cause.
    """

    def problem(text: str) -> ValueError:
        return ValueError(f"{setting} = {spec!r}: {text}")

    module_name, colon, attr = spec.partition(":")
    if not colon:
        module_name, _, attr = spec.rpartition(".")
    # Checked first, so importlib never sees an empty or relative name.
    if not (attr.isidentifier() and all(p.isidentifier() for p in module_name.split("."))):
        raise problem(f"expected an import path, {IMPORT_PATH_FORMS}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
        if missing is not None and f"{module_name}.".startswith(f"{missing}."):
            raise problem(f"no module named {missing!r}") from None
        raise problem(f"importing {module_name!r} failed: {exc}") from exc
    try:
        value = getattr(module, attr)
    except AttributeError:
        raise problem(f"module {module_name!r} has no {attr!r}") from None
    return value, f"{module_name}:{attr}"


class _NotAPolicy(ValueError, TypeError):
    """An import path names something that is, or whose call returns, no Policy.

    A ``ValueError`` like every other bad setting, so the CLI reports it in one
    line; also the ``TypeError`` :func:`load_policy` has always raised for it.
    """


def policy_at(setting: str, spec: str) -> tuple[Policy, str]:
    """Return the policy ``spec`` names, and ``spec`` in the ``module:attribute`` spelling.

    ``spec`` is an import path (:func:`import_path`) of a Policy or of a function
    returning one. Every mistake is a ``ValueError`` naming ``setting``; an
    exception raised by a factory itself propagates as is, since it is the
    application's own bug and its traceback says where. ``AUTHMW_POLICY`` and
    Django's ``AUTHMW["POLICY"]`` both resolve through here.
    """
    value, normalized = import_path(setting, spec)
    policy = value() if callable(value) and not isinstance(value, Policy) else value
    if not isinstance(policy, Policy):
        raise _NotAPolicy(f"{setting} = {spec!r}: {type(policy).__name__}, not an authmw Policy")
    return policy, normalized


def load_policy(spec: str | None = None) -> Policy:
    """Load the policy named by ``spec`` or ``AUTHMW_POLICY``; by default the demo's.

    See :func:`policy_at`: a ``ValueError`` naming ``AUTHMW_POLICY`` for a
    missing module or attribute, and for no Policy (then also a ``TypeError``).
    """
    spec = spec or os.environ.get("AUTHMW_POLICY")
    if not spec:
        return Policy.default()
    return policy_at("AUTHMW_POLICY", spec)[0]
