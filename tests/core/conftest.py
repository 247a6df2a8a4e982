"""Fixtures of the core tests: the SQL stores every store test runs against.

SQLite (a file, as deployed: WAL mode, several connections) always runs.
PostgreSQL runs when ``AUTHMW_TEST_POSTGRES_URL`` names a server; each test
session then works in a schema of its own, dropped at the end, so runs never
see each other's rows and never touch the database's other schemas.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from authmw.store.sql import SQLStore, metadata

POSTGRES_URL = os.environ.get("AUTHMW_TEST_POSTGRES_URL", "")
POSTGRES_SKIP = "set AUTHMW_TEST_POSTGRES_URL to run"


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[tuple[str, str]]:
    """Create a uniquely named schema for this session; yield ``(url, schema)``."""
    if not POSTGRES_URL:
        pytest.skip(POSTGRES_SKIP)
    schema = f"authmw_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(POSTGRES_URL)
    try:
        with engine.begin() as conn:
            conn.execute(sa.schema.CreateSchema(schema))
        yield POSTGRES_URL, schema
        with engine.begin() as conn:
            conn.execute(sa.schema.DropSchema(schema, cascade=True))
    finally:
        engine.dispose()


def sqlite_file_url(directory: Path) -> str:
    """The URL of a SQLite file database in ``directory``."""
    return f"sqlite:///{directory / 'authmw.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, dict[str, object]]]:
    """The URL and engine options of an empty database, on each backend.

    The tables are dropped at teardown, so the next PostgreSQL test starts empty.
    """
    if request.param == "sqlite":
        yield sqlite_file_url(tmp_path), {}
        return
    url, schema = request.getfixturevalue("postgres_schema")
    options: dict[str, object] = {"connect_args": {"options": f"-csearch_path={schema}"}}
    yield url, options
    engine = sa.create_engine(url, **options)
    try:
        metadata.drop_all(engine)
    finally:
        engine.dispose()


@pytest.fixture
def sql_store(store_url: tuple[str, dict[str, object]]) -> Iterator[SQLStore]:
    """A :class:`SQLStore` with its schema created, on SQLite and (if set up) PostgreSQL."""
    url, options = store_url
    store = SQLStore(url, **options)
    store.create_schema()
    yield store
    store.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLStore]:
    """A :class:`SQLStore` on a SQLite file, for what only SQLite has (PRAGMAs, its planner)."""
    store = SQLStore(sqlite_file_url(tmp_path))
    store.create_schema()
    yield store
    store.close()


@pytest.fixture
def postgres_store(postgres_schema: tuple[str, str]) -> Iterator[SQLStore]:
    """A :class:`SQLStore` in this session's PostgreSQL schema, for what only PostgreSQL has."""
    url, schema = postgres_schema
    store = SQLStore(url, connect_args={"options": f"-csearch_path={schema}"})
    store.create_schema()
    yield store
    metadata.drop_all(store.engine)
    store.close()
