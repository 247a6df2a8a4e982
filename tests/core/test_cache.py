"""authmw.cache: the staleness bound, expiry, eviction, and off-path usage recording."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from authmw import Authenticator, InvalidToken, Settings
from authmw.cache import CredentialCache, UsageRecorder
from authmw.credentials import Credential
from authmw.principal import Principal
from authmw.store.sql import SQLStore
from tests.conftest import AuthenticatorFactory
from tests.core.conftest import sqlite_file_url
from tests.core.support import CountingStore, ManualClock

INF = float("inf")


def principal(name: str, credential_id: str | None = None) -> Principal:
    return Principal(kind="api_key", subject=name, credential_id=credential_id or name)


# -- CredentialCache -----------------------------------------------------------------


def test_entry_lives_for_ttl() -> None:
    cache = CredentialCache(maxsize=10, ttl=5.0)
    p = principal("a")
    cache.put("cred", p, now=100.0, lifetime=INF)
    assert cache.get("cred", 100.0) == p
    assert cache.get("cred", 104.999) == p
    assert cache.get("cred", 105.0) is None
    assert len(cache) == 0, "an expired entry is dropped when met"


def test_entry_never_outlives_its_credential() -> None:
    cache = CredentialCache(maxsize=10, ttl=5.0)
    cache.put("cred", principal("a"), now=100.0, lifetime=1.5)
    assert cache.get("cred", 101.4) is not None
    assert cache.get("cred", 101.5) is None


@pytest.mark.parametrize(
    ("ttl", "maxsize", "lifetime"),
    [(5.0, 10, 0.0), (5.0, 10, -3.0), (0.0, 10, INF), (5.0, 0, INF)],
    ids=["expired-credential", "long-expired", "ttl-0", "maxsize-0"],
)
def test_nothing_is_cached_when_it_could_not_be_fresh(
    ttl: float, maxsize: int, lifetime: float
) -> None:
    cache = CredentialCache(maxsize=maxsize, ttl=ttl)
    cache.put("cred", principal("a"), now=100.0, lifetime=lifetime)
    assert len(cache) == 0
    assert cache.get("cred", 100.0) is None


def test_unknown_credential_misses() -> None:
    assert CredentialCache(maxsize=10, ttl=5.0).get("nope", 0.0) is None


def test_maxsize_evicts_the_oldest() -> None:
    cache = CredentialCache(maxsize=2, ttl=5.0)
    cache.put("a", principal("a"), now=1.0, lifetime=INF)
    cache.put("b", principal("b"), now=2.0, lifetime=INF)
    cache.put("c", principal("c"), now=3.0, lifetime=INF)
    assert len(cache) == 2
    assert cache.get("a", 3.0) is None
    assert cache.get("b", 3.0) is not None
    assert cache.get("c", 3.0) is not None


def test_refreshing_an_entry_does_not_evict_another() -> None:
    cache = CredentialCache(maxsize=2, ttl=5.0)
    cache.put("a", principal("a"), now=1.0, lifetime=INF)
    cache.put("b", principal("b"), now=2.0, lifetime=INF)
    cache.put("a", principal("a"), now=3.0, lifetime=INF)
    assert len(cache) == 2
    assert cache.get("b", 3.0) is not None
    assert cache.get("a", 7.5) is not None, "the refreshed entry got a new deadline"


def test_discard_and_clear() -> None:
    cache = CredentialCache(maxsize=10, ttl=5.0)
    for name in ("a", "b", "c"):
        cache.put(name, principal(name, credential_id=f"id-{name}"), now=0.0, lifetime=INF)
    assert cache.discard(lambda p: p.credential_id == "id-b") == 1
    assert cache.get("b", 0.0) is None
    assert cache.get("a", 0.0) is not None
    assert cache.discard(lambda p: False) == 0
    cache.clear()
    assert len(cache) == 0


def test_readers_dropping_expired_entries_never_break_eviction() -> None:
    # Regression: get() used to drop an expired entry without the lock while put()
    # was evicting under it, so put() failed with KeyError or "dictionary changed
    # size during iteration" - a 500 on an ordinary request. Switching threads
    # every microsecond makes that interleaving happen within milliseconds.
    cache = CredentialCache(maxsize=4, ttl=1.0)
    names = [f"k{i}" for i in range(8)]
    errors: list[BaseException] = []
    stop = threading.Event()

    def write() -> None:
        try:
            while not stop.is_set():
                for name in names:
                    cache.put(name, principal(name), now=0.0, lifetime=INF)
        except BaseException as exc:  # reported below
            errors.append(exc)
            stop.set()

    def read() -> None:
        try:
            while not stop.is_set():
                for name in names:
                    cache.get(name, 100.0)  # every entry is expired by then
        except BaseException as exc:  # reported below
            errors.append(exc)
            stop.set()

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        workers = [threading.Thread(target=f) for f in (write, write, read, read)]
        for w in workers:
            w.start()
        stop.wait(0.5)
        stop.set()
        for w in workers:
            w.join()
    finally:
        sys.setswitchinterval(switch)
    assert errors == []
    assert len(cache) <= 4


def test_concurrent_puts_respect_maxsize() -> None:
    cache = CredentialCache(maxsize=50, ttl=5.0)

    def fill(offset: int) -> None:
        for i in range(500):
            cache.put(f"{offset}-{i}", principal(str(i)), now=0.0, lifetime=INF)

    threads = [threading.Thread(target=fill, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 50


# -- UsageRecorder ---------------------------------------------------------------------


class Sink:
    """Collects what a UsageRecorder writes."""

    def __init__(self) -> None:
        self.batches: list[dict[str, datetime]] = []
        self.written = threading.Event()

    def __call__(self, batch: Mapping[str, datetime]) -> None:
        self.batches.append(dict(batch))
        self.written.set()


def test_flush_converts_monotonic_readings_to_aware_utc() -> None:
    clock = ManualClock()
    sink = Sink()
    recorder = UsageRecorder(sink, interval=3600, clock=clock)
    recorder.record("k1", clock())
    clock.advance(10)
    recorder.record("k2", clock())
    recorder.record("k2", clock())  # the latest use per key is kept
    clock.advance(20)
    wall = datetime.now(UTC)
    recorder.flush()
    recorder.close()
    assert len(sink.batches) == 1
    batch = sink.batches[0]
    assert set(batch) == {"k1", "k2"}
    assert all(t.tzinfo is not None for t in batch.values())
    # k1 was used 30 s (of the clock) before the flush, k2 20 s before it.
    slack = timedelta(seconds=1)
    assert abs(batch["k1"] - (wall - timedelta(seconds=30))) < slack
    assert abs(batch["k2"] - (wall - timedelta(seconds=20))) < slack


def test_flush_with_nothing_pending_writes_nothing() -> None:
    sink = Sink()
    recorder = UsageRecorder(sink, interval=3600)
    recorder.flush()
    recorder.record("k", time.monotonic())
    recorder.flush()
    recorder.flush()
    recorder.close()
    assert len(sink.batches) == 1


def test_the_held_pending_dict_keeps_working_across_flushes_and_keeps_the_latest_use() -> None:
    # The warm path holds the pending dict and assigns into it: a flush must empty
    # that dict, never swap in a new one, or every later use would be lost.
    clock = ManualClock()
    sink = Sink()
    recorder = UsageRecorder(sink, interval=3600, clock=clock)
    pending = recorder.pending
    pending["k1"] = clock()
    recorder.flush()
    clock.advance(5)
    pending["k2"] = clock()
    clock.advance(5)
    pending["k2"] = clock()
    clock.advance(5)
    wall = datetime.now(UTC)
    recorder.flush()
    recorder.flush()
    recorder.close()
    assert [set(b) for b in sink.batches] == [{"k1"}, {"k2"}]
    # k2 was last used 5 s (of the clock) before its flush, not 10.
    assert abs(sink.batches[1]["k2"] - (wall - timedelta(seconds=5))) < timedelta(seconds=1)


def test_background_thread_writes_and_close_stops_it() -> None:
    sink = Sink()
    recorder = UsageRecorder(sink, interval=0.01)
    before = set(threading.enumerate())
    recorder.record("k", time.monotonic())
    assert sink.written.wait(timeout=10), "the background thread never wrote"
    threads = [t for t in set(threading.enumerate()) - before if t.name == "authmw-usage"]
    assert len(threads) == 1
    assert all(t.daemon for t in threads)
    recorder.close()
    assert not any(t.is_alive() for t in threads)


def test_close_writes_what_is_pending_and_starts_no_thread_after() -> None:
    sink = Sink()
    recorder = UsageRecorder(sink, interval=3600)
    recorder.record("k", time.monotonic())
    recorder.close()
    assert [set(b) for b in sink.batches] == [{"k"}]
    before = set(threading.enumerate())
    recorder.record("late", time.monotonic())
    assert not [t for t in set(threading.enumerate()) - before if t.name == "authmw-usage"]


def test_a_failing_write_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def fail(batch: Mapping[str, datetime]) -> None:
        raise OSError("disk full")

    recorder = UsageRecorder(fail, interval=3600)
    recorder.record("k", time.monotonic())
    with caplog.at_level(logging.WARNING, logger="authmw"):
        recorder.flush()
    recorder.close()
    assert any("could not record key usage" in r.getMessage() for r in caplog.records)


# -- the cache inside the authenticator ------------------------------------------------------


def test_revocation_elsewhere_is_seen_after_the_staleness_bound_not_before(
    make_authenticator: AuthenticatorFactory, tmp_path: Path
) -> None:
    url = sqlite_file_url(tmp_path)
    clock = ManualClock()
    app = make_authenticator(url, settings=Settings(cache_ttl=0.3), clock=clock)
    # The CLI, as another process would run it: its own authenticator and connections.
    cli = make_authenticator(SQLStore(url), schema=False)
    issued = cli.keys.create(name="k", owner="admin")
    key = Credential("apikey", issued.key)
    assert app.authenticate(key) is not None
    cli.keys.revoke(issued.record.id)
    clock.advance(0.29)
    # Within the bound the app may still answer from memory: that is the bound's price.
    assert app.authenticate(key) is not None
    clock.advance(0.01)
    with pytest.raises(InvalidToken):
        app.authenticate(key)


def test_revocation_elsewhere_is_seen_after_real_time_passes(
    make_authenticator: AuthenticatorFactory, tmp_path: Path
) -> None:
    url = sqlite_file_url(tmp_path)
    app = make_authenticator(url, settings=Settings(cache_ttl=0.3))
    cli = make_authenticator(SQLStore(url), schema=False)
    issued = cli.keys.create(name="k", owner="admin")
    key = Credential("apikey", issued.key)
    assert app.authenticate(key) is not None
    cli.keys.revoke(issued.record.id)
    time.sleep(0.35)
    with pytest.raises(InvalidToken):
        app.authenticate(key)


def test_demotion_elsewhere_is_seen_after_the_staleness_bound(
    make_authenticator: AuthenticatorFactory, tmp_path: Path
) -> None:
    url = sqlite_file_url(tmp_path)
    clock = ManualClock()
    app = make_authenticator(url, settings=Settings(cache_ttl=2.0), clock=clock)
    cli = make_authenticator(SQLStore(url), schema=False)
    key = Credential("apikey", cli.keys.create(name="k", owner="admin").key)
    assert app.authenticate(key) is not None
    cli.users.set_roles("admin", ["employee"])
    clock.advance(2.0)
    with pytest.raises(InvalidToken):
        app.authenticate(key)


def test_ttl_zero_asks_the_store_every_time(make_authenticator: AuthenticatorFactory) -> None:
    counting = CountingStore(SQLStore("sqlite://"))
    auth = make_authenticator(counting, settings=Settings(cache_ttl=0))
    key = Credential("apikey", auth.keys.create(name="k", owner="admin").key)
    for _ in range(3):
        assert auth.authenticate(key) is not None
    assert counting.count("find_key") == 3


def test_cache_size_bounds_the_authenticator(make_authenticator: AuthenticatorFactory) -> None:
    counting = CountingStore(SQLStore("sqlite://"))
    auth = make_authenticator(counting, settings=Settings(cache_size=2))
    keys = [Credential("apikey", auth.keys.create(name=n, team="sales").key) for n in "abc"]
    for key in keys:
        auth.authenticate(key)
    assert len(auth.cache) == 2
    assert counting.count("find_key") == 3
    auth.authenticate(keys[2])  # still cached
    assert counting.count("find_key") == 3
    auth.authenticate(keys[0])  # evicted first, so looked up again
    assert counting.count("find_key") == 4


def test_bad_credentials_are_not_cached_and_evict_nothing(authenticator: Authenticator) -> None:
    good = Credential("apikey", authenticator.keys.create(name="k", owner="admin").key)
    authenticator.authenticate(good)
    revoked = authenticator.keys.create(name="r", owner="admin")
    authenticator.keys.revoke(revoked.record.id)
    for _ in range(20):
        with pytest.raises(InvalidToken):
            authenticator.authenticate(Credential("apikey", revoked.key))
    assert len(authenticator.cache) == 1
    assert authenticator.authenticate(good) is not None


def test_settings_refuse_negative_bounds() -> None:
    with pytest.raises(ValueError, match="negative"):
        Settings(cache_ttl=-1)
    with pytest.raises(ValueError, match="negative"):
        Settings(cache_size=-1)


def test_authenticator_cache_uses_the_settings(authenticator: Authenticator) -> None:
    assert authenticator.cache.ttl == Settings().cache_ttl == 5.0
    assert authenticator.cache.maxsize == Settings().cache_size


# -- aliases: the raw-header fast path ------------------------------------------------


def test_an_alias_serves_the_live_entry_and_dies_with_it() -> None:
    cache = CredentialCache(maxsize=10, ttl=5.0)
    p = principal("a")
    cache.alias(("raw", None), "cred")
    assert cache.get_alias(("raw", None), 100.0) is None, "no entry, no alias"
    cache.put("cred", p, now=100.0, lifetime=INF)
    cache.alias(("raw", None), "cred")
    assert cache.get_alias(("raw", None), 104.9) is p
    assert cache.get_alias(("raw", None), 105.0) is None, "the staleness bound holds"


@pytest.mark.parametrize("how", ["discard", "clear", "evict", "replace"])
def test_an_entry_leaving_the_cache_takes_its_aliases_along(how: str) -> None:
    cache = CredentialCache(maxsize=1, ttl=5.0)
    cache.put("cred", principal("a"), now=0.0, lifetime=INF)
    cache.alias("raw", "cred")
    if how == "discard":
        cache.discard(lambda p: p.subject == "a")
    elif how == "clear":
        cache.clear()
    elif how == "evict":
        cache.put("other", principal("b"), now=0.0, lifetime=INF)
    else:
        cache.put("cred", principal("a2"), now=0.0, lifetime=INF)
    assert cache.get_alias("raw", 0.0) is None


def test_aliases_are_bounded() -> None:
    cache = CredentialCache(maxsize=2, ttl=5.0)
    cache.put("cred", principal("a"), now=0.0, lifetime=INF)
    for i in range(10):
        cache.alias(i, "cred")
        assert len(cache._aliases) <= 2


def test_lookup_raw_honours_revocation_expiry_and_the_staleness_bound(
    make_authenticator: AuthenticatorFactory,
) -> None:
    clock = ManualClock()
    auth = make_authenticator(clock=clock)
    issued = auth.keys.create(name="k", owner="admin", expires_in=timedelta(seconds=60))
    raw = (None, issued.key.encode())
    assert auth.lookup_raw(raw) is None, "cold: nothing filed yet"
    found = auth.authenticate_raw(raw)
    assert found is not None
    assert auth.lookup_raw(raw) is found, "warm: filed under the raw headers"
    clock.advance(auth.settings.cache_ttl)
    assert auth.lookup_raw(raw) is None, "past the staleness bound"
    assert auth.authenticate_raw(raw) == found
    auth.keys.revoke(issued.record.id)
    assert auth.lookup_raw(raw) is None, "revocation reaches the fast path at once"
    with pytest.raises(InvalidToken):
        auth.authenticate_raw(raw)


def test_a_verification_that_raced_a_revocation_is_not_filed(
    make_authenticator: AuthenticatorFactory,
) -> None:
    auth = make_authenticator()
    issued = auth.keys.create(name="k", owner="admin")
    raw = (None, issued.key)
    generation = auth.cache.generation
    auth.invalidate(credential_id=issued.record.id)  # a revocation during the store read
    auth.cache.put(issued.key, principal("stale"), 0.0, INF, generation=generation)
    auth.cache.alias(raw, issued.key)
    assert auth.lookup_raw(raw) is None


def test_foreign_or_unhashable_raw_headers_are_never_filed(
    make_authenticator: AuthenticatorFactory,
) -> None:
    auth = make_authenticator()
    key = auth.keys.create(name="k", owner="admin").key
    basic = (b"Basic dXNlcjpwYXNzd29yZA==", key.encode())  # a password beside the key
    assert auth.authenticate_raw(basic) is not None
    assert auth.lookup_raw(basic) is None, "the Basic password is not kept as a cache key"
    lax = (None, bytearray(key.encode()))
    assert auth.authenticate_raw(lax) is not None  # type: ignore[arg-type]
    assert auth.lookup_raw(lax) is None  # type: ignore[arg-type]
