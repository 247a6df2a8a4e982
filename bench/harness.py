"""Drive ASGI and WSGI apps in-process and time them in interleaved rounds.

No server, no socket, no HTTP parser: each ASGI request is one call of the app
with a prebuilt scope, a ``receive`` that returns one ``http.request`` and a
``send`` that discards what it is given; each WSGI request is one call with a
prebuilt environ and a ``start_response`` that discards, whose body iterable is
then consumed and closed, as a server does. What remains is the framework, the
middleware and the endpoint, which is what the variants differ in.

Every round runs one batch of every variant, in a fresh random order, so slow
drifts of the machine (another process, frequency scaling, a garbage
collection) spread over all variants alike instead of favouring whichever ran
first. Each variant's ratio to its framework's bare app is taken within a round
and summarised by its median over the rounds.
"""

from __future__ import annotations

import asyncio
import io
import random
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from starlette.types import ASGIApp, Message, Scope

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment

__all__ = [
    "Variant",
    "interleaved",
    "make_environ",
    "make_scope",
    "median",
    "paired_ratios",
    "percentile",
    "request_status",
    "variant_status",
    "wsgi_status",
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
        # The lifespan state (ASGI spec 2.4): uvicorn and hypercorn put a copy of it
        # in every request's scope, even when the app keeps nothing there.
        "state": {},
    }


def make_environ(path: str, headers: Sequence[tuple[str, str]]) -> WSGIEnvironment:
    """Return the environ a WSGI server would build for ``GET path`` with ``headers``."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
        "HTTP_HOST": "api.example.com",
        "HTTP_USER_AGENT": "authmw-bench/1",
        "HTTP_ACCEPT": "application/json",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        # A GET has no body: nothing reads this stream, so one empty stream serves all.
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in headers:
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


@dataclass(frozen=True)
class Variant:
    """One app to time: ``framework`` groups it with its bare baseline.

    ``app`` is an ASGI app and ``scope`` its scope, or, with ``wsgi=True``, a WSGI
    app and its environ. ``refused`` is the request with a bad credential the
    protected variants must turn away (default: the ASGI scope with a bad ``X-API-Key``).
    """

    framework: str
    name: str
    app: ASGIApp | WSGIApplication
    scope: Scope
    bare: bool = False
    authmw: bool = False
    description: str = field(default="", compare=False)
    wsgi: bool = False
    refused: Scope | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        """A unique label: ``framework/name``."""
        return f"{self.framework}/{self.name}"


def request_status(app: ASGIApp, scope: Scope, loop: asyncio.AbstractEventLoop) -> int:
    """Send one ASGI request and return its status (a check, not a measurement)."""
    statuses: list[int] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(int(message["status"]))

    loop.run_until_complete(app({**scope, "state": dict(scope["state"])}, _receive, send))
    if len(statuses) != 1:
        raise RuntimeError(f"expected one response, got {statuses}")
    return statuses[0]


def wsgi_status(app: WSGIApplication, environ: Scope) -> int:
    """Send one WSGI request and return its status (a check, not a measurement)."""
    statuses: list[int] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        statuses.append(int(status.split(" ", 1)[0]))
        return _write

    _consume(app(dict(environ), start_response))
    if len(statuses) != 1:
        raise RuntimeError(f"expected one response, got {statuses}")
    return statuses[0]


def variant_status(
    variant: Variant, loop: asyncio.AbstractEventLoop, scope: Scope | None = None
) -> int:
    """Send ``scope`` (default: the variant's own) to the variant's app; return the status."""
    scope = variant.scope if scope is None else scope
    if variant.wsgi:
        return wsgi_status(cast("WSGIApplication", variant.app), scope)
    return request_status(cast(ASGIApp, variant.app), scope, loop)


def _write(data: bytes) -> None:
    return None


def _discard_start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return _write


def _consume(body: Iterable[bytes]) -> None:
    # What a server does with the body: iterate it, then close it (PEP 3333), which
    # is where Django sends request_finished and Flask tears its context down.
    try:
        for _chunk in body:
            pass
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


def _wsgi_batch(app: WSGIApplication, environ: Scope, n: int) -> int:
    # Each request gets a shallow copy of the environ, as a server gives each its own.
    # The body is consumed and closed inline (no try/finally: a failure aborts the run).
    start_response = _discard_start
    start = time.perf_counter_ns()
    for _ in range(n):
        body = app(dict(environ), start_response)
        for _chunk in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return time.perf_counter_ns() - start


def _run_batch(variant: Variant, loop: asyncio.AbstractEventLoop, n: int) -> int:
    if variant.wsgi:
        return _wsgi_batch(cast("WSGIApplication", variant.app), variant.scope, n)
    return loop.run_until_complete(_batch(cast(ASGIApp, variant.app), variant.scope, n))


async def _batch(app: ASGIApp, scope: Scope, n: int) -> int:
    # Timed inside the coroutine, so scheduling the batch on the loop is not counted.
    # Each request gets a shallow copy of the scope and a state of its own, as a
    # server gives each (uvicorn: ``"state": app_state.copy()``).
    receive, send = _receive, _discard
    state = scope["state"]  # make_scope gives every scope one
    start = time.perf_counter_ns()
    for _ in range(n):
        await app({**scope, "state": state.copy()}, receive, send)
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
            _run_batch(variant, loop, batch)
    rng = random.Random(seed)
    order = list(variants)
    samples: dict[str, list[float]] = {v.key: [] for v in variants}
    for _ in range(rounds):
        rng.shuffle(order)
        for variant in order:
            elapsed = _run_batch(variant, loop, batch)
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
