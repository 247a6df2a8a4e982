"""The FastAPI example app in-process: the user-token routes, and its wiring.

A real access token, issued by the core to a first-party app, goes through the
real middleware, dependencies and store.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from authmw import Authenticator, PasswordHasher, Settings
from authmw.demo import load_app
from authmw.store.sql import SQLStore
from examples.fastapi_app.app import create_app
from tests.conftest import SECRET_KEY
from tests.throttle_window import start_well_inside_a_window

pytestmark = pytest.mark.anyio

OLD_PASSWORD = "employee-password"
NEW_PASSWORD = "a much better passphrase"


class RecordingHasher(PasswordHasher):
    """A real hasher (at test cost) that notes the threads it hashes on."""

    def __init__(self) -> None:
        super().__init__(memory_cost=1024, time_cost=1)
        self.threads: set[int] = set()

    def hash(self, password: str) -> str:
        self.threads.add(threading.get_ident())
        return super().hash(password)


@pytest.fixture
def hasher() -> RecordingHasher:
    return RecordingHasher()


@pytest.fixture
def auth(hasher: RecordingHasher) -> Iterator[Authenticator]:
    authenticator = Authenticator(
        SQLStore("sqlite://"), settings=Settings(secret_keys=(SECRET_KEY,)), passwords=hasher
    )
    authenticator.store.create_schema()
    authenticator.users.create("admin", password="admin-password", roles=["admin"])
    employee = authenticator.users.create(
        "employee", password=OLD_PASSWORD, roles=["employee"], teams=["green"]
    )
    app = authenticator.clients.create_app(
        "web", redirect_uris=["https://app.example/cb"], first_party=True
    )
    issued = authenticator.tokens.issue_for_user(
        employee, app.client, authenticator.policy.scopes_for(employee.roles)
    )
    authenticator.test_token = issued.access_token  # type: ignore[attr-defined]
    hasher.threads.clear()
    yield authenticator
    authenticator.close()


@pytest.fixture
def app(auth: Authenticator) -> FastAPI:
    return create_app(auth)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def user(auth: Authenticator) -> dict[str, str]:
    """The headers of the employee's access token."""
    return {"Authorization": f"Bearer {auth.test_token}"}  # type: ignore[attr-defined]


def password_ok(auth: Authenticator, password: str) -> bool:
    return auth.passwords.verify(password, auth.users.get("employee").password_hash)[0]


async def test_user_changes_their_password(
    user: dict[str, str], client: httpx.AsyncClient, auth: Authenticator, hasher: RecordingHasher
) -> None:
    epoch = auth.users.get("employee").credential_epoch
    response = await client.post(
        "/account/password",
        headers=user,
        json={"current_password": OLD_PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 200, response.text
    assert password_ok(auth, NEW_PASSWORD)
    assert not password_ok(auth, OLD_PASSWORD)
    assert auth.users.get("employee").credential_epoch > epoch  # the user's tokens end
    # The endpoint is a plain def: hashing ran in a worker thread, not on the event loop.
    assert hasher.threads
    assert threading.get_ident() not in hasher.threads


async def test_wrong_current_password(
    user: dict[str, str], client: httpx.AsyncClient, auth: Authenticator
) -> None:
    response = await client.post(
        "/account/password",
        headers=user,
        json={"current_password": "not-the-password", "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "The current password is wrong.",
    }
    assert password_ok(auth, OLD_PASSWORD)


async def test_wrong_current_passwords_are_throttled_per_client(
    user: dict[str, str], app: FastAPI, auth: Authenticator
) -> None:
    # The demo passes the client's address: five failures from one client (the
    # per-account-and-address limit) stop that client, not the user elsewhere.
    wrong = {"current_password": "not-the-password", "new_password": NEW_PASSWORD}

    async def statuses(host: str, count: int) -> list[int]:
        transport = httpx.ASGITransport(app=app, client=(host, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return [
                (await http.post("/account/password", headers=user, json=wrong)).status_code
                for _ in range(count)
            ]

    start_well_inside_a_window()
    assert await statuses("192.0.2.1", 6) == [400] * 5 + [429]
    assert await statuses("192.0.2.2", 1) == [400]
    assert password_ok(auth, OLD_PASSWORD)


async def test_weak_new_password(
    user: dict[str, str], client: httpx.AsyncClient, auth: Authenticator
) -> None:
    response = await client.post(
        "/account/password",
        headers=user,
        json={"current_password": OLD_PASSWORD, "new_password": "short"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "at least 8 characters" in response.json()["error_description"]
    assert "short" not in response.text.replace("at least", "")
    assert password_ok(auth, OLD_PASSWORD)


async def test_password_body_is_validated_after_authorization(
    user: dict[str, str], client: httpx.AsyncClient, auth: Authenticator
) -> None:
    key = auth.keys.create(name="k", owner="admin").key
    # A key may not use the route at all: 403 before the (missing) body is looked at.
    refused = await client.post("/account/password", headers={"X-API-Key": key})
    assert refused.status_code == 403
    assert refused.json()["error"] == "forbidden"
    assert (await client.post("/account/password")).status_code == 401
    # The user, with a body missing a field, gets FastAPI's validation error.
    invalid = await client.post(
        "/account/password", headers=user, json={"current_password": OLD_PASSWORD}
    )
    assert invalid.status_code == 422


async def test_user_principal_on_the_routes(
    user: dict[str, str], client: httpx.AsyncClient
) -> None:
    me = await client.get("/me", headers=user)
    assert me.json()["kind"] == "user"
    assert me.json()["subject"] == "employee"
    assert (await client.get("/appointments", headers=user)).status_code == 200
    assert (await client.get("/teams/green/usage", headers=user)).status_code == 200
    assert (await client.get("/teams/blue/usage", headers=user)).status_code == 403
    reports = await client.get("/reports", headers=user)
    assert reports.status_code == 403
    assert reports.json()["error"] == "insufficient_role"


async def test_the_app_keeps_the_authenticator_it_was_given(
    app: FastAPI, auth: Authenticator
) -> None:
    assert app.state.authenticator is auth


async def test_create_app_configures_itself_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    setup = Authenticator.from_url(url)
    setup.store.create_schema()
    setup.users.create("admin", password="admin-password", roles=["admin"])
    key = setup.keys.create(name="k", owner="admin").key
    setup.close()
    monkeypatch.setenv("AUTHMW_DATABASE_URL", url)
    app = create_app()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.get("/me", headers={"X-API-Key": key})
        assert response.status_code == 200
        assert response.json()["subject"] == "admin"
    finally:
        app.state.authenticator.close()


async def test_the_demo_serves_this_app(user: dict[str, str], auth: Authenticator) -> None:
    factory = load_app("fastapi")
    assert factory.__module__ == "authmw_examples.fastapi_app.app"
    app = factory(auth)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        assert (await http.get("/health")).json() == {"status": "ok"}
        assert (await http.get("/me", headers=user)).json()["subject"] == "employee"
