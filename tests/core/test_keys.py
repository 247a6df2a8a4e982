"""authmw.keys: key format, checksum, hashing, verification and lifecycle."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from authmw import Authenticator, Conflict, InvalidToken, NotFound, Policy, Settings
from authmw import keys as keys_module
from authmw.credentials import Credential
from authmw.errors import AuthError
from authmw.keys import ParsedKey, generate, hash_secret, parse, verify
from authmw.store import ApiKey, KeyMatch
from authmw.store.sql import SQLStore
from tests.conftest import AuthenticatorFactory
from tests.core.conftest import sqlite_file_url
from tests.core.support import CountingStore, store_key

KEY_RE = re.compile(r"\Aamk_[A-Za-z0-9]{12}_[A-Za-z0-9]{38}\Z")
KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"


def apikey(value: str) -> Credential:
    return Credential("apikey", value)


def sleep_past(moment: datetime | None) -> None:
    """Sleep until the wall clock is past ``moment`` (the store's expiry times are wall-clock)."""
    assert moment is not None
    remaining = (moment - datetime.now(UTC)).total_seconds()
    time.sleep(max(0.0, remaining) + 0.05)


# -- format -------------------------------------------------------------------------


def test_generated_key_format() -> None:
    value, parsed = generate()
    assert KEY_RE.match(value)
    assert len(value) == len("amk_") + 12 + 1 + 32 + 6
    assert set(value) <= set(KEY_ALPHABET)
    assert value.startswith(f"amk_{parsed.key_id}_{parsed.secret}")
    assert len(parsed.key_id) == 12
    assert len(parsed.secret) == 32


def test_secret_has_at_least_160_bits() -> None:
    bits = keys_module.SECRET_LENGTH * math.log2(62)
    assert bits >= 160
    # And generation really draws from the whole alphabet, not a corner of it.
    seen = set("".join(generate()[1].secret for _ in range(200)))
    assert len(seen) == 62


def test_generated_keys_are_unique() -> None:
    values = {generate()[0] for _ in range(500)}
    ids = {parse(v).key_id for v in values}
    assert len(values) == len(ids) == 500


def test_custom_prefix() -> None:
    value, parsed = generate("acme")
    assert value.startswith("acme_")
    assert parse(value, "acme") == parsed
    with pytest.raises(InvalidToken):
        parse(value)  # the default prefix
    with pytest.raises(InvalidToken):
        parse(generate()[0], "acme")


@pytest.mark.parametrize("prefix", ["a", "Amk", "1ab", "a_b", "a" * 17, "", "ab-c"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        keys_module.check_prefix(prefix)
    with pytest.raises(ValueError, match="prefix"):
        Settings(key_prefix=prefix)


def test_parse_round_trip() -> None:
    for _ in range(50):
        value, parsed = generate()
        assert parse(value) == parsed


@given(st.sampled_from(["amk", "acme", "k9", "abcdefghijklmnop"]))
def test_generate_parse_round_trip_property(prefix: str) -> None:
    value, parsed = generate(prefix)
    assert parse(value, prefix) == parsed


def test_parsed_and_issued_key_reprs_are_redacted() -> None:
    value, parsed = generate()
    assert parsed.secret not in repr(parsed)
    assert parsed.key_id in repr(parsed)
    record = ApiKey(
        id=parsed.key_id,
        name="n",
        owner=None,
        team="t",
        scopes=None,
        created_at=datetime.now(UTC),
        secret_hash=hash_secret(parsed),
    )
    issued = keys_module.IssuedKey(record, value)
    for text in (repr(issued), str(issued), repr(record)):
        assert value not in text
        assert parsed.secret not in text
        assert record.secret_hash not in text


# -- checksum ----------------------------------------------------------------------------


def test_checksum_catches_every_single_character_substitution() -> None:
    # CRC-32 detects every error burst up to 32 bits, so one changed character
    # (8 bits) can never slip through: checked exhaustively for one key.
    value, _ = generate()
    for i, original in enumerate(value):
        for replacement in KEY_ALPHABET:
            if replacement == original:
                continue
            tampered = value[:i] + replacement + value[i + 1 :]
            with pytest.raises(InvalidToken):
                parse(tampered)


@given(st.data())
def test_checksum_catches_substitutions_in_any_key(data: st.DataObject) -> None:
    value, _ = generate()
    i = data.draw(st.integers(min_value=0, max_value=len(value) - 1))
    # The key is new on every run, so what is drawn must not depend on it: a filter
    # on its character would draw more or less from one run to the next, which
    # Hypothesis rightly reports as a flaky strategy. Every character of a key is in
    # the alphabet, so there are always len(KEY_ALPHABET) - 1 others to pick from.
    others = KEY_ALPHABET.replace(value[i], "")
    replacement = others[data.draw(st.integers(min_value=0, max_value=len(others) - 1))]
    with pytest.raises(InvalidToken):
        parse(value[:i] + replacement + value[i + 1 :])


def test_checksum_catches_adjacent_transpositions() -> None:
    value, _ = generate()
    for i in range(len(value) - 1):
        swapped = value[:i] + value[i + 1] + value[i] + value[i + 2 :]
        if swapped != value:
            with pytest.raises(InvalidToken):
                parse(swapped)


def test_truncated_and_extended_keys_are_refused() -> None:
    value, _ = generate()
    for end in range(len(value)):
        with pytest.raises(InvalidToken):
            parse(value[:end])
    for extra in ("a", "_", "A0"):
        with pytest.raises(InvalidToken):
            parse(value + extra)


@given(st.text())
def test_parse_any_text_is_a_key_or_invalid_token(text: str) -> None:
    try:
        parsed = parse(text)
    except InvalidToken:
        return
    assert isinstance(parsed, ParsedKey)
    assert text == f"amk_{parsed.key_id}_{parsed.secret}{text[-6:]}"


@given(st.text(alphabet=KEY_ALPHABET, min_size=50, max_size=60))
def test_parse_key_shaped_text_is_a_key_or_invalid_token(body: str) -> None:
    try:
        parsed = parse("amk_" + body)
    except InvalidToken:
        return
    assert len(parsed.key_id) == 12
    assert len(parsed.secret) == 32


# -- hashing and verification --------------------------------------------------------------


def test_hash_is_versioned_sha256() -> None:
    _, parsed = generate()
    digest = hash_secret(parsed)
    assert re.fullmatch(r"v1\$[0-9a-f]{64}", digest)
    assert hash_secret(parsed) == digest  # deterministic: verification recomputes it
    assert parsed.secret not in digest


def test_hash_is_bound_to_the_key_id() -> None:
    # The same secret under another id hashes differently, so a record's hash
    # cannot be reused for a different key id.
    secret = "s" * 32
    assert hash_secret(ParsedKey("a" * 12, secret)) != hash_secret(ParsedKey("b" * 12, secret))


def _record(parsed: ParsedKey, **changes: object) -> KeyMatch:
    fields: dict[str, object] = {
        "id": parsed.key_id,
        "name": "n",
        "owner": None,
        "team": "t",
        "scopes": None,
        "created_at": datetime.now(UTC) - timedelta(days=1),
        "secret_hash": hash_secret(parsed),
    }
    fields.update(changes)
    return KeyMatch(ApiKey(**fields), None)  # type: ignore[arg-type]


def test_verify() -> None:
    _, parsed = generate()
    now = datetime.now(UTC)
    match = _record(parsed)
    assert verify(match, parsed, now) == match.key
    assert verify(None, parsed, now) is None
    wrong = ParsedKey(parsed.key_id, "x" * 32)
    assert verify(match, wrong, now) is None
    assert verify(_record(parsed, revoked_at=now), parsed, now) is None
    assert verify(_record(parsed, expires_at=now), parsed, now) is None
    assert verify(_record(parsed, expires_at=now + timedelta(seconds=1)), parsed, now) is not None


def test_every_bad_key_gets_the_identical_401(authenticator: Authenticator) -> None:
    good = authenticator.keys.create(name="good", owner="admin").key
    revoked = authenticator.keys.create(name="revoked", owner="admin")
    authenticator.keys.revoke(revoked.record.id)
    past = datetime.now(UTC) - timedelta(seconds=1)
    authenticator.users.create("leaver", password="long enough password", roles=["admin"])
    leaver = authenticator.keys.create(name="leaver", owner="leaver").key
    authenticator.users.disable("leaver")
    causes = {
        "owner disabled": leaver,
        "tampered": good[:-1] + ("A" if good[-1] != "A" else "B"),
        "unknown": generate()[0],
        "wrong secret": store_key(
            authenticator, team="sales", secret_hash=hash_secret(ParsedKey("z" * 12, "z" * 32))
        ),
        "revoked": revoked.key,
        "expired": store_key(authenticator, team="sales", expires_at=past),
        "not a key": "hello",
        "wrong prefix": "xyz" + good[3:],
    }
    rendered = set()
    for cause, presented in causes.items():
        with pytest.raises(AuthError) as caught:
            authenticator.authenticate(apikey(presented))
        assert type(caught.value) is InvalidToken, cause
        r = caught.value.render()
        rendered.add((r.status, r.headers, r.body))
    assert len(rendered) == 1
    assert authenticator.authenticate(apikey(good)) is not None


def test_the_store_never_holds_the_key_or_its_secret(authenticator: Authenticator) -> None:
    issued = authenticator.keys.create(name="laptop", owner="admin")
    parsed = parse(issued.key)
    store = authenticator.store
    assert isinstance(store, SQLStore)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM authmw_api_keys")).all()
    dumped = repr(rows)
    assert issued.key not in dumped
    assert parsed.secret not in dumped
    assert hash_secret(parsed) in dumped


# -- creating keys ------------------------------------------------------------------------------


def test_create_personal_key(authenticator: Authenticator) -> None:
    issued = authenticator.keys.create(name="laptop", owner="admin")
    assert KEY_RE.match(issued.key)
    record = issued.record
    assert (record.owner, record.team, record.scopes) == ("admin", None, None)
    assert record.id == parse(issued.key).key_id
    assert record.expires_at is None
    assert record.created_at.tzinfo is not None
    assert authenticator.keys.get(record.id) == record
    principal = authenticator.authenticate(apikey(issued.key))
    assert principal is not None
    assert principal.kind == "api_key"
    assert principal.subject == "admin"
    assert principal.credential_id == record.id
    assert principal.unrestricted


def test_create_team_key(authenticator: Authenticator) -> None:
    issued = authenticator.keys.create(name="ci", team="sales")
    assert (issued.record.owner, issued.record.team) == (None, "sales")
    principal = authenticator.authenticate(apikey(issued.key))
    assert principal is not None
    assert principal.subject == "team:sales"
    assert principal.team == "sales"


@pytest.mark.parametrize(("owner", "team"), [("admin", None), (None, "sales")])
def test_create_restricted_key(
    authenticator: Authenticator, owner: str | None, team: str | None
) -> None:
    issued = authenticator.keys.create(
        name="ro", owner=owner, team=team, scopes=["appointments:read"]
    )
    assert issued.record.scopes == frozenset({"appointments:read"})
    principal = authenticator.authenticate(apikey(issued.key))
    assert principal is not None
    assert not principal.unrestricted
    assert principal.scopes == {"appointments:read"}
    assert principal.roles == frozenset()


def test_unknown_owner_is_not_found(authenticator: Authenticator) -> None:
    with pytest.raises(NotFound):
        authenticator.keys.create(name="x", owner="ghost")


@pytest.mark.parametrize("owner", ["manager", "employee"])
def test_global_mode_refuses_a_personal_key_for_a_non_top_role(
    authenticator: Authenticator, owner: str
) -> None:
    with pytest.raises(ValueError, match="only a user with role admin"):
        authenticator.keys.create(name="x", owner=owner)
    assert authenticator.keys.list(owner=owner) == []


def test_inherit_mode_allows_a_personal_key_for_any_role(
    make_authenticator: AuthenticatorFactory,
) -> None:
    auth = make_authenticator(policy=Policy.default(api_keys="inherit"))
    issued = auth.keys.create(name="x", owner="employee")
    principal = auth.authenticate(apikey(issued.key))
    assert principal is not None
    assert principal.roles == {"employee"}
    assert principal.scopes == {"appointments:read"}


def test_disabled_owner_is_refused(authenticator: Authenticator) -> None:
    authenticator.users.disable("admin")
    with pytest.raises(ValueError, match="disabled"):
        authenticator.keys.create(name="x", owner="admin")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "x", "owner": "admin", "scopes": ["nope"]}, "unknown scope"),
        ({"name": "x", "owner": "admin", "scopes": []}, "at least one scope"),
        ({"name": "x"}, "exactly one"),
        ({"name": "x", "owner": "admin", "team": "sales"}, "exactly one"),
        ({"name": "", "owner": "admin"}, "name"),
        ({"name": "   ", "owner": "admin"}, "name"),
        ({"name": "a\nb", "owner": "admin"}, "name"),
        ({"name": "x" * 201, "owner": "admin"}, "name"),
        ({"name": "x", "team": "sales team"}, "team"),
        ({"name": "x", "team": ""}, "team"),
        ({"name": "x", "owner": "admin", "expires_in": timedelta(0)}, "future"),
        ({"name": "x", "owner": "admin", "expires_in": timedelta(seconds=-1)}, "future"),
    ],
)
def test_create_validates_its_input(
    authenticator: Authenticator, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        authenticator.keys.create(**kwargs)  # type: ignore[arg-type]
    assert authenticator.keys.list() == []


def test_duplicate_active_name_is_a_conflict(authenticator: Authenticator) -> None:
    first = authenticator.keys.create(name="laptop", owner="admin")
    with pytest.raises(Conflict):
        authenticator.keys.create(name="laptop", owner="admin")
    # Names are per holder: another holder may use the same one.
    authenticator.keys.create(name="laptop", team="sales")
    # Once the first is revoked, the name is free again.
    authenticator.keys.revoke(first.record.id)
    again = authenticator.keys.create(name="laptop", owner="admin")
    assert again.record.id != first.record.id


def test_name_of_an_expired_key_is_free_again(authenticator: Authenticator) -> None:
    store_key(
        authenticator,
        owner="admin",
        name="laptop",
        expires_at=datetime.now(UTC) - timedelta(seconds=1),
    )
    issued = authenticator.keys.create(name="laptop", owner="admin")
    assert authenticator.authenticate(apikey(issued.key)) is not None


def test_list_is_newest_first_and_filters(authenticator: Authenticator) -> None:
    a = authenticator.keys.create(name="a", owner="admin")
    time.sleep(0.002)  # distinct created_at, so the order is defined
    b = authenticator.keys.create(name="b", team="sales")
    assert [k.id for k in authenticator.keys.list()] == [b.record.id, a.record.id]
    assert [k.id for k in authenticator.keys.list(owner="admin")] == [a.record.id]
    assert [k.id for k in authenticator.keys.list(team="sales")] == [b.record.id]
    with pytest.raises(NotFound):
        authenticator.keys.get("nosuchkey000")


# -- expiry -------------------------------------------------------------------------------------


def test_expires_in_sets_the_expiry(authenticator: Authenticator) -> None:
    issued = authenticator.keys.create(name="x", owner="admin", expires_in=timedelta(days=30))
    record = issued.record
    assert record.expires_at is not None
    assert record.expires_at - record.created_at == timedelta(days=30)
    assert authenticator.keys.get(record.id).expires_at == record.expires_at


def test_key_stops_at_its_expiry_even_when_cached(authenticator: Authenticator) -> None:
    issued = authenticator.keys.create(
        name="x", owner="admin", expires_in=timedelta(milliseconds=600)
    )
    # Verified (and cached) before it expires...
    assert authenticator.authenticate(apikey(issued.key)) is not None
    sleep_past(issued.record.expires_at)
    # ...and refused after, although the cache's own bound (5 s) has not passed.
    with pytest.raises(InvalidToken):
        authenticator.authenticate(apikey(issued.key))
    assert authenticator.keys.get(issued.record.id).status(datetime.now(UTC)) == "expired"


def test_expired_record_is_refused(authenticator: Authenticator) -> None:
    value = store_key(
        authenticator, owner="admin", expires_at=datetime.now(UTC) - timedelta(microseconds=1)
    )
    with pytest.raises(InvalidToken):
        authenticator.authenticate(apikey(value))


# -- revocation ------------------------------------------------------------------------------


def test_revocation_is_immediate_in_process(authenticator: Authenticator) -> None:
    issued = authenticator.keys.create(name="x", owner="admin")
    assert authenticator.authenticate(apikey(issued.key)) is not None  # now cached
    revoked = authenticator.keys.revoke(issued.record.id)
    assert revoked.revoked_at is not None
    assert revoked.status(datetime.now(UTC)) == "revoked"
    with pytest.raises(InvalidToken):
        authenticator.authenticate(apikey(issued.key))


def test_revocation_is_final(authenticator: Authenticator) -> None:
    issued = authenticator.keys.create(name="x", owner="admin")
    first = authenticator.keys.revoke(issued.record.id)
    second = authenticator.keys.revoke(issued.record.id)
    assert second.revoked_at == first.revoked_at
    with pytest.raises(Conflict):
        authenticator.keys.rotate(issued.record.id)
    with pytest.raises(InvalidToken):
        authenticator.authenticate(apikey(issued.key))


def test_revoking_an_unknown_key_is_not_found(authenticator: Authenticator) -> None:
    with pytest.raises(NotFound):
        authenticator.keys.revoke("nosuchkey000")


# -- rotation ------------------------------------------------------------------------------


def test_rotation_with_grace_keeps_both_keys_working(authenticator: Authenticator) -> None:
    old = authenticator.keys.create(name="ci", team="sales", scopes=["appointments:read"])
    assert authenticator.authenticate(apikey(old.key)) is not None
    before = datetime.now(UTC)
    new = authenticator.keys.rotate(old.record.id, grace=timedelta(hours=1))
    after = datetime.now(UTC)
    assert new.key != old.key
    assert (new.record.name, new.record.owner, new.record.team, new.record.scopes) == (
        "ci",
        None,
        "sales",
        frozenset({"appointments:read"}),
    )
    old_record = authenticator.keys.get(old.record.id)
    assert old_record.replaced_by == new.record.id
    assert old_record.status(datetime.now(UTC)) == "rotating"
    assert old_record.expires_at is not None
    assert before + timedelta(hours=1) <= old_record.expires_at <= after + timedelta(hours=1)
    for value in (old.key, new.key):
        principal = authenticator.authenticate(apikey(value))
        assert principal is not None
        assert principal.scopes == {"appointments:read"}


def test_old_key_stops_after_the_grace(authenticator: Authenticator) -> None:
    old = authenticator.keys.create(name="ci", owner="admin")
    new = authenticator.keys.rotate(old.record.id, grace=timedelta(milliseconds=600))
    assert authenticator.authenticate(apikey(old.key)) is not None  # cached for the grace only
    sleep_past(authenticator.keys.get(old.record.id).expires_at)
    with pytest.raises(InvalidToken):
        authenticator.authenticate(apikey(old.key))
    assert authenticator.authenticate(apikey(new.key)) is not None


def test_rotation_without_grace_stops_the_old_key_now(authenticator: Authenticator) -> None:
    old = authenticator.keys.create(name="ci", owner="admin")
    assert authenticator.authenticate(apikey(old.key)) is not None  # cached
    new = authenticator.keys.rotate(old.record.id)
    with pytest.raises(InvalidToken):
        authenticator.authenticate(apikey(old.key))
    assert authenticator.authenticate(apikey(new.key)) is not None


def test_rotation_keeps_the_lifetime(authenticator: Authenticator) -> None:
    old = authenticator.keys.create(name="ci", owner="admin", expires_in=timedelta(days=30))
    new = authenticator.keys.rotate(old.record.id, grace=timedelta(days=90))
    assert new.record.expires_at is not None
    assert new.record.expires_at - new.record.created_at == timedelta(days=30)
    # The grace never extends the old key beyond its own expiry.
    assert authenticator.keys.get(old.record.id).expires_at == old.record.expires_at


def test_rotating_twice_or_a_revoked_key_is_a_conflict(authenticator: Authenticator) -> None:
    old = authenticator.keys.create(name="ci", owner="admin")
    new = authenticator.keys.rotate(old.record.id, grace=timedelta(hours=1))
    with pytest.raises(Conflict):
        authenticator.keys.rotate(old.record.id)
    authenticator.keys.revoke(new.record.id)
    with pytest.raises(Conflict):
        authenticator.keys.rotate(new.record.id)
    # A failed rotation issues nothing.
    assert len(authenticator.keys.list(owner="admin")) == 2


def test_an_expired_key_cannot_be_rotated_back_to_life(authenticator: Authenticator) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    value = store_key(authenticator, team="sales", expires_at=past)
    key_id = parse(value).key_id
    with pytest.raises(Conflict, match="expired"):
        authenticator.keys.rotate(key_id)
    assert [k.id for k in authenticator.keys.list(team="sales")] == [key_id]


def test_rotation_rechecks_the_owner_standing(authenticator: Authenticator) -> None:
    old = authenticator.keys.create(name="ci", owner="admin")
    authenticator.users.set_roles("admin", ["manager"])
    with pytest.raises(ValueError, match="only a user with role admin"):
        authenticator.keys.rotate(old.record.id)
    authenticator.users.disable("admin")
    with pytest.raises(ValueError, match="disabled"):
        authenticator.keys.rotate(old.record.id)
    assert len(authenticator.keys.list(owner="admin")) == 1


def test_rotate_validates_its_input(authenticator: Authenticator) -> None:
    old = authenticator.keys.create(name="ci", owner="admin")
    with pytest.raises(ValueError, match="grace"):
        authenticator.keys.rotate(old.record.id, grace=timedelta(seconds=-1))
    with pytest.raises(NotFound):
        authenticator.keys.rotate("nosuchkey000")


# -- usage recording and the hot path --------------------------------------------------------


def test_last_used_at_is_recorded_off_the_hot_path(authenticator: Authenticator) -> None:
    issued = authenticator.keys.create(name="x", owner="admin")
    before = datetime.now(UTC)
    authenticator.authenticate(apikey(issued.key))
    after = datetime.now(UTC)
    # Not written by the request itself...
    assert authenticator.keys.get(issued.record.id).last_used_at is None
    authenticator.flush_usage()
    # ...but by the flush, with the time of the request.
    used = authenticator.keys.get(issued.record.id).last_used_at
    assert used is not None
    assert used.utcoffset() == timedelta(0)
    slack = timedelta(milliseconds=50)  # monotonic-to-wall conversion happens at flush
    assert before - slack <= used <= after + slack


# Uses a key, then ends without close(), long before the usage thread's first batch.
_USE_AND_EXIT = """
import sys
from authmw import Authenticator
from authmw.credentials import Credential

auth = Authenticator.from_url(sys.argv[1])
auth.store.create_schema()
issued = auth.keys.create(name="t", team="sales")
assert auth.authenticate(Credential("apikey", issued.key)) is not None
print(issued.record.id)
"""


def test_key_usage_is_written_when_the_process_exits(tmp_path: Path) -> None:
    url = sqlite_file_url(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", _USE_AND_EXIT, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    key_id = done.stdout.strip()
    auth = Authenticator.from_url(url)
    try:
        assert auth.settings.usage_flush_interval >= 30  # so only the exit hook wrote it
        assert auth.keys.get(key_id).last_used_at is not None
    finally:
        auth.close()


def test_warm_path_makes_no_store_call(make_authenticator: AuthenticatorFactory) -> None:
    counting = CountingStore(SQLStore("sqlite://"))
    auth = make_authenticator(counting)
    issued = auth.keys.create(name="x", owner="admin")
    team = auth.keys.create(name="t", team="sales")
    start = counting.count()
    assert auth.authenticate(apikey(issued.key)) is not None
    assert auth.authenticate(apikey(team.key)) is not None
    assert counting.count() - start == 2
    assert counting.count("find_key") == 2
    warm_start = counting.count()
    for _ in range(200):
        assert auth.authenticate(apikey(issued.key)) is not None
        assert auth.authenticate(Credential("bearer", team.key)) is not None
    assert counting.count() == warm_start
    # The uses still reach the store, in one batch, when flushed.
    auth.flush_usage()
    assert counting.count("record_key_use") == 1


def test_malformed_keys_never_reach_the_store(make_authenticator: AuthenticatorFactory) -> None:
    counting = CountingStore(SQLStore("sqlite://"))
    auth = make_authenticator(counting, seed=False)
    value, _ = generate()
    start = counting.count()
    for bad in ("nonsense", value[:-1] + ("x" if value[-1] != "x" else "y"), "amk_" + "a" * 51):
        with pytest.raises(InvalidToken):
            auth.authenticate(apikey(bad))
    assert counting.count() == start
    assert len(auth.cache) == 0
