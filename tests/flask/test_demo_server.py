"""``authmw demo --framework flask``: the Flask demo on a real WSGI server, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support import (
    DemoServer,
    check_authorization_code_with_real_clients,
    check_cli_revocation_reaches,
    check_stopping_keeps_the_last_use_of_a_key,
    check_token_flows_with_real_clients,
    check_wsgi_demo_contract,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    demo = DemoServer(tmp_path_factory.mktemp("flask-demo"), framework="flask")
    demo.start()
    yield demo
    demo.stop()


def test_the_flask_demo_serves_the_contract(server: DemoServer) -> None:
    check_wsgi_demo_contract(server)


def test_a_revocation_from_the_cli_reaches_the_flask_server(server: DemoServer) -> None:
    check_cli_revocation_reaches(server)


def test_real_oauth2_clients_get_and_use_tokens_from_the_flask_demo(server: DemoServer) -> None:
    check_token_flows_with_real_clients(server)


def test_real_oauth2_clients_run_the_authorization_code_grant_on_the_flask_demo(
    server: DemoServer,
) -> None:
    check_authorization_code_with_real_clients(server)


def test_stopping_the_flask_demo_keeps_the_last_use_of_a_key(tmp_path: Path) -> None:
    # waitress leaves SIGTERM to its default action; the demo exits through Python.
    check_stopping_keeps_the_last_use_of_a_key(tmp_path, "flask")
