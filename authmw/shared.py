"""State shared between instances through Redis: invalidations and throttle counters.

One instance of an app keeps what it verified in memory (:mod:`authmw.cache`), its
revoked tokens (:class:`authmw.tokens.RevocationList`) and its login failures
(:class:`authmw.throttle.MemoryThrottle`). Behind a load balancer that is one copy
per instance, and without more they converge only within the staleness bound. With
Redis (``AUTHMW_REDIS_URL``, the ``[redis]`` extra):

- an :class:`InvalidationBus` tells every instance what to forget the moment one
  of them revokes a token or a family, bumps a user's credential epoch or rotates
  a key (:class:`RedisBus`, on Redis pub/sub);
- a :class:`RedisThrottle` holds the failure counters, so a password guesser is
  counted by all instances together, not once per instance.

Both fail closed. Pub/sub delivers a message only to whoever is subscribed at
that moment, so a bus that lost its connection may have missed some: it says so
(:attr:`RedisBus.connected` is false at once), reconnects by itself, and calls
``on_reconnect`` when it is subscribed again, before it reports itself connected,
so the caller can drop everything it cached meanwhile. A throttle that cannot
reach Redis raises (the token endpoint answers 503) rather than let an
uncounted guess through.

The ``redis`` client is imported when a Redis object is built, never at import
time: the core works without the extra.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, cast, get_args

from authmw.throttle import Throttle

if TYPE_CHECKING:
    import redis
    from redis.client import PubSub

__all__ = [
    "Invalidation",
    "InvalidationBus",
    "RedisBus",
    "RedisThrottle",
    "RedisUnavailable",
    "shared_from_env",
]

log = logging.getLogger("authmw")

InvalidationKind = Literal["credential", "subject", "client", "token", "family", "all"]
_KINDS: Final = frozenset(get_args(InvalidationKind))

#: The version of the message format; a message of another version is ignored.
_VERSION: Final = 1
#: Messages are a few dozen bytes; anything much larger is not ours.
_MAX_MESSAGE: Final = 4096
#: Socket timeout, in seconds, of the clients built from a URL (a ``socket_timeout``
#: or ``socket_connect_timeout`` in the URL's query wins). Short, because a command
#: waits on a request path (a login, a revocation): better a quick 503 than a hang.
COMMAND_TIMEOUT: Final = 1.0


class RedisUnavailable(Exception):
    """Redis could not be reached or answered with an error; nothing was assumed."""


@dataclass(frozen=True, slots=True)
class Invalidation:
    """What another instance must forget: a credential, a subject, a client, a token or family.

    ``"client"`` names a client or app that was disabled or enabled: every token
    issued to it, whoever it acts for, is checked again.

    ``kind`` ``"all"`` (with an empty ``value``) drops everything, for changes that
    reach every credential, such as a signing-key rotation. ``expires_at`` is the
    wall-clock expiry (epoch seconds) of a ``"token"`` or ``"family"`` revocation:
    the receiving revocation list keeps it until then. Values are ids and subjects,
    never secrets, so a message may be logged.
    """

    kind: InvalidationKind
    value: str
    expires_at: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or self.kind not in _KINDS:
            raise ValueError(f"unknown invalidation kind {self.kind!r}")
        if not isinstance(self.value, str):
            raise TypeError("an invalidation's value is a string")
        if self.expires_at is not None and not (
            isinstance(self.expires_at, int | float)
            and not isinstance(self.expires_at, bool)
            and math.isfinite(self.expires_at)
        ):
            raise ValueError("expires_at is a finite number of epoch seconds or None")

    def to_json(self) -> bytes:
        """Encode as the versioned JSON message the bus carries."""
        body = {"v": _VERSION, "kind": self.kind, "value": self.value, "exp": self.expires_at}
        return json.dumps(body, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | str) -> Invalidation:
        """Decode a message of :meth:`to_json`; raise ``ValueError`` if it is not one."""
        if len(data) > _MAX_MESSAGE:
            raise ValueError("message too large")
        try:
            body = json.loads(data)
        except (ValueError, UnicodeError) as exc:  # JSONDecodeError is a ValueError
            raise ValueError("not JSON") from exc
        if not isinstance(body, dict) or body.get("v") != _VERSION:
            raise ValueError("not a version 1 message")
        kind, value, expires_at = body.get("kind"), body.get("value"), body.get("exp")
        if not isinstance(kind, str) or kind not in _KINDS or not isinstance(value, str):
            raise ValueError("bad kind or value")
        try:
            return cls(cast("InvalidationKind", kind), value, expires_at)
        except (TypeError, ValueError) as exc:
            raise ValueError("bad expiry") from exc


class InvalidationBus(Protocol):
    """Carry :class:`Invalidation` messages to every instance, this one included."""

    def publish(self, message: Invalidation) -> None:
        """Send ``message`` to every subscriber; raise if it could not be sent."""
        ...

    def subscribe(self, handler: Callable[[Invalidation], None]) -> None:
        """Start calling ``handler`` for each message, from a background thread."""
        ...

    @property
    def connected(self) -> bool:
        """True only while subscribed and delivering; false means messages may be missed."""
        ...

    #: Called when a subscription starts (messages sent before it were missed)...
    on_reconnect: Callable[[], None] | None
    #: ...and as soon as it is lost (messages may be missed from now on).
    on_disconnect: Callable[[], None] | None

    def close(self) -> None:
        """Stop delivering and release the connections."""
        ...


def _import_redis() -> Any:
    try:
        import redis  # noqa: PLC0415 - optional: the core imports without the extra
    except ImportError:
        raise ImportError(
            "authmw's Redis support needs the redis client: pip install 'authmw[redis]'"
        ) from None
    return redis


def _command_client(url_or_client: str | redis.Redis) -> tuple[redis.Redis, bool]:
    """Return a client for commands and whether it is ours to close."""
    if not isinstance(url_or_client, str):
        return url_or_client, False
    mod = _import_redis()
    from redis.backoff import NoBackoff  # noqa: PLC0415
    from redis.retry import Retry  # noqa: PLC0415

    # One immediate retry replaces a pooled connection that the server closed while
    # idle; redis-py's default (ten retries with backoff) would hold a request for
    # seconds against a Redis that is down.
    client: redis.Redis = mod.Redis.from_url(
        url_or_client,
        socket_timeout=COMMAND_TIMEOUT,
        socket_connect_timeout=COMMAND_TIMEOUT,
        retry=Retry(NoBackoff(), 1),
    )
    return client, True


def _unavailable(action: str, exc: BaseException) -> RedisUnavailable:
    # The message names the error, never the URL (it may hold a password).
    return RedisUnavailable(f"could not {action}: {type(exc).__name__}: {exc}")


# -- the invalidation bus ----------------------------------------------------------------


class RedisBus:
    """An :class:`InvalidationBus` on Redis pub/sub.

    ``url_or_client`` is a ``redis://`` URL or a ``redis.Redis`` client; the bus
    publishes with it, and subscribes on a connection of its own with the same
    settings (a subscribed connection can send nothing else). That connection
    never retries inside redis-py: a silent reconnect would resubscribe without
    telling anyone that messages were lost meanwhile. The bus's thread reconnects
    instead, with capped exponential backoff, and calls ``on_reconnect`` each time
    it is subscribed, the first time included (what was cached before the first
    subscription was not covered by the bus either), before :attr:`connected`
    turns true. If ``on_reconnect`` or the handler raises, the connection is
    dropped and the cycle starts again, so a message that could not be applied
    ends, at worst, in everything being forgotten.

    A connection that dies silently (a partition, no FIN) is noticed by a
    heartbeat: a PING after :attr:`heartbeat` seconds without traffic, and the
    connection is given up when nothing at all came back for twice that.
    """

    #: Seconds without traffic before the subscriber pings Redis.
    heartbeat: float = 5.0
    #: First and longest wait, in seconds, between two connection attempts.
    min_backoff: float = 0.1
    max_backoff: float = 5.0
    #: How long a SUBSCRIBE may take to be confirmed.
    subscribe_timeout: float = 5.0

    def __init__(
        self,
        url_or_client: str | redis.Redis,
        *,
        channel: str = "authmw:invalidate",
        on_reconnect: Callable[[], None] | None = None,
        on_disconnect: Callable[[], None] | None = None,
    ) -> None:
        self.channel = channel
        self.on_reconnect = on_reconnect
        #: Called (on the bus thread) as soon as the subscription is lost: from then
        #: on messages may be missed, so caches must stop serving until reconnect.
        self.on_disconnect = on_disconnect
        self._client, self._owned = _command_client(url_or_client)
        self._subscriber = _subscriber_client(self._client)
        self._handler: Callable[[Invalidation], None] | None = None
        self._connected = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def connected(self) -> bool:
        """True only while subscribed and delivering; false means messages may be missed."""
        return self._connected

    def publish(self, message: Invalidation) -> None:
        """Send ``message`` to every subscribed instance; raise :class:`RedisUnavailable`."""
        mod = _import_redis()
        try:
            self._client.publish(self.channel, message.to_json())
        except (mod.RedisError, OSError) as exc:
            raise _unavailable("publish an invalidation", exc) from exc

    def subscribe(self, handler: Callable[[Invalidation], None]) -> None:
        """Start the thread that calls ``handler`` for each message (once per bus)."""
        with self._lock:
            if self._stop.is_set():
                raise RuntimeError("the bus is closed")
            if self._thread is not None:
                raise RuntimeError("the bus is already subscribed")
            self._handler = handler
            self._thread = threading.Thread(target=self._run, name="authmw-bus", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the thread and close the connections the bus opened."""
        with self._lock:
            self._stop.set()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=self.subscribe_timeout + 5)
        self._connected = False
        self._subscriber.close()
        if self._owned:
            self._client.close()

    # -- the subscriber thread -----------------------------------------------------------

    def _run(self) -> None:
        delay = self.min_backoff
        failing = False
        while not self._stop.is_set():
            # redis-py leaves Redis.pubsub unannotated; it returns a PubSub.
            pubsub: PubSub = self._subscriber.pubsub()  # type: ignore[no-untyped-call]
            try:
                self._subscribe(pubsub)
                # Subscribed: whatever is published from now on reaches us. Drop what
                # may be stale *before* saying so, so no reader trusts it in between.
                if self.on_reconnect is not None:
                    _applying(self.on_reconnect)
                self._connected = True
                delay = self.min_backoff
                failing = False
                log.info("authmw: subscribed to invalidations on Redis")
                self._listen(pubsub)
            except Exception as exc:
                was_connected, self._connected = self._connected, False
                if not self._stop.is_set():
                    # Once per outage at warning level; the retries below it at debug.
                    level = logging.DEBUG if failing and not was_connected else logging.WARNING
                    log.log(
                        level,
                        "authmw: invalidation bus disconnected (%s: %s); retrying in %.1f s",
                        type(exc).__name__,
                        exc,
                        delay,
                    )
                failing = True
            finally:
                self._connected = False
                if self.on_disconnect is not None:
                    try:
                        self.on_disconnect()
                    except Exception:  # the thread must live on to reconnect
                        log.error("authmw: on_disconnect failed", exc_info=True)
                _close_quietly(pubsub)
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, self.max_backoff)

    def _subscribe(self, pubsub: PubSub) -> None:
        pubsub.subscribe(self.channel)
        deadline = time.monotonic() + self.subscribe_timeout
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("SUBSCRIBE was not confirmed")
            message = pubsub.get_message(timeout=min(left, 0.5))
            if message is not None and message["type"] == "subscribe":
                return
        raise InterruptedError("the bus is closing")

    def _listen(self, pubsub: PubSub) -> None:
        handler = self._handler
        assert handler is not None  # noqa: S101 - set before the thread starts
        last_seen = time.monotonic()
        pinged = False
        while not self._stop.is_set():
            message = pubsub.get_message(timeout=min(0.5, self.heartbeat))
            now = time.monotonic()
            if message is None:
                if now - last_seen >= 2 * self.heartbeat:
                    raise TimeoutError("no answer from Redis")
                if not pinged and now - last_seen >= self.heartbeat:
                    pubsub.ping("authmw")
                    pinged = True
                continue
            last_seen, pinged = now, False
            if message["type"] == "message":
                invalidation = _decode(message["data"])
                if invalidation is not None:
                    _applying(handler, invalidation)


