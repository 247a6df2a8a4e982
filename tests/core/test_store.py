"""authmw.store.sql: the SQL store on SQLite (a file, as deployed) and PostgreSQL.

Every test taking ``sql_store`` or ``store_url`` runs once per backend; the
PostgreSQL run is skipped unless ``AUTHMW_TEST_POSTGRES_URL`` is set.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from authmw import Authenticator, Conflict, InvalidToken, NotFound, Store
from authmw import keys as keys_module
from authmw.credentials import Credential
from authmw.store import ApiKey, User
from authmw.store.sql import SQLStore
from tests.conftest import AuthenticatorFactory

T0 = datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)
ADMIN = frozenset({"admin"})


def new_key(
    *,
    owner: str | None = None,
    team: str | None = None,
    scopes: frozenset[str] | None = None,
    created_at: datetime = T0,
    expires_at: datetime | None = None,
    name: str = "k",
) -> ApiKey:
    _, parsed = keys_module.generate()
    return ApiKey(
        id=parsed.key_id,
        name=name,
        owner=owner,
        team=team,
        scopes=scopes,
        created_at=created_at,
        expires_at=expires_at,
        secret_hash=keys_module.hash_secret(parsed),
    )


def add_admin(store: SQLStore, name: str = "alice") -> User:
    return store.add_user(name, password_hash="$argon2id$x", roles=ADMIN, teams=frozenset({"ops"}))


@contextmanager
def statements(store: SQLStore) -> Iterator[list[str]]:
    """Collect every SQL statement the store's connections run while the block runs.

    Seen at the driver, below SQLAlchemy: the verification lookups run their
    compiled SQL on the DBAPI connection, and must be counted like the rest.
    SQLite reports a statement with its values filled in, psycopg with its
    placeholders.
    """
    seen: list[str] = []

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.set_trace_callback(seen.append)
            return
        original = dbapi_connection.cursor_factory
        record.info["original_cursor_factory"] = original

        class Noting(original):  # type: ignore[misc,valid-type]
            def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
                seen.append(str(query))
                return super().execute(query, *args, **kwargs)

        dbapi_connection.cursor_factory = Noting

    def checkin(dbapi_connection: Any, record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.set_trace_callback(None)
        elif "original_cursor_factory" in record.info:
            dbapi_connection.cursor_factory = record.info.pop("original_cursor_factory")

    # The store reads through a second engine on PostgreSQL (autocommit lookups).
    engines = {store.engine, store._reader}
    for engine in engines:
        sa.event.listen(engine, "checkout", checkout)
        sa.event.listen(engine, "checkin", checkin)
    try:
        yield seen
    finally:
        for engine in engines:
            sa.event.remove(engine, "checkout", checkout)
            sa.event.remove(engine, "checkin", checkin)


# -- the store as configured -----------------------------------------------------------


def test_sql_store_is_a_store(sql_store: SQLStore) -> None:
    assert isinstance(sql_store, Store)


def test_sqlite_file_runs_in_wal_mode(sqlite_store: SQLStore) -> None:
    with sqlite_store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000


@pytest.fixture
def world_readable_umask() -> Iterator[None]:
    """The usual umask (022), under which SQLite alone would make a file 0644."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("world_readable_umask")
