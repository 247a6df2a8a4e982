"""Fixtures of the Flask tests: a real authenticator on in-memory SQLite.

The users, keys and stub tokens are described in :mod:`tests.flask.support`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from authmw import Authenticator, Settings
from authmw.store.sql import SQLStore
from tests.flask.support import EMPLOYEE_TOKEN, MANAGER_TOKEN, build_authenticator, issue_keys

#: ``make_auth(store, settings=None)``: the fixture world on ``store``, closed after the test.
MakeAuth = Callable[..., Authenticator]


@pytest.fixture
def make_auth() -> Iterator[MakeAuth]:
    made: list[Authenticator] = []

    def make(store: SQLStore, settings: Settings | None = None) -> Authenticator:
        authenticator = build_authenticator(store, settings)
        made.append(authenticator)
        return authenticator

    yield make
    for authenticator in made:
        authenticator.close()


@pytest.fixture
def auth(make_auth: MakeAuth) -> Authenticator:
    return make_auth(SQLStore("sqlite://"))


@pytest.fixture
def keys(auth: Authenticator) -> dict[str, str]:
    return issue_keys(auth)


@pytest.fixture
def credentials(keys: dict[str, str]) -> dict[str, dict[str, str]]:
    """Request headers per credential name: every key, two user tokens, and ``none``."""
    out = {name: {"Authorization": f"Bearer {key}"} for name, key in keys.items()}
    out["user_manager"] = {"Authorization": f"Bearer {MANAGER_TOKEN}"}
    out["user_employee"] = {"Authorization": f"Bearer {EMPLOYEE_TOKEN}"}
    out["none"] = {}
    return out
