"""The store's verification reads, compiled once and run on the driver directly.

Every cache miss reads the store: the key and its owner, a user, a client, the
revocations since the last sync. Through a SQLAlchemy ``Connection`` each such
read also paid for the statement cache's key, a transaction wrapper, the
result's metadata and its row objects: about 150 µs around a SQLite query that
takes 20. A :class:`Lookup` compiles its ``SELECT`` once for the engine's
dialect and then runs that SQL on a pooled DBAPI connection, converting
parameters and columns with the processors SQLAlchemy itself would use, so the
values are the same (aware UTC datetimes, booleans) and only the toll is gone.
Writes keep the ORM-free Core path: they are rare and need transactions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

__all__ = ["Lookup"]

Processor = Callable[[Any], Any]


class Lookup:
    """One read-only ``SELECT``, compiled for ``engine``, returning rows as dicts.

    Parameters are the statement's named ``bindparam`` values. A connection the
    server closed (a restart, an idle timeout) fails its first use: the pool is
    then replaced and the read retried once on a fresh connection; any other
    error is the caller's (the authenticator fails closed).
    """

    __slots__ = ("_binds", "_engine", "_keys", "_order", "_processed", "_sql")

    def __init__(self, engine: sa.Engine, statement: sa.Select[Any]) -> None:
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        self._engine = engine
        self._sql = str(compiled)
        # qmark drivers (sqlite3) take a tuple in the compiled order; named ones a dict.
        self._order: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if compiled.positional else None
        )
        self._binds: dict[str, Processor | None] = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()
        }
        keys: list[str] = []
        processed: list[tuple[str, Processor]] = []
        for column in statement.selected_columns:
            if column.key is None:  # pragma: no cover - a programming error
                raise TypeError("a Lookup selects named columns only")
            keys.append(column.key)
            process = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if process is not None:
                processed.append((column.key, process))
        self._keys = tuple(keys)
        # Only the columns whose values need converting (datetimes, booleans on
        # some drivers) pay for a Python call; the rest are copied as they come.
        self._processed = tuple(processed)

    def rows(self, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run the statement; return its rows as ``{column key: value}``."""
        values = self._parameters(params or {})
        for attempt in (1, 2):
            connection = self._engine.raw_connection()
            try:
                cursor = connection.cursor()
                try:
                    cursor.execute(self._sql, values)
                    fetched = cursor.fetchall()
                finally:
                    cursor.close()
            except Exception as exc:
                if attempt == 2 or not self._disconnected(exc, connection):
                    raise
                # The server went away: its other pooled connections are dead too.
                connection.invalidate(exc)
                self._engine.dispose(close=False)
                continue
            finally:
                connection.close()
            return [self._row(row) for row in fetched]
        raise AssertionError("unreachable")  # pragma: no cover

    def _disconnected(self, exc: Exception, connection: Any) -> bool:
        dialect = self._engine.dialect
        return isinstance(exc, dialect.loaded_dbapi.Error) and dialect.is_disconnect(
            exc, connection.dbapi_connection, None
        )

    def _parameters(self, params: Mapping[str, Any]) -> Any:
        converted = {}
        for name, process in self._binds.items():
            value = params[name]
            converted[name] = value if process is None else process(value)
        if self._order is None:
            return converted
        return tuple(converted[name] for name in self._order)

    def _row(self, row: Any) -> dict[str, Any]:
        values = dict(zip(self._keys, row, strict=True))
        for key, process in self._processed:
            values[key] = process(values[key])
        return values