def _applying(call: Callable[..., None], *args: Invalidation) -> None:
    try:
        call(*args)
    except Exception:
        # The caller's bug, not Redis's; the connection is dropped all the same, and
        # the reconnection calls on_reconnect, so nothing stale is kept.
        log.error("authmw: an invalidation could not be applied; starting over", exc_info=True)
        raise


def _decode(data: object) -> Invalidation | None:
    if not isinstance(data, bytes | str):
        log.warning("authmw: ignored an invalidation message that is not text")
        return None
    try:
        return Invalidation.from_json(data)
    except ValueError as exc:
        # The reason and the size only: a stray message is not ours to print.
        log.warning("authmw: ignored a malformed invalidation (%s, %d bytes)", exc, len(data))
        return None


def _subscriber_client(client: redis.Redis) -> redis.Redis:
    """Return a client on a pool of its own, with the settings of ``client`` and no retries."""
    mod = _import_redis()
    from redis.backoff import NoBackoff  # noqa: PLC0415
    from redis.retry import Retry  # noqa: PLC0415

    pool = client.connection_pool
    kwargs = dict(pool.connection_kwargs)
    kwargs["retry"] = Retry(NoBackoff(), 0)
    for option in ("socket_timeout", "socket_connect_timeout"):
        if kwargs.get(option) is None:
            kwargs[option] = COMMAND_TIMEOUT
    new_pool = mod.ConnectionPool(connection_class=pool.connection_class, **kwargs)
    subscriber: redis.Redis = mod.Redis(connection_pool=new_pool)
    return subscriber


