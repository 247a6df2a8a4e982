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

__all__ = ["DemoServer", "authmw_command", "cli_json", "free_port", "run_cli"]

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
