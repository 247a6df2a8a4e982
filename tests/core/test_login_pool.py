"""Password checks run only in AuthEndpoints' hashing pool, never on the event loop.

The pool's threads run at the lowest scheduling priority the system grants, so a
verification gives its core up the moment another thread wants it; the rest of
a login runs at the normal priority, because a thread holding the GIL must not
be one the scheduler leaves waiting.
"""

from __future__ import annotations

import os
import sys
import threading

import pytest

from authmw.audit import AuditEvent
from authmw.passwords import PasswordHasher
from tests.conftest import AuthenticatorFactory
from tests.core.oauth_support import ASGIDriver, WSGIDriver, build_world


class ThreadNotingHasher(PasswordHasher):
    """A real hasher at test cost that notes the thread names and policies it verifies on."""

    def __init__(self) -> None:
        super().__init__(memory_cost=8, time_cost=1, parallelism=1)
        self.threads: list[str] = []
        self.policies: list[int] = []

    def verify(self, password: str, stored: str | None) -> tuple[bool, str | None]:
        self.threads.append(threading.current_thread().name)
        if hasattr(os, "sched_getscheduler"):
            self.policies.append(os.sched_getscheduler(0))  # 0: the calling thread on Linux
        return super().verify(password, stored)


@pytest.fixture
def hasher() -> ThreadNotingHasher:
    return ThreadNotingHasher()


@pytest.mark.anyio
async def test_an_asgi_login_runs_in_the_login_pool_and_hashes_in_the_hashing_pool(
    make_authenticator: AuthenticatorFactory, hasher: ThreadNotingHasher
) -> None:
    world = build_world(make_authenticator)
    login_threads: list[str] = []

    def note(event: AuditEvent) -> None:
        if event.name == "login.succeeded":
            login_threads.append(threading.current_thread().name)

    world.auth.audit.add_hook(note)
    reply = await ASGIDriver(world.endpoints).send("/oauth/token", world.login_body())
    assert reply.status == 200
    assert login_threads
    assert all(n.startswith("authmw-login") for n in login_threads)
    assert hasher.threads
    assert all(name.startswith("authmw-hash") for name in hasher.threads), hasher.threads


def wsgi_login(make_authenticator: AuthenticatorFactory) -> None:
    """Log in once through the WSGI endpoints, successfully."""
    world = build_world(make_authenticator)
    reply = WSGIDriver(world.endpoints).send_sync("/oauth/token", world.login_body())
    assert reply.status == 200


def test_a_wsgi_login_hashes_in_the_hashing_pool_too(
    make_authenticator: AuthenticatorFactory, hasher: ThreadNotingHasher
) -> None:
    wsgi_login(make_authenticator)
    assert hasher.threads
    assert all(name.startswith("authmw-hash") for name in hasher.threads), hasher.threads


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="SCHED_IDLE is a Linux scheduling policy"
)
def test_hashing_threads_run_at_the_idle_scheduling_policy(
    make_authenticator: AuthenticatorFactory, hasher: ThreadNotingHasher
) -> None:
    wsgi_login(make_authenticator)
    assert hasher.policies
    assert set(hasher.policies) == {os.SCHED_IDLE}
    # The thread that asked, and so the rest of the login, kept its own policy.
    assert os.sched_getscheduler(0) != os.SCHED_IDLE


def test_the_login_pool_is_as_large_as_asked(make_authenticator: AuthenticatorFactory) -> None:
    from authmw.oauth2 import AuthEndpoints  # noqa: PLC0415 - the unit under test

    world = build_world(make_authenticator)
    assert AuthEndpoints(world.auth, login_concurrency=3).login_concurrency == 3
    assert AuthEndpoints(world.auth).login_concurrency >= 1
