"""authmw.shared against a real Redis: the invalidation bus and the shared throttle.

The Redis tests run when ``AUTHMW_TEST_REDIS_URL`` names a server (and the
``redis`` client is installed); outages are made with :class:`TcpProxy`
between the client and that server. No test asserts a duration: each waits
for a condition, with a generous deadline.
"""

from __future__ import annotations

import logging
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import pytest

from authmw.oauth2 import AuthEndpoints
from authmw.shared import (
    Invalidation,
    RedisBus,
    RedisThrottle,
    RedisUnavailable,
    shared_from_env,
)
from authmw.throttle import Limit, LoginThrottle, MemoryThrottle
from tests.conftest import AuthenticatorFactory
from tests.core.oauth_support import WSGIDriver, build_world
from tests.core.proxy import TcpProxy

if TYPE_CHECKING:
    import redis

REDIS_URL = os.environ.get("AUTHMW_TEST_REDIS_URL", "")
REDIS_SKIP = "set AUTHMW_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0) to run"
DEADLINE = 30.0


def wait_for(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.02)


class Inbox:
    """A handler that keeps what it is given."""

    def __init__(self) -> None:
        self.messages: list[Invalidation] = []
        self.arrived = threading.Condition()

    def __call__(self, message: Invalidation) -> None:
        with self.arrived:
            self.messages.append(message)
            self.arrived.notify_all()

    def wait_for(self, message: Invalidation) -> None:
        with self.arrived:
            if not self.arrived.wait_for(lambda: message in self.messages, timeout=DEADLINE):
                pytest.fail(f"{message} never arrived")


class Reconnects:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def redis_url() -> str:
    if not REDIS_URL:
        pytest.skip(REDIS_SKIP)
    pytest.importorskip("redis")
    return REDIS_URL


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client: redis.Redis = pytest.importorskip("redis").Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def proxy(redis_url: str) -> Iterator[TcpProxy]:
    target = urlsplit(redis_url)
    with TcpProxy(target.hostname or "127.0.0.1", target.port or 6379) as proxy:
        yield proxy


@pytest.fixture
def proxied_url(redis_url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(redis_url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{proxy.port}" if userinfo else f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def channel() -> str:
    return f"authmw:test:{uuid.uuid4().hex}"


@pytest.fixture
def prefix(raw: redis.Redis) -> Iterator[str]:
    prefix = f"authmw:test:{uuid.uuid4().hex}:"
    yield prefix
    for key in raw.scan_iter(match=prefix + "*"):
        raw.delete(key)


@pytest.fixture
def buses() -> Iterator[list[RedisBus]]:
    opened: list[RedisBus] = []
    yield opened
    for bus in opened:
        bus.close()


# -- the message format (no Redis needed) -------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        Invalidation("credential", "k_0123456789abcdef"),
        Invalidation("subject", "alice"),
        Invalidation("client", "c_0123456789ab"),
        Invalidation("token", "t1", expires_at=1_900_000_000.5),
        Invalidation("family", "f1", expires_at=1_900_000_000),
        Invalidation("all", ""),
        Invalidation("subject", 'zoë \u2028 "quoted"'),
    ],
)
def test_a_message_survives_its_json_form(message: Invalidation) -> None:
    data = message.to_json()
    assert len(data) < 200
    assert Invalidation.from_json(data) == message
    assert Invalidation.from_json(data.decode()) == message


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'"subject"',
        b'{"kind": "subject", "value": "alice"}',
        b'{"v": 2, "kind": "subject", "value": "alice"}',
        b'{"v": 1, "kind": "everything", "value": "alice"}',
        b'{"v": 1, "kind": ["subject"], "value": "alice"}',
        b'{"v": 1, "kind": "subject", "value": 7}',
        b'{"v": 1, "kind": "token", "value": "t", "exp": "soon"}',
        b'{"v": 1, "kind": "token", "value": "t", "exp": Infinity}',
        b'{"v": 1, "kind": "token", "value": "t", "exp": true}',
        b'{"v": 1, "kind": "subject", "value": "' + b"a" * 5000 + b'"}',
    ],
)
def test_a_malformed_message_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the one error the bus expects
        Invalidation.from_json(data)


def test_an_invalidation_has_a_known_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        Invalidation("everything", "x")  # type: ignore[arg-type]


def test_the_module_imports_without_the_redis_client() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import authmw, authmw.shared as s\n"
        "assert s.shared_from_env(None) == (None, None)\n"
        "try:\n"
        "    s.RedisThrottle('redis://127.0.0.1:1/0')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "AUTHMW_REDIS_URL"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert "pip install 'authmw[redis]'" in result.stdout


