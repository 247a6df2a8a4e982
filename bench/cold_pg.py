"""Cold verification against PostgreSQL on loopback: the scale-out store.

Several instances share one PostgreSQL, so a cache miss there is a network round
trip (here on loopback) instead of a read from a local SQLite file. The table is
built for each run in a private schema (``authmw_bench_<random>``, dropped at the
end): ``n_keys`` rows in the real ``authmw_api_keys`` table, inserted in chunks
with the same rows as ``bench/cold.py`` (real measured keys among seeded filler),
then ``ANALYZE``. Measured with ``cache_ttl=0``, so every call is a miss: one
primary-key lookup joined to the owner, hash and compare, build the principal.

Access tokens with ``cache_ttl=0`` read the user's record (and the revocation
list) on every verification: the cost of a token whose user no instance has
looked at lately.

The server comes from ``AUTHMW_BENCH_POSTGRES_URL``, else ``AUTHMW_TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from authmw import Authenticator, PasswordHasher, Settings
from authmw.credentials import Credential
from authmw.store.sql import SQLStore
from bench.cold import ColdResult, _summarise, _time_each, fill

__all__ = ["measure_cold_pg", "postgres_url", "private_schema", "unavailable_reason"]

_SECRET = "bench-signing-key-0123456789abcdef0123456789"  # noqa: S105 - a benchmark's key
_PASSWORD = "bench password 123"  # noqa: S105 - a benchmark user's


def postgres_url() -> str:
    """The PostgreSQL server to measure against ('' when none is configured)."""
    return (
        os.environ.get("AUTHMW_BENCH_POSTGRES_URL", "").strip()
        or os.environ.get("AUTHMW_TEST_POSTGRES_URL", "").strip()
    )


def unavailable_reason(url: str) -> str | None:
    """Why PostgreSQL at ``url`` cannot be used, or ``None`` when it answers."""
    if not url:
        return "set AUTHMW_BENCH_POSTGRES_URL (or AUTHMW_TEST_POSTGRES_URL) to a PostgreSQL server"
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as exc:  # any failure means "not reachable"
        return f"PostgreSQL not reachable ({type(exc).__name__})"
    return None


@contextmanager
def private_schema(url: str, prefix: str = "authmw_bench") -> Iterator[dict[str, Any]]:
    """Create a schema for this run; yield the engine options that select it; drop it after."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url)
    try:
        with admin.begin() as conn:
            conn.execute(sa.schema.CreateSchema(schema))
        try:
            yield {"connect_args": {"options": f"-csearch_path={schema}"}}
        finally:
            with admin.begin() as conn:
                conn.execute(sa.schema.DropSchema(schema, cascade=True))
    finally:
        admin.dispose()


def measure_cold_pg(
    url: str, *, n_keys: int, lookups: int, tokens: int = 2000, seed: int = 13
) -> tuple[list[ColdResult], float]:
    """Build the table, time ``lookups`` cold verifications; return them and the build time."""
    with private_schema(url) as options:
        store = SQLStore(url, **options)
        start = time.perf_counter()
        keys = fill(store, n_keys, min(2000, n_keys), seed)
        build_s = time.perf_counter() - start
        settings = Settings(cache_ttl=0, usage_flush_interval=24 * 3600.0, secret_keys=(_SECRET,))
        auth = Authenticator(
            store, settings=settings, passwords=PasswordHasher(memory_cost=8, time_cost=1)
        )
        rng = random.Random(seed)
        try:
            return _measure(auth, store, keys, rng, lookups=lookups, n_tokens=tokens), build_s
        finally:
            auth.close()


def _measure(
    auth: Authenticator,
    store: SQLStore,
    keys: list[str],
    rng: random.Random,
    *,
    lookups: int,
    n_tokens: int,
) -> list[ColdResult]:
    def verify(value: str) -> None:
        principal = auth.authenticate(Credential("x-api-key", value))
        assert principal is not None
        assert principal.kind == "api_key"

    def find(value: str) -> None:
        assert store.find_key(value.split("_")[1]) is not None

    sql = sa.text(
        "SELECT k.*, o.* FROM authmw_api_keys AS k"
        " LEFT OUTER JOIN authmw_users AS o ON k.owner_id = o.id WHERE k.id = :id"
    )
    raw = store.engine.connect()

    def raw_lookup(value: str) -> None:
        assert raw.execute(sql, {"id": value.split("_")[1]}).first() is not None

    def pooled_lookup(value: str) -> None:
        # As the store does it: a connection checked out of the pool per call (a
        # pre-ping on checkout, a rollback on return), so the two rows show that cost.
        with store.engine.connect() as conn:
            assert conn.execute(sql, {"id": value.split("_")[1]}).first() is not None

    # Access tokens for a user the cache never keeps (cache_ttl=0): each
    # verification reads the user's record and the revocation list.
    user = auth.users.create(
        "bench-user",
        password=_PASSWORD,
        roles=["manager"],
    )
    app = auth.clients.create_app("bench", redirect_uris=["https://b.example/cb"], first_party=True)
    scopes = auth.policy.scopes_for(user.roles)
    issued = [
        auth.tokens.issue_for_user(user, app.client, scopes).access_token for _ in range(n_tokens)
    ]

    def verify_token(value: str) -> None:
        principal = auth.authenticate(Credential("bearer", value))
        assert principal is not None
        assert principal.kind == "user"

    names = {
        "verify": "**`Authenticator.authenticate()`, API key, cache miss**",
        "find": "`SQLStore.find_key()` alone (compiled SELECT, pooled connection)",
        "pooled": "the same join as plain SQL, a pooled connection per call",
        "raw": "the same join as plain SQL on one held connection (the floor)",
        "token": "`authenticate()`, access token, `cache_ttl=0` (user + revocations read)",
    }
    ops: list[tuple[str, Callable[[int], list[float]]]] = [
        ("verify", lambda n: _time_each([rng.choice(keys) for _ in range(n)], verify)),
        ("find", lambda n: _time_each([rng.choice(keys) for _ in range(n)], find)),
        ("pooled", lambda n: _time_each([rng.choice(keys) for _ in range(n)], pooled_lookup)),
        ("raw", lambda n: _time_each([rng.choice(keys) for _ in range(n)], raw_lookup)),
        ("token", lambda n: _time_each([rng.choice(issued) for _ in range(n)], verify_token)),
    ]
    times: dict[str, list[float]] = {name: [] for name in names}
    try:
        warmup = keys[: min(len(keys), 200)]
        _time_each(warmup, verify)  # connection pool, server-side plan cache
        _time_each(warmup, raw_lookup)
        _time_each(issued[:50], verify_token)
        blocks = 10
        per_block = max(1, lookups // blocks)
        for block in range(blocks):  # the operations take turns, as in bench/cold.py
            for name, op in ops[block % len(ops) :] + ops[: block % len(ops)]:
                n = per_block if name in ("verify", "token") else max(1, per_block // 2)
                times[name] += op(n)
    finally:
        raw.close()
    return [
        _summarise(label, times[name], note="target p99 ≤ 1 ms" if name == "verify" else "")
        for name, label in names.items()
    ]


if __name__ == "__main__":  # a quick look: python -m bench.cold_pg
    target = postgres_url()
    reason = unavailable_reason(target)
    if reason:
        raise SystemExit(f"skipped: {reason}")
    found, seconds = measure_cold_pg(target, n_keys=100_000, lookups=5000)
    print(f"table built in {seconds:.1f} s")
    for result in found:
        print(f"{result.p50_us:8.1f} {result.p99_us:8.1f}  {result.name}")
