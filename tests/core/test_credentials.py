"""authmw.credentials: the one header parser, its grammar and its failure modes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authmw.credentials import (
    MAX_CREDENTIAL_LENGTH,
    Credential,
    from_asgi_headers,
    from_wsgi_environ,
    parse,
    parse_headers,
)
from authmw.errors import InvalidRequest

# RFC 6750 section 2.1, written out again here rather than imported, so the test
# checks the parser against the RFC and not against itself.
B64TOKEN = re.compile(r"\A[A-Za-z0-9\-._~+/]+=*\Z")
B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"
TOKEN = "amk_abcDEF123456_secretSECRET0123456789abcdefghijKLMNOP"

b64tokens = st.builds(
    lambda body, pad: body + "=" * pad,
    st.text(alphabet=B64_ALPHABET, min_size=1, max_size=60),
    st.integers(min_value=0, max_value=3),
)


# -- accepted ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "scheme"),
    [
        (f"Bearer {TOKEN}", "bearer"),
        (f"bearer {TOKEN}", "bearer"),
        (f"BEARER {TOKEN}", "bearer"),
        (f"bEaReR {TOKEN}", "bearer"),
        (f"apikey {TOKEN}", "apikey"),
        (f"ApiKey {TOKEN}", "apikey"),
        (f"APIKEY {TOKEN}", "apikey"),
    ],
)
def test_our_schemes_are_case_insensitive(header: str, scheme: str) -> None:
    assert parse(header) == Credential(scheme, TOKEN)  # type: ignore[arg-type]


def test_x_api_key_header() -> None:
    assert parse(None, TOKEN) == Credential("x-api-key", TOKEN)


@pytest.mark.parametrize(
    "header",
    [
        f"  Bearer {TOKEN}",
        f"Bearer {TOKEN}  ",
        f"\tBearer {TOKEN}\t",
        f"Bearer     {TOKEN}",
        f" \t Bearer  {TOKEN} \t ",
    ],
    ids=["leading", "trailing", "tabs", "many-spaces", "all"],
)
def test_optional_whitespace_around_and_spaces_after_the_scheme(header: str) -> None:
    assert parse(header) == Credential("bearer", TOKEN)


@pytest.mark.parametrize("value", [f" {TOKEN}", f"{TOKEN}\t", f" \t{TOKEN} "])
def test_x_api_key_whitespace_is_trimmed(value: str) -> None:
    assert parse(None, value) == Credential("x-api-key", TOKEN)


@pytest.mark.parametrize("token", ["a", "a-._~+/b", "abc=", "abc==", "A1/+=", "~"])
def test_the_whole_b64token_alphabet_is_accepted(token: str) -> None:
    assert parse(f"Bearer {token}") == Credential("bearer", token)
    assert parse(None, token) == Credential("x-api-key", token)


def test_no_header_is_no_credential() -> None:
    assert parse(None) is None
    assert parse(None, None) is None


# -- not ours: no credential -----------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "Basic dXNlcjpwYXNzd29yZA==",
        'Digest username="u", realm="api", nonce="abc", uri="/", response="def"',
        "Negotiate YIIB",
        "Token abc",
        "Bearerx abc",
        "Bearer\tabc",  # the scheme ends at a space (RFC 9110 section 11.4); this is one token
        "",
        "   ",
    ],
)
def test_a_foreign_scheme_is_no_credential(header: str) -> None:
    assert parse(header) is None


def test_a_lookalike_scheme_is_not_ours() -> None:
    # U+212A KELVIN SIGN lower-cases to "k": "API\u212aEY" must not pass for "apikey".
    assert parse(f"API\u212aEY {TOKEN}") is None


def test_a_foreign_scheme_beside_x_api_key_leaves_the_key() -> None:
    # Basic belongs to someone else (a proxy, say); the only credential of ours is the key.
    assert parse("Basic dXNlcjpwYXNz", TOKEN) == Credential("x-api-key", TOKEN)


# -- ours but malformed: 400 -----------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "bearer ",
        "Bearer  \t ",
        "apikey",
        "Bearer a b",
        f"Bearer {TOKEN} extra",
        'Bearer "abc"',
        "Bearer a,b",
        f"Bearer {TOKEN}, Bearer {TOKEN}",
        "Bearer a=b",
        "Bearer ==",
        "Bearer abc;",
        "Bearer abc\n",
        "Bearer abc\x00",
        "Bearer caf\u00e9",
        "Bearer \u0430bc",  # Cyrillic a
        "apikey \U0001f511",
    ],
)
def test_malformed_value_in_our_scheme_is_invalid_request(header: str) -> None:
    with pytest.raises(InvalidRequest):
        parse(header)


@pytest.mark.parametrize(
    "value", ["", " ", "a b", '"abc"', "a,b", "caf\u00e9", f"{TOKEN}, {TOKEN}", "abc\r\n"]
)
def test_malformed_x_api_key_is_invalid_request(value: str) -> None:
    with pytest.raises(InvalidRequest):
        parse(None, value)


def test_over_long_headers_are_refused() -> None:
    long_token = "a" * MAX_CREDENTIAL_LENGTH
    with pytest.raises(InvalidRequest, match="too long"):
        parse(f"Bearer {long_token}")
    with pytest.raises(InvalidRequest, match="too long"):
        parse(None, long_token + "a")
    # Even in a foreign scheme: the bound is on the work we do, whoever's header it is.
    with pytest.raises(InvalidRequest, match="too long"):
        parse("Basic " + long_token)
    # At the bound exactly, a value is still read.
    at_bound = "a" * MAX_CREDENTIAL_LENGTH
    assert parse(None, at_bound) == Credential("x-api-key", at_bound)


def test_two_credentials_at_once_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="exactly one"):
        parse(f"Bearer {TOKEN}", TOKEN)
    with pytest.raises(InvalidRequest, match="exactly one"):
        parse(f"apikey {TOKEN}", "other")


def test_errors_never_echo_the_credential() -> None:
    secret = "s3cretVALUE"
    for header, key in [(f"Bearer {secret} x", None), (None, f"{secret} x")]:
        with pytest.raises(InvalidRequest) as caught:
            parse(header, key)
        assert secret not in str(caught.value)
        assert secret not in caught.value.render().body.decode()


# -- header collections ---------------------------------------------------------------


def test_parse_headers_reads_names_in_any_case() -> None:
    assert parse_headers({"AUTHORIZATION": f"Bearer {TOKEN}"}) == Credential("bearer", TOKEN)
    assert parse_headers([("X-Api-Key", TOKEN)]) == Credential("x-api-key", TOKEN)
    assert parse_headers([("Accept", "*/*")]) is None
    assert parse_headers({}) is None


@pytest.mark.parametrize(
    "headers",
    [
        [("Authorization", f"Bearer {TOKEN}"), ("authorization", f"Bearer {TOKEN}")],
        [("X-API-Key", TOKEN), ("x-api-key", TOKEN)],
        {"Authorization": f"Bearer {TOKEN}", "authorization": "Basic abc"},
        [("Authorization", f"Bearer {TOKEN}"), ("X-API-Key", TOKEN)],
    ],
    ids=["authorization-twice", "x-api-key-twice", "mapping-two-cases", "both-headers"],
)
def test_parse_headers_refuses_duplicates(headers: list[tuple[str, str]]) -> None:
    with pytest.raises(InvalidRequest):
        parse_headers(headers)


def test_asgi_headers() -> None:
    raw = f"Bearer {TOKEN}".encode()
    assert from_asgi_headers([(b"authorization", raw)]) == Credential("bearer", TOKEN)
    assert from_asgi_headers([(b"x-api-key", TOKEN.encode())]) == Credential("x-api-key", TOKEN)
    assert from_asgi_headers([(b"accept", b"*/*")]) is None
    assert from_asgi_headers([]) is None


@pytest.mark.parametrize(
    "headers",
    [
        [(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")],
        [(b"x-api-key", b"a"), (b"x-api-key", b"a")],
        [(b"authorization", b"Bearer a"), (b"x-api-key", b"b")],
    ],
)
def test_asgi_duplicate_headers_are_refused(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(InvalidRequest):
        from_asgi_headers(headers)


@pytest.mark.parametrize(
    "raw",
    [b"Bearer caf\xc3\xa9", b"Bearer \xff\xfe", b"apikey \xe9", b"Bearer abc\x80"],
)
def test_asgi_non_ascii_bytes_are_invalid_request(raw: bytes) -> None:
    with pytest.raises(InvalidRequest):
        from_asgi_headers([(b"authorization", raw)])
    with pytest.raises(InvalidRequest):
        from_asgi_headers([(b"x-api-key", raw.split(b" ", 1)[1])])


def test_asgi_repeated_headers_parse_the_same_every_time() -> None:
    # from_asgi_headers may remember parses of values it has seen; a second
    # request with the same bytes must get exactly what the first got.
    for _ in range(3):
        assert from_asgi_headers([(b"x-api-key", TOKEN.encode())]) == Credential("x-api-key", TOKEN)
        assert from_asgi_headers(
            [(b"authorization", b"Basic dXNlcjpwYXNz"), (b"x-api-key", TOKEN.encode())]
        ) == Credential("x-api-key", TOKEN)
        assert from_asgi_headers([(b"authorization", b"Basic dXNlcjpwYXNz")]) is None
        with pytest.raises(InvalidRequest):
            from_asgi_headers([(b"authorization", b"Bearer a b")])
        with pytest.raises(InvalidRequest):
            from_asgi_headers([(b"authorization", b"Bearer a"), (b"x-api-key", b"a")])


def test_asgi_non_ascii_scheme_is_foreign() -> None:
    assert from_asgi_headers([(b"authorization", b"B\xe9arer abc")]) is None


def test_wsgi_environ() -> None:
    assert from_wsgi_environ({"HTTP_AUTHORIZATION": f"apikey {TOKEN}"}) == Credential(
        "apikey", TOKEN
    )
    assert from_wsgi_environ({"HTTP_X_API_KEY": TOKEN}) == Credential("x-api-key", TOKEN)
    assert from_wsgi_environ({"PATH_INFO": "/"}) is None
    with pytest.raises(InvalidRequest):
        from_wsgi_environ({"HTTP_AUTHORIZATION": f"Bearer {TOKEN}", "HTTP_X_API_KEY": TOKEN})


def test_wsgi_non_ascii_is_invalid_request() -> None:
    # PEP 3333: header bytes arrive as latin-1 decoded str.
    latin1 = b"Bearer caf\xc3\xa9".decode("latin-1")
    with pytest.raises(InvalidRequest):
        from_wsgi_environ({"HTTP_AUTHORIZATION": latin1})
    with pytest.raises(InvalidRequest):
        from_wsgi_environ({"HTTP_X_API_KEY": "caf\xe9"})


def test_wsgi_joined_duplicate_authorization_is_invalid_request() -> None:
    # A WSGI server folds a repeated header into one value joined by ", ".
    with pytest.raises(InvalidRequest):
        from_wsgi_environ({"HTTP_AUTHORIZATION": f"Bearer {TOKEN}, Bearer {TOKEN}"})


def test_wsgi_ignores_non_string_values() -> None:
    assert from_wsgi_environ({"HTTP_AUTHORIZATION": b"Bearer abc"}) is None


def test_wsgi_repeated_headers_parse_the_same_every_time() -> None:
    # from_wsgi_environ remembers parses too; the same strings again get the same answer.
    basic = "Basic dXNlcjpwYXNz"
    for _ in range(3):
        assert from_wsgi_environ({"HTTP_X_API_KEY": TOKEN}) == Credential("x-api-key", TOKEN)
        assert from_wsgi_environ({"HTTP_AUTHORIZATION": f"bearer {TOKEN}"}) == Credential(
            "bearer", TOKEN
        )
        assert from_wsgi_environ(
            {"HTTP_AUTHORIZATION": basic, "HTTP_X_API_KEY": TOKEN}
        ) == Credential("x-api-key", TOKEN)
        assert from_wsgi_environ({"HTTP_AUTHORIZATION": basic}) is None
        with pytest.raises(InvalidRequest):
            from_wsgi_environ({"HTTP_AUTHORIZATION": "Bearer a b"})
        with pytest.raises(InvalidRequest):
            from_wsgi_environ({"HTTP_AUTHORIZATION": "Bearer a", "HTTP_X_API_KEY": "a"})
        with pytest.raises(InvalidRequest):
            from_wsgi_environ({"HTTP_X_API_KEY": "x" * (MAX_CREDENTIAL_LENGTH + 1)})


# -- the credential value -----------------------------------------------------------------


def test_credential_repr_is_redacted() -> None:
    credential = Credential("bearer", "s3cretVALUE")
    assert "s3cretVALUE" not in repr(credential)
    assert "s3cretVALUE" not in str(credential)
    assert "s3cretVALUE" not in f"{credential!r} {credential}"
    assert repr(credential) == "Credential(scheme='bearer', value=<redacted>)"


# -- properties ------------------------------------------------------------------------


def check(header: str | None, key: str | None) -> None:
    try:
        credential = parse(header, key)
    except InvalidRequest:
        return
    if credential is not None:
        assert B64TOKEN.match(credential.value), credential.scheme
        assert credential.scheme in ("bearer", "apikey", "x-api-key")


@given(st.one_of(st.none(), st.text()), st.one_of(st.none(), st.text()))
def test_any_text_parses_or_is_invalid_request(header: str | None, key: str | None) -> None:
    check(header, key)


@given(
    st.sampled_from(["Bearer", "bearer", "BEARER", "apikey", "APIKEY", "ApiKey", "Basic"]),
    st.text(alphabet=" \t"),
    st.text(),
)
def test_our_schemes_with_any_text_parse_or_are_invalid_request(
    scheme: str, space: str, rest: str
) -> None:
    check(f"{scheme}{space}{rest}", None)


@given(st.text(alphabet=" \t", max_size=3), b64tokens, st.text(alphabet=" \t", max_size=3))
def test_every_b64token_round_trips(lead: str, token: str, trail: str) -> None:
    assert parse(f"{lead}Bearer {token}{trail}") == Credential("bearer", token)
    assert parse(f"{lead}apikey {token}{trail}") == Credential("apikey", token)
    assert parse(None, f"{lead}{token}{trail}") == Credential("x-api-key", token)


@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"authorization", b"x-api-key", b"accept", b"authorisation"]),
            st.one_of(
                st.binary(max_size=80),
                st.builds(lambda b: b"Bearer " + b, st.binary(max_size=60)),
                st.builds(lambda b: b"apikey " + b, st.binary(max_size=60)),
            ),
        ),
        max_size=4,
    )
)
def test_any_asgi_bytes_parse_or_are_invalid_request(headers: list[tuple[bytes, bytes]]) -> None:
    try:
        credential = from_asgi_headers(headers)
    except InvalidRequest:
        return
    if credential is not None:
        assert B64TOKEN.match(credential.value)


@given(
    st.dictionaries(
        st.sampled_from(["HTTP_AUTHORIZATION", "HTTP_X_API_KEY", "HTTP_ACCEPT"]),
        st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255)),
    )
)
def test_any_wsgi_environ_parses_or_is_invalid_request(environ: dict[str, str]) -> None:
    try:
        credential = from_wsgi_environ(environ)
    except InvalidRequest:
        return
    if credential is not None:
        assert B64TOKEN.match(credential.value)
    # A second time (possibly from the memo) answers exactly as parse() does.
    expected = parse(environ.get("HTTP_AUTHORIZATION"), environ.get("HTTP_X_API_KEY"))
    assert from_wsgi_environ(environ) == expected == credential