def test_a_new_sqlite_file_is_owner_only(tmp_path: Path) -> None:
    # It holds password and key hashes; SQLite gives -wal and -shm the same mode.
    auth = Authenticator.from_url(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        auth.store.create_schema()
        files = sorted(tmp_path.iterdir())  # while open: the last close removes -wal, -shm
        assert [f.name for f in files] == ["new.db", "new.db-shm", "new.db-wal"]
        for f in files:
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f.name
    finally:
        auth.close()


@pytest.mark.usefixtures("world_readable_umask")
def test_an_existing_sqlite_files_mode_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    sqlite3.connect(path).close()
    path.chmod(0o640)  # the operator's choice, say for a group of readers
    auth = Authenticator.from_url(f"sqlite:///{path}")
    auth.store.create_schema()
    auth.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


@pytest.mark.postgres
def test_postgres_runs_in_its_own_schema(postgres_store: SQLStore) -> None:
    with postgres_store.engine.connect() as conn:
        schema = conn.execute(sa.text("SELECT current_schema()")).scalar()
    assert isinstance(schema, str)
    assert schema.startswith("authmw_test_")


def test_create_schema_is_idempotent(sql_store: SQLStore) -> None:
    add_admin(sql_store)
    sql_store.create_schema()
    assert sql_store.get_user("alice") is not None


def test_in_memory_sqlite_is_one_database_for_every_thread() -> None:
    store = SQLStore("sqlite://")
    try:
        store.create_schema()
        thread = threading.Thread(target=add_admin, args=(store,))
        thread.start()
        thread.join()
        assert store.get_user("alice") is not None
    finally:
        store.close()


def test_repr_hides_the_password() -> None:
    pytest.importorskip("psycopg")
    store = SQLStore("postgresql+psycopg://authmw:hunter2secret@db.invalid/authmw")
    try:
        assert "hunter2secret" not in repr(store)
        assert "db.invalid" in repr(store)
    finally:
        store.close()


# -- users -----------------------------------------------------------------------------


def test_add_and_get_user(sql_store: SQLStore) -> None:
    added = sql_store.add_user(
        "alice", password_hash="h", roles=frozenset({"admin", "manager"}), teams=frozenset()
    )
    got = sql_store.get_user("alice")
    assert got == added
    assert got.roles == {"admin", "manager"}
    assert got.teams == frozenset()
    assert got.credential_epoch == 0
    assert not got.disabled
    assert got.password_hash == "h"
    assert sql_store.get_user("bob") is None
    # A user's repr never shows the password hash.
    assert "password_hash" not in repr(got)


def test_duplicate_user_is_a_conflict(sql_store: SQLStore) -> None:
    add_admin(sql_store)
    with pytest.raises(Conflict):
        add_admin(sql_store)


def test_usernames_are_case_sensitive(sql_store: SQLStore) -> None:
    add_admin(sql_store, "alice")
    add_admin(sql_store, "Alice")
    assert sql_store.get_user("ALICE") is None


def test_list_users_by_name(sql_store: SQLStore) -> None:
    for name in ("carol", "alice", "bob"):
        add_admin(sql_store, name)
    assert [u.username for u in sql_store.list_users()] == ["alice", "bob", "carol"]


def test_update_user_changes_only_what_is_given(sql_store: SQLStore) -> None:
    add_admin(sql_store)
    updated = sql_store.update_user("alice", roles=frozenset({"employee"}))
    assert updated.roles == {"employee"}
    assert updated.teams == {"ops"}
    assert updated.password_hash == "$argon2id$x"
    assert updated.credential_epoch == 0
    updated = sql_store.update_user(
        "alice", password_hash="new", teams=frozenset(), disabled=True, bump_epoch=True
    )
    assert (updated.password_hash, updated.teams, updated.disabled) == ("new", frozenset(), True)
    assert updated.credential_epoch == 1
    assert sql_store.get_user("alice") == updated
    with pytest.raises(NotFound):
        sql_store.update_user("ghost", disabled=True)


def test_concurrent_epoch_bumps_never_collapse(sql_store: SQLStore) -> None:
    add_admin(sql_store)
    threads, bumps = 4, 10
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def bump() -> None:
        barrier.wait()
        try:
            for _ in range(bumps):
                sql_store.update_user("alice", bump_epoch=True)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    workers = [threading.Thread(target=bump) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    user = sql_store.get_user("alice")
    assert user is not None
    assert user.credential_epoch == threads * bumps


# -- keys --------------------------------------------------------------------------------


def test_key_round_trip(sql_store: SQLStore) -> None:
    add_admin(sql_store)
    key = new_key(
        owner="alice",
        scopes=frozenset({"reports:read", "admin"}),
        expires_at=T0 + timedelta(days=30),
    )
    assert sql_store.add_key(key) == key
    assert sql_store.get_key(key.id) == key
    team = new_key(team="sales")
    sql_store.add_key(team)
    got = sql_store.get_key(team.id)
    assert got == team
    assert got.scopes is None, "an unrestricted key stays distinct from an empty scope set"
    assert sql_store.get_key("nosuchkey000") is None


def test_aware_datetimes_round_trip_as_utc(sql_store: SQLStore) -> None:
    add_admin(sql_store)
    # Given in another zone, returned as the same instant in UTC.
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2026, 3, 1, 14, 30, 45, 123456, tzinfo=plus_two)
    key = new_key(owner="alice", created_at=created, expires_at=created + timedelta(hours=1))
    sql_store.add_key(key)
    got = sql_store.get_key(key.id)
    assert got is not None
    assert got.created_at == created
    assert got.created_at.tzinfo == UTC
    assert got.created_at.microsecond == 123456
    assert got.expires_at is not None
    assert got.expires_at.tzinfo == UTC
    assert got.expires_at == created + timedelta(hours=1)
    user = sql_store.get_user("alice")
    assert user is not None
    assert user.created_at.tzinfo == UTC


def test_naive_datetimes_are_refused(sql_store: SQLStore) -> None:
    key = new_key(team="sales", created_at=datetime(2026, 1, 1))
    with pytest.raises(sa.exc.StatementError, match="aware datetimes only"):
        sql_store.add_key(key)
    assert sql_store.get_key(key.id) is None


def test_key_of_unknown_owner_is_not_found(sql_store: SQLStore) -> None:
    with pytest.raises(NotFound):
        sql_store.add_key(new_key(owner="ghost"))


def test_duplicate_key_id_is_a_conflict(sql_store: SQLStore) -> None:
    key = new_key(team="sales")
    sql_store.add_key(key)
    with pytest.raises(Conflict):
        sql_store.add_key(key)


def test_find_key_returns_the_key_and_its_owner(sql_store: SQLStore) -> None:
    alice = add_admin(sql_store)
    personal = new_key(owner="alice")
    team = new_key(team="sales")
    sql_store.add_key(personal)
    sql_store.add_key(team)
    match = sql_store.find_key(personal.id)
    assert match is not None
    assert match.key == personal
    assert match.owner == alice
    team_match = sql_store.find_key(team.id)
    assert team_match is not None
    assert team_match.key == team
    assert team_match.owner is None
    assert sql_store.find_key("nosuchkey000") is None


def test_find_key_sees_the_owners_current_state(sql_store: SQLStore) -> None:
    add_admin(sql_store)
    key = new_key(owner="alice")
    sql_store.add_key(key)
    sql_store.update_user("alice", roles=frozenset({"employee"}), disabled=True, bump_epoch=True)
    match = sql_store.find_key(key.id)
    assert match is not None
    assert match.owner is not None
    assert (match.owner.roles, match.owner.disabled, match.owner.credential_epoch) == (
        frozenset({"employee"}),
        True,
        1,
    )


def test_find_key_is_one_select(sql_store: SQLStore) -> None:
    add_admin(sql_store)
    key = new_key(owner="alice")
    sql_store.add_key(key)
    sql_store.find_key(key.id)  # warm the pool: connecting is not the lookup
    with statements(sql_store) as seen:
        assert sql_store.find_key(key.id) is not None
    assert len(seen) == 1, seen
    assert seen[0].lstrip().upper().startswith("SELECT")


def test_find_key_uses_the_primary_key_on_sqlite(sqlite_store: SQLStore) -> None:
    sql_store = sqlite_store
    add_admin(sql_store)
    key = new_key(owner="alice")
    sql_store.add_key(key)
    with statements(sql_store) as seen:
        sql_store.find_key(key.id)
    with sql_store.engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + seen[0]).all()
    details = [row[-1] for row in plan]
    assert details, "no plan"
    assert not any(d.startswith("SCAN") for d in details), details
    assert any(d.startswith("SEARCH authmw_api_keys USING") and "(id=?)" in d for d in details), (
        details
    )
    assert any(d.startswith("SEARCH owner USING INTEGER PRIMARY KEY") for d in details), details