def _close_quietly(pubsub: PubSub) -> None:
    # Closing a connection that is already broken may raise; it is closed either way.
    with contextlib.suppress(Exception):
        pubsub.close()


# -- the shared throttle -----------------------------------------------------------------

# One hash per counter: "t" tags the bucket (window and number), "n" counts in it.
# A hit in a new bucket starts again at 1, as MemoryThrottle does. The key expires
# when its bucket ends (plus a second), so Redis holds only live counters.
_HIT: Final = """
local tag = redis.call('HGET', KEYS[1], 't')
local n
if tag == ARGV[1] then
  n = redis.call('HINCRBY', KEYS[1], 'n', 1)
else
  redis.call('HSET', KEYS[1], 't', ARGV[1], 'n', 1)
  n = 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return n
"""


class RedisThrottle:
    """The :class:`~authmw.throttle.Throttle` counters in Redis, shared by every instance.

    The same fixed buckets as :class:`~authmw.throttle.MemoryThrottle` (``now //
    window``, ``now`` in epoch seconds, so instances agree as far as their clocks
    do). :meth:`hit` is one Lua script, atomic however many instances count at
    once. Keys are SHA-256 digests of the caller's key under ``prefix``: the
    login throttle's keys are digests already, and this keeps any other caller
    from writing an address or a username to Redis in clear. Errors raise
    :class:`RedisUnavailable`: a login that cannot be counted is not tried.
    """

    def __init__(
        self, url_or_client: str | redis.Redis, *, prefix: str = "authmw:throttle:"
    ) -> None:
        self.prefix = prefix
        self._client, self._owned = _command_client(url_or_client)
        self._hit = self._client.register_script(_HIT)

    def hit(self, key: str, window: float, now: float) -> int:
        """Record a failure under ``key``; return the failures in the current bucket."""
        tag, ttl_ms = _tag(window, now), _ttl_ms(window, now)
        try:
            return int(self._hit(keys=[self._key(key)], args=[tag, ttl_ms]))
        except Exception as exc:
            raise _unavailable("count a failure", exc) from exc

    def count(self, key: str, window: float, now: float) -> int:
        """Return the failures under ``key`` in the current bucket, recording nothing."""
        try:
            tag, failures = self._client.hmget(self._key(key), ["t", "n"])
        except Exception as exc:
            raise _unavailable("read a failure counter", exc) from exc
        if tag is None or failures is None or _text(tag) != _tag(window, now):
            return 0
        return int(failures)

    def reset(self, key: str) -> None:
        """Forget ``key``'s failures."""
        try:
            self._client.delete(self._key(key))
        except Exception as exc:
            raise _unavailable("reset a failure counter", exc) from exc

    def close(self) -> None:
        """Close the connections, if the throttle opened them from a URL."""
        if self._owned:
            self._client.close()

    def _key(self, key: str) -> str:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return self.prefix + digest


def _tag(window: float, now: float) -> str:
    # The window is part of the tag: a counter read with another window starts over,
    # as MemoryThrottle's (window, bucket) comparison does.
    return f"{window!r}:{int(now // window)}"


def _ttl_ms(window: float, now: float) -> int:
    bucket_end = (int(now // window) + 1) * window
    return max(1, math.ceil((bucket_end - now) * 1000)) + 1000


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


# -- configuration -----------------------------------------------------------------------


def shared_from_env(
    url: str | None = None,
) -> tuple[InvalidationBus | None, Throttle | None]:
    """Build the bus and the throttle from ``url``, else ``AUTHMW_REDIS_URL``.

    ``(None, None)`` when neither is set: each instance then keeps its own state,
    with the staleness bound of the core. The bus is not subscribed yet (the
    authenticator does that with its handler); nothing connects before first use.
    """
    url = url or os.environ.get("AUTHMW_REDIS_URL", "").strip()
    if not url:
        return None, None
    return RedisBus(url), RedisThrottle(url)
