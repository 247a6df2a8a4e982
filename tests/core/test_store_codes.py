"""authmw.store.sql: authorization codes and consents, on each backend.

Every test taking ``sql_store`` or ``store_url`` runs on SQLite (a file, as
deployed) and on PostgreSQL; the PostgreSQL run is skipped unless
``AUTHMW_TEST_POSTGRES_URL`` is set.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from authmw import Conflict, NotFound
from authmw.store import AuthorizationCode, Consent, Store
from authmw.store.sql import SQLStore
from tests.core.support import CountingStore
from tests.core.test_store_oauth import new_id, run_at_once

T0 = datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)
READ = frozenset({"appointments:read"})
WRITE = frozenset({"appointments:write"})


def new_code(*, created_at: datetime = T0, **changes: Any) -> AuthorizationCode:
    values: dict[str, Any] = {
        "id": new_id(),
        "client_id": "calendar0001",
        "subject": "alice",
        "redirect_uri": "https://cal.example/cb",
        "scopes": READ,
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "created_at": created_at,
        "expires_at": created_at + timedelta(minutes=1),
        "credential_epoch": 2,
        "secret_hash": "v1$" + "e" * 64,
    }
    return AuthorizationCode(**(values | changes))


@contextmanager
def executed(store: SQLStore) -> Iterator[list[tuple[str, Any]]]:
    """Collect each statement the store's engine sends, with its bound parameters."""
    seen: list[tuple[str, Any]] = []

    def note(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        seen.append((statement, parameters))

    sa.event.listen(store.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", note)


def sqlite_plan(store: SQLStore, statement: str, parameters: Any) -> list[str]:
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
    details = [row[-1] for row in rows]
    assert details, "no plan"
    return details


def postgres_plan(store: SQLStore, statement: str, parameters: Any) -> str:
    with store.engine.connect() as conn:
        # A table this small is cheaper to scan, so forbid that to see the index is usable.
        conn.exec_driver_sql("SET enable_seqscan = off")
        return "\n".join(conn.exec_driver_sql("EXPLAIN " + statement, parameters).scalars())


def add_consents(store: SQLStore) -> None:
    for subject, client_id in [
        ("carol", "calendar0001"),
        ("alice", "mail00000001"),
        ("bob", "calendar0001"),
        ("alice", "calendar0001"),
    ]:
        store.save_consent(subject, client_id, READ, T0)


# -- the store as a whole -----------------------------------------------------------------


def test_sql_store_is_still_a_store(sql_store: SQLStore) -> None:
    assert isinstance(sql_store, Store)


def test_counting_store_serves_every_store_method() -> None:
    wanted = {
        name
        for name, value in vars(Store).items()
        if not name.startswith("_") and inspect.isfunction(value)
    }
    assert {"consume_code", "save_consent", "list_consents"} <= wanted
    missing = {name for name in wanted if not inspect.isfunction(vars(CountingStore).get(name))}
    assert missing == set()


def test_counting_store_passes_code_and_consent_calls_through(sql_store: SQLStore) -> None:
    store = CountingStore(sql_store)
    code = new_code()
    assert store.add_code(code) == code
    assert store.get_code(code.id) == code
    assert store.consume_code(code.id, T0) is True
    store.set_code_family(code.id, "family000001")
    assert store.purge_codes(T0) == 0
    saved = store.save_consent("alice", "calendar0001", READ, T0)
    assert store.get_consent("alice", "calendar0001") == saved
    assert store.list_consents(subject="alice", client_id="calendar0001") == [saved]
    assert store.delete_consent("alice", "calendar0001") is True
    names = [
        "add_code",
        "get_code",
        "consume_code",
        "set_code_family",
        "purge_codes",
        "save_consent",
        "get_consent",
        "list_consents",
        "delete_consent",
    ]
    assert [name for name, _ in store.calls] == names
    assert sql_store.get_code(code.id).family_id == "family000001"  # type: ignore[union-attr]


def test_create_schema_makes_the_tables_and_indexes(sql_store: SQLStore) -> None:
    inspector = sa.inspect(sql_store.engine)
    assert inspector.get_pk_constraint("authmw_authorization_codes")["constrained_columns"] == [
        "id"
    ]
    assert inspector.get_pk_constraint("authmw_consents")["constrained_columns"] == [
        "subject",
        "client_id",
    ]
    indexed = {tuple(ix["column_names"]) for ix in inspector.get_indexes("authmw_consents")}
    assert ("client_id",) in indexed
    sql_store.create_schema()  # still idempotent with the new tables


# -- authorization codes ------------------------------------------------------------------


def test_code_round_trip(sql_store: SQLStore) -> None:
    code = new_code(
        redirect_uri="http://127.0.0.1:8080/cb?state=a%20b&x=1#",
        scopes=frozenset({"appointments:read", "reports:read"}),
    )
    assert sql_store.add_code(code) == code
    got = sql_store.get_code(code.id)
    assert got == code
    # Kept exactly as sent, with its query and empty fragment.
    assert got.redirect_uri == "http://127.0.0.1:8080/cb?state=a%20b&x=1#"
    assert (got.used_at, got.family_id, got.credential_epoch) == (None, None, 2)
    assert sql_store.get_code("nosuchcode00") is None
    assert "v1$" not in repr(got)
    assert "secret_hash" not in repr(got)


def test_code_without_scopes_round_trips(sql_store: SQLStore) -> None:
    code = new_code(scopes=frozenset())
    sql_store.add_code(code)
    assert sql_store.get_code(code.id) == code


def test_duplicate_code_id_is_a_conflict(sql_store: SQLStore) -> None:
    code = new_code()
    sql_store.add_code(code)
    with pytest.raises(Conflict):
        sql_store.add_code(new_code(id=code.id, subject="mallory"))
    assert sql_store.get_code(code.id) == code


def test_code_datetimes_are_utc(sql_store: SQLStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2026, 3, 1, 14, 30, 45, 123456, tzinfo=plus_two)
    code = new_code(created_at=created)
    sql_store.add_code(code)
    consumed_at = created + timedelta(seconds=5)
    assert sql_store.consume_code(code.id, consumed_at)
    got = sql_store.get_code(code.id)
    assert got is not None
    for value, expected in [
        (got.created_at, created),
        (got.expires_at, created + timedelta(minutes=1)),
        (got.used_at, consumed_at),
    ]:
        assert value == expected
        assert value is not None
        assert value.tzinfo == UTC


def test_get_code_is_one_select(sql_store: SQLStore) -> None:
    code = new_code()
    sql_store.add_code(code)
    sql_store.get_code(code.id)  # warm the pool
    with executed(sql_store) as seen:
        assert sql_store.get_code(code.id) == code
    assert len(seen) == 1, seen
    assert seen[0][0].lstrip().upper().startswith("SELECT")


def test_get_code_uses_the_primary_key_on_sqlite(sqlite_store: SQLStore) -> None:
    for _ in range(5):
        sqlite_store.add_code(new_code())
    code = new_code()
    sqlite_store.add_code(code)
    with executed(sqlite_store) as seen:
        sqlite_store.get_code(code.id)
    details = sqlite_plan(sqlite_store, *seen[0])
    assert not any(d.startswith("SCAN") for d in details), details
    assert any(
        d.startswith("SEARCH authmw_authorization_codes USING") and "(id=?)" in d for d in details
    ), details


@pytest.mark.postgres
def test_get_code_can_use_the_primary_key_on_postgres(postgres_store: SQLStore) -> None:
    code = new_code()
    postgres_store.add_code(code)
    with executed(postgres_store) as seen:
        postgres_store.get_code(code.id)
    text = postgres_plan(postgres_store, *seen[0])
    assert "authmw_authorization_codes_pkey" in text, text
    assert "Seq Scan" not in text, text


def test_consume_code_once(sql_store: SQLStore) -> None:
    code = new_code()
    other = new_code()
    sql_store.add_code(code)
    sql_store.add_code(other)
    at = T0 + timedelta(seconds=10)
    with executed(sql_store) as seen:
        assert sql_store.consume_code(code.id, at) is True
    updates = [s for s, _ in seen if s.lstrip().upper().startswith("UPDATE")]
    assert len(updates) == 1, seen
    assert [s for s, _ in seen if s.lstrip().upper().startswith(("SELECT", "INSERT"))] == []
    assert sql_store.get_code(code.id) == replace(code, used_at=at)
    # A used code is never consumed again, and the first time is kept.
    assert sql_store.consume_code(code.id, at + timedelta(seconds=1)) is False
    assert sql_store.get_code(code.id).used_at == at  # type: ignore[union-attr]
    assert sql_store.get_code(other.id) == other
    assert sql_store.consume_code("nosuchcode00", at) is False


def test_concurrent_exchanges_of_one_code_exactly_one_wins(
    sql_store: SQLStore, store_url: tuple[str, dict[str, Any]]
) -> None:
    # Two engines, as two processes would have: no lock in Python can decide this.
    url, options = store_url
    other = SQLStore(url, **options)
    try:
        code = new_code()
        sql_store.add_code(code)
        threads = 20
        stores = [sql_store, other]
        times = [T0 + timedelta(seconds=i) for i in range(threads)]
        results = run_at_once(threads, lambda i: stores[i % 2].consume_code(code.id, times[i]))
    finally:
        other.close()
    assert all(isinstance(r, bool) for r in results), results
    assert results.count(True) == 1, results
    got = sql_store.get_code(code.id)
    assert got is not None
    assert got.used_at == times[results.index(True)]


def test_set_code_family(sql_store: SQLStore) -> None:
    code = new_code()
    bystander = new_code()
    sql_store.add_code(code)
    sql_store.add_code(bystander)
    sql_store.consume_code(code.id, T0)
    sql_store.set_code_family(code.id, "family000001")
    assert sql_store.get_code(code.id) == replace(code, used_at=T0, family_id="family000001")
    assert sql_store.get_code(bystander.id) == bystander
    with pytest.raises(NotFound):
        sql_store.set_code_family("nosuchcode00", "family000002")


def test_purge_codes(sql_store: SQLStore) -> None:
    gone = new_code(expires_at=T0 + timedelta(minutes=5))
    edge = new_code(expires_at=T0 + timedelta(minutes=10))
    kept = new_code(expires_at=T0 + timedelta(hours=1), used_at=T0)
    for code in (gone, edge, kept):
        sql_store.add_code(code)
    assert sql_store.purge_codes(T0 + timedelta(minutes=10)) == 1
    assert sql_store.get_code(gone.id) is None
    assert sql_store.get_code(edge.id) == edge
    assert sql_store.purge_codes(T0 + timedelta(minutes=10)) == 0
    # Used or not, an expired code goes.
    assert sql_store.purge_codes(T0 + timedelta(days=1)) == 2
    assert [sql_store.get_code(c.id) for c in (edge, kept)] == [None, None]


# -- consents -----------------------------------------------------------------------------


def test_save_and_get_a_consent(sql_store: SQLStore) -> None:
    assert sql_store.get_consent("alice", "calendar0001") is None
    saved = sql_store.save_consent("alice", "calendar0001", READ, T0)
    assert saved == Consent("alice", "calendar0001", READ, created_at=T0, updated_at=T0)
    assert sql_store.get_consent("alice", "calendar0001") == saved
    assert sql_store.get_consent("alice", "mail00000001") is None
    assert sql_store.get_consent("bob", "calendar0001") is None


def test_saving_again_adds_scopes_and_keeps_created_at(sql_store: SQLStore) -> None:
    sql_store.save_consent("alice", "calendar0001", READ, T0)
    later = T0 + timedelta(days=1)
    grown = sql_store.save_consent("alice", "calendar0001", WRITE, later)
    assert grown == Consent("alice", "calendar0001", READ | WRITE, created_at=T0, updated_at=later)
    assert sql_store.get_consent("alice", "calendar0001") == grown
    # Asking again for less never takes a scope away; it only notes the time.
    latest = later + timedelta(days=1)
    same = sql_store.save_consent("alice", "calendar0001", READ, latest)
    assert same == Consent("alice", "calendar0001", READ | WRITE, created_at=T0, updated_at=latest)
    assert sql_store.get_consent("alice", "calendar0001") == same
    empty = sql_store.save_consent("alice", "calendar0001", frozenset(), latest)
    assert empty.scopes == READ | WRITE


def test_consent_without_scopes_round_trips(sql_store: SQLStore) -> None:
    saved = sql_store.save_consent("alice", "calendar0001", frozenset(), T0)
    assert saved.scopes == frozenset()
    assert sql_store.get_consent("alice", "calendar0001") == saved
    grown = sql_store.save_consent("alice", "calendar0001", READ, T0 + timedelta(1))
    assert grown.scopes == READ


def test_consent_datetimes_are_utc(sql_store: SQLStore) -> None:
    minus_five = timezone(timedelta(hours=-5))
    first = datetime(2026, 3, 1, 7, 30, 45, 123456, tzinfo=minus_five)
    sql_store.save_consent("alice", "calendar0001", READ, first)
    second = first + timedelta(hours=3)
    sql_store.save_consent("alice", "calendar0001", WRITE, second)
    got = sql_store.get_consent("alice", "calendar0001")
    assert got is not None
    assert (got.created_at, got.updated_at) == (first, second)
    assert got.created_at.tzinfo == UTC
    assert got.updated_at.tzinfo == UTC


def test_concurrent_saves_of_one_consent_keep_every_scope(
    sql_store: SQLStore, store_url: tuple[str, dict[str, Any]]
) -> None:
    url, options = store_url
    other = SQLStore(url, **options)
    try:
        stores = [sql_store, other]
        threads = 12
        results = run_at_once(
            threads,
            lambda i: stores[i % 2].save_consent(
                "alice", "calendar0001", frozenset({f"scope:{i}"}), T0 + timedelta(seconds=i)
            ),
        )
    finally:
        other.close()
    assert all(isinstance(r, Consent) for r in results), results
    got = sql_store.get_consent("alice", "calendar0001")
    assert got is not None
    assert got.scopes == {f"scope:{i}" for i in range(threads)}
    # Exactly one save created the consent; every later one kept its created_at.
    assert got.created_at in {T0 + timedelta(seconds=i) for i in range(threads)}
    assert {r.created_at for r in results if isinstance(r, Consent)} == {got.created_at}
    assert sql_store.list_consents() == [got]


def test_list_consents_by_subject_then_client_with_filters(sql_store: SQLStore) -> None:
    add_consents(sql_store)
    everyone = sql_store.list_consents()
    assert [(c.subject, c.client_id) for c in everyone] == [
        ("alice", "calendar0001"),
        ("alice", "mail00000001"),
        ("bob", "calendar0001"),
        ("carol", "calendar0001"),
    ]
    assert sql_store.list_consents(subject="alice") == everyone[:2]
    assert sql_store.list_consents(client_id="calendar0001") == [
        everyone[0],
        everyone[2],
        everyone[3],
    ]
    assert sql_store.list_consents(subject="alice", client_id="mail00000001") == [everyone[1]]
    assert sql_store.list_consents(subject="bob", client_id="mail00000001") == []
    assert sql_store.list_consents(subject="nobody") == []


def test_delete_consent(sql_store: SQLStore) -> None:
    add_consents(sql_store)
    assert sql_store.delete_consent("alice", "calendar0001") is True
    assert sql_store.get_consent("alice", "calendar0001") is None
    assert sql_store.delete_consent("alice", "calendar0001") is False
    assert sql_store.delete_consent("nobody", "calendar0001") is False
    assert [(c.subject, c.client_id) for c in sql_store.list_consents()] == [
        ("alice", "mail00000001"),
        ("bob", "calendar0001"),
        ("carol", "calendar0001"),
    ]
    # Deleted means forgotten: a new consent starts afresh.
    again = sql_store.save_consent("alice", "calendar0001", WRITE, T0 + timedelta(days=2))
    assert (again.scopes, again.created_at) == (WRITE, T0 + timedelta(days=2))


def test_get_consent_is_one_select(sql_store: SQLStore) -> None:
    add_consents(sql_store)
    sql_store.get_consent("alice", "calendar0001")  # warm the pool
    with executed(sql_store) as seen:
        assert sql_store.get_consent("alice", "calendar0001") is not None
    assert len(seen) == 1, seen
    assert seen[0][0].lstrip().upper().startswith("SELECT")


def test_consent_lookups_use_the_indexes_on_sqlite(sqlite_store: SQLStore) -> None:
    add_consents(sqlite_store)
    with executed(sqlite_store) as seen:
        sqlite_store.get_consent("alice", "calendar0001")
        sqlite_store.list_consents(subject="alice")
        sqlite_store.list_consents(client_id="calendar0001")
    by_key, by_subject, by_client = (sqlite_plan(sqlite_store, *s) for s in seen)
    for details in (by_key, by_subject, by_client):
        assert not any(d.startswith("SCAN") for d in details), details
    assert any(
        d.startswith("SEARCH authmw_consents USING INDEX sqlite_autoindex_authmw_consents_1")
        and "(subject=? AND client_id=?)" in d
        for d in by_key
    ), by_key
    assert any(
        d.startswith("SEARCH authmw_consents USING INDEX sqlite_autoindex_authmw_consents_1")
        and "(subject=?)" in d
        for d in by_subject
    ), by_subject
    assert any(
        d.startswith("SEARCH authmw_consents USING INDEX ix_authmw_consents_client_id")
        for d in by_client
    ), by_client


@pytest.mark.postgres
def test_consent_lookups_can_use_the_indexes_on_postgres(postgres_store: SQLStore) -> None:
    # Many users per app, as in life, and statistics, or the planner cannot tell the
    # two-column key (one row) from the one-column index (one app's rows) apart.
    for user in range(50):
        for app in range(4):
            postgres_store.save_consent(f"user{user:02}", f"app{app:09}", READ, T0)
    add_consents(postgres_store)
    with postgres_store.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE authmw_consents")
    with executed(postgres_store) as seen:
        assert postgres_store.get_consent("user07", "app000000002") is not None
        postgres_store.list_consents(client_id="calendar0001")
    by_key, by_client = (postgres_plan(postgres_store, *s) for s in seen)
    assert "authmw_consents_pkey" in by_key, by_key
    assert "ix_authmw_consents_client_id" in by_client, by_client
    for text in (by_key, by_client):
        assert "Seq Scan" not in text, text
