"""End-to-end fixtures: a demo server per test module, and its output on failure.

The server's output is attached to the report of any test that fails while
using it, so a failure shows what the server said.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.support import DemoServer


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """One demo server for a test module, on a fresh database."""
    server = DemoServer(tmp_path_factory.mktemp("demo"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(demo_server: DemoServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=demo_server.base_url, timeout=10.0) as http:
        yield http


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the output of every demo server a failed test used to its report."""
    report = yield
    if report.failed:
        funcargs: dict[str, Any] = getattr(item, "funcargs", {})
        for value in funcargs.values():
            servers = value if isinstance(value, list) else [value]
            for server in servers:
                if isinstance(server, DemoServer):
                    report.sections.append((f"authmw demo output ({server.url})", server.output()))
    return report
