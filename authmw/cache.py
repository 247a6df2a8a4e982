"""A bounded in-process cache of verified credentials, and off-path usage recording.

The cache is what makes the warm path cheap: one dict lookup and one clock read.
Its entries live at most ``ttl`` seconds (the staleness bound) and never past
the credential's own expiry. Only *successful* verifications are cached, so a
flood of bad credentials cannot evict good ones or grow memory.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Mapping
from datetime import UTC, datetime

from authmw.principal import Principal

__all__ = ["CredentialCache", "UsageRecorder"]

log = logging.getLogger("authmw")


class _Entry:
    """One cached verification. Mutable for one reason: :meth:`CredentialCache.kill`."""

    __slots__ = ("expires", "principal")

    def __init__(self, expires: float, principal: Principal) -> None:
        self.expires = expires
        self.principal = principal


#: The deadline of an entry that is no longer in the cache: every clock reading is past it.
_DEAD = float("-inf")


class CredentialCache:
    """Map a presented credential to its verified principal, for a bounded time.

    A fresh hit takes no lock: a dict lookup is atomic in CPython. Every change to
    the dict (insert, evict, drop an expired entry) takes the lock, because
    eviction iterates the dict: a lock-free removal in between made ``put`` fail
    with ``KeyError`` or "dictionary changed size during iteration".

    **Aliases.** A request does not present a credential value but raw header
    values, which the one parser turns into it. :meth:`alias` lets the middleware
    file a live entry under those raw values too, so a warm request finds its
    principal with one dict lookup and never parses (see
    :meth:`authmw.authenticator.Authenticator.lookup_raw`). An alias points at
    the entry itself, not at a copy, and an entry is *killed* (its deadline set
    to minus infinity) whenever it leaves the cache: evicted, discarded,
    replaced, cleared. So an alias can never outlive what it points at, and no
    removal has to find the aliases of an entry; a dead alias is a miss, and is
    overwritten or dropped in bulk later.
    """

    __slots__ = (
        "_aliases",
        "_entries",
        "_lock",
        "_suspended_size",
        "alias_entry",
        "generation",
        "maxsize",
        "ttl",
    )

    def __init__(self, *, maxsize: int, ttl: float) -> None:
        self.maxsize = maxsize
        self.ttl = ttl
        self._entries: dict[str, _Entry] = {}
        self._aliases: dict[Hashable, _Entry] = {}
        #: The alias dict's ``get``, bound once, for the warm path
        #: (:meth:`authmw.authenticator.Authenticator.lookup_raw`): it checks the
        #: entry's deadline itself, as :meth:`get_alias` does, one Python call fewer.
        #: The dict is only ever cleared in place, so this stays bound to it.
        self.alias_entry: Callable[[Hashable], _Entry | None] = self._aliases.get
        self._lock = threading.Lock()
        #: Grows with every :meth:`discard`. A verification notes it before reading
        #: the store and passes it to :meth:`put`, so a result read before a
        #: revocation cannot be cached after the revocation dropped the old entry.
        self.generation = 0
        self._suspended_size = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, credential: str, now: float) -> Principal | None:
        """Return the cached principal for ``credential`` if still fresh at monotonic ``now``."""
        entry = self._entries.get(credential)
        if entry is None:
            return None
        if now >= entry.expires:
            # The cold path follows (a store lookup), so taking the lock costs nothing
            # that matters; drop the entry only if no other thread refreshed it meanwhile.
            with self._lock:
                if self._entries.get(credential) is entry:
                    del self._entries[credential]
            return None
        return entry.principal

    def get_alias(self, key: Hashable, now: float) -> Principal | None:
        """Return the principal filed under alias ``key`` if its entry is alive at ``now``.

        The hot path: one dict lookup and one comparison, no lock. ``key`` must be
        hashable (the caller checks; see :meth:`alias`).
        """
        entry = self._aliases.get(key)
        if entry is not None and now < entry.expires:
            return entry.principal
        return None

    def alias(self, key: Hashable, credential: str) -> None:
        """File the live entry of ``credential``, if there is one, under ``key`` as well.

        ``key`` must always stand for ``credential`` (the caller's promise: raw
        header values that the parser, a pure function, turns into it). No lock: an
        entry killed between the lookup and the assignment leaves a dead alias,
        which misses.
        """
        entry = self._entries.get(credential)
        if entry is None or entry.expires == _DEAD:
            return
        aliases = self._aliases
        if key not in aliases and len(aliases) >= self.maxsize:
            # Bounded like the entries. Dropping all at once costs each live alias
            # one slow lookup; tracking which are dead would tax every removal.
            aliases.clear()
        aliases[key] = entry

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
            old = entries.pop(credential, None)
            if old is not None:
                # Replaced: its aliases must find the new entry through a slow lookup,
                # never keep serving the old one.
                old.expires = _DEAD
            if len(entries) >= self.maxsize:
                self._evict(entries)
            entries[credential] = _Entry(now + ttl, principal)

    def _evict(self, entries: dict[str, _Entry]) -> None:
        # In insertion order: the oldest entries are the nearest to expiry. A
        # sixteenth at a time, not one per put: finding a dict's first key walks
        # past the slots of keys removed from its front, so evicting one entry per
        # put made a full cache's every insert slower than the one before.
        count = len(entries) - self.maxsize + max(1, self.maxsize // 16)
        for credential in list(itertools.islice(entries, count)):
            entries.pop(credential).expires = _DEAD

    def discard(self, matches: Callable[[Principal], bool]) -> int:
        """Drop every entry whose principal ``matches``; return how many.

        A linear pass over at most ``maxsize`` entries, run only when a credential
        is revoked or a user changes, never on a request.
        """
        with self._lock:
            self.generation += 1
            doomed = [c for c, e in list(self._entries.items()) if matches(e.principal)]
            for credential in doomed:
                entry = self._entries.pop(credential, None)
                if entry is not None:
                    entry.expires = _DEAD
        return len(doomed)

    def suspend(self) -> None:
        """Stop caching: drop every entry and refuse new ones until :meth:`resume`.

        For when invalidations from other instances may be missed (the shared bus
        is down): every request is then verified against the store. Costs the
        warm path nothing: a suspended cache is an empty one that ``put`` skips.
        """
        if self.maxsize:
            self._suspended_size = self.maxsize
        # Size first, then discard: a put that read the old size holds a generation
        # from before the discard and is refused; any later put sees size 0.
        self.maxsize = 0
        self.discard(lambda _principal: True)

    def resume(self) -> None:
        """Cache again after :meth:`suspend`, starting empty."""
        self.discard(lambda _principal: True)
        if self._suspended_size:
            self.maxsize = self._suspended_size

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            for entry in self._entries.values():
                entry.expires = _DEAD
            self._entries.clear()
            self._aliases.clear()


class UsageRecorder:
    """Collect "key K was used at T" in memory and write it in batches from a thread.

    The request path only assigns into a dict. A daemon thread, started on first
    use, hands the batch to ``write`` every ``interval`` seconds; ``last_used_at``
    is therefore accurate to ``interval``.

    The dict is never replaced, only emptied by ``popitem`` (atomic), so a use
    noted while a flush runs is never lost and never breaks the flush's iteration.

    Uses noted since the last batch are written when the interpreter exits
    normally, too (the thread is a daemon and dies without a word): a process
    that stops cleanly keeps ``last_used_at`` exact. A server that re-raises
    the signal that stopped it bypasses exit hooks; the ASGI middleware writes
    the batch at lifespan shutdown for that case.
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
        #: Uses noted since the last batch: credential id -> monotonic reading. Never
        #: replaced, so the warm path may hold it and assign into it directly
        #: (``pending[credential_id] = now``): that is :meth:`record` without starting
        #: the thread, for a key :meth:`record`-ed when it was verified. A plain
        #: subscript assignment is the interpreter's commonest store, cheaper than
        #: any call, bound ``__setitem__`` included.
        self.pending: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._start_lock = threading.Lock()

    def record(self, credential_id: str, monotonic_now: float) -> None:
        """Note a use (cheap: one dict assignment)."""
        self.pending[credential_id] = monotonic_now
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._stop.is_set():
                thread = threading.Thread(target=self._run, name="authmw-usage", daemon=True)
                thread.start()
                self._thread = thread
                # A weak reference: the hook must not keep a discarded recorder (and
                # its store) alive until exit.
                atexit.register(_flush_at_exit, weakref.ref(self))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        """Write what was recorded since the last flush. Errors are logged, not raised."""
        pending = self.pending
        taken: dict[str, float] = {}
        while pending:
            try:
                credential_id, used = pending.popitem()
            except KeyError:  # emptied by a concurrent flush (close() from another thread)
                break
            # Re-noted during this loop: keep the later use.
            taken[credential_id] = max(used, taken.get(credential_id, used))
        if not taken:
            return
        # Convert monotonic readings to wall-clock time once per batch, not per request.
        offset = time.time() - self._clock()
        batch = {k: datetime.fromtimestamp(t + offset, UTC) for k, t in taken.items()}
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


def _flush_at_exit(ref: weakref.ref[UsageRecorder]) -> None:
    recorder = ref()
    if recorder is not None:
        recorder.flush()
