"""The Django demo app: every route of the contract, over its WSGI app, as the FastAPI demo answers.

Django has one set of settings per process and these tests configured them, so
``create_app`` only hands Django the authenticator; the demo's URLconf is
switched in for the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from authmw import Authenticator, InvalidRequest
from examples.django_app import app as demo
from examples.django_app.app import create_app
from tests.django.support import EMPLOYEE_TOKEN, MANAGER_TOKEN, call_wsgi
from tests.throttle_window import start_well_inside_a_window

ROOT = Path(__file__).resolve().parents[2]
USER = {"Authorization": f"Bearer {EMPLOYEE_TOKEN}"}
MANAGER = {"Authorization": f"Bearer {MANAGER_TOKEN}"}


class Demo:
    def __init__(self, app: Any) -> None:
        self.app = app

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: Any = None,
        *,
        remote_addr: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        raw = (
            b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        )
        status, headers_out, content = call_wsgi(
            self.app, method, path, headers, raw, remote_addr=remote_addr
        )
        return status, {k.lower(): v for k, v in headers_out}, content


@pytest.fixture
def client(auth: Authenticator) -> Iterator[Demo]:
    with override_settings(ROOT_URLCONF=demo.SETTINGS["ROOT_URLCONF"]):
        app = create_app(auth)
        assert app.authenticator is auth
        yield Demo(app)


def test_settings_are_minimal() -> None:
    assert demo.SETTINGS["MIDDLEWARE"] == ["authmw_django.AuthMiddleware"]
    assert demo.SETTINGS["DATABASES"] == {}
    assert demo.SETTINGS["ROOT_URLCONF"] == "examples.django_app.urls"


def test_health_is_public(client: Demo) -> None:
    assert client.request("GET", "/health")[::2] == (200, b'{"status":"ok"}')


def test_me(client: Demo, keys: dict[str, str]) -> None:
    status, headers, body = client.request("GET", "/me", {"X-API-Key": keys["team_blue"]})
    assert status == 200
    assert headers["content-type"] == "application/json"
    me = json.loads(body)
    assert me == {
        "kind": "api_key",
        "subject": "team:blue",
        "roles": ["admin", "employee", "manager"],
        "scopes": ["admin", "appointments:read", "appointments:write", "reports:read"],
        "team": "blue",
        "teams": ["blue"],
        "credential_id": me["credential_id"],
        "client_id": None,
    }
    status, headers, body = client.request("GET", "/me")
    assert status == 401
    assert json.loads(body)["error"] == "missing_credentials"
    assert headers["www-authenticate"].startswith('Bearer realm="api"')


def test_routes(client: Demo, keys: dict[str, str]) -> None:
    restricted = {"X-API-Key": keys["restricted"]}
    admin = {"X-API-Key": keys["admin"]}
    assert client.request("GET", "/catalog", restricted)[::2] == (
        200,
        b'{"services":["check-up","consultation","follow-up"]}',
    )
    assert client.request("GET", "/reports", MANAGER)[::2] == (
        200,
        b'{"reports":["monthly-revenue","no-shows"],"requested_by":"manager"}',
    )
    assert client.request("GET", "/reports", USER)[0] == 403
    assert client.request("GET", "/reports", restricted)[0] == 403
    assert client.request("POST", "/admin/settings", admin)[::2] == (
        200,
        b'{"saved":{"maintenance_mode":false}}',
    )
    saved = client.request("POST", "/admin/settings", admin, {"maintenance_mode": True})
    assert saved[2] == b'{"saved":{"maintenance_mode":true}}'
    assert client.request("POST", "/admin/settings", admin, {"maintenance_mode": "x"})[0] == 422
    assert client.request("POST", "/admin/settings", MANAGER)[0] == 403
    assert client.request("GET", "/appointments", USER)[::2] == (
        200,
        b'{"appointments":[{"id":"a1","at":"2030-01-07T09:30:00Z","service":"check-up"}]}',
    )
    assert client.request("GET", "/teams/red/usage", USER)[::2] == (
        200,
        b'{"team":"red","requests_this_month":1234}',
    )
    refused = client.request("GET", "/teams/blue/usage", USER)
    assert refused[0] == 403
    assert json.loads(refused[2])["error"] == "forbidden"


def test_methods_and_unknown_paths(client: Demo) -> None:
    status, headers, body = client.request("POST", "/health")
    assert (status, body, headers["allow"]) == (405, b'{"detail":"Method Not Allowed"}', "GET")
    # The method is checked before the credential, as FastAPI's router does.
    assert client.request("GET", "/admin/settings")[0] == 405
    assert client.request("GET", "/nowhere")[::2] == (404, b'{"detail":"Not Found"}')


def password_ok(auth: Authenticator, password: str) -> bool:
    return auth.passwords.verify(password, auth.users.get("employee").password_hash)[0]


def test_user_changes_their_password(client: Demo, auth: Authenticator) -> None:
    epoch = auth.users.get("employee").credential_epoch
    change = {"current_password": "employee-password", "new_password": "a much better passphrase"}
    status, _, body = client.request("POST", "/account/password", USER, change)
    assert (status, body) == (200, b'{"status":"password changed; sign in again"}')
    assert password_ok(auth, "a much better passphrase")
    assert auth.users.get("employee").credential_epoch > epoch


def test_password_errors_are_authmw_errors(client: Demo, auth: Authenticator) -> None:
    wrong = {"current_password": "nope", "new_password": "a much better passphrase"}
    status, headers, body = client.request("POST", "/account/password", USER, wrong)
    rendered = InvalidRequest("The current password is wrong.").render(auth.settings.realm)
    assert (status, body) == (rendered.status, rendered.body)
    assert headers["www-authenticate"] == dict(rendered.headers)["WWW-Authenticate"]
    weak = {"current_password": "employee-password", "new_password": "short"}
    status, _, body = client.request("POST", "/account/password", USER, weak)
    assert status == 400
    assert "at least 8 characters" in json.loads(body)["error_description"]
    assert password_ok(auth, "employee-password")


def test_wrong_current_passwords_are_throttled_per_client(
    client: Demo, auth: Authenticator
) -> None:
    # The demo passes the client's address: five failures from one client (the
    # per-account-and-address limit) stop that client, not the user elsewhere.
    wrong = {"current_password": "nope", "new_password": "a much better passphrase"}

    def statuses(address: str, count: int) -> list[int]:
        return [
            client.request("POST", "/account/password", USER, wrong, remote_addr=address)[0]
            for _ in range(count)
        ]

    start_well_inside_a_window()
    assert statuses("192.0.2.1", 6) == [400] * 5 + [429]
    assert statuses("192.0.2.2", 1) == [400]
    assert password_ok(auth, "employee-password")


def test_password_route_checks_the_caller_before_the_body(
    client: Demo, keys: dict[str, str]
) -> None:
    assert client.request("POST", "/account/password", {"X-API-Key": keys["admin"]})[0] == 403
    assert client.request("POST", "/account/password")[0] == 401
    status, _, body = client.request(
        "POST", "/account/password", USER, {"current_password": "employee-password"}
    )
    assert status == 422
    assert b"employee-password" not in body  # never echoes a secret
    assert client.request("POST", "/account/password", USER, b"{not json")[0] == 422


def test_create_app_configures_django_and_itself_from_the_environment(tmp_path: Path) -> None:
    # A fresh process: settings unconfigured, as under `authmw demo` or a WSGI server.
    url = f"sqlite:///{tmp_path / 'env.db'}"
    setup = Authenticator.from_url(url)
    setup.store.create_schema()
    setup.users.create("admin", password="admin-password", roles=["admin"])
    key = setup.keys.create(name="k", owner="admin").key
    setup.close()
    script = (
        "import json, sys\n"
        "from examples.django_app.app import create_app\n"
        "from tests.django.support import call_wsgi\n"
        "app = create_app()\n"
        "status, _, body = call_wsgi(app, 'GET', '/me', {'X-API-Key': sys.argv[1]})\n"
        "print(status, json.loads(body)['subject'])\n"
        "app.authenticator.close()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHMW_", "DJANGO_"))}
    env["AUTHMW_DATABASE_URL"] = url
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "plugins")])
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script, key],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["200", "admin"]
