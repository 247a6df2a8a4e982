"""The authentication flow, written once and driven both sync and async.

``Authenticator._flow`` is a generator: it does all the deciding and *yields*
each blocking store call instead of making it. The sync driver runs those calls
inline (WSGI); the async driver runs them in a worker thread (ASGI), so the
event loop never waits on the database. One flow, two drivers, no second copy to
drift (the pattern of ``httpx.Auth.auth_flow``).

The warm path (a credential verified less than ``cache_ttl`` seconds ago) yields
nothing: a dict lookup and a clock read, no hashing, no I/O, no write. Both
drivers try it before they start the flow, so a hit pays for no generator either.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from authmw import credentials as _credentials
from authmw import keys as _keys
from authmw.addresses import client_address, parse_trusted_proxies
from authmw.audit import Audit
from authmw.cache import CredentialCache, UsageRecorder
from authmw.clients import Clients
from authmw.config import (
    Settings,
    cache_ttl,
    database_url,
    load_policy,
    secret_keys,
    trusted_proxies,
)
from authmw.credentials import Credential, RawCredential
from authmw.errors import InvalidToken, ServiceUnavailable, Unverifiable
from authmw.keys import ApiKeys
from authmw.passwords import PasswordHasher
from authmw.policy import Policy
from authmw.principal import Principal
from authmw.shared import Invalidation, InvalidationBus, shared_from_env
from authmw.store import KeyMatch, Store
from authmw.store.sql import SQLStore
from authmw.throttle import LoginThrottle, Throttle
from authmw.tokens import Tokens
from authmw.users import Users

__all__ = ["Authenticator"]

log = logging.getLogger("authmw")

T = TypeVar("T")
#: A flow yields zero-argument blocking calls and finally returns a principal.
Flow = Generator[Callable[[], Any], Any, T]

try:  # anyio runs on asyncio and trio alike; Starlette brings it.
    import anyio.to_thread as _anyio_thread
except ImportError:  # pragma: no cover - the framework-free install has plain asyncio
    _anyio_thread = None  # type: ignore[assignment]


async def _to_thread(func: Callable[[], T]) -> T:
    if _anyio_thread is not None:
        return await _anyio_thread.run_sync(func)
    return await asyncio.to_thread(func)  # pragma: no cover


def run_sync(flow: Flow[T]) -> T:
    """Drive a flow, running each yielded call inline."""
    try:
        call = next(flow)
        while True:
            try:
                result = call()
            except Exception as exc:
                call = flow.throw(exc)
            else:
                call = flow.send(result)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def run_async(flow: Flow[T]) -> T:
    """Drive a flow, running each yielded call in a worker thread."""
    try:
        call = next(flow)
        while True:
            try:
                result = await _to_thread(call)
            except Exception as exc:
                call = flow.throw(exc)
            else:
                call = flow.send(result)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


class Authenticator:
    """Turns a request's credential into a :class:`~authmw.principal.Principal`.

    >>> from authmw.store.sql import SQLStore
    >>> auth = Authenticator(SQLStore("sqlite://"))
    >>> auth.store.create_schema()

    ``auth.users`` and ``auth.keys`` manage accounts and keys; changes made through
    them reach this authenticator's cache at once.
    """

    def __init__(
        self,
        store: Store,
        *,
        policy: Policy | None = None,
        settings: Settings | None = None,
        passwords: PasswordHasher | None = None,
        clock: Callable[[], float] = time.monotonic,
        bus: InvalidationBus | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        self.store = store
        self.policy = policy or Policy.default()
        self.settings = settings or Settings()
        self._passwords = passwords
        # The monotonic clock the cache's staleness bound is measured on. A
        # parameter so a test can step past the bound instead of sleeping; reading
        # it costs the hot path the same as calling time.monotonic directly.
        self._clock = clock
        self.cache = CredentialCache(maxsize=self.settings.cache_size, ttl=self.settings.cache_ttl)
        self.usage = UsageRecorder(
            store.record_key_use, interval=self.settings.usage_flush_interval, clock=clock
        )
        self._alias_entry = self.cache.alias_entry
        self._uses = self.usage.pending
        #: Audit events (``authmw.audit`` logger, plus any hooks the application adds).
        self.audit = Audit()
        self.keys = ApiKeys(self)
        self.users = Users(self)
        self.clients = Clients(self)
        self.tokens = Tokens(self)
        #: Failure counters shared by every instance (Redis), for the login throttle;
        #: ``None``: each process counts alone.
        self.shared_throttle = throttle
        #: Counts failed password checks per account (and address): the token
        #: endpoint's logins and :meth:`Users.change_password
        #: <authmw.users.Users.change_password>` alike, since both guess the
        #: same password.
        self.login_throttle = LoginThrottle(throttle)
        # Parsed once: Settings never change after they are made.
        self._trusted_proxies = parse_trusted_proxies(self.settings.trusted_proxies)
        #: Carries invalidations between instances (Redis pub/sub); ``None``: each
        #: process learns of changes made elsewhere within ``cache_ttl``.
        self.bus = bus
        if bus is not None:
            # Until the first subscription is up, nothing is cached: a message sent
            # before it would be missed, so no cached answer could be trusted.
            self.cache.suspend()
            bus.on_reconnect = self._bus_connected
            bus.on_disconnect = self.cache.suspend
            bus.subscribe(self._apply)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Authenticator:
        """Build an authenticator on a :class:`~authmw.store.sql.SQLStore` at ``url``."""
        return cls(SQLStore(url), **kwargs)

    @classmethod
    def from_env(
        cls,
        url: str | None = None,
        *,
        policy: Policy | str | None = None,
        create_secret: bool = False,
    ) -> Authenticator:
        """Build an authenticator the way the CLI, the demo and the plugins do.

        The database comes from ``url``, ``AUTHMW_DATABASE_URL`` or the embedded
        default; signing keys from ``AUTHMW_SECRET_KEY`` or the file beside the
        database; the policy from ``policy`` (an instance or ``"module:attribute"``),
        else ``AUTHMW_POLICY``, else the demo roles.
        """
        resolved = database_url(url)
        settings = Settings(
            secret_keys=secret_keys(resolved, create=create_secret),
            trusted_proxies=trusted_proxies(),
            cache_ttl=cache_ttl(),
        )
        if not isinstance(policy, Policy):
            policy = load_policy(policy)
        bus, throttle = shared_from_env()
        return cls.from_url(resolved, policy=policy, settings=settings, bus=bus, throttle=throttle)

    @property
    def passwords(self) -> PasswordHasher:
        """The password hasher (created on first use: it hashes a dummy password)."""
        if self._passwords is None:
            self._passwords = PasswordHasher()
        return self._passwords

    # -- the flow ------------------------------------------------------------------

    def _flow(self, credential: Credential | None) -> Flow[Principal | None]:
        # The cold path only: the drivers have already tried the cache
        # (lookup_cached), so a hit costs no generator, driver or StopIteration.
        if credential is None:
            return None
        now = self._clock()
        try:
            if self.tokens.owns(credential.value):
                return (yield from self._verify_token(credential.value, now))
            principal = yield from self._verify_key(credential.value, now)
        except ServiceUnavailable:
            if self.settings.outage_status == 401:
                raise Unverifiable() from None
            raise
        self._record_use(principal, now)
        return principal

    def _verify_token(self, value: str, now: float) -> Flow[Principal]:
        generation = self.cache.generation  # see CredentialCache.put
        try:
            principal, lifetime = yield from self.tokens.verify(value, now)
        except InvalidToken:
            self._rejected("access_token", "invalid")
            raise
        self.cache.put(value, principal, now, lifetime, generation=generation)
        return principal

    def _record_use(self, principal: Principal, now: float) -> None:
        if principal.kind == "api_key" and principal.credential_id is not None:
            self.usage.record(principal.credential_id, now)

    def _rejected(self, kind: str, reason: str, key_id: str | None = None) -> None:
        # The audit event of a 401 (docs/audit.md). Only the cold path gets here:
        # a credential that fails is never cached, so each bad request logs once.
        self.audit.emit("credential.rejected", kind=kind, key_id=key_id, reason=reason)

    def _verify_key(self, value: str, now: float) -> Flow[Principal]:
        try:
            parsed = _keys.parse(value, self.settings.key_prefix)  # no store hit for garbage
        except InvalidToken:
            self._rejected("api_key", "malformed")
            raise
        generation = self.cache.generation  # see CredentialCache.put
        try:
            match: KeyMatch | None = yield partial(self.store.find_key, parsed.key_id)
        except Exception:
            # Fail closed: a credential we could not check is not let in.
            log.error("authmw: credential store unavailable", exc_info=True)
            raise ServiceUnavailable() from None
        wall = datetime.now(UTC)
        key = _keys.verify(match, parsed, wall)
        principal = None
        if key is not None and match is not None:
            principal = self.policy.key_principal(key, match.owner)
        if principal is None:
            # Unknown id, or a known one whose secret is wrong, revoked, expired or
            # whose owner may no longer hold it: one reason, as one 401.
            self._rejected("api_key", "unknown" if match is None else "invalid", parsed.key_id)
            raise InvalidToken()
        lifetime = float("inf")
        if key is not None and key.expires_at is not None:
            lifetime = (key.expires_at - wall).total_seconds()
        self.cache.put(value, principal, now, lifetime, generation=generation)
        return principal

    # -- drivers -----------------------------------------------------------------

    def lookup_cached(self, credential: Credential | None) -> Principal | None:
        """Return the principal of a credential verified within the staleness bound.

        Never does I/O and never raises. ``None`` means "not in the cache": the
        caller then verifies with :meth:`authenticate` or :meth:`authenticate_async`.
        The ASGI middleware calls this first, so a warm request creates no coroutine.
        """
        if credential is None:
            return None
        now = self._clock()
        principal = self.cache.get(credential.value, now)
        if principal is not None:
            self._record_use(principal, now)
        return principal

    def lookup_raw(self, raw: RawCredential) -> Principal | None:
        """Look raw header values up straight in the cache: the middlewares' warm path.

        ``raw`` is what :func:`~authmw.credentials.asgi_raw` or
        :func:`~authmw.credentials.wsgi_raw` found. One dict lookup and a clock
        read: no decoding, no grammar check, no :class:`Credential`. It finds only
        what :meth:`authenticate_raw` filed under the same raw values (see
        ``CredentialCache.alias``), so it answers exactly as parsing and
        :meth:`lookup_cached` would; ``None`` means "ask :meth:`authenticate_raw`".
        Never does I/O and never raises.
        """
        # Written out, not through cache.get_alias() and _record_use(): this runs on
        # every request, and each Python call saved is a measurable share of it.
        try:
            entry = self._alias_entry(raw)
        except TypeError:  # a lax server's bytearray is unhashable: take the slow path
            return None
        if entry is None:
            return None
        now = self._clock()
        if now >= entry.expires:
            return None
        principal = entry.principal
        if principal.kind == "api_key" and principal.credential_id is not None:
            # The cold path that cached this key record()-ed it: the thread is running.
            self._uses[principal.credential_id] = now
        return principal

    def authenticate_raw(self, raw: RawCredential | None) -> Principal | None:
        """Parse raw header values and verify their credential (blocking).

        What :meth:`lookup_raw` missed: the one parser, then :meth:`authenticate`;
        a principal it returns is then filed under ``raw`` for the next request.
        """
        credential = _credentials.parse_raw(raw)
        principal = self.authenticate(credential)
        self._remember(raw, credential, principal)
        return principal

    async def authenticate_raw_async(self, raw: RawCredential | None) -> Principal | None:
        """:meth:`authenticate_raw` without blocking the event loop."""
        credential = _credentials.parse_raw(raw)
        principal = await self.authenticate_async(credential)
        self._remember(raw, credential, principal)
        return principal

    def _remember(
        self, raw: RawCredential | None, credential: Credential | None, principal: Principal | None
    ) -> None:
        if (
            raw is not None
            and credential is not None
            and principal is not None
            and _credentials.is_rememberable(raw, credential)
        ):
            self.cache.alias(raw, credential.value)

    def authenticate(self, credential: Credential | None) -> Principal | None:
        """Verify ``credential`` (blocking). ``None`` in, ``None`` out.

        Raises :class:`~authmw.errors.InvalidToken` for a bad credential and
        :class:`~authmw.errors.ServiceUnavailable` when the store is down.
        """
        principal = self.lookup_cached(credential)
        if principal is not None:
            return principal
        return run_sync(self._flow(credential))

    async def authenticate_async(self, credential: Credential | None) -> Principal | None:
        """Verify ``credential`` without blocking the event loop."""
        principal = self.lookup_cached(credential)
        if principal is not None:
            return principal
        return await run_async(self._flow(credential))

    def authenticate_headers(
        self, headers: Mapping[str, str] | Iterable[tuple[str, str]]
    ) -> Principal | None:
        """Parse request headers and verify their credential (blocking)."""
        return self.authenticate(_credentials.parse_headers(headers))

    # -- cache control --------------------------------------------------------------

    def invalidate(
        self,
        *,
        credential_id: str | None = None,
        subject: str | None = None,
        client_id: str | None = None,
    ) -> int:
        """Forget cached verifications of a credential, a subject's, or a client's.

        ``client_id`` names a client or app: every token issued to it goes, those
        it holds for users included.

        With a shared bus, every other instance forgets them too, at once.
        """
        dropped = self._forget(credential_id=credential_id, subject=subject, client_id=client_id)
        if credential_id is not None:
            self.broadcast(Invalidation("credential", credential_id))
        if subject is not None:
            self.broadcast(Invalidation("subject", subject))
        if client_id is not None:
            self.broadcast(Invalidation("client", client_id))
        return dropped

    def _forget(
        self,
        *,
        credential_id: str | None = None,
        subject: str | None = None,
        client_id: str | None = None,
    ) -> int:
        for name in (subject, client_id):
            if name is not None:
                self.tokens.forget(name)
        return self.cache.discard(
            lambda p: (
                (credential_id is not None and p.credential_id == credential_id)
                or (subject is not None and p.subject == subject)
                or (client_id is not None and p.client_id == client_id)
            )
        )

    def broadcast(self, message: Invalidation) -> None:
        """Tell the other instances (no-op without a bus).

        The change is already in the store; if the bus cannot carry it, the other
        instances still learn of it within ``cache_ttl``, so this logs and goes on.
        """
        if self.bus is None:
            return
        try:
            self.bus.publish(message)
        except Exception:
            log.warning("authmw: could not broadcast an invalidation", exc_info=True)

    def _apply(self, message: Invalidation) -> None:
        """Apply an invalidation from another instance (or this one: idempotent)."""
        kind, value = message.kind, message.value
        if kind == "credential":
            self._forget(credential_id=value)
        elif kind == "subject":
            self._forget(subject=value)
        elif kind == "client":
            self._forget(client_id=value)
        elif kind in ("token", "family"):
            # Held until the tokens it names expire; a message without an expiry
            # is held for the longest an access token can live.
            expiry = message.expires_at or time.time() + 24 * 3600
            self.tokens.revocations.add(kind, value, datetime.fromtimestamp(expiry, UTC))
            if kind == "token":
                self._forget(credential_id=value)
            # A family's cached access tokens go with the "subject" message that
            # revoke_family sends beside this one.
        else:  # "all": start again from the store
            self._bus_connected()

    def _bus_connected(self) -> None:
        # Messages sent while the bus was down are lost: start from the store.
        self.cache.resume()
        self.tokens.forget()
        self.tokens.revocations.synced_at = float("-inf")

    def client_address(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """Return the client's address, believing ``X-Forwarded-For`` only from trusted proxies.

        ``peer`` is the TCP peer (the ASGI ``client`` host, ``REMOTE_ADDR``);
        ``forwarded_for`` every ``X-Forwarded-For`` line, joined with ``","``.
        ``None`` when unknown (a Unix socket). See ``Settings.trusted_proxies``
        and :func:`authmw.addresses.client_address`. Give it to
        :meth:`Users.change_password <authmw.users.Users.change_password>` for
        the login throttle's per-address limits.
        """
        return client_address(peer, forwarded_for, self._trusted_proxies)

    def flush_usage(self) -> None:
        """Write pending ``last_used_at`` updates now."""
        self.usage.flush()

    async def flush_usage_async(self) -> None:
        """:meth:`flush_usage` without blocking the event loop."""
        await _to_thread(self.usage.flush)

    def close(self) -> None:
        """Flush usage and release the store's (and the bus's) connections."""
        self.usage.close()
        if self.bus is not None:
            self.bus.close()
        self.store.close()
