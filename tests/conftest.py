"""Fixtures every test layer may use.

Framework-free on purpose: the tox ``core`` environment installs no web framework,
and this file is loaded for every layer.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from hypothesis import settings

from authmw import Authenticator, PasswordHasher, Policy, Settings, Store
from authmw.shared import InvalidationBus
from authmw.store.sql import SQLStore

# Hypothesis fails an example that takes over 200 ms by default: a timing assertion,
# which on a loaded machine fails tests that are right. The examples are bounded by
# their input sizes instead.
settings.register_profile("authmw", deadline=None)
settings.load_profile("authmw")

#: The password every seeded user has (long enough for the password policy).
PASSWORD = "correct horse battery staple"
#: The signing key of test authenticators (tokens need one; real ones come from the environment).
SECRET_KEY = "test-signing-key-0123456789abcdef0123456789"

#: The demo users: one per role of ``Policy.default()``, with teams for team checks.
SEED_USERS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "admin": (frozenset({"admin"}), frozenset({"ops"})),
    "manager": (frozenset({"manager"}), frozenset({"sales"})),
    "employee": (frozenset({"employee"}), frozenset({"sales", "support"})),
}

AuthenticatorFactory = Callable[..., Authenticator]


@pytest.fixture(scope="session")
def hasher() -> PasswordHasher:
    """Argon2id at the smallest parameters it accepts.

    Tests that are not about the hashing parameters should not pay ~50 ms per hash;
    tests/core/test_passwords.py checks the real parameters.
    """
    return PasswordHasher(memory_cost=8, time_cost=1, parallelism=1)


@pytest.fixture
def make_authenticator(hasher: PasswordHasher) -> Iterator[AuthenticatorFactory]:
    """Build authenticators on real stores; every one is closed at teardown.

    ``store`` is a SQLAlchemy URL or a ready store; by default in-memory SQLite, or
    a private PostgreSQL schema when ``AUTHMW_TEST_STORE=postgres``.
    ``schema=True`` creates the tables and ``seed=True`` the users of :data:`SEED_USERS`.
    """
    made: list[Authenticator] = []
    schemas: list[str] = []

    def default_store() -> Store:
        # AUTHMW_TEST_STORE=postgres runs every test that takes the default store on
        # PostgreSQL instead, each in a schema of its own: the whole suite of flows
        # against the production database, not only the store's own tests.
        if os.environ.get("AUTHMW_TEST_STORE") != "postgres":
            return SQLStore("sqlite://")
        url = os.environ.get("AUTHMW_TEST_POSTGRES_URL")
        if not url:
            pytest.skip("AUTHMW_TEST_STORE=postgres: set AUTHMW_TEST_POSTGRES_URL to run")
        schema = f"authmw_t_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.schema.CreateSchema(schema))
        engine.dispose()
        schemas.append(schema)
        return SQLStore(url, connect_args={"options": f"-csearch_path={schema}"})

    def make(
        store: Store | str | None = None,
        *,
        policy: Policy | None = None,
        settings: Settings | None = None,
        clock: Callable[[], float] = time.monotonic,
        schema: bool = True,
        seed: bool = True,
        bus: InvalidationBus | None = None,
    ) -> Authenticator:
        if store is None:
            real_store = default_store()
        else:
            real_store = SQLStore(store) if isinstance(store, str) else store
        if settings is None:
            settings = Settings(secret_keys=(SECRET_KEY,))
        auth = Authenticator(
            real_store, policy=policy, settings=settings, passwords=hasher, clock=clock, bus=bus
        )
        made.append(auth)
        if schema:
            auth.store.create_schema()
        if schema and seed:
            for name, (roles, teams) in SEED_USERS.items():
                auth.users.create(name, password=PASSWORD, roles=roles, teams=teams)
        return auth

    yield make
    for auth in made:
        auth.close()
    if schemas:
        engine = sa.create_engine(os.environ["AUTHMW_TEST_POSTGRES_URL"])
        with engine.begin() as conn:
            for schema in schemas:
                conn.execute(sa.schema.DropSchema(schema, cascade=True))
        engine.dispose()


@pytest.fixture
def authenticator(make_authenticator: AuthenticatorFactory) -> Authenticator:
    """An authenticator on in-memory SQLite with the demo policy and the seeded users."""
    return make_authenticator()
