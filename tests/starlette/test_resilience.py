"""A failing store fails closed; a slow store never blocks the event loop."""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from authmw import Authenticator, Settings
from authmw.keys import generate
from authmw.store import KeyMatch
from authmw.store.sql import SQLStore
from authmw_starlette import AuthMiddleware, get_principal, requires_auth
from tests.starlette.support import MakeAuth, client_for, issue_keys

pytestmark = pytest.mark.anyio


#: Upper bound on every wait, so a regression fails the test instead of hanging it.
TIMEOUT = 10.0


async def health(request: Request) -> Response:
    return PlainTextResponse("ok")


async def whoami(request: Request) -> Response:
    error = request.state.auth_error
    return JSONResponse({"error": None if error is None else type(error).__name__})


@requires_auth()
async def me(request: Request) -> Response:
    principal = get_principal(request)
    assert principal is not None
    return PlainTextResponse(principal.subject)


def make_app(auth: Authenticator) -> Starlette:
    return Starlette(
        routes=[Route("/health", health), Route("/whoami", whoami), Route("/me", me)],
        middleware=[Middleware(AuthMiddleware, authenticator=auth)],
    )


class BrokenStore(SQLStore):
    """A real store whose verification lookup fails while ``down`` is set."""

    down = False

    def find_key(self, key_id: str) -> KeyMatch | None:
        if self.down:
            raise OperationalError("SELECT authmw_api_keys", {}, Exception("server closed"))
        return super().find_key(key_id)


class GatedStore(SQLStore):
    """A real store whose lookup of one key waits until the test opens the gate."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.gated: set[str] = set()
        self.entered = threading.Event()
        self.release = threading.Event()

    def find_key(self, key_id: str) -> KeyMatch | None:
        if key_id in self.gated:
            self.entered.set()
            if not self.release.wait(TIMEOUT):
                raise TimeoutError("the test never released the gate")
        return super().find_key(key_id)


def key_id(key: str) -> str:
    return key.split("_")[1]


# -- fail closed -------------------------------------------------------------------------------


async def test_store_error_fails_closed_with_503(
    make_auth: MakeAuth,
) -> None:
    store = BrokenStore("sqlite://")
    auth = make_auth(store, Settings(cache_ttl=0))
    keys = issue_keys(auth)
    store.down = True
    async with client_for(make_app(auth)) as client:
        protected = await client.get("/me", headers={"X-API-Key": keys["admin"]})
        public = await client.get("/health", headers={"X-API-Key": keys["admin"]})
        seen = await client.get("/whoami", headers={"X-API-Key": keys["admin"]})
    assert protected.status_code == 503
    assert protected.json() == {
        "error": "temporarily_unavailable",
        "error_description": "Credentials cannot be verified right now; try again shortly.",
    }
    assert protected.headers["retry-after"] == "1"
    assert "www-authenticate" not in protected.headers
    assert public.status_code == 200
    assert public.text == "ok"
    assert seen.json() == {"error": "ServiceUnavailable"}


async def test_store_recovers_after_outage(
    make_auth: MakeAuth,
) -> None:
    store = BrokenStore("sqlite://")
    auth = make_auth(store, Settings(cache_ttl=0))
    keys = issue_keys(auth)
    async with client_for(make_app(auth)) as client:
        store.down = True
        during = await client.get("/me", headers={"X-API-Key": keys["admin"]})
        store.down = False
        after = await client.get("/me", headers={"X-API-Key": keys["admin"]})
    assert during.status_code == 503
    assert after.status_code == 200
    assert after.text == "admin"


async def test_unreachable_database_fails_closed(tmp_path: Path) -> None:
    # A database file in a directory that does not exist: every connection fails.
    dead = Authenticator(SQLStore(f"sqlite:///{tmp_path / 'missing' / 'authmw.db'}"))
    key, _ = generate()
    try:
        async with client_for(make_app(dead)) as client:
            protected = await client.get("/me", headers={"Authorization": f"Bearer {key}"})
            public = await client.get("/health", headers={"Authorization": f"Bearer {key}"})
    finally:
        dead.close()
    assert protected.status_code == 503
    assert protected.json()["error"] == "temporarily_unavailable"
    assert protected.headers["retry-after"] == "1"
    assert public.status_code == 200


async def test_malformed_key_never_reaches_the_broken_store(make_auth: MakeAuth) -> None:
    # A key that fails the format check is refused as invalid_token without a
    # lookup, so an outage does not turn garbage into a 503.
    store = BrokenStore("sqlite://")
    auth = make_auth(store)
    store.down = True
    async with client_for(make_app(auth)) as client:
        response = await client.get("/me", headers={"X-API-Key": "amk_garbage"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


# -- the event loop never waits on the store ---------------------------------------------------


async def test_cold_verification_does_not_block_other_requests(
    make_auth: MakeAuth,
) -> None:
    store = GatedStore("sqlite://")
    # A long staleness bound keeps the warm key warm however slow the machine is.
    auth = make_auth(store, Settings(cache_ttl=3600))
    keys = issue_keys(auth)
    cold, warm = keys["team_blue"], keys["admin"]
    store.gated.add(key_id(cold))
    results: dict[str, httpx.Response] = {}

    async with client_for(make_app(auth)) as client:
        first_warm = await client.get("/me", headers={"X-API-Key": warm})
        assert first_warm.status_code == 200

        async def cold_request() -> None:
            results["cold"] = await client.get("/me", headers={"X-API-Key": cold})

        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(cold_request)
                try:
                    # Wait, off the loop, until the cold lookup sits inside the store.
                    entered = await anyio.to_thread.run_sync(store.entered.wait, TIMEOUT)
                    assert entered
                    # Had that lookup run on the event loop, nothing below could run
                    # before the gate timed out, and the cold request would be over.
                    results["public"] = await client.get("/health")
                    results["warm"] = await client.get("/me", headers={"X-API-Key": warm})
                    assert "cold" not in results
                finally:
                    store.release.set()

    assert results["public"].status_code == 200
    assert results["warm"].status_code == 200
    assert results["warm"].text == "admin"
    assert results["cold"].status_code == 200
    assert results["cold"].text == "team:blue"
