"""The Alembic environment of authmw's schema migrations.

Configured in code, never by an ``alembic.ini``: :mod:`authmw.store.migrations`
builds the Alembic ``Config`` and passes the open connection in
``config.attributes["connection"]`` (or, for a maintainer's own Alembic
commands, the URL in the ``sqlalchemy.url`` option). Only authmw's tables are
compared, so an application's own tables in the same database are never touched,
and the version table is authmw's own (:data:`VERSION_TABLE`), so it never
collides with an application's ``alembic_version``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from authmw.store.migrations import VERSION_TABLE, include_name
from authmw.store.sql import create_engine, metadata

__all__: list[str] = []

config = context.config


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_name=include_name,
        # SQLite alters most things by copying the table ("move and copy"):
        # autogenerate writes batch operations, which do that on SQLite and plain
        # ALTER TABLE elsewhere.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    # ``alembic upgrade --sql``: the DDL as a script, for a DBA to review and run.
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    shared = config.attributes.get("connection")
    if isinstance(shared, Connection):
        _configure(shared)
    else:
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
        try:
            with engine.begin() as conn:
                _configure(conn)
        finally:
            engine.dispose()
