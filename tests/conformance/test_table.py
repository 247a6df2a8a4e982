"""The scenario table itself: complete, unique, and inside the contract's vocabulary."""

from __future__ import annotations

from collections import Counter

from tests.conformance.scenarios import (
    CREDENTIALS,
    KEY_LABELS,
    ROUTES,
    SCENARIOS,
    STYLES,
    TOKEN_LABELS,
    request_body,
    request_headers,
    secrets_sent,
    tamper,
    tamper_signature,
)

KEYS = {label: f"amk_{label[:3]}id0000000_{'s' * 32}cccccc" for label in KEY_LABELS}
TOKENS = {label: f"amt_eyJ{label}In0.{'S' * 43}" for label in TOKEN_LABELS}
SECRETS = KEYS | TOKENS
#: The credentials every route is tried with: one of each kind of caller.
CALLERS = ("none", "admin", "team", "restricted", "user_employee", "user_manager", "client")
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
    assert 60 <= len(SCENARIOS) <= 160
    assert len(SCENARIOS) == 151  # the README says so


def test_every_route_meets_every_kind_of_caller() -> None:
    for credential in CALLERS:
        routes = {(s.method, s.path) for s in SCENARIOS if s.credential == credential}
        assert routes == set(ROUTES), credential
    assert {s.credential for s in SCENARIOS} == set(CREDENTIALS)
    assert {(s.method, s.path) for s in SCENARIOS} == set(ROUTES)


def test_every_key_is_sent_in_every_header_style() -> None:
    for credential in ("admin", "team", "restricted", "revoked", "tampered"):
        styles = {s.style for s in SCENARIOS if s.credential == credential}
        assert styles == set(STYLES), credential


def test_tokens_are_sent_as_bearer_only() -> None:
    for credential in (*TOKEN_LABELS, "token_tampered"):
        styles = {s.style for s in SCENARIOS if s.credential == credential}
        assert styles == {"bearer"}, credential
        for s in SCENARIOS:
            if s.credential == credential:
                headers = request_headers(s, SECRETS)
                assert headers["Authorization"].startswith("Bearer amt_"), s.id
                assert "X-API-Key" not in headers, s.id


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
        headers = request_headers(s, SECRETS)
        assert ("Content-Type" in headers) == (s.method == "POST"), s.id
        assert bool(request_body(s)) == (s.method == "POST"), s.id
        if s.style is not None:
            name, prefix = styles[s.style]
            if s.credential == "tampered":
                value = tamper(KEYS["admin"])
            elif s.credential == "token_tampered":
                value = tamper_signature(TOKENS["user_employee"])
            else:
                value = SECRETS[s.credential]
            assert headers[name] == prefix + value, s.id
    none = next(s for s in SCENARIOS if s.credential == "none")
    assert "Authorization" not in request_headers(none, SECRETS)


def test_every_token_sent_counts_as_a_secret() -> None:
    for s in SCENARIOS:
        if s.credential in (*TOKEN_LABELS, "token_tampered"):
            token = request_headers(s, SECRETS)["Authorization"].removeprefix("Bearer ")
            assert token in secrets_sent(s, SECRETS), s.id
            assert token[token.rindex(".") + 1 :] in secrets_sent(s, SECRETS), s.id


def test_tamper_changes_one_character_of_the_secret() -> None:
    key = KEYS["admin"]
    changed = tamper(key)
    assert len(changed) == len(key)
    assert [i for i, (a, b) in enumerate(zip(key, changed, strict=True)) if a != b] == [
        key.rindex("_") + 1
    ]
    assert tamper("amk_id_Abc") == "amk_id_Bbc"


def test_tamper_signature_changes_one_character_of_the_signature() -> None:
    token = TOKENS["user_employee"]
    changed = tamper_signature(token)
    assert len(changed) == len(token)
    assert [i for i, (a, b) in enumerate(zip(token, changed, strict=True)) if a != b] == [
        token.rindex(".") + 1
    ]
    assert tamper_signature("amt_e30.Asig") == "amt_e30.Bsig"
