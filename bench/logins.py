"""Logins never hold up other requests: API-key latency with and without 20 logins in flight.

A real ``authmw demo`` (FastAPI on uvicorn, argon2id at the OWASP parameters) runs
in its own process. This process sends API-key requests (``GET /me``) one after
another and records each latency. Another process keeps 20 password logins in
flight whenever it is told to (each a fresh argon2id verification), over 20
keep-alive connections with a prebuilt request, so that generating the load
costs next to no CPU: on a small machine a heavier load generator would compete
with the server for the cores and be measured instead of it. The measuring
client never shares an interpreter with the load either (it would measure its
own GIL).

The phases alternate, idle then busy, ``segments`` times, so that whatever else
the machine does over the run falls on both alike; the latencies of each kind
are pooled and the target compares the two p99s.

Why it holds: logins run in a small pool of threads, and the password hash, the
one part that takes a core for tens of milliseconds, runs in threads of the
lowest scheduling priority (``SCHED_IDLE`` on Linux), which give up their core
the moment the event loop wants it (``AuthEndpoints(login_concurrency=...)``).
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from bench.harness import percentile

__all__ = ["LOGIN_THREADS", "LoginResult", "measure_logins"]

#: Logins in flight during the busy phases (the issue's figure).
LOGIN_THREADS = 20


@dataclass(frozen=True)
class LoginResult:
    """p50/p99 latency of API-key requests, idle and under logins, and the login rate."""

    idle_p50_ms: float
    idle_p99_ms: float
    busy_p50_ms: float
    busy_p99_ms: float
    requests: int
    #: Logins completed while the busy phases were measured, and failed logins in all.
    logins: int
    login_failures: int
    busy_s: float

    @property
    def ratio(self) -> float:
        """Busy p99 over idle p99 (target ≤ 2)."""
        return self.busy_p99_ms / self.idle_p99_ms

    @property
    def logins_per_s(self) -> float:
        """Logins completed per second of busy phase."""
        return self.logins / self.busy_s if self.busy_s else 0.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHMW_")}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "authmw", "--db", f"sqlite:///{directory / 'demo.db'}"),
            *("demo", "--port", str(port)),
        ],
        cwd=directory,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process, port
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the demo server did not start")


def _login_request(client_id: str, secret: str, username: str, password: str) -> bytes:
    body = urlencode({"grant_type": "password", "username": username, "password": password})
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    head = (
        "POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Basic {basic}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return (head + body).encode()


def _recv(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionError("the server closed the connection")
    return chunk


def _read_response(sock: socket.socket, buffer: bytes) -> tuple[bytes, bytes]:
    """Read one response (the server always sends Content-Length); return status and leftover."""
    while b"\r\n\r\n" not in buffer:
        buffer += _recv(sock)
    head, _, rest = buffer.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        rest += _recv(sock)
    return head.split(b" ", 2)[1], rest[length:]


@dataclass(frozen=True)
class _Signals:
    """Shared between this process and the load process (multiprocessing events and counters)."""

    go: Any
    done: Any
    in_flight: Any
    ok: Any
    failed: Any


def _log_in_while_told(port: int, request: bytes, signals: _Signals) -> None:
    """The load process: ``LOGIN_THREADS`` threads, each logging in again and again while ``go``."""
    in_flight = signals.in_flight

    def worker() -> None:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buffer = b""
            while not signals.done.is_set():
                if not signals.go.wait(0.05):
                    continue
                with in_flight.get_lock():
                    in_flight.value += 1
                try:
                    sock.sendall(request)
                    status, buffer = _read_response(sock, buffer)
                finally:
                    with in_flight.get_lock():
                        in_flight.value -= 1
                counter = signals.ok if status == b"200" else signals.failed
                with counter.get_lock():
                    counter.value += 1

    threads = [threading.Thread(target=worker) for _ in range(LOGIN_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _latencies(http: httpx.Client, key: str, count: int) -> list[float]:
    out = []
    for _ in range(count):
        start = time.perf_counter()
        response = http.get("/me", headers={"X-API-Key": key})
        out.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"GET /me answered {response.status_code}")
    return out


def measure_logins(*, requests: int, segments: int = 3) -> LoginResult:
    """Run the experiment: ``segments`` idle and busy phases of ``requests`` requests each."""
    context = multiprocessing.get_context("spawn")
    signals = _Signals(
        go=context.Event(),
        done=context.Event(),
        in_flight=context.Value("i", 0),
        ok=context.Value("i", 0),
        failed=context.Value("i", 0),
    )
    go, in_flight, ok = signals.go, signals.in_flight, signals.ok
    idle: list[float] = []
    busy: list[float] = []
    busy_s = 0.0
    logins = 0
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        process, port = _start(directory)
        load = None
        try:
            data = json.loads((directory / "demo.db.demo.json").read_text())
            key = data["keys"]["admin"]["key"]
            web = data["clients"]["web"]
            request = _login_request(
                web["client_id"], web["client_secret"], "manager", data["users"]["manager"]
            )
            load = context.Process(
                target=_log_in_while_told,
                args=(port, request, signals),
            )
            load.start()
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                _latencies(http, key, 200)  # warm up: caches, connections
                for _ in range(segments):
                    idle += _latencies(http, key, requests)
                    go.set()
                    time.sleep(0.5)  # let the logins pile up in the server's queue
                    started, before = time.perf_counter(), ok.value
                    busy += _latencies(http, key, requests)
                    busy_s += time.perf_counter() - started
                    logins += ok.value - before
                    go.clear()
                    while in_flight.value:  # the server drains its queue before the next idle
                        time.sleep(0.01)
        finally:
            signals.done.set()
            go.set()
            if load is not None:
                load.join(timeout=60)
            process.terminate()
            process.wait(timeout=30)
    return LoginResult(
        idle_p50_ms=percentile(idle, 50),
        idle_p99_ms=percentile(idle, 99),
        busy_p50_ms=percentile(busy, 50),
        busy_p99_ms=percentile(busy, 99),
        requests=len(busy),
        logins=logins,
        login_failures=signals.failed.value,
        busy_s=busy_s,
    )


if __name__ == "__main__":  # pragma: no cover - python -m bench.logins
    result = measure_logins(requests=1000)
    print(result, f"ratio {result.ratio:.2f}, {result.logins_per_s:.0f} logins/s")