def test_without_a_url_nothing_is_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTHMW_REDIS_URL", raising=False)
    assert shared_from_env(None) == (None, None)
    monkeypatch.setenv("AUTHMW_REDIS_URL", "  ")
    assert shared_from_env(None) == (None, None)


def test_the_url_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    monkeypatch.setenv("AUTHMW_REDIS_URL", redis_url)
    bus, throttle = shared_from_env(None)
    try:
        assert isinstance(bus, RedisBus)
        assert isinstance(throttle, RedisThrottle)
        assert throttle.count("k", 60, time.time()) == 0
    finally:
        if bus is not None:
            bus.close()
        if isinstance(throttle, RedisThrottle):
            throttle.close()


# -- the bus ------------------------------------------------------------------------------


def test_a_message_reaches_every_instance(
    redis_url: str, channel: str, buses: list[RedisBus], record_property: Callable[..., None]
) -> None:
    sender, receiver = RedisBus(redis_url, channel=channel), RedisBus(redis_url, channel=channel)
    buses += [sender, receiver]
    sent_to_self, received = Inbox(), Inbox()
    sender.subscribe(sent_to_self)
    receiver.subscribe(received)
    wait_for(lambda: sender.connected and receiver.connected, "both buses are subscribed")

    latencies = []
    for i in range(50):
        message = Invalidation("token", f"t{i}", expires_at=time.time() + 900)
        started = time.perf_counter()
        sender.publish(message)
        received.wait_for(message)
        latencies.append(time.perf_counter() - started)
        # This very process gets its own messages too (forgetting twice is harmless).
        sent_to_self.wait_for(message)
    assert received.messages == sent_to_self.messages  # in the order they were sent

    # A measurement, not an assertion: how soon another instance forgets.
    median_ms = statistics.median(latencies) * 1000
    worst_ms = max(latencies) * 1000
    record_property("bus_latency_median_ms", round(median_ms, 3))
    record_property("bus_latency_max_ms", round(worst_ms, 3))
    print(
        f"\npublish -> other instance's handler: median {median_ms:.2f} ms, max {worst_ms:.2f} ms"
    )


