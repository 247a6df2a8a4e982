"""authmw.store.sql: OAuth2 clients, refresh tokens and revocations, on each backend.

Every test taking ``sql_store`` or ``store_url`` runs on SQLite (a file, as
deployed) and on PostgreSQL; the PostgreSQL run is skipped unless
``AUTHMW_TEST_POSTGRES_URL`` is set.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from authmw import Conflict, NotFound
from authmw import keys as keys_module
from authmw.store import Client, RefreshToken, Revocation, Store
from authmw.store.sql import SQLStore
from tests.core.test_store import statements

T0 = datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)


def new_id() -> str:
    return keys_module.generate()[1].key_id


def new_client(
    name: str = "billing", *, team: str = "blue", created_at: datetime = T0, **changes: Any
) -> Client:
    values: dict[str, Any] = {
        "id": new_id(),
        "name": name,
        "kind": "client",
        "team": team,
        "scopes": frozenset({"appointments:read", "reports:read"}),
        "roles": frozenset({"employee"}),
        "redirect_uris": (),
        "public": False,
        "first_party": False,
        "created_at": created_at,
        "secret_hash": "v1$" + "a" * 64,
    }
    return Client(**(values | changes))


def new_app(name: str = "calendar", **changes: Any) -> Client:
    values: dict[str, Any] = {
        "kind": "app",
        "team": None,
        "roles": frozenset(),
        "redirect_uris": ("https://cal.example/cb", "http://127.0.0.1:8080/cb"),
    }
    return new_client(name, **(values | changes))


def new_token(
    *,
    family_id: str | None = None,
    subject: str = "alice",
    client_id: str = "clientid0001",
    created_at: datetime = T0,
    token_id: str | None = None,
    **changes: Any,
) -> RefreshToken:
    token_id = token_id or new_id()
    values: dict[str, Any] = {
        "id": token_id,
        "family_id": family_id or token_id,
        "client_id": client_id,
        "subject": subject,
        "kind": "user",
        "scopes": frozenset({"appointments:read"}),
        "credential_epoch": 3,
        "created_at": created_at,
        "expires_at": created_at + timedelta(days=30),
        "idle_expires_at": created_at + timedelta(days=1),
        "secret_hash": "v1$" + "b" * 64,
    }
    return RefreshToken(**(values | changes))


def successor_of(token: RefreshToken, at: datetime) -> RefreshToken:
    return new_token(
        family_id=token.family_id,
        subject=token.subject,
        client_id=token.client_id,
        created_at=at,
        expires_at=token.expires_at,
    )


def revocation(
    rid: str,
    *,
    kind: str = "token",
    revoked_at: datetime = T0,
    expires_at: datetime | None = None,
    subject: str | None = "alice",
) -> Revocation:
    return Revocation(
        id=rid,
        kind=kind,
        subject=subject,
        expires_at=expires_at or revoked_at + timedelta(minutes=15),
        revoked_at=revoked_at,
    )


def run_at_once(count: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` in ``count`` threads released together; return results (or errors)."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:  # reported in the results, not lost in the thread
            results[i] = exc

    workers = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return results


def test_sql_store_is_still_a_store(sql_store: SQLStore) -> None:
    assert isinstance(sql_store, Store)


def test_create_schema_makes_the_indexes(sql_store: SQLStore) -> None:
    inspector = sa.inspect(sql_store.engine)
    indexed = {
        table: {tuple(ix["column_names"]) for ix in inspector.get_indexes(table)}
        for table in ("authmw_refresh_tokens", "authmw_revocations")
    }
    assert ("family_id",) in indexed["authmw_refresh_tokens"]
    assert ("subject", "client_id") in indexed["authmw_refresh_tokens"]
    assert ("revoked_at",) in indexed["authmw_revocations"]
    sql_store.create_schema()  # still idempotent with the new tables


# -- clients ------------------------------------------------------------------------------


def test_client_round_trip(sql_store: SQLStore) -> None:
    client = new_client()
    app = new_app(
        redirect_uris=("com.example.app:/cb", "https://b.example/cb?x=1", "https://a.example/"),
        public=True,
        first_party=True,
        secret_hash=None,
        scopes=frozenset(),
    )
    assert sql_store.add_client(client) == client
    assert sql_store.add_client(app) == app
    assert sql_store.get_client(client.id) == client
    got = sql_store.get_client(app.id)
    assert got == app
    # Kept exactly as given, in registration order.
    assert got.redirect_uris == (
        "com.example.app:/cb",
        "https://b.example/cb?x=1",
        "https://a.example/",
    )
    assert got.scopes == frozenset()
    assert got.secret_hash is None
    assert sql_store.get_client("nosuchclient") is None
    assert "secret_hash" not in repr(got)
    assert "v1$" not in repr(sql_store.get_client(client.id))


def test_duplicate_client_id_is_a_conflict(sql_store: SQLStore) -> None:
    client = new_client()
    sql_store.add_client(client)
    with pytest.raises(Conflict):
        sql_store.add_client(new_app(id=client.id))
    assert sql_store.get_client(client.id) == client


def test_client_datetimes_are_utc(sql_store: SQLStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2026, 3, 1, 14, 30, 45, 123456, tzinfo=plus_two)
    client = new_client(
        created_at=created,
        previous_secret_hash="v1$" + "c" * 64,
        previous_secret_expires_at=created + timedelta(hours=1),
    )
    sql_store.add_client(client)
    got = sql_store.get_client(client.id)
    assert got is not None
    assert got.created_at == created
    assert got.created_at.tzinfo == UTC
    assert got.previous_secret_expires_at is not None
    assert got.previous_secret_expires_at.tzinfo == UTC
    assert got.previous_secret_expires_at == created + timedelta(hours=1)


def test_list_clients_by_name_then_id_with_kind(sql_store: SQLStore) -> None:
    b1 = new_client("beta", id="B00000000000")
    b2 = new_client("beta", id="A00000000000")
    a = new_app("alpha")
    c = new_client("gamma")
    for client in (c, b1, a, b2):
        sql_store.add_client(client)
    assert [x.id for x in sql_store.list_clients()] == [a.id, b2.id, b1.id, c.id]
    assert [x.id for x in sql_store.list_clients(kind="client")] == [b2.id, b1.id, c.id]
    assert sql_store.list_clients(kind="app") == [a]
    assert sql_store.list_clients(kind="other") == []


def test_update_client_changes_only_what_is_given(sql_store: SQLStore) -> None:
    client = new_client()
    sql_store.add_client(client)
    disabled = sql_store.update_client(client.id, disabled=True)
    assert disabled.disabled
    assert disabled.secret_hash == client.secret_hash
    grace_end = T0 + timedelta(hours=1)
    rotated = sql_store.update_client(
        client.id,
        secret_hash="v1$" + "d" * 64,
        previous_secret_hash=client.secret_hash,
        previous_secret_expires_at=grace_end,
    )
    assert rotated.disabled  # untouched
    assert rotated.secret_hash == "v1$" + "d" * 64
    assert rotated.previous_secret_hash == client.secret_hash
    assert rotated.previous_secret_expires_at == grace_end
    assert sql_store.get_client(client.id) == rotated
    cleared = sql_store.update_client(client.id, disabled=False, clear_previous=True)
    assert (cleared.disabled, cleared.previous_secret_hash) == (False, None)
    assert cleared.previous_secret_expires_at is None
    assert cleared.secret_hash == "v1$" + "d" * 64
    assert sql_store.update_client(client.id) == cleared  # nothing to change
    with pytest.raises(NotFound):
        sql_store.update_client("nosuchclient", disabled=True)
    with pytest.raises(NotFound):
        sql_store.update_client("nosuchclient")
    with pytest.raises(ValueError, match="clear_previous"):
        sql_store.update_client(client.id, previous_secret_hash="x", clear_previous=True)


def test_reenable_client_draws_the_line_only_for_a_disabled_client(sql_store: SQLStore) -> None:
    client = new_client()
    sql_store.add_client(client)
    # Not disabled: nothing changes, so its live tokens live on.
    assert sql_store.reenable_client(client.id, T0) == client
    sql_store.update_client(client.id, disabled=True)
    enabled = sql_store.reenable_client(client.id, T0 + timedelta(seconds=1))
    assert (enabled.disabled, enabled.reenabled_at) == (False, T0 + timedelta(seconds=1))
    assert sql_store.get_client(client.id) == enabled
    # A second enable that overlapped the first finds it enabled: the line stays put.
    assert sql_store.reenable_client(client.id, T0 + timedelta(seconds=2)) == enabled
    with pytest.raises(NotFound):
        sql_store.reenable_client("nosuchclient", T0)


def test_of_concurrent_reenables_exactly_one_draws_the_line(sql_store: SQLStore) -> None:
    client = new_client()
    sql_store.add_client(client)
    sql_store.update_client(client.id, disabled=True)
    moments = [T0 + timedelta(seconds=i) for i in range(4)]
    results = run_at_once(4, lambda i: sql_store.reenable_client(client.id, moments[i]))
    records = [r for r in results if isinstance(r, Client)]
    assert len(records) == 4, results
    final = sql_store.get_client(client.id)
    assert final is not None
    assert final.reenabled_at in moments
    # Every call returns the record as it left it: one with its own moment, the
    # others with the line the first drew.
    drew = [at for r, at in zip(records, moments, strict=True) if r.reenabled_at == at]
    assert drew == [final.reenabled_at]


# -- refresh tokens ----------------------------------------------------------------------


def test_refresh_token_round_trip(sql_store: SQLStore) -> None:
    token = new_token(kind="delegated", scopes=frozenset({"a", "b"}))
    assert sql_store.add_refresh_token(token) == token
    got = sql_store.get_refresh_token(token.id)
    assert got == token
    assert got.expires_at.tzinfo == UTC
    assert got.credential_epoch == 3
    assert sql_store.get_refresh_token("nosuchtoken0") is None
    assert "v1$" not in repr(got)
    with pytest.raises(Conflict):
        sql_store.add_refresh_token(token)


def test_get_refresh_token_is_one_select(sql_store: SQLStore) -> None:
    token = new_token()
    sql_store.add_refresh_token(token)
    sql_store.get_refresh_token(token.id)  # warm the pool
    with statements(sql_store) as seen:
        assert sql_store.get_refresh_token(token.id) is not None
    assert len(seen) == 1, seen
    assert seen[0].lstrip().upper().startswith("SELECT")


def test_rotation_consumes_the_token_and_adds_its_successor(sql_store: SQLStore) -> None:
    first = new_token()
    sql_store.add_refresh_token(first)
    at = T0 + timedelta(hours=2)
    second = successor_of(first, at)
    assert sql_store.rotate_refresh_token(first.id, second, at) is True
    used = sql_store.get_refresh_token(first.id)
    assert used is not None
    assert used.used_at == at
    assert used.revoked_at is None
    assert sql_store.get_refresh_token(second.id) == second
    # A used token never rotates again, and the loser writes nothing.
    third = successor_of(first, at)
    assert sql_store.rotate_refresh_token(first.id, third, at + timedelta(1)) is False
    assert sql_store.get_refresh_token(third.id) is None
    assert sql_store.get_refresh_token(first.id) == used


def test_revoked_or_unknown_tokens_do_not_rotate(sql_store: SQLStore) -> None:
    token = new_token()
    sql_store.add_refresh_token(token)
    sql_store.revoke_refresh_family(token.family_id, T0)
    successor = successor_of(token, T0)
    assert sql_store.rotate_refresh_token(token.id, successor, T0) is False
    assert sql_store.get_refresh_token(successor.id) is None
    got = sql_store.get_refresh_token(token.id)
    assert got is not None
    assert got.used_at is None
    assert sql_store.rotate_refresh_token("nosuchtoken0", successor, T0) is False
    assert sql_store.get_refresh_token(successor.id) is None


def test_rotation_with_a_taken_successor_id_rolls_back(sql_store: SQLStore) -> None:
    taken = new_token()
    token = new_token()
    sql_store.add_refresh_token(taken)
    sql_store.add_refresh_token(token)
    with pytest.raises(Conflict):
        sql_store.rotate_refresh_token(token.id, new_token(token_id=taken.id), T0)
    got = sql_store.get_refresh_token(token.id)
    assert got is not None
    assert got.used_at is None, "the conditional UPDATE was rolled back with the insert"


def test_concurrent_rotations_of_one_token_exactly_one_wins(
    sql_store: SQLStore, store_url: tuple[str, dict[str, Any]]
) -> None:
    # Two engines, as two processes would have: no lock in Python can decide this.
    url, options = store_url
    other = SQLStore(url, **options)
    try:
        token = new_token()
        sql_store.add_refresh_token(token)
        threads = 20
        successors = [successor_of(token, T0 + timedelta(seconds=i)) for i in range(threads)]
        stores = [sql_store, other]

        def rotate(i: int) -> bool:
            return stores[i % 2].rotate_refresh_token(
                token.id, successors[i], successors[i].created_at
            )

        results = run_at_once(threads, rotate)
    finally:
        other.close()
    assert all(isinstance(r, bool) for r in results), results
    assert results.count(True) == 1, results
    winner = successors[results.index(True)]
    assert sql_store.get_refresh_token(winner.id) == winner
    # Only the winner's successor exists; the losers wrote nothing.
    assert [s.id for s in successors if sql_store.get_refresh_token(s.id) is not None] == [
        winner.id
    ]
    used = sql_store.get_refresh_token(token.id)
    assert used is not None
    assert used.used_at == winner.created_at


def test_revoke_refresh_family(sql_store: SQLStore) -> None:
    first = new_token()
    sql_store.add_refresh_token(first)
    second = successor_of(first, T0 + timedelta(minutes=1))
    sql_store.rotate_refresh_token(first.id, second, T0 + timedelta(minutes=1))
    stranger = new_token()
    sql_store.add_refresh_token(stranger)
    at = T0 + timedelta(hours=1)
    assert sql_store.revoke_refresh_family(first.family_id, at) == 2
    for token in (first, second):
        got = sql_store.get_refresh_token(token.id)
        assert got is not None
        assert got.revoked_at == at
    # Revoking again touches nothing and keeps the first time.
    assert sql_store.revoke_refresh_family(first.family_id, at + timedelta(hours=1)) == 0
    assert sql_store.get_refresh_token(first.id).revoked_at == at  # type: ignore[union-attr]
    assert sql_store.get_refresh_token(stranger.id).revoked_at is None  # type: ignore[union-attr]
    assert sql_store.revoke_refresh_family("nosuchfamily", at) == 0


def test_revoke_refresh_tokens_of_a_subject(sql_store: SQLStore) -> None:
    web1 = new_token(client_id="webapp000001")
    web1_next = successor_of(web1, T0 + timedelta(minutes=5))
    web2 = new_token(client_id="webapp000001")
    mobile = new_token(client_id="mobile000001")
    bob = new_token(client_id="webapp000001", subject="bob")
    for token in (web1, web2, mobile, bob):
        sql_store.add_refresh_token(token)
    sql_store.rotate_refresh_token(web1.id, web1_next, T0 + timedelta(minutes=5))
    at = T0 + timedelta(hours=1)

    touched = sql_store.revoke_refresh_tokens(subject="alice", client_id="webapp000001", at=at)
    assert touched == sorted({web1.family_id, web2.family_id})
    for token in (web1, web1_next, web2):
        assert sql_store.get_refresh_token(token.id).revoked_at == at  # type: ignore[union-attr]
    assert sql_store.get_refresh_token(mobile.id).revoked_at is None  # type: ignore[union-attr]
    assert sql_store.get_refresh_token(bob.id).revoked_at is None  # type: ignore[union-attr]

    later = at + timedelta(hours=1)
    assert sql_store.revoke_refresh_tokens(subject="alice", at=later) == [mobile.family_id]
    assert sql_store.get_refresh_token(web2.id).revoked_at == at  # type: ignore[union-attr]
    assert sql_store.revoke_refresh_tokens(subject="alice", at=later) == []
    assert sql_store.revoke_refresh_tokens(subject="nobody", at=later) == []


# -- revocations -------------------------------------------------------------------------


def test_revocations_since(sql_store: SQLStore) -> None:
    early = revocation("jti-early", revoked_at=T0)
    fam = revocation("family00001", kind="family", revoked_at=T0 + timedelta(minutes=1))
    late = revocation("jti-late", revoked_at=T0 + timedelta(minutes=2), subject=None)
    short = revocation(
        "jti-short",
        revoked_at=T0 + timedelta(minutes=3),
        expires_at=T0 + timedelta(minutes=3, seconds=30),
    )
    for r in (late, short, early, fam):
        sql_store.add_revocation(r)
    assert sql_store.revocations_since(T0) == [early, fam, late, short]
    assert sql_store.revocations_since(T0 + timedelta(minutes=1)) == [fam, late, short]
    # A revocation whose token expired by then is no longer news.
    assert sql_store.revocations_since(T0 + timedelta(minutes=3, seconds=30)) == []
    assert sql_store.revocations_since(T0 + timedelta(minutes=3)) == [short]
    got = sql_store.revocations_since(T0)[0]
    assert got.revoked_at.tzinfo == UTC
    assert got.expires_at.tzinfo == UTC


def test_add_revocation_is_idempotent_and_keeps_the_first(sql_store: SQLStore) -> None:
    first = revocation("jti-1", revoked_at=T0)
    sql_store.add_revocation(first)
    sql_store.add_revocation(revocation("jti-1", revoked_at=T0 + timedelta(minutes=1)))
    # The same id of another kind is another revocation.
    family = revocation("jti-1", kind="family", revoked_at=T0 + timedelta(minutes=2))
    sql_store.add_revocation(family)
    assert sql_store.revocations_since(T0) == [first, family]


def test_concurrent_identical_revocations_are_fine(sql_store: SQLStore) -> None:
    results = run_at_once(8, lambda i: sql_store.add_revocation(revocation("jti-race")))
    assert results == [None] * 8
    assert sql_store.revocations_since(T0) == [revocation("jti-race")]


def test_purge_revocations(sql_store: SQLStore) -> None:
    gone = revocation("jti-gone", expires_at=T0 + timedelta(minutes=5))
    edge = revocation("jti-edge", expires_at=T0 + timedelta(minutes=10))
    kept = revocation("jti-kept", expires_at=T0 + timedelta(hours=1))
    for r in (gone, edge, kept):
        sql_store.add_revocation(r)
    assert sql_store.purge_revocations(T0 + timedelta(minutes=10)) == 1
    assert sql_store.revocations_since(T0) == [edge, kept]
    assert sql_store.purge_revocations(T0 + timedelta(minutes=10)) == 0
    assert sql_store.purge_revocations(T0 + timedelta(days=1)) == 2
    assert sql_store.revocations_since(T0) == []


def test_revocations_since_uses_the_index_on_sqlite(sqlite_store: SQLStore) -> None:
    for i in range(5):
        sqlite_store.add_revocation(revocation(f"jti-{i}", revoked_at=T0 + timedelta(minutes=i)))
    with statements(sqlite_store) as seen:
        sqlite_store.revocations_since(T0)
    with sqlite_store.engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + seen[0]).all()
    details = [row[-1] for row in plan]
    assert details, "no plan"
    assert not any(d.startswith("SCAN") for d in details), details
    assert any(
        d.startswith("SEARCH authmw_revocations USING INDEX ix_authmw_revocations_revoked_at")
        for d in details
    ), details


@pytest.mark.postgres
def test_revocations_since_can_use_the_index_on_postgres(postgres_store: SQLStore) -> None:
    for i in range(5):
        postgres_store.add_revocation(revocation(f"jti-{i}", revoked_at=T0 + timedelta(minutes=i)))
    with statements(postgres_store) as seen:
        postgres_store.revocations_since(T0)
    with postgres_store.engine.connect() as conn:
        # A table this small is cheaper to scan, so forbid that to see the index is usable.
        conn.exec_driver_sql("SET enable_seqscan = off")
        params = {"since": T0}
        plan = conn.exec_driver_sql("EXPLAIN " + seen[0], params).scalars().all()
    text = "\n".join(plan)
    assert "ix_authmw_revocations_revoked_at" in text, text
    assert "Seq Scan" not in text, text
