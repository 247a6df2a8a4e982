"""A bounded in-process cache of verified credentials, and off-path usage recording.

The cache is what makes the warm path cheap: one dict lookup and one clock read.
Its entries live at most ``ttl`` seconds (the staleness bound) and never past
the credential's own expiry. Only *successful* verifications are cached, so a
flood of bad credentials cannot evict good ones or grow memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from authmw.principal import Principal

__all__ = ["CredentialCache", "UsageRecorder"]

log = logging.getLogger("authmw")


class CredentialCache:
    """Map a presented credential to its verified principal, for a bounded time.

    A fresh hit takes no lock: a dict lookup is atomic in CPython. Every change to
    the dict (insert, evict, drop an expired entry) takes the lock, because
    eviction iterates the dict: a lock-free removal in between made ``put`` fail
    with ``KeyError`` or "dictionary changed size during iteration".
    """

    __slots__ = ("_entries", "_lock", "generation", "maxsize", "ttl")

    def __init__(self, *, maxsize: int, ttl: float) -> None:
        self.maxsize = maxsize
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()
        #: Grows with every :meth:`discard`. A verification notes it before reading
        #: the store and passes it to :meth:`put`, so a result read before a
        #: revocation cannot be cached after the revocation dropped the old entry.
        self.generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, credential: str, now: float) -> Principal | None:
        """Return the cached principal for ``credential`` if still fresh at monotonic ``now``."""
        entry = self._entries.get(credential)
        if entry is None:
            return None
        if now >= entry[0]:
            # The cold path follows (a store lookup), so taking the lock costs nothing
            # that matters; drop the entry only if no other thread refreshed it meanwhile.
            with self._lock:
                if self._entries.get(credential) is entry:
                    del self._entries[credential]
            return None
        return entry[1]

    def put(
        self,
        credential: str,
        principal: Principal,
        now: float,
        lifetime: float,
        *,
        generation: int | None = None,
    ) -> None:
        """Cache ``principal`` until ``now + min(ttl, lifetime)`` (monotonic seconds).

        With ``generation`` (the value read before the store was asked), nothing is
        cached if a :meth:`discard` happened since: the result may be stale.
        """
        ttl = min(self.ttl, lifetime)
        if ttl <= 0 or self.maxsize == 0:
            return
        with self._lock:
            if generation is not None and generation != self.generation:
                return
            entries = self._entries
            if credential not in entries:
                while len(entries) >= self.maxsize:
                    # Evict in insertion order: the oldest entry is the nearest to expiry.
                    entries.pop(next(iter(entries)))
            entries[credential] = (now + ttl, principal)

    def discard(self, matches: Callable[[Principal], bool]) -> int:
        """Drop every entry whose principal ``matches``; return how many.

        A linear pass over at most ``maxsize`` entries, run only when a credential
        is revoked or a user changes, never on a request.
        """
        with self._lock:
            self.generation += 1
            doomed = [c for c, (_, p) in list(self._entries.items()) if matches(p)]
            for credential in doomed:
                self._entries.pop(credential, None)
        return len(doomed)

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            self._entries.clear()


class UsageRecorder:
    """Collect "key K was used at T" in memory and write it in batches from a thread.

    The request path only assigns into a dict. A daemon thread, started on first
    use, hands the batch to ``write`` every ``interval`` seconds; ``last_used_at``
    is therefore accurate to ``interval``.
    """

    def __init__(
        self,
        write: Callable[[Mapping[str, datetime]], None],
        *,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write = write
        self.interval = interval
        #: The monotonic clock ``record`` is given readings of (see ``flush``).
        self._clock = clock
        self._pending: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._start_lock = threading.Lock()

    def record(self, credential_id: str, monotonic_now: float) -> None:
        """Note a use (cheap: one dict assignment)."""
        self._pending[credential_id] = monotonic_now
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._stop.is_set():
                thread = threading.Thread(target=self._run, name="authmw-usage", daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        """Write what was recorded since the last flush. Errors are logged, not raised."""
        pending, self._pending = self._pending, {}
        if not pending:
            return
        # Convert monotonic readings to wall-clock time once per batch, not per request.
        offset = time.time() - self._clock()
        batch = {k: datetime.fromtimestamp(t + offset, UTC) for k, t in pending.items()}
        try:
            self._write(batch)
        except Exception:
            log.warning("authmw: could not record key usage", exc_info=True)

    def close(self) -> None:
        """Stop the thread and write what is pending."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)
        self.flush()
