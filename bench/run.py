"""Run the authmw benchmark: ``python bench/run.py [--quick]`` (see ``bench/README.md``).

The warm and cold verification timings run in this process; the interleaved
rounds over every ASGI and WSGI variant (``--only`` picks frameworks) are spread
over several processes run one after another (``bench/rounds.py``; one for
``--quick``). With the ASGI frameworks, API-key requests to a real ``authmw demo``
server are also timed under concurrent logins (``bench/logins.py``; ``--no-logins``
leaves it out). The scale-out part (``--no-scale-out`` leaves it out) needs a
PostgreSQL and a Redis server (``bench/cold_pg.py``, ``bench/revocation.py``;
skipped, with the reason printed, when they are not reachable) and runs its two
instances in processes of their own. The report is printed as markdown; a full
run of every framework also writes ``docs/benchmarks.md`` and ``docs/benchmarks.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the ``bench`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cold import ensure_database, measure_cold
from bench.cold_pg import measure_cold_pg, postgres_url
from bench.cold_pg import unavailable_reason as postgres_unavailable
from bench.instructions import count_instructions
from bench.logins import LOGIN_THREADS, measure_logins
from bench.report import ScaleOut, Targets, asgi_rows, render_chart, render_markdown
from bench.revocation import measure_revocation, redis_url
from bench.revocation import unavailable_reason as redis_unavailable
from bench.rounds import build_variants, check_variants, pooled_rounds
from bench.tokens import measure_tokens
from bench.warm import measure_warm

DOCS = Path(__file__).resolve().parent.parent / "docs"

#: (rounds, batch, keys in the database, cold lookups, warm calls per repeat, warm repeats)
FULL = (1000, 200, 1_000_000, 5000, 200_000, 15)
QUICK = (60, 100, 100_000, 1000, 50_000, 5)
#: Processes the request rounds are spread over (``bench/rounds.py``), full and quick.
PROCESSES_FULL, PROCESSES_QUICK = 5, 1
MEASURED_KEYS = 2000
#: (keys in the PostgreSQL table, revocations over Redis, keys of the no-Redis contrast)
SCALE_OUT_FULL = (100_000, 200, 20)
SCALE_OUT_QUICK = (20_000, 50, 10)
#: Requests per variant counted under callgrind (the count hardly moves with more).
INSTRUCTION_REQUESTS = 300
#: (API-key requests per phase, idle and busy phases) of the logins experiment
LOGINS_FULL = (1000, 3)
LOGINS_QUICK = (300, 2)
#: ``--only`` choices: the ASGI frameworks, Flask, and DRF (with plain Django views).
FRAMEWORKS = ("asgi", "flask", "drf")


def _frameworks(value: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(part.strip().lower() for part in value.split(",") if part.strip()))
    unknown = [c for c in chosen if c not in FRAMEWORKS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"choose from {', '.join(FRAMEWORKS)} (comma-separated), not {value!r}"
        )
    return chosen


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def measure_scale_out(pg_keys: int, lookups: int, revocations: int, contrast: int) -> ScaleOut:
    """Time cold lookups in PostgreSQL and revocation over Redis; skip what is unreachable."""
    skipped: list[str] = []
    database = postgres_url()
    reason = postgres_unavailable(database)
    if reason is not None:
        skipped.append(f"cold verification against PostgreSQL and revocation: {reason}")
        _log(f"skipped the scale-out benchmarks: {reason}")
        return ScaleOut(skipped=skipped)
    _log(f"cold verification against PostgreSQL: {pg_keys:,} keys in a private schema")
    cold_pg, build_s = measure_cold_pg(database, n_keys=pg_keys, lookups=lookups)
    _log(f"built in {build_s:.1f} s")
    gc.collect()
    bus = redis_url()
    reason = redis_unavailable(bus)
    if reason is not None:
        skipped.append(f"revocation over Redis: {reason}")
        _log(f"skipped the revocation benchmark: {reason}")
        return ScaleOut(cold_pg=cold_pg, pg_keys=pg_keys, pg_build_s=build_s, skipped=skipped)
    _log(f"revocation: {revocations} over Redis, {contrast} without it")
    revocation = measure_revocation(database, bus, revocations=revocations, contrast=contrast)
    return ScaleOut(cold_pg=cold_pg, pg_keys=pg_keys, pg_build_s=build_s, revocation=revocation)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run, under a minute")
    parser.add_argument(
        "--only",
        type=_frameworks,
        default=FRAMEWORKS,
        metavar="LIST",
        help=f"frameworks to time, comma-separated (default: {','.join(FRAMEWORKS)})",
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds over the app variants")
    parser.add_argument(
        "--processes",
        type=int,
        help="processes the rounds are spread over, one after another (full run: "
        f"{PROCESSES_FULL}, quick: {PROCESSES_QUICK})",
    )
    parser.add_argument("--batch", type=int, help="requests per variant per round")
    parser.add_argument("--keys", type=int, help="keys in the cold-verification database")
    parser.add_argument("--lookups", type=int, help="cold verifications timed")
    parser.add_argument(
        "--instructions",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also count instructions per request under callgrind, for every variant and "
        "for the middleware step by step (needs valgrind; default: yes)",
    )
    parser.add_argument(
        "--scale-out",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time cold lookups in PostgreSQL and revocation over Redis, when the "
        "servers are reachable (default: yes)",
    )
    parser.add_argument(
        "--logins",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time API-key requests to the FastAPI demo under concurrent logins, "
        "over real HTTP (with asgi; default: yes)",
    )
    parser.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write docs/benchmarks.md and .png (default: yes for a full run of every "
        "framework, no for --quick or --only)",
    )
    args = parser.parse_args(argv)
    rounds, batch, n_keys, lookups, warm_number, warm_repeat = QUICK if args.quick else FULL
    rounds = args.rounds or rounds
    processes = args.processes or (PROCESSES_QUICK if args.quick else PROCESSES_FULL)
    batch = args.batch or batch
    n_keys = args.keys or n_keys
    lookups = args.lookups or lookups
    only: tuple[str, ...] = args.only
    everything = not args.quick and set(only) == set(FRAMEWORKS)
    write = everything if args.write is None else bool(args.write)
    started = time.perf_counter()

    _log(f"cold database: {n_keys:,} keys (built once into bench/.cache/)")
    path, keys, build_s = ensure_database(n_keys, min(MEASURED_KEYS, n_keys))
    if build_s:
        _log(f"built in {build_s:.1f} s")

    _log("warm verification")
    warm = measure_warm(number=warm_number, repeat=warm_repeat)
    _log("cold verification")
    cold = measure_cold(path, keys, lookups=lookups)
    del keys
    gc.collect()
    _log("access tokens")
    tokens = measure_tokens(number=max(1, warm_number // 4), repeat=warm_repeat, cold_calls=lookups)
    gc.collect()
    scale_out = None
    if args.scale_out:
        pg_keys, revocations, contrast = SCALE_OUT_QUICK if args.quick else SCALE_OUT_FULL
        scale_out = measure_scale_out(pg_keys, lookups, revocations, contrast)

    logins = None
    if args.logins and "asgi" in only:
        per_phase, segments = LOGINS_QUICK if args.quick else LOGINS_FULL
        _log(f"logins: API-key requests, idle and under {LOGIN_THREADS} logins, {segments} x")
        logins = measure_logins(requests=per_phase, segments=segments)
        gc.collect()

    if "drf" in only:
        _log("Django: configuring, migrating the in-memory database")
    auth, variants = build_variants(only)
    loop = asyncio.new_event_loop()
    check_variants(variants, loop)
    _log(
        f"requests: {rounds} interleaved rounds x {batch} requests x {len(variants)} variants, "
        f"in {processes} process{'es' if processes > 1 else ''}"
    )
    samples = pooled_rounds(variants, loop, only, rounds=rounds, batch=batch, processes=processes)
    rows = asgi_rows(variants, samples)
    loop.close()
    auth.close()
    counts = None
    if args.instructions:
        _log("instructions per request, under callgrind")
        counted = 100 if args.quick else INSTRUCTION_REQUESTS
        counts = count_instructions(only, requests=counted, breakdown="asgi" in only)
        if counts is None:
            _log("valgrind is not installed: no instruction counts")

    targets = Targets(
        mode="quick" if args.quick else "full",
        rounds=rounds,
        processes=processes,
        batch=batch,
        n_keys=n_keys,
        lookups=lookups,
        warm_number=warm_number,
        warm_repeat=warm_repeat,
        db_build_s=build_s,
    )
    chart = "benchmarks.png" if write else None
    markdown = render_markdown(
        rows,
        warm,
        cold,
        targets,
        chart=chart,
        instructions=counts,
        tokens=tokens,
        scale_out=scale_out,
        logins=logins,
    )
    print(markdown)
    if write:
        DOCS.mkdir(exist_ok=True)
        (DOCS / "benchmarks.md").write_text(markdown, encoding="utf-8")
        render_chart(rows, DOCS / "benchmarks.png")
        _log("wrote docs/benchmarks.md and docs/benchmarks.png")
    _log(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
