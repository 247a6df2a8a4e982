"""Count the CPU instructions each variant spends per request, under callgrind.

Wall-clock ratios on a shared 2-core machine move by a few per cent from run to
run; an instruction count does not move at all, so it is the figure to compare
two versions of the hot path by while developing (it cannot show cache misses,
which is what the timed benchmark is for)::

    valgrind --tool=callgrind --dump-before=getppid --callgrind-out-file=/tmp/cg.%p \\
        python bench/instructions.py [--only asgi,flask,drf] [--requests 2000]
    python bench/instructions.py --report /tmp/cg.<pid>

Each variant is warmed up, then ``os.getppid()`` marks the start of its batch:
callgrind dumps its counters before every call of libc's ``getppid``, so each dump
file holds exactly one batch. ``--report`` divides each by the number of requests.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import re
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the ``bench`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.asgi_apps import fastapi_variants, make_authenticator, starlette_variants
from bench.breakdown import breakdown_variants
from bench.harness import Variant, _run_batch
from bench.wsgi_apps import django_variants, flask_variants

_PLAN = Path(tempfile.gettempdir()) / "authmw-instructions.json"


def _measure(only: tuple[str, ...], requests: int, breakdown: bool) -> None:
    auth, key = make_authenticator()
    variants: list[Variant] = []
    if "asgi" in only:
        variants += starlette_variants(auth, key) + fastapi_variants(auth, key)
    if "flask" in only:
        variants += flask_variants(auth, key)
    if "drf" in only:
        variants += django_variants(auth, key)
    if breakdown:
        scope = starlette_variants(auth, key)[0].scope
        variants += breakdown_variants(auth, scope, scope["path"])
    loop = asyncio.new_event_loop()
    for variant in variants:
        _run_batch(variant, loop, 50)
    names = []
    for variant in variants:
        os.getppid()  # marker: callgrind dumps here
        _run_batch(variant, loop, requests)
        names.append(variant.key)
    os.getppid()
    _PLAN.write_text(json.dumps({"names": names, "requests": requests}))


def _report(prefix: str) -> None:
    plan = json.loads(_PLAN.read_text())
    files = sorted(glob.glob(prefix + ".*"), key=lambda p: int(p.rsplit(".", 1)[1]))
    # Dump i (1-based) holds everything before marker i; the batch of variant i
    # (0-based) lies between markers i+1 and i+2, so it is dump i+2.
    totals = []
    for path in files:
        text = Path(path).read_text()
        found = re.search(r"^summary:\s+(\d+)", text, re.M) or re.search(
            r"^totals:\s+(\d+)", text, re.M
        )
        totals.append(int(found.group(1)) if found else 0)
    bare: dict[str, float] = {}
    for i, name in enumerate(plan["names"]):
        per = totals[i + 1] / plan["requests"]
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
    args = parser.parse_args()
    if args.report:
        _report(args.report)
    else:
        _measure(tuple(args.only.split(",")) if args.only else (), args.requests, args.breakdown)


if __name__ == "__main__":
    main()
