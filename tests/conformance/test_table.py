"""The scenario table itself: complete, unique, and inside the contract's vocabulary."""

from __future__ import annotations

from collections import Counter

from tests.conformance.scenarios import (
    CREDENTIALS,
    KEY_LABELS,
    ROUTES,
    SCENARIOS,
    STYLES,
    request_body,
    request_headers,
    tamper,
)

KEYS = {label: f"amk_{label[:3]}id0000000_{'s' * 32}cccccc" for label in KEY_LABELS}
ERRORS = {
    None,
    "missing_credentials",
    "invalid_token",
    "invalid_request",
    "forbidden",
    "insufficient_role",
    "insufficient_scope",
}


def test_ids_are_unique_and_the_size_is_readable() -> None:
    ids = Counter(s.id for s in SCENARIOS)
    assert [i for i, n in ids.items() if n > 1] == []
    assert 60 <= len(SCENARIOS) <= 120


def test_every_route_meets_every_kind_of_caller() -> None:
    for credential in ("none", "admin", "team", "restricted"):
        routes = {(s.method, s.path) for s in SCENARIOS if s.credential == credential}
        assert routes == set(ROUTES), credential
    assert {s.credential for s in SCENARIOS} == set(CREDENTIALS)
    assert {(s.method, s.path) for s in SCENARIOS} == set(ROUTES)


def test_every_key_is_sent_in_every_header_style() -> None:
    for credential in ("admin", "team", "restricted", "revoked", "tampered"):
        styles = {s.style for s in SCENARIOS if s.credential == credential}
        assert styles == set(STYLES), credential


def test_expectations_use_the_contract_codes() -> None:
    for s in SCENARIOS:
        assert s.error in ERRORS, s.id
        assert (s.status == 200) == (s.error is None), s.id
        if s.path == "/health":
            assert s.status == 200, s.id  # public: whatever the credential


def test_requests_carry_what_the_row_names() -> None:
    styles = {
        "bearer": ("Authorization", "Bearer "),
        "apikey": ("Authorization", "apikey "),
        "x-api-key": ("X-API-Key", ""),
    }
    for s in SCENARIOS:
        headers = request_headers(s, KEYS)
        assert ("Content-Type" in headers) == (s.method == "POST"), s.id
        assert bool(request_body(s)) == (s.method == "POST"), s.id
        if s.style is not None:
            name, prefix = styles[s.style]
            key = tamper(KEYS["admin"]) if s.credential == "tampered" else KEYS[s.credential]
            assert headers[name] == prefix + key, s.id
    none = next(s for s in SCENARIOS if s.credential == "none")
    assert "Authorization" not in request_headers(none, KEYS)


def test_tamper_changes_one_character_of_the_secret() -> None:
    key = KEYS["admin"]
    changed = tamper(key)
    assert len(changed) == len(key)
    assert [i for i, (a, b) in enumerate(zip(key, changed, strict=True)) if a != b] == [
        key.rindex("_") + 1
    ]
    assert tamper("amk_id_Abc") == "amk_id_Bbc"
