"""Helpers of the end-to-end tests: a real ``authmw demo`` process, the CLI as a process.

Both run the authmw these tests import (the source tree under test), whatever
way it is installed, through ``python -m authmw`` with that tree first on
``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = [
    "DemoServer",
    "authmw_command",
    "check_cli_revocation_reaches",
    "check_wsgi_demo_contract",
    "cli_json",
    "free_port",
    "run_cli",
]

import httpx
import pytest

import authmw
import authmw_starlette

#: How long a server may take to answer /health. Generous: CI machines can be slow.
STARTUP_TIMEOUT = 60.0
#: How long a CLI process may run.
CLI_TIMEOUT = 60.0


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHMW_")}
    roots = {str(Path(m.__file__ or "").resolve().parents[1]) for m in (authmw, authmw_starlette)}
    env["PYTHONPATH"] = os.pathsep.join([*sorted(roots), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env["PYTHONUNBUFFERED"] = "1"
    return env


ENV = _environment()


def authmw_command(url: str, *args: str) -> list[str]:
    """The argv of ``authmw --db URL ARGS...``."""
    return [sys.executable, "-m", "authmw", "--db", url, *args]


def run_cli(url: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI as its own process; never raises on a non-zero exit."""
    return subprocess.run(
        authmw_command(url, *args),
        input=input,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def cli_json(url: str, *args: str, input: str | None = None) -> Any:
    """Run a CLI command with ``--json``; it must succeed and print one JSON value."""
    done = run_cli(url, *args, "--json", input=input)
    assert done.returncode == 0, f"authmw {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
    return json.loads(done.stdout)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class DemoServer:
    """One ``authmw demo`` process on a database in ``directory``."""

    def __init__(self, directory: Path, name: str = "demo.db", framework: str = "fastapi") -> None:
        self.directory = directory
        self.framework = framework
        self.db_path = directory / name
        self.url = f"sqlite:///{self.db_path}"
        self.credentials_file = directory / f"{name}.demo.json"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log_path = directory / f"server-{name}.log"
        self._starts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        """Everything the server printed so far (all its starts)."""
        return self._log_path.read_text(errors="replace") if self._log_path.exists() else ""

    def start(self) -> None:
        """Start the server and wait until it answers /health.

        The free port is picked just before the start, so another process can
        take it in between; then the server exits at once and is started again
        on a new port (three tries).
        """
        for _ in range(3):
            self.port = free_port()
            self._starts += 1
            with self._log_path.open("ab") as log:
                log.write(f"--- start {self._starts} on port {self.port}\n".encode())
                log.flush()
                self.process = subprocess.Popen(
                    authmw_command(
                        self.url, "demo", "--framework", self.framework, "--port", str(self.port)
                    ),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.directory,
                    env=ENV,
                )
            if self._wait_healthy():
                return
            if "address already in use" not in self.output().lower():
                break
        self.stop()
        pytest.fail(f"authmw demo did not come up; its output:\n{self.output()}")

    def _wait_healthy(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2.0).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        """Stop the server (SIGTERM: uvicorn shuts down cleanly), killing it if it hangs."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)

    def credentials(self) -> dict[str, Any]:
        """The demo's credentials file: ``{"users": {name: password}, "keys": {label: {...}}}``."""
        data: dict[str, Any] = json.loads(self.credentials_file.read_text())
        return data

    def key(self, label: str) -> str:
        """The value of a seeded key: ``admin``, ``team`` or ``restricted``."""
        value: str = self.credentials()["keys"][label]["key"]
        return value


#: Longer than the default staleness bound (5 s): a liveness deadline, not a timing claim.
REVOCATION_DEADLINE = 30.0


def _demo_keys(server: DemoServer) -> dict[str, str]:
    keys = json.loads(Path(server.credentials_file).read_text())["keys"]
    return {label: entry["key"] for label, entry in keys.items()}


def check_wsgi_demo_contract(server: DemoServer) -> None:
    """Call a WSGI demo served by ``authmw demo`` over HTTP: a few contract routes."""
    keys = _demo_keys(server)
    with httpx.Client(base_url=server.base_url, timeout=10.0) as http:
        health = http.get("/health")
        assert health.json() == {"status": "ok"}
        assert health.headers["server"] == "waitress"  # a real WSGI server, not a dev server
        me = http.get("/me", headers={"Authorization": f"apikey {keys['admin']}"})
        assert me.status_code == 200, me.text
        assert me.json()["kind"] == "api_key"
        assert me.json()["subject"] == "admin"
        assert http.get("/reports", headers={"X-API-Key": keys["admin"]}).status_code == 200
        anonymous = http.get("/me")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == 'Bearer realm="api", apikey realm="api"'
        refused = http.get("/reports", headers={"Authorization": f"Bearer {keys['restricted']}"})
        assert refused.status_code == 403
        assert refused.json()["error"] == "insufficient_role"
        other_team = http.get("/teams/green/usage", headers={"X-API-Key": keys["team"]})
        assert other_team.status_code == 403
        assert http.get("/teams/blue/usage", headers={"X-API-Key": keys["team"]}).status_code == 200


def check_cli_revocation_reaches(server: DemoServer) -> None:
    """Revoke a key with the CLI (another process); the server refuses it within the bound."""
    created = cli_json(server.url, "keys", "create", "--name", "e2e-revoke", "--owner", "admin")
    headers = {"X-API-Key": created["key"]}
    with httpx.Client(base_url=server.base_url, timeout=10.0) as http:
        assert http.get("/me", headers=headers).status_code == 200
        revoked = run_cli(server.url, "keys", "revoke", created["id"])
        assert revoked.returncode == 0, revoked.stderr
        deadline = time.monotonic() + REVOCATION_DEADLINE
        status = 200
        while status == 200 and time.monotonic() < deadline:
            time.sleep(0.25)
            status = http.get("/me", headers=headers).status_code
        assert status == 401
