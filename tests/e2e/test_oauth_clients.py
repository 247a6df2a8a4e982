"""The FastAPI demo's OAuth2 endpoints, driven by real OAuth2 client libraries over HTTP."""

from __future__ import annotations

from tests.e2e.support import (
    DemoServer,
    check_authorization_code_with_real_clients,
    check_token_flows_with_real_clients,
)


def test_real_oauth2_clients_get_and_use_tokens(demo_server: DemoServer) -> None:
    check_token_flows_with_real_clients(demo_server)


def test_real_oauth2_clients_run_the_authorization_code_grant(demo_server: DemoServer) -> None:
    check_authorization_code_with_real_clients(demo_server)
