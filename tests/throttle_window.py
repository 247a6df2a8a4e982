"""Keep a test's failed logins inside one of the login throttle's fixed windows.

The throttle counts in buckets aligned to the epoch (``now // window``, see
:mod:`authmw.throttle`), so failures that straddle the end of a bucket start
counting again from zero, by design. A test that drives a real server, whose
clock it cannot set, and expects its fifth failure to be refused would then
fail a few times in a thousand runs. It calls :func:`start_well_inside_a_window`
first: the test still runs against the real clock and the real counters, only
never across a bucket's end.
"""

from __future__ import annotations

import time

from authmw.throttle import DEFAULT_PER_ACCOUNT_ADDRESS


def start_well_inside_a_window(
    window: float = DEFAULT_PER_ACCOUNT_ADDRESS.window, *, needed: float = 30.0
) -> None:
    """Return when the current bucket of ``window`` seconds has at least ``needed`` left.

    Sleeps into the next bucket if the current one ends sooner; returns at once
    otherwise (``window - needed`` seconds of every ``window``).
    """
    assert 0 < needed < window
    left = window - time.time() % window
    if left < needed:
        # A little past the boundary, so a clock read just after waking is in the new bucket.
        time.sleep(left + 0.05)
