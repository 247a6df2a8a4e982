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
    assert_rendered(bad, InvalidRequest("maintenance_mode must be true or false."))
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
    # The user, with a body missing a field, gets an invalid_request.
    invalid = client.post(
        "/account/password", headers=EMPLOYEE, json={"current_password": OLD_PASSWORD}
    )
    expected = InvalidRequest(
        "The body must be a JSON object with current_password and new_password."
    )
    assert_rendered(invalid, expected)
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
