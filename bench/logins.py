"""Logins never hold up other requests: API-key latency with and without 20 logins in flight.

A real ``authmw demo`` (FastAPI on uvicorn, argon2id at the OWASP parameters) runs
in its own process. One client thread sends API-key requests (``GET /me``) one
after another and records each latency: first with nothing else going on (idle),
then while 20 other threads log in as fast as the server lets them (password
grant, a fresh argon2id verification each). The target compares the two p99s.

Why it holds: the token endpoint runs in a worker thread, and password checks
are limited to a few at a time (``AuthEndpoints(login_concurrency=...)``), so
logins queue among themselves instead of taking every core from the event loop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.harness import percentile

__all__ = ["LoginResult", "measure_logins"]

_LOGIN_THREADS = 20


@dataclass(frozen=True)
class LoginResult:
    """p50/p99 latency of API-key requests, idle and under logins, and the login rate."""

    idle_p50_ms: float
    idle_p99_ms: float
    busy_p50_ms: float
    busy_p99_ms: float
    requests: int
    logins: int
    login_failures: int

    @property
    def ratio(self) -> float:
        """Busy p99 over idle p99 (target ≤ 2)."""
        return self.busy_p99_ms / self.idle_p99_ms


def _free_port() -> int:
    import socket  # noqa: PLC0415 - only here

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
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
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the demo server did not start")


def _latencies(http: httpx.Client, key: str, count: int) -> list[float]:
    out = []
    for _ in range(count):
        start = time.perf_counter()
        response = http.get("/me", headers={"X-API-Key": key})
        out.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text
    return out


def measure_logins(*, requests: int) -> LoginResult:
    """Run the experiment; ``requests`` API-key requests in each phase."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        process, base = _start(directory)
        try:
            data = json.loads((directory / "demo.db.demo.json").read_text())
            key = data["keys"]["admin"]["key"]
            web = data["clients"]["web"]
            form = {
                "grant_type": "password",
                "username": "manager",
                "password": data["users"]["manager"],
            }
            with httpx.Client(base_url=base, timeout=30) as http:
                _latencies(http, key, 200)  # warm up: caches, connections
                idle = _latencies(http, key, requests)
                stop = threading.Event()
                counts = {"ok": 0, "failed": 0}
                lock = threading.Lock()

                def login() -> None:
                    with httpx.Client(base_url=base, timeout=60) as own:
                        while not stop.is_set():
                            reply = own.post(
                                "/oauth/token",
                                data=form,
                                auth=(web["client_id"], web["client_secret"]),
                            )
                            with lock:
                                counts["ok" if reply.status_code == 200 else "failed"] += 1

                threads = [threading.Thread(target=login) for _ in range(_LOGIN_THREADS)]
                for thread in threads:
                    thread.start()
                time.sleep(1.0)  # let the logins pile up
                busy = _latencies(http, key, requests)
                stop.set()
                for thread in threads:
                    thread.join()
        finally:
            process.terminate()
            process.wait(timeout=30)
    return LoginResult(
        idle_p50_ms=percentile(idle, 50),
        idle_p99_ms=percentile(idle, 99),
        busy_p50_ms=percentile(busy, 50),
        busy_p99_ms=percentile(busy, 99),
        requests=requests,
        logins=counts["ok"],
        login_failures=counts["failed"],
    )


if __name__ == "__main__":  # pragma: no cover - python -m bench.logins
    result = measure_logins(requests=1000)
    print(result, f"ratio {result.ratio:.2f}")
