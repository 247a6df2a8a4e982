"""Password checks run only in AuthEndpoints' small login pool, never on the event loop."""

from __future__ import annotations

import threading

import pytest

from authmw.passwords import PasswordHasher
from tests.conftest import AuthenticatorFactory
from tests.core.oauth_support import ASGIDriver, WSGIDriver, build_world


class ThreadNotingHasher(PasswordHasher):
    """A real hasher at test cost that notes the thread names it verifies on."""

    def __init__(self) -> None:
        super().__init__(memory_cost=8, time_cost=1, parallelism=1)
        self.threads: list[str] = []

    def verify(self, password: str, stored: str | None) -> tuple[bool, str | None]:
        self.threads.append(threading.current_thread().name)
        return super().verify(password, stored)


@pytest.fixture
def hasher() -> ThreadNotingHasher:
    return ThreadNotingHasher()


@pytest.mark.anyio
async def test_an_asgi_login_runs_whole_in_the_login_pool(
    make_authenticator: AuthenticatorFactory, hasher: ThreadNotingHasher
) -> None:
    world = build_world(make_authenticator)
    reply = await ASGIDriver(world.endpoints).send("/oauth/token", world.login_body())
    assert reply.status == 200
    assert hasher.threads
    assert all(name.startswith("authmw-login") for name in hasher.threads), hasher.threads


def test_a_wsgi_login_hashes_in_the_login_pool_too(
    make_authenticator: AuthenticatorFactory, hasher: ThreadNotingHasher
) -> None:
    world = build_world(make_authenticator)
    reply = WSGIDriver(world.endpoints).send_sync("/oauth/token", world.login_body())
    assert reply.status == 200
    assert hasher.threads
    assert all(name.startswith("authmw-login") for name in hasher.threads), hasher.threads


def test_the_login_pool_is_as_large_as_asked(make_authenticator: AuthenticatorFactory) -> None:
    from authmw.oauth2 import AuthEndpoints  # noqa: PLC0415 - the unit under test

    world = build_world(make_authenticator)
    assert AuthEndpoints(world.auth, login_concurrency=3).login_concurrency == 3
    assert AuthEndpoints(world.auth).login_concurrency >= 1
