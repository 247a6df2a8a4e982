"""The Flask demo app: the contract's routes, answering as the FastAPI demo does.

The expected bodies are those of ``examples/fastapi_app`` (checked there by
``tests/e2e/test_fastapi_app.py``); here they are written out, since this
environment installs no FastAPI to compare with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authmw import Authenticator, Forbidden, InsufficientRole, InvalidRequest, MissingCredentials
from examples.flask_app.app import create_app
from tests.flask.support import EMPLOYEE_TOKEN, MANAGER_TOKEN, assert_rendered
from tests.throttle_window import start_well_inside_a_window

EMPLOYEE = {"Authorization": f"Bearer {EMPLOYEE_TOKEN}"}
MANAGER = {"Authorization": f"Bearer {MANAGER_TOKEN}"}
OLD_PASSWORD = "employee-password"
NEW_PASSWORD = "a much better passphrase"


@pytest.fixture
def app(auth: Authenticator) -> Flask:
    return create_app(auth)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def password_ok(auth: Authenticator, password: str) -> bool:
    return auth.passwords.verify(password, auth.users.get("employee").password_hash)[0]


def test_the_app_keeps_the_authenticator_it_was_given(app: Flask, auth: Authenticator) -> None:
    assert app.extensions["authmw"].authenticator is auth


def test_health_is_public(client: FlaskClient) -> None:
    response = client.get("/health")
    assert (response.status_code, response.json) == (200, {"status": "ok"})


def test_me_returns_the_principal(client: FlaskClient, keys: dict[str, str]) -> None:
    assert client.get("/me", headers=MANAGER).json == {
        "kind": "user",
        "subject": "manager",
        "roles": ["employee", "manager"],
        "scopes": ["appointments:read", "appointments:write", "reports:read"],
        "team": None,
        "teams": ["blue"],
        "credential_id": "t-manager",
        "client_id": "test-app",
    }
    team_key = client.get("/me", headers={"X-API-Key": keys["team_blue"]}).json
    assert team_key is not None
    assert (team_key["kind"], team_key["subject"], team_key["team"]) == (
        "api_key",
        "team:blue",
        "blue",
    )
    assert_rendered(client.get("/me"), MissingCredentials())


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "body"),
    [
        ("GET", "/catalog", EMPLOYEE, 200, {"services": ["check-up", "consultation", "follow-up"]}),
        (
            "GET",
            "/reports",
            MANAGER,
            200,
            {"reports": ["monthly-revenue", "no-shows"], "requested_by": "manager"},
        ),
        ("POST", "/admin/settings", {}, 401, None),
        (
            "GET",
            "/appointments",
            EMPLOYEE,
            200,
            {"appointments": [{"id": "a1", "at": "2030-01-07T09:30:00Z", "service": "check-up"}]},
        ),
        ("GET", "/teams/red/usage", EMPLOYEE, 200, {"team": "red", "requests_this_month": 1234}),
        ("GET", "/teams/blue/usage", EMPLOYEE, 403, None),
        ("GET", "/reports", EMPLOYEE, 403, None),
        ("GET", "/catalog", {}, 401, None),
    ],
)
def test_routes(
    *,
    client: FlaskClient,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
    body: dict[str, Any] | None,
) -> None:
    response = client.open(path, method=method, headers=headers)
    assert response.status_code == status
    if body is not None:
        assert response.json == body


def test_admin_settings(client: FlaskClient, keys: dict[str, str]) -> None:
    admin = {"X-API-Key": keys["admin"]}
    saved = client.post("/admin/settings", headers=admin, json={"maintenance_mode": True})
    assert saved.json == {"saved": {"maintenance_mode": True}}
    default = client.post("/admin/settings", headers=admin)
    assert default.json == {"saved": {"maintenance_mode": False}}
    bad = client.post("/admin/settings", headers=admin, json={"maintenance_mode": "soon"})
    assert bad.status_code == 422  # FastAPI's validation error, not an authentication error
    assert bad.json == {
        "detail": [
            {
                "type": "bool_parsing",
                "loc": ["body", "maintenance_mode"],
                "msg": "Input should be a valid boolean, unable to interpret input",
            }
        ]
    }
    assert "WWW-Authenticate" not in bad.headers
    assert_rendered(client.post("/admin/settings", headers=MANAGER), InsufficientRole())


def test_user_changes_their_password(client: FlaskClient, auth: Authenticator) -> None:
    epoch = auth.users.get("employee").credential_epoch
    response = client.post(
        "/account/password",
        headers=EMPLOYEE,
        json={"current_password": OLD_PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 200
    assert response.json == {"status": "password changed; sign in again"}
    assert password_ok(auth, NEW_PASSWORD)
    assert not password_ok(auth, OLD_PASSWORD)
    assert auth.users.get("employee").credential_epoch > epoch  # the user's tokens end


def test_wrong_current_password(client: FlaskClient, auth: Authenticator) -> None:
    response = client.post(
        "/account/password",
        headers=EMPLOYEE,
        json={"current_password": "not-the-password", "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 400
    assert response.json == {
        "error": "invalid_request",
        "error_description": "The current password is wrong.",
    }
    assert_rendered(response, InvalidRequest("The current password is wrong."))
    assert password_ok(auth, OLD_PASSWORD)


def test_wrong_current_passwords_are_throttled_per_client(
    client: FlaskClient, auth: Authenticator
) -> None:
    # The demo passes the client's address: five failures from one client (the
    # per-account-and-address limit) stop that client, not the user elsewhere.
    wrong = {"current_password": "not it", "new_password": "a much better passphrase"}

    def statuses(address: str, count: int) -> list[int]:
        return [
            client.post(
                "/account/password",
                headers=EMPLOYEE,
                json=wrong,
                environ_base={"REMOTE_ADDR": address},
            ).status_code
            for _ in range(count)
        ]

    start_well_inside_a_window()
    assert statuses("192.0.2.1", 6) == [400] * 5 + [429]
    assert statuses("192.0.2.2", 1) == [400]
    assert password_ok(auth, OLD_PASSWORD)


def test_weak_new_password(client: FlaskClient, auth: Authenticator) -> None:
    response = client.post(
        "/account/password",
        headers=EMPLOYEE,
        json={"current_password": OLD_PASSWORD, "new_password": "short"},
    )
    body = response.json
    assert response.status_code == 400
    assert body is not None
    assert body["error"] == "invalid_request"
    assert "at least 8 characters" in body["error_description"]
    assert "short" not in response.get_data(as_text=True).replace("at least", "")
    assert password_ok(auth, OLD_PASSWORD)


def test_password_body_is_checked_after_authorization(
    client: FlaskClient, auth: Authenticator, keys: dict[str, str]
) -> None:
    # A key may not use the route at all: 403 before the (missing) body is looked at.
    refused = client.post("/account/password", headers={"X-API-Key": keys["admin"]})
    assert_rendered(refused, Forbidden("This kind of credential may not call this endpoint."))
    assert_rendered(client.post("/account/password"), MissingCredentials())
    # The user, with a body missing a field, gets FastAPI's 422, without the input.
    invalid = client.post(
        "/account/password", headers=EMPLOYEE, json={"current_password": OLD_PASSWORD}
    )
    assert invalid.status_code == 422
    assert invalid.get_data() == (
        b'{"detail":[{"type":"missing","loc":["body","new_password"],"msg":"Field required"}]}'
    )
    assert "WWW-Authenticate" not in invalid.headers
    assert password_ok(auth, OLD_PASSWORD)


def test_create_app_configures_itself_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    setup = Authenticator.from_url(url)
    setup.store.create_schema()
    setup.users.create("admin", password="admin-password", roles=["admin"])
    key = setup.keys.create(name="k", owner="admin").key
    setup.close()
    monkeypatch.setenv("AUTHMW_DATABASE_URL", url)
    monkeypatch.delenv("AUTHMW_POLICY", raising=False)
    app = create_app()
    try:
        response = app.test_client().get("/me", headers={"X-API-Key": key})
        assert response.status_code == 200
        assert response.json is not None
        assert response.json["subject"] == "admin"
    finally:
        app.extensions["authmw"].authenticator.close()
