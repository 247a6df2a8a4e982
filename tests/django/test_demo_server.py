"""``authmw demo --framework django``: the Django demo on a real WSGI server, over real HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import DemoServer, run_cli

#: Longer than the default staleness bound (5 s): a liveness deadline, not a timing claim.
REVOCATION_DEADLINE = 30.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    demo = DemoServer(tmp_path_factory.mktemp("django-demo"), framework="django")
    demo.start()
    yield demo
    demo.stop()


def demo_keys(server: DemoServer) -> dict[str, str]:
    keys = json.loads(Path(server.credentials_file).read_text())["keys"]
    return {label: entry["key"] for label, entry in keys.items()}


def test_the_django_demo_serves_the_contract(server: DemoServer) -> None:
    keys = demo_keys(server)
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


def test_a_revocation_from_the_cli_reaches_the_django_server(server: DemoServer) -> None:
    created = run_cli(
        server.url, "keys", "create", "--name", "django-e2e", "--owner", "admin", "--json"
    )
    assert created.returncode == 0, created.stderr
    issued = json.loads(created.stdout)
    headers = {"X-API-Key": issued["key"]}
    with httpx.Client(base_url=server.base_url, timeout=10.0) as http:
        assert http.get("/me", headers=headers).status_code == 200
        revoked = run_cli(server.url, "keys", "revoke", issued["id"])
        assert revoked.returncode == 0, revoked.stderr
        deadline = time.monotonic() + REVOCATION_DEADLINE
        status = 200
        while status == 200 and time.monotonic() < deadline:
            time.sleep(0.25)
            status = http.get("/me", headers=headers).status_code
        assert status == 401
