"""How soon a revocation on one instance is refused by another: Redis versus the cache bound.

Two instances, each an :class:`~authmw.Authenticator` in a process of its own
(``multiprocessing``, spawned), with its own connections to one PostgreSQL
schema (private to the run) and, in the Redis mode, its own
:class:`~authmw.shared.RedisBus` on a channel private to the run. Both cache for
an hour (``cache_ttl=3600``): anything B learns within the run came over Redis.

For each revocation: a fresh key is verified by both instances (so both have it
cached); B starts watching it, checking it in-process (``authenticate()``, the
cached path, then a store read once the bus has dropped the entry) every
``POLL_S`` seconds; A revokes it (``auth.keys.revoke``: the store write, then
the broadcast). The figure is the time from A's call returning to B's first
refusal, on the machine-wide monotonic clock both processes read. It includes
the pub/sub delivery, B applying the message, and B's store read of the
revoked key; its resolution is the poll interval.

Without Redis (no bus, ``cache_ttl=5``) B refuses a revoked key only once its
cached verification is older than the bound. That is measured on a few keys
verified at spread-out moments and revoked together: the delay spreads over
``0 .. cache_ttl``.

The servers come from ``AUTHMW_BENCH_POSTGRES_URL``/``AUTHMW_BENCH_REDIS_URL``,
else ``AUTHMW_TEST_POSTGRES_URL``/``AUTHMW_TEST_REDIS_URL``.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import time
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from authmw import Authenticator, Settings
from authmw.credentials import Credential
from authmw.errors import InvalidToken
from authmw.shared import RedisBus
from authmw.store.sql import SQLStore
from bench.cold_pg import postgres_url, private_schema
from bench.cold_pg import unavailable_reason as postgres_reason
from bench.harness import median, percentile

__all__ = ["RevocationResult", "measure_revocation", "redis_url", "unavailable_reason"]

#: How often B checks the key it watches, in seconds: the resolution of the figures.
POLL_S = 0.0002
#: B gives up on one key after this long (reported as a timeout, not a number).
GIVE_UP_S = 10.0
#: The staleness bound of the contrast run without Redis.
NO_BUS_TTL = 5.0


@dataclass(frozen=True)
class RevocationResult:
    """Delays from a revocation's return to the other instance's first refusal, in ms."""

    name: str
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    timeouts: int
    note: str = ""


def redis_url() -> str:
    """The Redis server to measure against ('' when none is configured)."""
    return (
        os.environ.get("AUTHMW_BENCH_REDIS_URL", "").strip()
        or os.environ.get("AUTHMW_TEST_REDIS_URL", "").strip()
    )


def unavailable_reason(url: str) -> str | None:
    """Why Redis at ``url`` cannot be used, or ``None`` when it answers."""
    if not url:
        return "set AUTHMW_BENCH_REDIS_URL (or AUTHMW_TEST_REDIS_URL) to a Redis server"
    try:
        import redis  # noqa: PLC0415 - the [redis] extra is optional

        client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # any failure means "not reachable"
        return f"Redis not reachable ({type(exc).__name__})"
    return None


# -- the instances (each runs in its own process) ----------------------------------------


def _instance(
    conn: Connection, db_url: str, options: dict[str, Any], bus_url: str, channel: str
) -> None:
    """Serve commands from the parent: verify, watch, revoke, stop."""
    bus = RedisBus(bus_url, channel=channel) if bus_url else None
    ttl = 3600.0 if bus is not None else NO_BUS_TTL
    settings = Settings(cache_ttl=ttl, usage_flush_interval=24 * 3600.0)
    auth = Authenticator(SQLStore(db_url, **options), settings=settings, bus=bus)
    deadline = time.monotonic() + 30
    while bus is not None and not bus.connected and time.monotonic() < deadline:
        time.sleep(0.01)
    conn.send(bus is None or bus.connected)
    try:
        while True:
            command, argument = conn.recv()
            if command == "stop":
                return
            if command == "verify":  # one or more keys: each must pass, and is then cached
                for value in argument:
                    assert auth.authenticate(Credential("x-api-key", value)) is not None
                conn.send(time.monotonic_ns())
            elif command == "revoke":  # one or more key ids, revoked back to back
                start = time.monotonic_ns()
                for key_id in argument:
                    auth.keys.revoke(key_id)
                conn.send((start, time.monotonic_ns()))
            elif command == "watch":  # until every key is refused; the time of each refusal
                conn.send(_watch(auth, argument, conn))
    finally:
        auth.close()


def _watch(auth: Authenticator, values: list[str], conn: Connection) -> list[int | None]:
    refused: list[int | None] = [None] * len(values)
    credentials = [Credential("x-api-key", value) for value in values]
    conn.send("watching")
    deadline = time.monotonic() + GIVE_UP_S + (0 if auth.bus is not None else NO_BUS_TTL)
    while None in refused and time.monotonic() < deadline:
        for i, credential in enumerate(credentials):
            if refused[i] is not None:
                continue
            try:
                auth.authenticate(credential)
            except InvalidToken:
                refused[i] = time.monotonic_ns()
        time.sleep(POLL_S)
    return refused


class _Instance:
    def __init__(self, db_url: str, options: dict[str, Any], bus_url: str, channel: str) -> None:
        context = mp.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_instance, args=(child, db_url, options, bus_url, channel), daemon=True
        )
        self.process.start()
        child.close()  # only the instance holds that end now: its death reads as EOFError
        if not self.conn.recv():
            self.stop()
            raise RuntimeError("the instance's bus did not subscribe")

    def call(self, command: str, argument: object) -> Any:
        self.conn.send((command, argument))
        return self.conn.recv()

    def stop(self) -> None:
        with contextlib.suppress(OSError):  # the process may be gone already
            self.conn.send(("stop", None))
        self.process.join(timeout=15)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)


# -- the measurement -----------------------------------------------------------------------


def _summary(name: str, delays_ms: list[float], timeouts: int, note: str) -> RevocationResult:
    if not delays_ms:
        return RevocationResult(name, 0, float("nan"), float("nan"), float("nan"), timeouts, note)
    return RevocationResult(
        name,
        len(delays_ms),
        median(delays_ms),
        percentile(delays_ms, 99),
        max(delays_ms),
        timeouts,
        note,
    )


def _create_keys(db_url: str, options: dict[str, Any], count: int) -> list[tuple[str, str]]:
    store = SQLStore(db_url, **options)
    auth = Authenticator(store, settings=Settings(usage_flush_interval=24 * 3600.0))
    try:
        store.create_schema()
        store.add_user("admin", password_hash=None, roles=frozenset({"admin"}), teams=frozenset())
        issued = [auth.keys.create(name=f"bench-{i}", owner="admin") for i in range(count)]
        return [(k.record.id, k.key) for k in issued]
    finally:
        auth.close()


def _with_bus(
    db_url: str, options: dict[str, Any], bus_url: str, revocations: int
) -> RevocationResult:
    channel = f"authmw:bench:{uuid.uuid4().hex[:12]}"
    keys = _create_keys(db_url, options, revocations)
    a = _Instance(db_url, options, bus_url, channel)
    try:
        b = _Instance(db_url, options, bus_url, channel)
        try:
            delays: list[float] = []
            timeouts = 0
            for key_id, value in keys:
                a.call("verify", [value])
                b.call("verify", [value])
                b.conn.send(("watch", [value]))
                assert b.conn.recv() == "watching"
                _, returned = a.call("revoke", [key_id])
                [refused] = b.conn.recv()
                if refused is None:
                    timeouts += 1
                else:
                    delays.append((refused - returned) / 1e6)
        finally:
            b.stop()
    finally:
        a.stop()
    return _summary(
        "Redis bus, `cache_ttl=3600`",
        delays,
        timeouts,
        f"target p99 ≤ 100 ms; polled every {POLL_S * 1000:g} ms",
    )


def _without_bus(db_url: str, options: dict[str, Any], count: int) -> RevocationResult:
    keys = _create_keys(db_url, options, count)
    a = _Instance(db_url, options, "", "")
    try:
        b = _Instance(db_url, options, "", "")
        try:
            # Verified one by one, spread over one bound, then all revoked at once.
            for _, value in keys:
                b.call("verify", [value])
                time.sleep(NO_BUS_TTL / count)
            a.call("verify", [value for _, value in keys])
            b.conn.send(("watch", [value for _, value in keys]))
            assert b.conn.recv() == "watching"
            _, returned = a.call("revoke", [key_id for key_id, _ in keys])
            refused: list[int | None] = b.conn.recv()
        finally:
            b.stop()
    finally:
        a.stop()
    delays = [(r - returned) / 1e6 for r in refused if r is not None]
    return _summary(
        f"no bus, `cache_ttl={NO_BUS_TTL:g}`",
        delays,
        refused.count(None),
        f"{count} keys verified at spread-out moments; bounded by the cache TTL",
    )


def measure_revocation(
    db_url: str, bus_url: str, *, revocations: int = 200, contrast: int = 20
) -> list[RevocationResult]:
    """Time ``revocations`` revocations over Redis (and ``contrast`` without it, if > 0)."""
    results = []
    with private_schema(db_url, prefix="authmw_bench_revoke") as options:
        results.append(_with_bus(db_url, options, bus_url, revocations))
    if contrast > 0:
        with private_schema(db_url, prefix="authmw_bench_revoke") as options:
            results.append(_without_bus(db_url, options, contrast))
    return results


if __name__ == "__main__":  # a quick look: python -m bench.revocation
    db, bus_server = postgres_url(), redis_url()
    reason = postgres_reason(db) or unavailable_reason(bus_server)
    if reason:
        raise SystemExit(f"skipped: {reason}")
    for result in measure_revocation(db, bus_server):
        print(
            f"{result.count:5d} p50 {result.p50_ms:8.2f} ms  p99 {result.p99_ms:8.2f} ms  "
            f"max {result.max_ms:8.2f} ms  timeouts {result.timeouts}  {result.name}"
        )