@pytest.mark.postgres
def test_find_key_can_use_the_primary_key_on_postgres(postgres_store: SQLStore) -> None:
    sql_store = postgres_store
    add_admin(sql_store)
    key = new_key(owner="alice")
    sql_store.add_key(key)
    with statements(sql_store) as seen:
        sql_store.find_key(key.id)
    with sql_store.engine.connect() as conn:
        # A table this small is cheaper to scan, so forbid that to see the index is usable.
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = conn.exec_driver_sql("EXPLAIN " + seen[0], {"key_id": key.id}).scalars().all()
    text = "\n".join(plan)
    assert "authmw_api_keys_pkey" in text, text
    assert "Seq Scan on authmw_api_keys" not in text, text


def test_list_keys_newest_first_with_filters(sql_store: SQLStore) -> None:
    add_admin(sql_store, "alice")
    add_admin(sql_store, "bob")
    a = new_key(owner="alice", created_at=T0)
    b = new_key(team="sales", created_at=T0 + timedelta(seconds=1))
    c = new_key(owner="bob", created_at=T0 + timedelta(seconds=2))
    d = new_key(team="ops", created_at=T0 + timedelta(seconds=3))
    for key in (a, b, c, d):
        sql_store.add_key(key)
    assert [k.id for k in sql_store.list_keys()] == [d.id, c.id, b.id, a.id]
    assert [k.id for k in sql_store.list_keys(owner="alice")] == [a.id]
    assert [k.id for k in sql_store.list_keys(team="sales")] == [b.id]
    assert [k.owner for k in sql_store.list_keys()] == [None, "bob", None, "alice"]
    assert sql_store.list_keys(owner="nobody") == []


def test_revoke_key(sql_store: SQLStore) -> None:
    key = new_key(team="sales")
    sql_store.add_key(key)
    revoked = sql_store.revoke_key(key.id, T0)
    assert revoked.revoked_at == T0
    # Revoking again keeps the first time.
    assert sql_store.revoke_key(key.id, T0 + timedelta(hours=1)).revoked_at == T0
    with pytest.raises(NotFound):
        sql_store.revoke_key("nosuchkey000", T0)


