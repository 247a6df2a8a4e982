"""authmw.authenticator: one flow, two drivers, failing closed."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import authmw.authenticator as authenticator_module
from authmw import Authenticator, InvalidRequest, InvalidToken, ServiceUnavailable, Settings
from authmw import keys as keys_module
from authmw.authenticator import Flow, run_async, run_sync
from authmw.credentials import (
    Credential,
    RawCredential,
    asgi_raw,
    from_asgi_headers,
    from_wsgi_environ,
    wsgi_raw,
)
from authmw.errors import AuthError
from authmw.principal import Principal
from authmw.store.sql import SQLStore, metadata
from tests.conftest import AuthenticatorFactory
from tests.core.conftest import sqlite_file_url
from tests.core.support import CountingStore, Outcome, outcome_of, store_key


def sync_outcome(auth: Authenticator, credential: Credential | None) -> Outcome:
    try:
        return outcome_of(None, auth.authenticate(credential))
    except AuthError as exc:
        return outcome_of(exc)


def async_outcome(auth: Authenticator, credential: Credential | None) -> Outcome:
    async def main() -> Outcome:
        try:
            return outcome_of(None, await auth.authenticate_async(credential))
        except AuthError as exc:
            return outcome_of(exc)

    return asyncio.run(main())


def cases(auth: Authenticator) -> dict[str, Credential | None]:
    """One credential per path through the flow."""
    personal = auth.keys.create(name="p", owner="admin")
    team = auth.keys.create(name="t", team="sales")
    restricted = auth.keys.create(name="r", owner="admin", scopes=["appointments:read"])
    revoked = auth.keys.create(name="x", team="ops")
    auth.keys.revoke(revoked.record.id)
    rotated = auth.keys.create(name="rot", team="ops")
    auth.keys.rotate(rotated.record.id, grace=timedelta(hours=1))
    auth.users.create("leaver", password="long enough password", roles=["admin"])
    leaver = auth.keys.create(name="l", owner="leaver")
    auth.users.disable("leaver")
    expired = store_key(auth, team="sales", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    wrong = store_key(
        auth,
        team="sales",
        secret_hash=keys_module.hash_secret(keys_module.ParsedKey("a" * 12, "b" * 32)),
    )
    good = personal.key
    return {
        "no credential": None,
        "personal key": Credential("apikey", good),
        "personal key as bearer": Credential("bearer", good),
        "personal key as x-api-key": Credential("x-api-key", good),
        "team key": Credential("apikey", team.key),
        "restricted key": Credential("apikey", restricted.key),
        "rotated key in grace": Credential("apikey", rotated.key),
        "revoked key": Credential("apikey", revoked.key),
        "disabled owner": Credential("apikey", leaver.key),
        "expired key": Credential("apikey", expired),
        "wrong secret": Credential("apikey", wrong),
        "unknown key": Credential("apikey", keys_module.generate()[0]),
        "tampered key": Credential("apikey", good[:-1] + ("A" if good[-1] != "A" else "B")),
        "not a key": Credential("bearer", "opaque-token"),
    }


def test_sync_and_async_drivers_agree_on_every_case(
    make_authenticator: AuthenticatorFactory, tmp_path: Path
) -> None:
    auth = make_authenticator(sqlite_file_url(tmp_path))
    seen_kinds = set()
    for name, credential in cases(auth).items():
        auth.cache.clear()
        cold_sync = sync_outcome(auth, credential)
        warm_sync = sync_outcome(auth, credential)
        auth.cache.clear()
        cold_async = async_outcome(auth, credential)
        warm_async = async_outcome(auth, credential)
        assert cold_sync == cold_async == warm_sync == warm_async, name
        seen_kinds.add(cold_sync.error or type(cold_sync.principal))
    # The cases really cover a principal, anonymity and refusal.
    assert seen_kinds >= {InvalidToken, type(None), Principal}


def test_expected_outcomes(authenticator: Authenticator) -> None:
    outcomes = {name: sync_outcome(authenticator, c) for name, c in cases(authenticator).items()}
    allowed = {n for n, o in outcomes.items() if o.principal is not None}
    assert allowed == {
        "personal key",
        "personal key as bearer",
        "personal key as x-api-key",
        "team key",
        "restricted key",
        "rotated key in grace",
    }
    refused = {n for n, o in outcomes.items() if o.error is InvalidToken}
    assert refused == set(outcomes) - allowed - {"no credential"}
    assert outcomes["no credential"] == Outcome(None)


# -- failing closed ------------------------------------------------------------------------


def _missing_directory(make: AuthenticatorFactory, tmp_path: Path) -> Authenticator:
    return make(sqlite_file_url(tmp_path / "no" / "such" / "dir"), schema=False)


def _dropped_tables(make: AuthenticatorFactory, tmp_path: Path) -> Authenticator:
    auth = make(sqlite_file_url(tmp_path))
    store = auth.store
    assert isinstance(store, SQLStore)
    metadata.drop_all(store.engine)
    return auth


def _closed_port(make: AuthenticatorFactory, tmp_path: Path) -> Authenticator:
    pytest.importorskip("psycopg")
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    store = SQLStore(
        "postgresql+psycopg://authmw@127.0.0.1:9/authmw", connect_args={"connect_timeout": 3}
    )
    return make(store, schema=False)


BROKEN: dict[str, Callable[[AuthenticatorFactory, Path], Authenticator]] = {
    "sqlite file in a missing directory": _missing_directory,
    "sqlite tables dropped": _dropped_tables,
    "postgres on a closed port": _closed_port,
}


@pytest.mark.parametrize("broken", BROKEN.values(), ids=BROKEN.keys())
def test_an_unreachable_store_fails_closed(
    make_authenticator: AuthenticatorFactory,
    tmp_path: Path,
    broken: Callable[[AuthenticatorFactory, Path], Authenticator],
    caplog: pytest.LogCaptureFixture,
) -> None:
    auth = broken(make_authenticator, tmp_path)
    # A well-formed key (it might be valid: nobody can tell without the store).
    credential = Credential("apikey", keys_module.generate()[0])
    with caplog.at_level(logging.ERROR, logger="authmw"):
        sync = sync_outcome(auth, credential)
        asynchronous = async_outcome(auth, credential)
    assert sync.principal is None
    assert sync.error is ServiceUnavailable
    assert sync == asynchronous
    assert sync.rendered is not None
    assert sync.rendered[0] == 503
    assert len(auth.cache) == 0
    logged = [r.getMessage() for r in caplog.records if r.name == "authmw"]
    assert logged == ["authmw: credential store unavailable"] * 2


def test_a_valid_key_is_refused_when_the_store_goes_away(
    make_authenticator: AuthenticatorFactory, tmp_path: Path
) -> None:
    auth = make_authenticator(sqlite_file_url(tmp_path), settings=Settings(cache_ttl=0))
    credential = Credential("apikey", auth.keys.create(name="k", owner="admin").key)
    assert auth.authenticate(credential) is not None
    store = auth.store
    assert isinstance(store, SQLStore)
    metadata.drop_all(store.engine)
    with pytest.raises(ServiceUnavailable):
        auth.authenticate(credential)


def test_garbage_is_refused_without_asking_a_broken_store(
    make_authenticator: AuthenticatorFactory, tmp_path: Path
) -> None:
    auth = _missing_directory(make_authenticator, tmp_path)
    # A malformed key is a 401, not a 503: it never needed the store.
    with pytest.raises(InvalidToken):
        auth.authenticate(Credential("apikey", "amk_not_a_key"))


# -- the async driver -------------------------------------------------------------------------


def test_async_driver_calls_the_store_off_the_event_loop_thread(
    make_authenticator: AuthenticatorFactory,
) -> None:
    counting = CountingStore(SQLStore("sqlite://"))
    auth = make_authenticator(counting)
    credential = Credential("apikey", auth.keys.create(name="k", owner="admin").key)

    async def main() -> int:
        assert await auth.authenticate_async(credential) is not None
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    threads = counting.threads("find_key")
    assert threads
    assert loop_thread not in threads


def test_async_driver_without_anyio_uses_asyncio_threads(
    make_authenticator: AuthenticatorFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The framework-free install may lack anyio; the driver then uses asyncio.to_thread.
    monkeypatch.setattr(authenticator_module, "_anyio_thread", None)
    counting = CountingStore(SQLStore("sqlite://"))
    auth = make_authenticator(counting)
    credential = Credential("apikey", auth.keys.create(name="k", owner="admin").key)

    async def main() -> int:
        assert await auth.authenticate_async(credential) is not None
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert loop_thread not in counting.threads("find_key")


def _flow(log: list[str]) -> Flow[int]:
    first = yield lambda: 1
    log.append(f"got {first}")
    try:
        yield lambda: int("not a number")
    except ValueError:
        log.append("caught")
    second = yield lambda: 41
    return int(first) + int(second)


def _unhandled() -> Flow[int]:
    yield lambda: 1 / 0
    return 0  # pragma: no cover - never reached


def test_drivers_run_the_same_hand_written_flow() -> None:
    sync_log: list[str] = []
    async_log: list[str] = []
    assert run_sync(_flow(sync_log)) == 42
    assert asyncio.run(run_async(_flow(async_log))) == 42
    assert sync_log == async_log == ["got 1", "caught"]


def test_drivers_let_an_unhandled_error_out() -> None:
    with pytest.raises(ZeroDivisionError):
        run_sync(_unhandled())
    with pytest.raises(ZeroDivisionError):
        asyncio.run(run_async(_unhandled()))


def test_a_flow_that_yields_nothing() -> None:
    def immediate() -> Flow[str]:
        return "done"
        yield  # pragma: no cover - makes this a generator

    assert run_sync(immediate()) == "done"
    assert asyncio.run(run_async(immediate())) == "done"


# -- the rest of the surface ----------------------------------------------------------------------


def test_authenticate_headers(authenticator: Authenticator) -> None:
    key = authenticator.keys.create(name="k", team="sales").key
    principal = authenticator.authenticate_headers({"X-API-Key": key})
    assert principal is not None
    assert principal.team == "sales"
    assert authenticator.authenticate_headers([("Accept", "*/*")]) is None
    with pytest.raises(InvalidRequest):
        authenticator.authenticate_headers([("Authorization", f"Bearer {key}"), ("X-API-Key", key)])


def test_many_threads_verify_at_once(
    make_authenticator: AuthenticatorFactory, tmp_path: Path
) -> None:
    auth = make_authenticator(sqlite_file_url(tmp_path), settings=Settings(cache_ttl=0))
    credential = Credential("apikey", auth.keys.create(name="k", owner="admin").key)
    results: list[Any] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        for _ in range(10):
            try:
                results.append(auth.authenticate(credential))
            except BaseException as exc:  # collected, asserted below
                results.append(exc)

    workers = [threading.Thread(target=work) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(results) == 80
    assert all(getattr(r, "subject", None) == "admin" for r in results), results[:3]


def test_close_flushes_usage(make_authenticator: AuthenticatorFactory, tmp_path: Path) -> None:
    url = sqlite_file_url(tmp_path)
    auth = make_authenticator(url)
    issued = auth.keys.create(name="k", owner="admin")
    auth.authenticate(Credential("apikey", issued.key))
    auth.close()
    reader = SQLStore(url)
    try:
        key = reader.get_key(issued.record.id)
        assert key is not None
        assert key.last_used_at is not None
    finally:
        reader.close()


def test_from_url(tmp_path: Path) -> None:
    auth = Authenticator.from_url(sqlite_file_url(tmp_path))
    try:
        assert isinstance(auth.store, SQLStore)
        auth.store.create_schema()
        assert auth.users.list() == []
    finally:
        auth.close()


class PausingStore(SQLStore):
    """A real SQL store whose next ``find_key`` stops after reading, until released.

    It holds a cold verification between "read the key" and "cache the result",
    the window in which a revocation can happen.
    """

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.pause_next = False
        self.reached = threading.Event()
        self.release = threading.Event()

    def _pause(self) -> None:
        if self.pause_next:
            self.pause_next = False
            self.reached.set()
            if not self.release.wait(timeout=10):
                raise TimeoutError("the test never released the store")

    def find_key(self, key_id: str) -> Any:
        match = super().find_key(key_id)
        self._pause()
        return match

    def get_user(self, username: str) -> Any:
        user = super().get_user(username)
        self._pause()
        return user


def race(
    auth: Authenticator, store: PausingStore, credential: Credential, change: Callable[[], object]
) -> Principal | None:
    """Verify ``credential`` in a thread held after its store read; ``change`` meanwhile.

    Return what that verification answered, from what it read before the change.
    """
    store.pause_next = True
    results: list[Principal | None] = []
    racer = threading.Thread(target=lambda: results.append(auth.authenticate(credential)))
    racer.start()
    assert store.reached.wait(timeout=10), "the verification never reached the store"
    change()
    store.release.set()
    racer.join(timeout=10)
    assert not racer.is_alive()
    assert len(results) == 1
    return results[0]


def test_a_revocation_during_a_cold_verification_is_not_undone_by_the_cache(
    make_authenticator: AuthenticatorFactory,
) -> None:
    store = PausingStore("sqlite://")
    auth = make_authenticator(store)
    issued = auth.keys.create(name="raced", owner="admin")
    credential = Credential("apikey", issued.key)
    # The racer has read the key as valid; now it is revoked, in this process.
    read_before = race(auth, store, credential, lambda: auth.keys.revoke(issued.record.id))
    # The request that started before the revocation may finish with what it read...
    assert read_before is not None
    # ...but what it read must not be cached past the revocation: the next is refused.
    with pytest.raises(InvalidToken):
        auth.authenticate(credential)


def test_a_user_disabled_during_a_token_verification_is_refused_next_time(
    make_authenticator: AuthenticatorFactory,
) -> None:
    # The token's user record is remembered for cache_ttl, apart from the cache of
    # principals: a record read before the change must not be remembered after it.
    store = PausingStore("sqlite://")
    auth = make_authenticator(store, seed=True)
    user = auth.users.get("employee")
    assert user is not None
    app = auth.clients.create_app("raced", redirect_uris=["https://app.example/cb"])
    token = auth.tokens.issue_for_user(user, app.client, frozenset()).access_token
    credential = Credential("bearer", token)
    read_before = race(auth, store, credential, lambda: auth.users.disable("employee"))
    assert read_before is not None
    with pytest.raises(InvalidToken):
        auth.authenticate(credential)


# -- the raw-header fast path agrees with the full parser --------------------------------

_FAST = Authenticator(SQLStore("sqlite://"), settings=Settings(cache_ttl=3600.0))
_FAST.store.create_schema()
_FAST.store.add_user("admin", password_hash=None, roles=frozenset({"admin"}), teams=frozenset())
_GOOD = _FAST.keys.create(name="good", owner="admin").key
_REVOKED = _FAST.keys.create(name="revoked", owner="admin")
_FAST.keys.revoke(_REVOKED.record.id)

_values = st.one_of(
    st.sampled_from([_GOOD, _REVOKED.key, "amk_notakey", "", " ", "a b", "Basic dXNlcg=="]),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=30),
)
_authorization = st.one_of(
    _values,
    st.builds(
        lambda s, v: f"{s} {v}", st.sampled_from(["Bearer", "apikey", "APIKEY", "Basic"]), _values
    ),
)
_header_lists = st.lists(
    st.one_of(
        st.tuples(st.just("authorization"), _authorization),
        st.tuples(st.just("x-api-key"), _values),
        st.tuples(st.just("accept"), _values),
    ),
    max_size=4,
)


def _outcome(call: Callable[[], Principal | None]) -> object:
    try:
        return call()
    except AuthError as exc:
        return type(exc), exc.render("api")


def _fused(raw: RawCredential | None) -> Principal | None:
    if raw is None:
        return None
    return _FAST.lookup_raw(raw) or _FAST.authenticate_raw(raw)


@given(_header_lists)
def test_the_fast_path_answers_as_the_full_parser_does(headers: list[tuple[str, str]]) -> None:
    asgi = [(n.encode(), v.encode("latin-1")) for n, v in headers]
    full = _outcome(lambda: _FAST.authenticate(from_asgi_headers(asgi)))
    # Twice: the first may file the raw headers, the second then takes the fast path.
    assert _outcome(lambda: _fused(asgi_raw(asgi))) == full
    assert _outcome(lambda: _fused(asgi_raw(asgi))) == full
    environ = {f"HTTP_{n.upper().replace('-', '_')}": v for n, v in headers}
    full = _outcome(lambda: _FAST.authenticate(from_wsgi_environ(environ)))
    assert _outcome(lambda: _fused(wsgi_raw(environ))) == full
    assert _outcome(lambda: _fused(wsgi_raw(environ))) == full