def test_a_malformed_message_is_logged_and_skipped(
    redis_url: str,
    raw: redis.Redis,
    channel: str,
    buses: list[RedisBus],
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = RedisBus(redis_url, channel=channel)
    buses.append(bus)
    inbox = Inbox()
    bus.subscribe(inbox)
    wait_for(lambda: bus.connected, "the bus is subscribed")
    caplog.set_level(logging.WARNING, logger="authmw")

    raw.publish(channel, b'{"v": 1, "kind": "subject", "value": 42, "note": "stray-7f3a"}')
    raw.publish(channel, b"\x00\x01garbage-9c2e")
    after = Invalidation("subject", "bob")
    bus.publish(after)
    inbox.wait_for(after)

    assert inbox.messages == [after]
    assert bus.connected
    malformed = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert len(malformed) == 2
    assert "stray-7f3a" not in caplog.text
    assert "garbage-9c2e" not in caplog.text


def test_a_lost_connection_fails_closed_and_recovers_by_itself(
    redis_url: str, proxied_url: str, proxy: TcpProxy, channel: str, buses: list[RedisBus]
) -> None:
    reconnects = Reconnects()
    bus = RedisBus(proxied_url, channel=channel, on_reconnect=reconnects)
    other = RedisBus(redis_url, channel=channel)  # another instance, still reaching Redis
    buses += [bus, other]
    inbox = Inbox()
    bus.subscribe(inbox)
    wait_for(lambda: bus.connected, "the bus is subscribed")
    # The first subscription counts too: what was cached before it was not covered.
    assert reconnects.count == 1
    first = Invalidation("credential", "k1")
    other.publish(first)
    inbox.wait_for(first)

    proxy.cut()
    wait_for(lambda: not bus.connected, "the bus notices the lost connection")
    with pytest.raises(RedisUnavailable, match="publish"):
        bus.publish(Invalidation("subject", "alice"))
    lost = Invalidation("subject", "carol")
    other.publish(lost)  # nobody can deliver this one to `bus`: on_reconnect stands in for it
    time.sleep(0.3)  # a few reconnection attempts against a refused port
    assert not bus.connected
    assert reconnects.count == 1

    proxy.restore()
    wait_for(lambda: bus.connected, "the bus reconnects by itself")
    assert reconnects.count == 2
    assert lost not in inbox.messages
    again = Invalidation("family", "f9", expires_at=time.time() + 60)
    other.publish(again)
    inbox.wait_for(again)
    mine = Invalidation("subject", "dave")
    bus.publish(mine)  # and it publishes again through the restored network
    inbox.wait_for(mine)


def test_a_silent_partition_is_noticed_by_the_heartbeat(
    proxied_url: str, proxy: TcpProxy, channel: str, buses: list[RedisBus]
) -> None:
    reconnects = Reconnects()
    bus = RedisBus(proxied_url, channel=channel, on_reconnect=reconnects)
    bus.heartbeat = 0.2
    bus.subscribe_timeout = 1.0
    buses.append(bus)
    inbox = Inbox()
    bus.subscribe(inbox)
    wait_for(lambda: bus.connected, "the bus is subscribed")

    proxy.stall()  # no FIN, no RST: the sockets stay open and nothing moves
    wait_for(lambda: not bus.connected, "the heartbeat gives the connection up")
    proxy.restore()
    wait_for(lambda: bus.connected, "the bus subscribes again")
    assert reconnects.count >= 2
    message = Invalidation("subject", "erin")
    bus.publish(message)
    inbox.wait_for(message)


def test_a_failing_handler_starts_over_instead_of_keeping_stale_entries(
    redis_url: str, channel: str, buses: list[RedisBus], caplog: pytest.LogCaptureFixture
) -> None:
    reconnects = Reconnects()
    bus = RedisBus(redis_url, channel=channel, on_reconnect=reconnects)
    buses.append(bus)
    inbox = Inbox()

    def handler(message: Invalidation) -> None:
        if message.value == "boom":
            raise RuntimeError("handler bug")
        inbox(message)

    bus.subscribe(handler)
    wait_for(lambda: bus.connected, "the bus is subscribed")
    caplog.set_level(logging.ERROR, logger="authmw")
    bus.publish(Invalidation("subject", "boom"))
    wait_for(lambda: reconnects.count == 2 and bus.connected, "the bus starts over")
    assert "could not be applied" in caplog.text
    after = Invalidation("subject", "frank")
    bus.publish(after)
    inbox.wait_for(after)


def test_a_closed_bus_stops_delivering(redis_url: str, channel: str, buses: list[RedisBus]) -> None:
    bus = RedisBus(redis_url, channel=channel)
    other = RedisBus(redis_url, channel=channel)
    buses.append(other)
    inbox, witness = Inbox(), Inbox()
    bus.subscribe(inbox)
    other.subscribe(witness)
    with pytest.raises(RuntimeError, match="already"):
        bus.subscribe(inbox)
    wait_for(lambda: bus.connected and other.connected, "both buses are subscribed")

    bus.close()
    assert not bus.connected
    late = Invalidation("subject", "grace")
    other.publish(late)
    witness.wait_for(late)
    assert late not in inbox.messages
    with pytest.raises(RuntimeError, match="closed"):
        bus.subscribe(inbox)


def test_a_bus_accepts_a_client(raw: redis.Redis, channel: str, buses: list[RedisBus]) -> None:
    bus = RedisBus(raw, channel=channel)
    buses.append(bus)
    inbox = Inbox()
    bus.subscribe(inbox)
    wait_for(lambda: bus.connected, "the bus is subscribed")
    message = Invalidation("all", "")
    bus.publish(message)
    inbox.wait_for(message)
    bus.close()
    assert raw.ping()  # the caller's client stays open


# -- the throttle -------------------------------------------------------------------------

NOW = 1_800_000_000.0  # any epoch: buckets come from the caller's clock, not Redis's


def test_the_throttle_counts_like_the_memory_throttle(raw: redis.Redis, prefix: str) -> None:
    shared = RedisThrottle(raw, prefix=prefix)
    local = MemoryThrottle()
    window = 300.0
    steps: list[tuple[str, str, float]] = [
        ("hit", "a", NOW),
        ("hit", "a", NOW + 1),
        ("count", "a", NOW + 2),
        ("hit", "b", NOW + 2),
        ("count", "a", NOW + window),  # the next bucket: a fresh count
        ("hit", "a", NOW + window),
        ("count", "a", NOW + window),
        ("reset", "a", 0),
        ("count", "a", NOW + window),
        ("count", "b", NOW + 3),
        ("hit", "b", NOW + 3),
    ]
    for op, key, now in steps:
        if op == "reset":
            shared.reset(key)
            local.reset(key)
            continue
        call = shared.hit if op == "hit" else shared.count
        expected = local.hit(key, window, now) if op == "hit" else local.count(key, window, now)
        assert call(key, window, now) == expected, (op, key, now)
    assert shared.count("b", window, NOW) == 2
    # Another window is another counter, as in MemoryThrottle.
    assert shared.count("b", 60.0, NOW) == local.count("b", 60.0, NOW) == 0


def test_throttle_keys_are_digests_that_expire_with_their_bucket(
    raw: redis.Redis, prefix: str
) -> None:
    throttle = RedisThrottle(raw, prefix=prefix)
    window = 300.0
    throttle.hit("alice@203.0.113.7", window, NOW + 100)
    keys = [k.decode() for k in raw.scan_iter(match=prefix + "*")]
    assert len(keys) == 1
    assert "alice" not in keys[0]
    assert "203.0.113.7" not in keys[0]
    assert all("alice" not in str(v) for v in raw.hgetall(keys[0]).values())
    # The bucket ends 200 s after NOW + 100; the key goes one second later.
    ttl_ms = raw.pttl(keys[0])
    assert 0 < ttl_ms <= 201_000


def test_two_instances_count_together_and_atomically(
    redis_url: str, raw: redis.Redis, prefix: str
) -> None:
    # Two "app instances": two throttles, each with its own connections.
    instances = [RedisThrottle(raw, prefix=prefix), RedisThrottle(redis_url, prefix=prefix)]
    threads = [
        threading.Thread(target=lambda t=t: [t.hit("shared", 60.0, NOW) for _ in range(25)])
        for t in instances
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert instances[0].count("shared", 60.0, NOW) == 200
    assert instances[1].count("shared", 60.0, NOW) == 200
    instances[1].close()


def test_failed_logins_at_one_instance_throttle_the_others(redis_url: str, prefix: str) -> None:
    clock = [NOW]
    apps = [
        LoginThrottle(
            RedisThrottle(redis_url, prefix=prefix),
            per_account_address=Limit(3, 300),
            clock=lambda: clock[0],
        )
        for _ in range(2)
    ]
    apps[0].failed("alice", "198.51.100.1")
    apps[1].failed("Alice", "198.51.100.1")
    assert apps[0].retry_after("alice", "198.51.100.1") is None
    apps[0].failed("ALICE", "198.51.100.1")
    assert apps[1].retry_after("alice", "198.51.100.1") == 300
    assert apps[1].retry_after("alice", "198.51.100.2") is None
    apps[1].succeeded("alice", "198.51.100.1")
    assert apps[0].retry_after("alice", "198.51.100.1") is None
    for app in apps:
        assert isinstance(app.throttle, RedisThrottle)
        app.throttle.close()


def test_the_throttle_raises_while_redis_is_unreachable_and_works_after(
    proxied_url: str, proxy: TcpProxy, prefix: str
) -> None:
    throttle = RedisThrottle(proxied_url, prefix=prefix)
    try:
        assert throttle.hit("k", 60.0, NOW) == 1
        proxy.cut()
        with pytest.raises(RedisUnavailable, match="count a failure"):
            throttle.hit("k", 60.0, NOW)
        with pytest.raises(RedisUnavailable, match="read"):
            throttle.count("k", 60.0, NOW)
        with pytest.raises(RedisUnavailable, match="reset"):
            throttle.reset("k")
        proxy.restore()
        assert throttle.hit("k", 60.0, NOW) == 2
        assert throttle.count("k", 60.0, NOW) == 2
    finally:
        throttle.close()


def test_a_login_throttle_on_an_unreachable_redis_refuses_to_guess(
    proxied_url: str, proxy: TcpProxy, prefix: str
) -> None:
    throttle = LoginThrottle(RedisThrottle(proxied_url, prefix=prefix))
    proxy.cut()
    # The token endpoint turns this into a 503: no password is checked uncounted.
    with pytest.raises(RedisUnavailable):
        throttle.retry_after("alice", "198.51.100.1")
    with pytest.raises(RedisUnavailable):
        throttle.failed("alice", "198.51.100.1")


def test_the_token_endpoint_answers_503_while_the_throttle_is_unreachable(
    make_authenticator: AuthenticatorFactory, proxied_url: str, proxy: TcpProxy, prefix: str
) -> None:
    world = build_world(make_authenticator)
    throttle = RedisThrottle(proxied_url, prefix=prefix)
    endpoints = AuthEndpoints(world.auth, throttle=LoginThrottle(throttle, clock=world.clock))
    driver = WSGIDriver(endpoints)
    try:
        assert driver.send_sync("/oauth/token", world.login_body()).status == 200
        logins = world.event_names().count("login.succeeded")
        proxy.cut()
        reply = driver.send_sync("/oauth/token", world.login_body())
        assert reply.status == 503
        assert reply.header("retry-after") is not None
        assert "access_token" not in reply.body.decode()
        # Not counted, so not tried: the password was never checked.
        assert world.event_names().count("login.succeeded") == logins
        proxy.restore()
        assert driver.send_sync("/oauth/token", world.login_body()).status == 200
    finally:
        throttle.close()
