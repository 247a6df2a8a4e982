"""Drive ASGI apps in-process and time them in interleaved rounds.

No server, no socket, no HTTP parser: each request is one call of the app with a
prebuilt scope, a ``receive`` that returns one ``http.request`` and a ``send``
that discards what it is given. What remains is the framework, the middleware
and the endpoint, which is what the variants differ in.

Every round runs one batch of every variant, in a fresh random order, so slow
drifts of the machine (another process, frequency scaling, a garbage
collection) spread over all variants alike instead of favouring whichever ran
first. Each variant's ratio to its framework's bare app is taken within a round
and summarised by its median over the rounds.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Scope

__all__ = [
    "Variant",
    "interleaved",
    "make_scope",
    "median",
    "paired_ratios",
    "percentile",
    "request_status",
]

_REQUEST: Message = {"type": "http.request", "body": b"", "more_body": False}


async def _receive() -> Message:
    return _REQUEST


async def _discard(message: Message) -> None:
    return None


def make_scope(path: str, headers: Sequence[tuple[bytes, bytes]]) -> Scope:
    """Return the scope a server would build for ``GET path`` with ``headers``."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"api.example.com"),
            (b"user-agent", b"authmw-bench/1"),
            (b"accept", b"application/json"),
            *headers,
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


@dataclass(frozen=True)
class Variant:
    """One app to time: ``framework`` groups it with its bare baseline."""

    framework: str
    name: str
    app: ASGIApp
    scope: Scope
    bare: bool = False
    authmw: bool = False
    description: str = field(default="", compare=False)

    @property
    def key(self) -> str:
        """A unique label: ``framework/name``."""
        return f"{self.framework}/{self.name}"


def request_status(app: ASGIApp, scope: Scope, loop: asyncio.AbstractEventLoop) -> int:
    """Send one request and return its status (a check, not a measurement)."""
    statuses: list[int] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(int(message["status"]))

    loop.run_until_complete(app(dict(scope), _receive, send))
    if len(statuses) != 1:
        raise RuntimeError(f"expected one response, got {statuses}")
    return statuses[0]


async def _batch(app: ASGIApp, scope: Scope, n: int) -> int:
    # Timed inside the coroutine, so scheduling the batch on the loop is not counted.
    # Each request gets a shallow copy of the scope, as a server gives each its own.
    receive, send = _receive, _discard
    start = time.perf_counter_ns()
    for _ in range(n):
        await app(dict(scope), receive, send)
    return time.perf_counter_ns() - start


def interleaved(
    variants: Sequence[Variant],
    loop: asyncio.AbstractEventLoop,
    *,
    rounds: int,
    batch: int,
    warmup: int = 3,
    seed: int = 1,
) -> dict[str, list[float]]:
    """Return, per variant key, the mean µs per request of each round's batch."""
    for variant in variants:
        for _ in range(warmup):
            loop.run_until_complete(_batch(variant.app, variant.scope, batch))
    rng = random.Random(seed)
    order = list(variants)
    samples: dict[str, list[float]] = {v.key: [] for v in variants}
    for _ in range(rounds):
        rng.shuffle(order)
        for variant in order:
            elapsed = loop.run_until_complete(_batch(variant.app, variant.scope, batch))
            samples[variant.key].append(elapsed / batch / 1000)
    return samples


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: Sequence[float]) -> float:
    """The median."""
    return statistics.median(values)


def paired_ratios(bare: Sequence[float], other: Sequence[float]) -> list[float]:
    """Per-round throughput ratios: bare time over variant time, round by round."""
    return [b / o for b, o in zip(bare, other, strict=True)]
