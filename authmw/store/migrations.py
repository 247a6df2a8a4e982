"""Versioned schema migrations: Alembic, with the migration scripts shipped in the package.

The revisions live in ``authmw/migrations/versions`` and reproduce how the
schema grew: ``0001`` users and API keys, ``0002`` OAuth2 clients, refresh
tokens and revocations, ``0003`` authorization codes and consents, ``0004``
when each client was last enabled again after a disable.

>>> upgrade("sqlite:///authmw.db")   # what `authmw db upgrade` does
>>> current("sqlite:///authmw.db") == head()
True

Three things differ from a plain Alembic setup, each on purpose:

- No ``alembic.ini``: the environment (``authmw/migrations/env.py``) is
  configured here, in code, and only ever looks at authmw's own tables, so an
  application may keep its tables in the same database.
- The version table is ``authmw_alembic_version``, not ``alembic_version``, so
  it never collides with the application's own Alembic history.
- A database made by a release from before migrations (authmw tables, no
  version table) is recognised by its tables and recorded at the revision they
  match before any migration runs.

Every run is one transaction, so a failure leaves the database at the revision
it was, and takes a lock first (a transaction-level advisory lock on
PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so instances starting together
migrate one after the other. On SQLite, foreign keys are switched off while
tables may be rebuilt and checked before the commit, as SQLite's ALTER TABLE
documentation prescribes.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

__all__ = [
    "MIGRATIONS_DIR",
    "VERSION_TABLE",
    "MigrationError",
    "alembic_config",
    "create_schema",
    "current",
    "head",
    "include_name",
    "upgrade",
]

#: Where the Alembic environment and the revisions are, inside the installed package.
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
#: authmw's own version table, apart from any ``alembic_version`` of the application.
VERSION_TABLE = "authmw_alembic_version"

# Databases made before migrations existed can only hold one of these table
# sets (every schema change up to 0003 added tables, and create_all added the
# missing ones). The list is closed: every later database records its revision.
_UNVERSIONED = {
    "0001": frozenset({"authmw_users", "authmw_api_keys"}),
    "0002": frozenset(
        {
            "authmw_users",
            "authmw_api_keys",
            "authmw_clients",
            "authmw_refresh_tokens",
            "authmw_revocations",
        }
    ),
    "0003": frozenset(
        {
            "authmw_users",
            "authmw_api_keys",
            "authmw_clients",
            "authmw_refresh_tokens",
            "authmw_revocations",
            "authmw_authorization_codes",
            "authmw_consents",
        }
    ),
}
# pg_advisory_xact_lock key: "authmw" in ASCII, so other tools' locks do not collide.
_LOCK_KEY = int.from_bytes(b"authmw", "big")


class MigrationError(Exception):
    """The database is in a state no migration starts from, or a migration left it broken."""


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's name filter: authmw's tables only, never the version table or the app's."""
    if type_ == "table":
        return name is not None and name.startswith("authmw_") and name != VERSION_TABLE
    return True


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS_DIR))


def head() -> str:
    """Return the latest revision shipped with this version of authmw."""
    revision = _scripts().get_current_head()
    if revision is None:  # pragma: no cover - the package always ships revisions
        raise MigrationError(f"no revisions in {MIGRATIONS_DIR}")
    return revision


def alembic_config(url: str | None = None) -> Config:
    """Return an Alembic ``Config`` for authmw's migrations, built without an ini file.

    For maintainers' own Alembic commands, e.g. writing the next revision::

        command.revision(alembic_config(url), "what changed", autogenerate=True, rev_id="0005")
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # ConfigParser interpolates "%": a URL-encoded password must survive it.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@contextmanager
def _engine(engine_or_url: Engine | str) -> Iterator[Engine]:
    if isinstance(engine_or_url, Engine):
        yield engine_or_url
        return
    from authmw.store.sql import create_engine  # noqa: PLC0415 - sql imports this module

    engine = create_engine(engine_or_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _context(conn: Connection) -> MigrationContext:
    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})


def _current(conn: Connection, tables: set[str]) -> str | None:
    if VERSION_TABLE in tables:
        return _context(conn).get_current_revision()
    found = {t for t in tables if include_name(t, "table", None)}
    if not found:
        return None
    for revision, expected in _UNVERSIONED.items():
        if found == expected:
            return revision
    raise MigrationError(
        "the database has authmw tables but no version table, and they match no revision "
        f"(found: {', '.join(sorted(found))}); it was not made by authmw"
    )


def current(engine_or_url: Engine | str) -> str | None:
    """Return the database's schema revision, or ``None`` if it has no authmw tables.

    For a database made before migrations existed (no version table), the
    answer is the revision its tables match; :func:`upgrade` records it.
    """
    with _engine(engine_or_url) as engine, engine.connect() as conn:
        return _current(conn, set(sa.inspect(conn).get_table_names()))


def _set_foreign_keys(conn: Connection, *, on: bool) -> None:
    # Only outside a transaction does SQLite honour this PRAGMA.
    conn.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    conn.commit()


def _migrate(engine: Engine, revision: str, *, create_new: bool) -> None:
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_LOCK_KEY)))
                _migrate_in(conn, revision, create_new=create_new)
            return
        # A batch operation rebuilds a table (create, copy, drop, rename); with
        # foreign keys on, dropping a referenced table would fail or cascade.
        _set_foreign_keys(conn, on=False)
        # Python's sqlite3 begins a transaction before DML only, so CREATE TABLE and
        # friends would each commit on their own. Begin it ourselves, so a failed
        # migration leaves nothing behind, and IMMEDIATE, so a second process
        # waits (busy_timeout) for the first instead of migrating beside it.
        driver: Any = conn.connection.driver_connection
        isolation_level = driver.isolation_level
        driver.isolation_level = None
        try:
            with conn.begin():
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                _migrate_in(conn, revision, create_new=create_new)
                if conn.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                    raise MigrationError("the migration left rows with broken foreign keys")
        finally:
            driver.isolation_level = isolation_level
            _set_foreign_keys(conn, on=True)


def _migrate_in(conn: Connection, revision: str, *, create_new: bool) -> None:
    tables = set(sa.inspect(conn).get_table_names())
    at = _current(conn, tables)
    if VERSION_TABLE not in tables and at is not None:
        _context(conn).stamp(_scripts(), at)  # made before migrations: record what it is
    if create_new and (at is None or at == head()):
        # New: all tables at once (create_all is far faster than replaying every
        # revision). At head: create_all recreates a table dropped behind the
        # version table's back and otherwise only looks.
        from authmw.store.sql import metadata  # noqa: PLC0415 - sql imports this module

        metadata.create_all(conn)
        if at is None:
            _context(conn).stamp(_scripts(), "head")
        return
    config = alembic_config()
    config.attributes["connection"] = conn
    command.upgrade(config, revision)


def upgrade(engine_or_url: Engine | str, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (default: the latest), keeping every row.

    A new database gets every revision in turn; one made before migrations is
    first recorded at the revision its tables match. Upgrading a database that
    is already there does nothing.
    """
    with _engine(engine_or_url) as engine:
        _migrate(engine, revision, create_new=False)


def create_schema(engine: Engine) -> None:
    """Bring the database to the latest revision the fast way (``SQLStore.create_schema``).

    A new database gets ``metadata.create_all`` and is recorded at the head
    revision; an older one (versioned or not) is upgraded.
    """
    _migrate(engine, "head", create_new=True)
