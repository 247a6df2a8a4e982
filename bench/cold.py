"""Cold verification: a cache miss against a SQLite file holding many keys.

The database is built once into ``bench/.cache/`` (git-ignored) and reused by
later runs: ``keys-<N>.db`` with ``N`` rows in the real ``authmw_api_keys`` table
(created by ``SQLStore.create_schema()``), and ``keys-<N>.json`` listing the keys
that are measured. Those are real keys from ``authmw.keys.generate``, personal
keys of admin users, so every lookup also reads the owner through the join.
The filler rows only need to be there and look alike, so their ids and secrets
come from a seeded ``random`` instead of ``secrets`` (the rows are still hashed
with ``authmw.keys.hash_secret``), and they are inserted with ``executemany`` in
chunks.

Measured with ``cache_ttl=0``, so every call is a cache miss: parse, one
primary-key lookup joined to the owner, hash and compare, build the principal.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from authmw import Authenticator, Settings
from authmw.credentials import Credential
from authmw.keys import ID_LENGTH, ParsedKey, generate, hash_secret
from authmw.store.sql import SQLStore, metadata
from bench.harness import median, percentile

__all__ = ["ColdResult", "ensure_database", "fill", "measure_cold"]

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_SPACE = 62**ID_LENGTH
# Odd and not a multiple of 31, so i -> i * _SPREAD mod 62**12 is a bijection:
# unique filler ids that look random, without remembering which were used.
_SPREAD = 3_778_123_455_693_017
_ADMINS = 10
_CHUNK = 50_000
_CREATED = datetime(2025, 1, 1, tzinfo=UTC)


def _base62(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, digit = divmod(value, 62)
        out.append(_ALPHABET[digit])
    return "".join(reversed(out))


def _rows(
    n_keys: int, measured_at: set[int], admin_ids: list[int], rng: random.Random, keys: list[str]
) -> Iterator[dict[str, Any]]:
    for i in range(n_keys):
        row: dict[str, Any] = {
            "scopes": None,
            "created_at": _CREATED,
            "expires_at": None,
            "revoked_at": None,
            "last_used_at": None,
            "replaced_by": None,
        }
        if i in measured_at:
            value, parsed = generate()
            keys.append(value)
            row.update(name=f"measured-{i}", owner_id=admin_ids[i % _ADMINS], team=None)
        else:
            parsed = ParsedKey(
                _base62(i * _SPREAD % _ID_SPACE, ID_LENGTH), f"{rng.getrandbits(128):032x}"
            )
            if i % 2:
                row.update(name=f"filler-{i}", owner_id=admin_ids[i % _ADMINS], team=None)
            else:
                row.update(name=f"filler-{i}", owner_id=None, team=f"team-{i % 100}")
        row["id"] = parsed.key_id
        row["secret_hash"] = hash_secret(parsed)
        yield row


def fill(store: SQLStore, n_keys: int, n_measured: int, seed: int) -> list[str]:
    """Create the schema on a throw-away ``store`` and insert ``n_keys`` keys.

    Returns the measured keys (``n_measured`` of them, real and shuffled); the
    rest are filler. Used for the SQLite file here and the PostgreSQL schema of
    ``bench/cold_pg.py``.
    """
    store.create_schema()
    admin_ids = [
        store.add_user(
            f"admin{i}", password_hash=None, roles=frozenset({"admin"}), teams=frozenset()
        ).id
        for i in range(_ADMINS)
    ]
    rng = random.Random(seed)
    measured_at = set(rng.sample(range(n_keys), n_measured))
    keys: list[str] = []
    table = metadata.tables["authmw_api_keys"]
    chunk: list[dict[str, Any]] = []
    with store.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            # A throw-away file being built: no need to wait for the disk.
            conn.exec_driver_sql("PRAGMA synchronous=OFF")
        for row in _rows(n_keys, measured_at, admin_ids, rng, keys):
            chunk.append(row)
            if len(chunk) == _CHUNK:
                conn.execute(table.insert(), chunk)  # one executemany per chunk
                conn.commit()
                chunk = []
        if chunk:
            conn.execute(table.insert(), chunk)
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    rng.shuffle(keys)
    return keys


def _build(path: Path, n_keys: int, n_measured: int, seed: int) -> list[str]:
    partial = path.with_name(path.name + ".partial")
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    store = SQLStore(f"sqlite:///{partial}")
    keys = fill(store, n_keys, n_measured, seed)
    store.close()
    os.replace(partial, path)
    return keys


def ensure_database(
    n_keys: int, n_measured: int, *, seed: int = 7
) -> tuple[Path, list[str], float]:
    """Return the database path, the measured keys and the build time (0 when reused)."""
    CACHE_DIR.mkdir(exist_ok=True)
    path = CACHE_DIR / f"keys-{n_keys}.db"
    sidecar = CACHE_DIR / f"keys-{n_keys}.json"
    if path.exists() and sidecar.exists():
        saved = json.loads(sidecar.read_text())
        if saved.get("n_keys") == n_keys and len(saved.get("keys", ())) >= n_measured:
            return path, list(saved["keys"]), 0.0
    start = time.perf_counter()
    keys = _build(path, n_keys, n_measured, seed)
    sidecar.write_text(json.dumps({"n_keys": n_keys, "keys": keys}))
    return path, keys, time.perf_counter() - start


@dataclass(frozen=True)
class ColdResult:
    """Per-call latencies of one operation, in µs."""

    name: str
    calls: int
    p50_us: float
    p99_us: float
    mean_us: float
    note: str = ""


def _summarise(name: str, times: list[float], note: str = "") -> ColdResult:
    return ColdResult(
        name, len(times), median(times), percentile(times, 99), sum(times) / len(times), note
    )


def _time_each(picks: list[str], call: Callable[[str], object]) -> list[float]:
    times = []
    for value in picks:
        start = time.perf_counter_ns()
        call(value)
        times.append((time.perf_counter_ns() - start) / 1000)
    return times


def measure_cold(path: Path, keys: list[str], *, lookups: int, seed: int = 11) -> list[ColdResult]:
    """Time cold verifications of ``lookups`` keys drawn at random from ``keys``."""
    url = f"sqlite:///{path}"
    # cache_ttl=0: every call misses. The usage writer is put off for the run, so
    # no background write lands in the middle of a measurement (or in the file).
    settings = Settings(cache_ttl=0, usage_flush_interval=24 * 3600.0)
    auth = Authenticator(SQLStore(url), settings=settings)
    rng = random.Random(seed)

    def picks(n: int) -> list[str]:
        return [rng.choice(keys) for _ in range(n)]

    def verify(value: str) -> None:
        principal = auth.authenticate(Credential("x-api-key", value))
        assert principal is not None
        assert principal.kind == "api_key"

    def find(value: str) -> None:
        assert auth.store.find_key(value.split("_")[1]) is not None

    raw = sqlite3.connect(path)
    sql = (
        "SELECT k.*, o.* FROM authmw_api_keys AS k"
        " LEFT OUTER JOIN authmw_users AS o ON k.owner_id = o.id WHERE k.id = ?"
    )

    def raw_lookup(value: str) -> None:
        assert raw.execute(sql, (value.split("_")[1],)).fetchone() is not None

    loop = asyncio.new_event_loop()

    async def verify_async(values: list[str]) -> list[float]:
        times = []
        for value in values:
            start = time.perf_counter_ns()
            principal = await auth.authenticate_async(Credential("x-api-key", value))
            times.append((time.perf_counter_ns() - start) / 1000)
            assert principal is not None
        return times

    names = {
        "verify": "**`Authenticator.authenticate()`, cache miss**",
        "find": "`SQLStore.find_key()` alone (compiled SELECT, pooled connection)",
        "raw": "raw `sqlite3` query, same join (the floor)",
        "async": "`await authenticate_async()`, cache miss (+ worker-thread hop)",
    }
    times: dict[str, list[float]] = {name: [] for name in names}
    ops: list[tuple[str, Callable[[list[str]], list[float]]]] = [
        ("verify", lambda values: _time_each(values, verify)),
        ("find", lambda values: _time_each(values, find)),
        ("raw", lambda values: _time_each(values, raw_lookup)),
        ("async", lambda values: loop.run_until_complete(verify_async(values))),
    ]
    try:
        warmup = keys[: min(len(keys), 200)]
        _time_each(warmup, verify)  # connection pool, statement cache, first pages
        _time_each(warmup, raw_lookup)
        # In blocks, the operations taking turns, so a burst of other work on the
        # machine lands on all of them rather than on whichever ran at that moment.
        blocks = 10
        per_block = max(1, lookups // blocks)
        for block in range(blocks):
            for name, op in ops[block % len(ops) :] + ops[: block % len(ops)]:
                n = per_block if name != "async" else max(1, per_block // 2)
                times[name] += op(picks(n))
        results = [
            _summarise(label, times[name], note="target ≤ 100 µs" if name == "verify" else "")
            for name, label in names.items()
        ]
    finally:
        loop.close()
        raw.close()
        auth.store.close()
    return results
