"""authmw.throttle: soft login throttling, and the 429 it answers with."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from authmw import Authenticator
from authmw.errors import AuthError, TooManyRequests
from authmw.throttle import (
    DEFAULT_PER_ACCOUNT,
    DEFAULT_PER_ACCOUNT_ADDRESS,
    DEFAULT_PER_ADDRESS,
    Limit,
    LoginThrottle,
    MemoryThrottle,
    Throttle,
)
from tests.conftest import PASSWORD
from tests.doc_pages import Page, load_module, python_blocks

ALICE_HOME = "198.51.100.1"
ATTACKER = "203.0.113.66"


class Clock:
    """An injected epoch clock, stepped by the test instead of sleeping."""

    def __init__(self, now: float = 1_000_000_200.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    # 1_000_000_200 starts a 300 s (and a 60 s) bucket and is 3_000 s into its hour,
    # so the tests know where each bucket ends.
    return Clock()


@pytest.fixture
def store() -> MemoryThrottle:
    return MemoryThrottle()


@pytest.fixture
def throttle(store: MemoryThrottle, clock: Clock) -> LoginThrottle:
    return LoginThrottle(store, clock=clock)


def fail(throttle: LoginThrottle, username: str, address: str | None, times: int) -> None:
    for _ in range(times):
        throttle.failed(username, address)


# -- MemoryThrottle ------------------------------------------------------------------------


def test_memory_throttle_counts_in_fixed_buckets() -> None:
    store = MemoryThrottle()
    assert store.count("k", 60, 120.0) == 0
    assert store.hit("k", 60, 120.0) == 1
    assert store.hit("k", 60, 179.9) == 2
    assert store.count("k", 60, 179.9) == 2
    # A new bucket starts from zero.
    assert store.count("k", 60, 180.0) == 0
    assert store.hit("k", 60, 180.0) == 1
    # Keys and windows are separate counters.
    assert store.count("other", 60, 180.0) == 0
    assert store.count("k", 120, 180.0) == 0


def test_memory_throttle_reset() -> None:
    store = MemoryThrottle()
    store.hit("k", 60, 0.0)
    store.hit("j", 60, 0.0)
    store.reset("k")
    store.reset("never-seen")
    assert store.count("k", 60, 0.0) == 0
    assert store.count("j", 60, 0.0) == 1


def test_memory_throttle_is_bounded_and_drops_the_longest_idle_key() -> None:
    store = MemoryThrottle(max_keys=3)
    for key in ("a", "b", "c"):
        store.hit(key, 60, 0.0)
    store.hit("a", 60, 1.0)  # "a" failed again: "b" is now the longest idle
    store.hit("d", 60, 2.0)
    assert len(store) == 3
    assert store.count("b", 60, 2.0) == 0
    assert [store.count(k, 60, 2.0) for k in ("a", "c", "d")] == [2, 1, 1]
    for n in range(1000):
        store.hit(f"flood{n}", 60, 3.0)
    assert len(store) == 3


def test_memory_throttle_rejects_no_room() -> None:
    with pytest.raises(ValueError, match="max_keys"):
        MemoryThrottle(max_keys=0)


def test_memory_throttle_counts_every_hit_across_threads() -> None:
    store = MemoryThrottle()
    barrier = threading.Barrier(8)

    def hammer() -> None:
        barrier.wait()
        for _ in range(500):
            store.hit("k", 60, 0.0)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.count("k", 60, 0.0) == 4000


def test_memory_throttle_satisfies_the_protocol() -> None:
    store: Throttle = MemoryThrottle()
    assert store.hit("k", 1, 0) == 1


# -- Limit ------------------------------------------------------------------------------------


def test_default_limits() -> None:
    throttle = LoginThrottle()
    assert throttle.per_account_address is DEFAULT_PER_ACCOUNT_ADDRESS
    assert throttle.per_address is DEFAULT_PER_ADDRESS
    assert throttle.per_account is DEFAULT_PER_ACCOUNT
    assert throttle.per_account_address == Limit(5, 300)
    assert throttle.per_address == Limit(50, 300)
    assert throttle.per_account == Limit(100, 3600)
    assert isinstance(throttle.throttle, MemoryThrottle)


@pytest.mark.parametrize(
    ("failures", "window"), [(0, 60), (-1, 60), (1, 0), (1, -5), (1, float("inf"))]
)
def test_limits_are_validated(failures: int, window: float) -> None:
    with pytest.raises(ValueError, match="limit"):
        Limit(failures, window)


# -- LoginThrottle -----------------------------------------------------------------------------


def test_allowed_until_the_tight_limit_then_told_when_to_retry(
    throttle: LoginThrottle, clock: Clock
) -> None:
    fail(throttle, "alice", ATTACKER, 4)
    assert throttle.retry_after("alice", ATTACKER) is None
    clock.now += 100
    throttle.failed("alice", ATTACKER)
    # The bucket started at 1_000_000_200 and is 300 s long: 200 s remain.
    assert throttle.retry_after("alice", ATTACKER) == 200
    clock.now += 199.5
    assert throttle.retry_after("alice", ATTACKER) == 1
    clock.now += 0.5
    assert throttle.retry_after("alice", ATTACKER) is None


def test_retry_after_rounds_up(throttle: LoginThrottle, clock: Clock) -> None:
    clock.now += 10.25
    fail(throttle, "alice", ATTACKER, 5)
    assert throttle.retry_after("alice", ATTACKER) == 290


def test_an_attacker_does_not_lock_the_user_out_from_elsewhere(throttle: LoginThrottle) -> None:
    fail(throttle, "alice", ATTACKER, 5)
    assert throttle.retry_after("alice", ATTACKER) is not None
    assert throttle.retry_after("alice", ALICE_HOME) is None
    # ...nor other accounts from the attacker's address, until the per-address limit.
    assert throttle.retry_after("bob", ATTACKER) is None


def test_usernames_are_counted_case_insensitively(throttle: LoginThrottle) -> None:
    for spelling in ("alice", "Alice", "ALICE", "\uff21lice", "alIce"):
        throttle.failed(spelling, ATTACKER)
    assert throttle.retry_after("alice", ATTACKER) is not None
    assert throttle.retry_after("aLiCe", ATTACKER) is not None


def test_attempt_checks_counts_and_clears_in_order(throttle: LoginThrottle, clock: Clock) -> None:
    checked: list[str] = []

    def wrong() -> str | None:
        checked.append("wrong")
        return None

    def right() -> str | None:
        checked.append("right")
        return "alice's record"

    for _ in range(4):
        assert throttle.attempt("alice", ALICE_HOME, wrong) is None
    # A success clears the account-at-address counter: four more failures are allowed.
    assert throttle.attempt("alice", ALICE_HOME, right) == "alice's record"
    for _ in range(5):
        assert throttle.attempt("alice", ALICE_HOME, wrong) is None
    # The limit (5) is reached: refused before the check runs, even the right one.
    with pytest.raises(TooManyRequests) as refused:
        throttle.attempt("alice", ALICE_HOME, right)
    assert refused.value.retry_after == 300
    assert checked == ["wrong"] * 4 + ["right"] + ["wrong"] * 5
    clock.now += 300
    assert throttle.attempt("alice", ALICE_HOME, right) == "alice's record"


def test_success_clears_only_the_account_address_counter(
    store: MemoryThrottle, clock: Clock
) -> None:
    throttle = LoginThrottle(
        store, per_address=Limit(7, 300), per_account=Limit(9, 3600), clock=clock
    )
    fail(throttle, "alice", ALICE_HOME, 4)
    throttle.succeeded("alice", ALICE_HOME)
    fail(throttle, "alice", ALICE_HOME, 2)
    # Without the reset, 6 failures would have hit the tight limit (5)...
    assert throttle.retry_after("alice", ALICE_HOME) is None
    # ...but the address counter kept all 6: one more failure there blocks it.
    throttle.failed("carol", ALICE_HOME)
    assert throttle.retry_after("dave", ALICE_HOME) is not None
    # And the account counter kept them too: three more from anywhere block the account.
    fail(throttle, "alice", "192.0.2.1", 2)
    assert throttle.retry_after("alice", "192.0.2.2") is None
    throttle.failed("alice", "192.0.2.1")
    assert throttle.retry_after("alice", "192.0.2.2") is not None


def test_the_per_address_limit_spans_accounts(store: MemoryThrottle, clock: Clock) -> None:
    throttle = LoginThrottle(store, per_address=Limit(3, 60), clock=clock)
    for name in ("a", "b", "c"):
        throttle.failed(name, ATTACKER)
    clock.now += 20
    assert throttle.retry_after("d", ATTACKER) == 40
    assert throttle.retry_after("d", ALICE_HOME) is None


def test_the_per_account_limit_bounds_a_distributed_guess(
    store: MemoryThrottle, clock: Clock
) -> None:
    throttle = LoginThrottle(store, per_account=Limit(10, 3600), clock=clock)
    for n in range(10):
        throttle.failed("alice", f"192.0.2.{n}")
    # 1_000_000_200 is 3_000 s into its hour: 600 s to wait, from any address.
    assert throttle.retry_after("alice", "192.0.2.200") == 600
    assert throttle.retry_after("alice", None) == 600
    assert throttle.retry_after("bob", "192.0.2.1") is None


def test_the_longest_block_wins(store: MemoryThrottle, clock: Clock) -> None:
    throttle = LoginThrottle(
        store, per_account_address=Limit(2, 60), per_account=Limit(2, 3600), clock=clock
    )
    fail(throttle, "alice", ATTACKER, 2)
    assert throttle.retry_after("alice", ATTACKER) == 600


def test_a_block_always_ends(throttle: LoginThrottle, clock: Clock) -> None:
    # Soft: hours of failures still leave the account usable one window later.
    for _ in range(24):
        fail(throttle, "alice", ATTACKER, 200)
        clock.now += 300
    clock.now += 3600
    assert throttle.retry_after("alice", ATTACKER) is None
    assert throttle.retry_after("alice", ALICE_HOME) is None


def test_unknown_address_uses_only_the_per_account_limit(
    store: MemoryThrottle, clock: Clock
) -> None:
    throttle = LoginThrottle(store, per_account=Limit(7, 3600), clock=clock)
    fail(throttle, "alice", None, 6)
    assert throttle.retry_after("alice", None) is None
    throttle.failed("alice", None)
    assert throttle.retry_after("alice", None) is not None
    # No shared "unknown address" counter blocks other accounts.
    fail(throttle, "bob", None, 6)
    assert throttle.retry_after("bob", None) is None
    throttle.succeeded("alice", None)  # nothing to clear, and no error


def test_the_throttle_holds_no_username_or_address(store: MemoryThrottle) -> None:
    throttle = LoginThrottle(store)
    # A user who typed the password into the username field.
    throttle.failed("correct horse battery staple", ATTACKER)
    kept = repr(store._counters)
    assert len(store) == 3
    assert "correct horse" not in kept
    assert ATTACKER not in kept


def test_a_throttle_from_elsewhere_is_used(clock: Clock) -> None:
    calls: list[tuple[str, str, float, float]] = []

    class Recording:
        def hit(self, key: str, window: float, now: float) -> int:
            calls.append(("hit", key, window, now))
            return 1

        def count(self, key: str, window: float, now: float) -> int:
            calls.append(("count", key, window, now))
            return 0

        def reset(self, key: str) -> None:
            calls.append(("reset", key, 0, 0))

    throttle = LoginThrottle(Recording(), clock=clock)
    assert throttle.retry_after("alice", ATTACKER) is None
    throttle.failed("alice", ATTACKER)
    throttle.succeeded("alice", ATTACKER)
    assert [c[0] for c in calls] == ["count"] * 3 + ["hit"] * 3 + ["reset"]
    assert {c[3] for c in calls[:6]} == {clock.now}
    assert all(c[1].startswith("authmw:login:") for c in calls)
    assert len({c[1] for c in calls}) == 3


# -- TooManyRequests ---------------------------------------------------------------------------


def test_too_many_requests_renders_429_with_retry_after() -> None:
    error = TooManyRequests(42)
    assert isinstance(error, AuthError)
    assert error.status == 429
    assert error.retry_after == 42
    rendered = error.render()
    assert rendered.status == 429
    headers = dict(rendered.headers)
    assert len(headers) == len(rendered.headers)
    assert headers == {
        "Content-Type": "application/json",
        "Cache-Control": "no-store",
        "Retry-After": "42",
    }
    # An RFC 6749 section 5.2 error code, so the token endpoint can return it as is.
    assert json.loads(rendered.body) == {
        "error": "invalid_request",
        "error_description": "Too many failed attempts; try again later.",
    }
    assert str(error) == "Too many failed attempts; try again later."
    assert repr(error) == "TooManyRequests(retry_after=42)"


@pytest.mark.parametrize(("given", "sent"), [(0, "1"), (-5, "1"), (1, "1"), (3600, "3600")])
def test_retry_after_is_at_least_one_second(given: int, sent: str) -> None:
    assert dict(TooManyRequests(given).render().headers)["Retry-After"] == sent


def test_throttle_and_error_together(throttle: LoginThrottle) -> None:
    fail(throttle, "alice", ATTACKER, 5)
    wait = throttle.retry_after("alice", ATTACKER)
    assert wait is not None
    assert dict(TooManyRequests(wait).render().headers)["Retry-After"] == "300"


# -- docs/security.md ---------------------------------------------------------------------


def test_the_pages_own_password_check_is_throttled(
    authenticator: Authenticator, tmp_path: Path
) -> None:
    # The page's example, run as written: a password check of the application's own.
    [block] = python_blocks(Page("security.md").section("Login throttling"))
    (tmp_path / "confirm.py").write_text(block, encoding="utf-8")
    confirm = load_module(tmp_path / "confirm.py", "confirm_of_the_page").confirm_password
    authenticator.login_throttle = LoginThrottle(clock=Clock())
    assert confirm(authenticator, "manager", PASSWORD, ALICE_HOME) is True
    assert confirm(authenticator, "nobody", PASSWORD, ALICE_HOME) is False
    for _ in range(5):
        assert confirm(authenticator, "manager", "not it", ATTACKER) is False
    with pytest.raises(TooManyRequests):
        confirm(authenticator, "manager", PASSWORD, ATTACKER)
    # From the user's own address the right password still works.
    assert confirm(authenticator, "manager", PASSWORD, ALICE_HOME) is True
