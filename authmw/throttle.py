"""Login throttling: slow password guessing down without letting anyone lock a user out.

A login is refused with 429 and ``Retry-After`` (:class:`~authmw.errors.TooManyRequests`)
while any of three failure counters is at its limit:

========================  ===============  ============================================
counter                   default          what it stops
========================  ===============  ============================================
account at one address    5 per 5 min      one client guessing one account's password
address                   50 per 5 min     one client guessing across many accounts
account                   100 per hour     many clients guessing one account together
========================  ===============  ============================================

The throttle is *soft*, and these are the trade-offs:

- Every counter lives in a window, so every block ends: at most one window after
  the failures stop, whoever caused them. Nothing is ever locked for good, and
  no administrator has to unlock anything.
- The tight limit counts an account *at one address*. An attacker who fails five
  times blocks that account from their own address only; the real user, at
  another address, still logs in. A successful login clears this counter only.
- The per-account limit is the one an attacker can use against the user, since
  it counts failures from everywhere. It is therefore generous and exists only
  to bound a distributed guess (by default 100 guesses an hour, about 2,400 a
  day against one account). Lowering it makes guessing slower and a lockout of
  the real user cheaper; raising it does the reverse.
- With no client address (a Unix socket and no trusted proxy, see
  :mod:`authmw.addresses`) the clients cannot be told apart, so only the
  per-account limit applies: a shared "unknown address" counter would let any
  one client lock everyone out.

Counters use fixed windows aligned to the epoch (the bucket ``now // window``),
not sliding ones: a counter is then one number, a Redis implementation is an
``INCR`` with an expiry, and ``Retry-After`` is exact (the end of the bucket) with
no per-failure timestamps kept. The cost is that a client can fail up to twice a
limit across a bucket boundary; over time it still gets ``failures`` per ``window``.

Counter keys are SHA-256 digests of the normalised username and the address.
Users sometimes type their password into the username field, and the throttle
must never hold a password, even by mistake; digests also bound each key's size.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from authmw.errors import TooManyRequests

__all__ = [
    "DEFAULT_PER_ACCOUNT",
    "DEFAULT_PER_ACCOUNT_ADDRESS",
    "DEFAULT_PER_ADDRESS",
    "Limit",
    "LoginThrottle",
    "MemoryThrottle",
    "Throttle",
]

_T = TypeVar("_T")


class Throttle(Protocol):
    """Storage of failure counters in fixed windows.

    A key counts in the bucket ``int(now // window)``: "the window ending now" is
    the current bucket, and a count from an earlier bucket is zero. ``now`` is
    epoch seconds, so instances sharing a store (Redis) agree on the buckets.
    """

    def hit(self, key: str, window: float, now: float) -> int:
        """Record a failure under ``key``; return the failures in the current bucket."""
        ...

    def count(self, key: str, window: float, now: float) -> int:
        """Return the failures under ``key`` in the current bucket, recording nothing."""
        ...

    def reset(self, key: str) -> None:
        """Forget ``key``'s failures."""
        ...


class MemoryThrottle:
    """Failure counters in this process: bounded, thread-safe.

    Each key costs one dict entry. At ``max_keys`` the key that failed longest
    ago is dropped (its bucket has most likely ended anyway), so a flood of
    distinct usernames or addresses cannot grow memory. The flip side, for an
    attacker able to send that many distinct keys within one window, is an
    early reset of a counter; the per-address limit makes that flood slow.
    Counters are per process: behind several workers, use a shared store.
    """

    def __init__(self, *, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_keys = max_keys
        # key -> (window, bucket, failures); insertion order is last-failure order.
        self._counters: dict[str, tuple[float, int, int]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._counters)

    def hit(self, key: str, window: float, now: float) -> int:
        """Record a failure under ``key``; return the failures in the current bucket."""
        bucket = _bucket(window, now)
        with self._lock:
            counters = self._counters
            previous = counters.pop(key, None)
            if previous is not None and previous[:2] == (window, bucket):
                failures = previous[2] + 1
            else:
                failures = 1
                while len(counters) >= self.max_keys:
                    counters.pop(next(iter(counters)))
            # Re-inserted at the end, so eviction takes the longest-idle key first.
            counters[key] = (window, bucket, failures)
        return failures

    def count(self, key: str, window: float, now: float) -> int:
        """Return the failures under ``key`` in the current bucket, recording nothing."""
        entry = self._counters.get(key)
        if entry is None or entry[:2] != (window, _bucket(window, now)):
            return 0
        return entry[2]

    def reset(self, key: str) -> None:
        """Forget ``key``'s failures."""
        with self._lock:
            self._counters.pop(key, None)


def _bucket(window: float, now: float) -> int:
    return int(now // window)


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``failures`` failed logins per ``window`` seconds."""

    failures: int
    window: float

    def __post_init__(self) -> None:
        if self.failures < 1:
            raise ValueError("a limit allows at least one failure")
        if not (self.window > 0 and math.isfinite(self.window)):
            raise ValueError("a limit's window is a positive number of seconds")


#: The tight limit: one account from one address.
DEFAULT_PER_ACCOUNT_ADDRESS = Limit(5, 300)
#: One address across all accounts.
DEFAULT_PER_ADDRESS = Limit(50, 300)
#: One account from all addresses: generous, it only bounds a distributed guess.
DEFAULT_PER_ACCOUNT = Limit(100, 3600)


class LoginThrottle:
    """Decide whether a login may be tried, and count the failures.

    :meth:`attempt` runs a password check in the right order: :meth:`retry_after`
    *before* the password is checked (a refused attempt must not cost a hash nor
    reveal whether the password was right), then :meth:`failed` or :meth:`succeeded`.
    ``address`` is the client address from :func:`authmw.addresses.client_address`,
    or ``None`` when it is unknown.
    ``clock`` returns epoch seconds.
    """

    def __init__(
        self,
        throttle: Throttle | None = None,
        *,
        per_account_address: Limit = DEFAULT_PER_ACCOUNT_ADDRESS,
        per_address: Limit = DEFAULT_PER_ADDRESS,
        per_account: Limit = DEFAULT_PER_ACCOUNT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.throttle: Throttle = throttle if throttle is not None else MemoryThrottle()
        self.per_account_address = per_account_address
        self.per_address = per_address
        self.per_account = per_account
        self._clock = clock

    def retry_after(self, username: str, address: str | None) -> int | None:
        """Return the seconds to wait before trying again, or ``None`` if a login may be tried."""
        now = self._clock()
        wait = 0.0
        for key, limit in self._counters(username, address):
            if self.throttle.count(key, limit.window, now) >= limit.failures:
                bucket_end = (_bucket(limit.window, now) + 1) * limit.window
                wait = max(wait, bucket_end - now)
        if wait <= 0:
            return None
        # Whole seconds for Retry-After, rounded up so a client that waits exactly
        # that long is let in; never 0, which would read as "retry at once".
        return max(1, math.ceil(wait))

    def attempt(
        self, username: str, address: str | None, check: Callable[[], _T | None]
    ) -> _T | None:
        """Run ``check``, a password check, in the order every login must follow.

        While a limit is reached this raises :class:`~authmw.errors.TooManyRequests`
        and ``check`` is not called: a refused guess costs no hash and learns
        nothing. Otherwise ``check`` returns ``None`` for a failure (wrong
        password, unknown or disabled user), which is counted, or what it found,
        which clears the account-at-address counter and is returned. Audit events
        are the caller's: each names its own.
        """
        wait = self.retry_after(username, address)
        if wait is not None:
            raise TooManyRequests(wait)
        found = check()
        if found is None:
            self.failed(username, address)
        else:
            self.succeeded(username, address)
        return found

    def failed(self, username: str, address: str | None) -> None:
        """Count a failed login (wrong password, unknown or disabled user)."""
        now = self._clock()
        for key, limit in self._counters(username, address):
            self.throttle.hit(key, limit.window, now)

    def succeeded(self, username: str, address: str | None) -> None:
        """Clear the (account, address) counter after a successful login.

        The per-address and per-account counters stay: a correct password from
        one client says nothing about the failures of others.
        """
        if address is not None:
            self.throttle.reset(_key("account-address", _normalise(username), address))

    def _counters(self, username: str, address: str | None) -> list[tuple[str, Limit]]:
        account = _normalise(username)
        counters = [(_key("account", account), self.per_account)]
        if address is not None:
            counters.append((_key("account-address", account, address), self.per_account_address))
            counters.append((_key("address", address), self.per_address))
        return counters


def _normalise(username: str) -> str:
    # "Alice", "ALICE" and "Alice" in full-width letters (NFKC folds U+FF21 to "A")
    # share one counter, so an attacker cannot multiply their guesses by spelling
    # the name differently. Merging more than the store does only makes the
    # throttle stricter.
    return unicodedata.normalize("NFKC", username).casefold()


def _key(kind: str, *parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        # Length-prefixed, so ("ab", "c") and ("a", "bc") cannot collide.
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big") + data)
    return f"authmw:login:{kind}:{digest.hexdigest()}"
