"""Warm verification: what authmw adds per request for a key it verified recently.

Timed directly in timeit-style loops (no framework around it): the header parse,
then ``Authenticator.authenticate()`` and ``authenticate_async()`` on a key in the
credential cache. The authenticator gets a long ``cache_ttl`` so that no loop
crosses the staleness bound and turns into a cold verification.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from authmw import Authenticator, Settings
from authmw.credentials import Credential, asgi_raw, from_asgi_headers
from authmw.store.sql import SQLStore
from bench.harness import median, percentile

__all__ = ["WarmResult", "measure_warm", "raw_lookup_loop", "repeat_timings"]


@dataclass(frozen=True)
class WarmResult:
    """One operation: the median and the best of its per-call times over the repeats."""

    name: str
    median_us: float
    best_us: float
    note: str = ""


def repeat_timings(loop_once: Callable[[int], int], *, number: int, repeat: int) -> list[float]:
    """Per-call microseconds of ``repeat`` runs of ``loop_once(number)``, after a warm-up.

    ``loop_once(n)`` runs the operation ``n`` times and returns the elapsed nanoseconds.
    """
    loop_once(max(1, number // 10))  # warm up: caches, specialised bytecode
    return [loop_once(number) / number / 1000 for _ in range(repeat)]


def raw_lookup_loop(
    auth: Authenticator, headers: list[tuple[bytes, bytes]]
) -> Callable[[int], int]:
    """A timing loop of what the middlewares run on a warm request.

    ``asgi_raw`` over ``headers``, then ``lookup_raw()``: the header scan and one
    dict lookup.
    """

    def loop_once(n: int) -> int:
        lookup = auth.lookup_raw
        start = time.perf_counter_ns()
        for _ in range(n):
            found = asgi_raw(headers)
            if found is not None:
                lookup(found)
        return time.perf_counter_ns() - start

    return loop_once


def _result(name: str, times: list[float], note: str = "") -> WarmResult:
    return WarmResult(name, median(times), percentile(times, 0), note)


def measure_warm(*, number: int, repeat: int) -> list[WarmResult]:
    """Time the warm path's parts; return one result per operation."""
    auth = Authenticator(SQLStore("sqlite://"), settings=Settings(cache_ttl=24 * 3600.0))
    auth.store.create_schema()
    auth.store.add_user("admin", password_hash=None, roles=frozenset({"admin"}), teams=frozenset())
    key = auth.keys.create(name="bench", owner="admin").key
    headers = [
        (b"host", b"api.example.com"),
        (b"user-agent", b"authmw-bench/1"),
        (b"accept", b"application/json"),
        (b"x-api-key", key.encode()),
    ]
    credential = from_asgi_headers(headers)
    assert credential is not None
    principal = auth.authenticate(credential)  # the one cold verification: now cached
    assert principal is not None
    assert auth.cache.get(credential.value, time.monotonic()) is principal
    peers = {key: ("admin", frozenset({"admin"}))}
    loop = asyncio.new_event_loop()

    def parse(n: int) -> int:
        start = time.perf_counter_ns()
        for _ in range(n):
            from_asgi_headers(headers)
        return time.perf_counter_ns() - start

    def sync(n: int) -> int:
        cred: Credential = credential
        authenticate = auth.authenticate
        start = time.perf_counter_ns()
        for _ in range(n):
            authenticate(cred)
        return time.perf_counter_ns() - start

    async def _async(n: int) -> int:
        cred: Credential = credential
        authenticate = auth.authenticate_async
        start = time.perf_counter_ns()
        for _ in range(n):
            await authenticate(cred)
        return time.perf_counter_ns() - start

    async def _both(n: int) -> int:
        authenticate = auth.authenticate_async
        start = time.perf_counter_ns()
        for _ in range(n):
            await authenticate(from_asgi_headers(headers))
        return time.perf_counter_ns() - start

    raw = asgi_raw(headers)
    assert raw is not None
    assert auth.authenticate_raw(raw) is principal  # files the raw headers as an alias

    fused = raw_lookup_loop(auth, headers)

    def timed(loop_once: Callable[[int], int]) -> list[float]:
        return repeat_timings(loop_once, number=number, repeat=repeat)

    def peer(n: int) -> int:
        get = peers.get
        start = time.perf_counter_ns()
        for _ in range(n):
            for name, value in headers:
                if name == b"x-api-key":
                    get(value.decode("latin-1"))
                    break
        return time.perf_counter_ns() - start

    def empty(n: int) -> int:
        start = time.perf_counter_ns()
        for _ in range(n):
            pass
        return time.perf_counter_ns() - start

    try:
        results = [
            _result(
                "header parse: `credentials.from_asgi_headers` (4 headers)",
                timed(parse),
            ),
            _result(
                "`Authenticator.authenticate()`, cached key (sync driver)",
                timed(sync),
            ),
            _result(
                "`await Authenticator.authenticate_async()`, cached key",
                timed(lambda n: loop.run_until_complete(_async(n))),
            ),
            _result(
                "parse + `authenticate_async()` (the full parser, then the cache)",
                timed(lambda n: loop.run_until_complete(_both(n))),
            ),
            _result(
                "**`credentials.asgi_raw` + `lookup_raw()`** (what the middlewares run warm)",
                timed(fused),
                note="target ≤ 3 µs",
            ),
            _result(
                "reference: header scan + dict lookup (what the peers do)",
                timed(peer),
            ),
            _result("reference: empty loop iteration", timed(empty)),
        ]
    finally:
        loop.close()
        auth.close()
    return results