def test_rotate_key(sql_store: SQLStore) -> None:
    old = new_key(team="sales")
    sql_store.add_key(old)
    successor = new_key(team="sales", created_at=T0 + timedelta(minutes=1))
    grace_end = T0 + timedelta(hours=1)
    assert sql_store.rotate_key(old.id, successor, grace_end) == successor
    assert sql_store.get_key(successor.id) == successor
    old_now = sql_store.get_key(old.id)
    assert old_now is not None
    assert old_now.replaced_by == successor.id
    assert old_now.expires_at == grace_end
    with pytest.raises(Conflict):
        sql_store.rotate_key(old.id, new_key(team="sales"), grace_end)
    with pytest.raises(NotFound):
        sql_store.rotate_key("nosuchkey000", new_key(team="sales"), grace_end)


def test_rotation_never_extends_an_earlier_expiry(sql_store: SQLStore) -> None:
    old = new_key(team="sales", expires_at=T0 + timedelta(minutes=5))
    sql_store.add_key(old)
    sql_store.rotate_key(old.id, new_key(team="sales"), T0 + timedelta(days=1))
    got = sql_store.get_key(old.id)
    assert got is not None
    assert got.expires_at == T0 + timedelta(minutes=5)


def test_rotating_a_revoked_key_is_a_conflict_and_adds_nothing(sql_store: SQLStore) -> None:
    old = new_key(team="sales")
    sql_store.add_key(old)
    sql_store.revoke_key(old.id, T0)
    successor = new_key(team="sales")
    with pytest.raises(Conflict):
        sql_store.rotate_key(old.id, successor, T0)
    assert sql_store.get_key(successor.id) is None


def test_concurrent_rotations_of_one_key_exactly_one_wins(sql_store: SQLStore) -> None:
    old = new_key(team="sales")
    sql_store.add_key(old)
    threads = 6
    barrier = threading.Barrier(threads)
    outcomes: list[str] = []
    successors = [new_key(team="sales") for _ in range(threads)]

    def rotate(successor: ApiKey) -> None:
        barrier.wait()
        try:
            sql_store.rotate_key(old.id, successor, T0 + timedelta(hours=1))
        except Conflict:
            outcomes.append("conflict")
        except BaseException as exc:  # anything else is a failure of the test
            outcomes.append(repr(exc))
        else:
            outcomes.append(successor.id)

    workers = [threading.Thread(target=rotate, args=(s,)) for s in successors]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    winners = [o for o in outcomes if o != "conflict"]
    assert len(outcomes) == threads
    assert len(winners) == 1, outcomes
    got = sql_store.get_key(old.id)
    assert got is not None
    assert got.replaced_by == winners[0]
    # The losers' successors were rolled back with their transactions.
    assert len(sql_store.list_keys(team="sales")) == 2


def test_record_key_use(sql_store: SQLStore) -> None:
    a, b, c = new_key(team="sales"), new_key(team="sales"), new_key(team="sales")
    for key in (a, b, c):
        sql_store.add_key(key)
    sql_store.record_key_use({a.id: T0, b.id: T0 + timedelta(seconds=5), "nosuchkey000": T0})
    sql_store.record_key_use({})
    assert [sql_store.get_key(k.id).last_used_at for k in (a, b, c)] == [  # type: ignore[union-attr]
        T0,
        T0 + timedelta(seconds=5),
        None,
    ]


# -- the whole lifecycle, through an authenticator, on each backend ---------------------------


def test_key_lifecycle_through_an_authenticator(
    make_authenticator: AuthenticatorFactory, store_url: tuple[str, dict[str, Any]]
) -> None:
    url, options = store_url
    auth: Authenticator = make_authenticator(SQLStore(url, **options))
    issued = auth.keys.create(name="laptop", owner="admin", expires_in=timedelta(days=1))
    credential = Credential("apikey", issued.key)
    principal = auth.authenticate(credential)
    assert principal is not None
    assert principal.subject == "admin"
    auth.flush_usage()
    assert auth.keys.get(issued.record.id).last_used_at is not None
    rotated = auth.keys.rotate(issued.record.id, grace=timedelta(hours=1))
    assert auth.authenticate(credential) is not None
    assert auth.authenticate(Credential("apikey", rotated.key)) is not None
    auth.keys.revoke(issued.record.id)
    with pytest.raises(InvalidToken):
        auth.authenticate(credential)
    auth.users.disable("admin")
    with pytest.raises(InvalidToken):
        auth.authenticate(Credential("apikey", rotated.key))
