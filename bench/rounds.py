"""The request variants, timed in interleaved rounds spread over several processes.

Timings this close to the CPU's caches depend on the process: where its code and
data landed in memory, its hash seed, the cores the scheduler moved it between.
The same rounds of the same apps gave ratios about half a per cent apart from one
process to the next, more than the rounds within one process move them. So, as
pyperf does, the rounds are split between processes started one after another,
each building the apps afresh; the report pools their rounds, keeping each
round's variants together, so a ratio is the median over processes as well as
over rounds.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from authmw import Authenticator
from bench.asgi_apps import fastapi_variants, make_authenticator, starlette_variants
from bench.harness import Variant, interleaved, make_scope, variant_status
from bench.wsgi_apps import django_variants, flask_variants

__all__ = ["build_variants", "check_variants", "pooled_rounds", "variants_for"]


def variants_for(only: tuple[str, ...], auth: Authenticator, key: str) -> list[Variant]:
    """The variants of the frameworks in ``only`` (``asgi``, ``flask``, ``drf``), on ``auth``.

    With ``drf``, configures Django: once per process.
    """
    variants: list[Variant] = []
    if "asgi" in only:
        variants += starlette_variants(auth, key) + fastapi_variants(auth, key)
    if "flask" in only:
        variants += flask_variants(auth, key)
    if "drf" in only:
        variants += django_variants(auth, key)
    return variants


def build_variants(only: tuple[str, ...]) -> tuple[Authenticator, list[Variant]]:
    """:func:`variants_for` on a new authenticator with default settings."""
    auth, key = make_authenticator()
    return auth, variants_for(only, auth, key)


def check_variants(variants: list[Variant], loop: asyncio.AbstractEventLoop) -> None:
    """Every variant must let the key in, and the protected ones must turn a bad key away."""
    refused = make_scope("/reports", [(b"x-api-key", b"amk_notakey")])
    for variant in variants:
        ok = variant_status(variant, loop)
        bad = variant_status(variant, loop, variant.refused or refused)
        if ok != 200 or (not variant.bare and bad not in (400, 401, 403)):
            raise SystemExit(f"{variant.key}: answered {ok} to a good key and {bad} to a bad one")


def _timed_rounds(
    only: tuple[str, ...], rounds: int, batch: int, seed: int
) -> dict[str, list[float]]:
    """Build the variants in this process and time ``rounds`` rounds of them."""
    auth, variants = build_variants(only)
    loop = asyncio.new_event_loop()
    try:
        check_variants(variants, loop)
        return interleaved(variants, loop, rounds=rounds, batch=batch, seed=seed)
    finally:
        loop.close()
        auth.close()


def pooled_rounds(
    variants: list[Variant],
    loop: asyncio.AbstractEventLoop,
    only: tuple[str, ...],
    *,
    rounds: int,
    batch: int,
    processes: int,
) -> dict[str, list[float]]:
    """Time ``rounds`` rounds of ``variants``; pool them over ``processes`` processes.

    With one process, the rounds run here, on ``variants``. With more, each
    process, started one after another, builds the variants of ``only`` afresh
    and runs its share. Per variant key: the mean µs per request of each round, in
    the same order for every key, as :func:`bench.harness.interleaved` returns them.
    """
    if processes <= 1:
        return interleaved(variants, loop, rounds=rounds, batch=batch)
    pooled: dict[str, list[float]] = {}
    context = multiprocessing.get_context("spawn")
    for index in range(processes):
        share = rounds // processes + (1 if index < rounds % processes else 0)
        # A fresh process for every share: an executor reuses its worker otherwise.
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            part = pool.submit(_timed_rounds, only, share, batch, index + 1).result()
        for key, samples in part.items():
            pooled.setdefault(key, []).extend(samples)
    missing = {v.key for v in variants} - pooled.keys()
    if missing:
        raise RuntimeError(f"the processes timed other variants than this one: {sorted(missing)}")
    return pooled
