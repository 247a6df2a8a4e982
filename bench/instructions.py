"""Count the CPU instructions each variant spends per request, under callgrind.

Wall-clock ratios on a shared 2-core machine move by a few per cent from run to
run; an instruction count moves by at most a couple of thousand instructions
a request, out of hundreds of thousands, so it is the figure to compare two
versions of the hot path by while developing (it cannot show cache misses,
which is what the timed benchmark is for)::

    valgrind --tool=callgrind --dump-before=getppid --callgrind-out-file=/tmp/cg.%p \\
        python bench/instructions.py [--only asgi,flask,drf] [--requests 2000]
    python bench/instructions.py --report /tmp/cg.<pid>

Each variant is warmed up, then, after a full garbage collection, ``os.getppid()``
marks the start and the end of its batch: callgrind dumps its counters before
every call of libc's ``getppid``, so every second dump file holds exactly one
batch. ``--report`` divides each by the number of requests.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the ``bench`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from authmw import Settings
from bench.asgi_apps import make_authenticator, starlette_variants
from bench.breakdown import breakdown_variants
from bench.harness import _run_batch
from bench.rounds import variants_for

__all__ = ["Counts", "count_instructions"]

_PLAN = Path(tempfile.gettempdir()) / "authmw-instructions.json"


@dataclass(frozen=True)
class Counts:
    """Instructions per request under callgrind, by variant key."""

    #: The variants of the frameworks counted (``bench/asgi_apps.py``, ``wsgi_apps.py``).
    variants: Mapping[str, float]
    #: The middleware rebuilt step by step (``bench/breakdown.py``), in order; the
    #: steps have a bare app of their own, whose key is also a variant's.
    steps: Sequence[tuple[str, float]] = ()

    def added(self, key: str, framework: str) -> float | None:
        """Instructions variant ``key`` adds over its framework's bare app."""
        mine = self.variants.get(key)
        bare = self.variants.get(f"{framework}/bare")
        return None if mine is None or bare is None else mine - bare


def count_instructions(only: tuple[str, ...], *, requests: int, breakdown: bool) -> Counts | None:
    """Run this script under callgrind; ``None`` when valgrind is not installed.

    Counts the variants of the frameworks in ``only`` and, with ``breakdown``,
    the steps of ``bench/breakdown.py``.
    """
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out, plan = Path(tmp) / "cg", Path(tmp) / "plan.json"
        command = [
            *(valgrind, "--tool=callgrind", "--dump-before=getppid"),
            f"--callgrind-out-file={out}.%p",
            *(sys.executable, __file__, "--only", ",".join(only), "--requests", str(requests)),
            *("--plan", str(plan)),
            *(["--breakdown"] if breakdown else []),
        ]
        # A fixed hash seed: dict and set layouts, and so the count, repeat exactly.
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        subprocess.run(
            command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        (pid,) = {p.name.split(".")[1] for p in Path(tmp).glob("cg.*")}  # one process
        return _counts(f"{out}.{pid}", plan)


def _measure(only: tuple[str, ...], requests: int, breakdown: bool, plan: Path) -> None:
    # The cache re-verifies a key every cache_ttl and the usage recorder writes every
    # usage_flush_interval, both by the clock. Amortised over a second of requests
    # they cost nothing, but callgrind runs some 50 times slower, so they would fall
    # into batches at random: an hour each keeps them out of every batch.
    auth, key = make_authenticator(Settings(cache_ttl=3600, usage_flush_interval=3600))
    variants = variants_for(only, auth, key)
    steps = len(variants)  # where the breakdown steps begin
    if breakdown:
        scope = starlette_variants(auth, key)[0].scope
        variants += breakdown_variants(auth, scope, scope["path"])
    loop = asyncio.new_event_loop()
    for variant in variants:
        _run_batch(variant, loop, 50)
    names = []
    for variant in variants:
        # Every batch starts with nothing left for the collector: a full collection
        # that fell into one batch would be charged to it. The collection itself
        # lies between an end marker and the next start marker, in no batch.
        gc.collect()
        os.getppid()  # start marker: callgrind dumps here
        _run_batch(variant, loop, requests)
        os.getppid()  # end marker: this dump holds the batch alone
        names.append(variant.key)
    plan.write_text(json.dumps({"names": names, "requests": requests, "steps": steps}))


def _counts(prefix: str, plan_file: Path) -> Counts:
    plan = json.loads(plan_file.read_text())
    files = sorted(glob.glob(prefix + ".*"), key=lambda p: int(p.rsplit(".", 1)[1]))
    # Dump j (1-based) holds everything since marker j-1. Variant i (0-based) has
    # markers 2i+1 (start) and 2i+2 (end), so its batch is dump 2i+2.
    totals = []
    for path in files:
        text = Path(path).read_text()
        found = re.search(r"^summary:\s+(\d+)", text, re.M) or re.search(
            r"^totals:\s+(\d+)", text, re.M
        )
        totals.append(int(found.group(1)) if found else 0)
    counted = [(name, totals[2 * i + 1] / plan["requests"]) for i, name in enumerate(plan["names"])]
    return Counts(dict(counted[: plan["steps"]]), counted[plan["steps"] :])


def _report(prefix: str, plan: Path) -> None:
    bare: dict[str, float] = {}
    counts = _counts(prefix, plan)
    for name, per in [*counts.variants.items(), *counts.steps]:
        framework = name.split("/")[0]
        if name.endswith("/bare") and framework not in bare:
            bare[framework] = per
        extra = per - bare.get(framework, per)
        print(f"{name:28} {per:>10,.0f} instr/request   +{extra:>8,.0f} vs bare")


def main() -> None:
    """Measure (under callgrind) or report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="asgi,flask,drf")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--breakdown", action="store_true", help="also the steps of breakdown.py")
    parser.add_argument("--report", metavar="PREFIX")
    parser.add_argument("--plan", type=Path, default=_PLAN, help="where the batch order goes")
    args = parser.parse_args()
    if args.report:
        _report(args.report, args.plan)
    else:
        only = tuple(args.only.split(",")) if args.only else ()
        _measure(only, args.requests, args.breakdown, args.plan)


if __name__ == "__main__":
    main()
