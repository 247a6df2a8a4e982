"""authmw.passwords: argon2id at OWASP parameters, bcrypt verified and upgraded, the policy."""

from __future__ import annotations

import bcrypt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from authmw.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    PasswordHasher,
    WeakPassword,
    check_password,
)

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def owasp() -> PasswordHasher:
    """The hasher at its default (OWASP) parameters: ~50 ms a hash, so used sparingly."""
    return PasswordHasher()


def bcrypt_hash(password: bytes) -> str:
    # Cost 4 (bcrypt's minimum): the cost is not what these tests are about.
    return bcrypt.hashpw(password, bcrypt.gensalt(rounds=4)).decode()


#: Hashes of PASSWORD in each format verify() meets, plus no hash and a corrupt one.
STORED: list[str | None] = [
    PasswordHasher(memory_cost=8, time_cost=1).hash(PASSWORD),
    bcrypt_hash(PASSWORD.encode()),
    None,
    "garbage",
]


def test_default_hash_is_argon2id_at_owasp_parameters(owasp: PasswordHasher) -> None:
    stored = owasp.hash(PASSWORD)
    assert stored.startswith("$argon2id$v=19$")
    assert "$m=19456,t=2,p=1$" in stored
    assert owasp.verify(PASSWORD, stored) == (True, None)
    assert owasp.verify(PASSWORD + "!", stored) == (False, None)


def test_hashes_are_salted(hasher: PasswordHasher) -> None:
    assert hasher.hash(PASSWORD) != hasher.hash(PASSWORD)


def test_hash_does_not_truncate(hasher: PasswordHasher) -> None:
    long = "x" * 72 + "tail that bcrypt would have dropped"
    stored = hasher.hash(long)
    assert hasher.verify(long, stored) == (True, None)
    assert hasher.verify(long[:72], stored) == (False, None)


def test_outdated_argon2_parameters_are_upgraded(
    hasher: PasswordHasher, owasp: PasswordHasher
) -> None:
    cheap = hasher.hash(PASSWORD)
    ok, upgraded = owasp.verify(PASSWORD, cheap)
    assert ok
    assert upgraded is not None
    assert "$m=19456,t=2,p=1$" in upgraded
    assert owasp.verify(PASSWORD, upgraded) == (True, None)


def test_bcrypt_hash_verifies_and_returns_an_argon2id_upgrade(hasher: PasswordHasher) -> None:
    stored = bcrypt_hash(PASSWORD.encode())
    ok, upgraded = hasher.verify(PASSWORD, stored)
    assert ok
    assert upgraded is not None
    assert upgraded.startswith("$argon2id$")
    assert hasher.verify(PASSWORD, upgraded) == (True, None)
    assert hasher.verify("wrong password", stored) == (False, None)


def test_bcrypt_at_72_bytes_still_verifies(hasher: PasswordHasher) -> None:
    password = "\u00e9" * 36  # 72 bytes in UTF-8
    assert len(password.encode()) == 72
    ok, _ = hasher.verify(password, bcrypt_hash(password.encode()))
    assert ok


@pytest.mark.parametrize(
    "password",
    [PASSWORD + "x" * 60, "\u00e9" * 37, "y" * MAX_PASSWORD_LENGTH],
    ids=["ascii-88", "utf8-74-bytes", "max-length"],
)
def test_password_over_72_bytes_against_bcrypt_fails_without_raising(
    hasher: PasswordHasher, password: str
) -> None:
    # bcrypt sees only 72 bytes: a stored hash of the first 72 must not match the longer one.
    stored = bcrypt_hash(password.encode()[:72])
    assert hasher.verify(password, stored) == (False, None)


def test_nul_byte_against_bcrypt_fails_without_raising(hasher: PasswordHasher) -> None:
    assert hasher.verify("abc\x00defgh", bcrypt_hash(b"abc")) == (False, None)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not a hash",
        "$argon2id$v=19$m=8,t=1,p=1$garbage",
        "$argon2id$",
        "$2b$12$tooshort",
        "$2b$04$" + "!" * 53,
        "$1$saltsalt$md5cryptisnotaccepted",
        "$unknown$scheme",
    ],
)
def test_corrupt_hash_fails_without_raising(hasher: PasswordHasher, stored: str) -> None:
    assert hasher.verify(PASSWORD, stored) == (False, None)


@pytest.mark.parametrize(
    "password",
    ["\ud800" + "x" * 10, "x" * 5000, "x" * 100_000],
    ids=["lone-surrogate", "over-4096-bytes", "100k"],
)
def test_input_the_library_refuses_fails_without_raising(
    hasher: PasswordHasher, password: str
) -> None:
    # A login endpoint gets whatever the client sends: JSON can carry a lone
    # surrogate, and nothing stops a megabyte. Neither may become a 500, whether
    # the user exists (a stored hash) or not (None).
    for stored in (hasher.hash(PASSWORD), bcrypt_hash(PASSWORD.encode()), None, "garbage"):
        assert hasher.verify(password, stored) == (False, None)


@given(st.text(alphabet=st.characters(exclude_categories=()), max_size=90))
def test_verify_never_raises(hasher: PasswordHasher, password: str) -> None:
    for stored in STORED:
        ok, upgrade = hasher.verify(password, stored)
        assert ok is (password == PASSWORD and stored is not None and stored != "garbage")
        assert upgrade is None or upgrade.startswith("$argon2id$")


def test_no_stored_hash_fails(hasher: PasswordHasher) -> None:
    # No password set, or no such user: verification still does the work of a
    # real check (against a dummy hash) and fails.
    assert hasher.verify(PASSWORD, None) == (False, None)
    assert hasher.verify("authmw-dummy-password", None) == (False, None)


# -- the password policy --------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    ["x" * MIN_PASSWORD_LENGTH, "x" * 64, "x" * MAX_PASSWORD_LENGTH, "\u00e9" * 8, "        "],
    ids=["8", "64", "1024", "8-non-ascii", "8-spaces"],
)
def test_policy_accepts(password: str) -> None:
    assert check_password(password) == password


@pytest.mark.parametrize(
    "password",
    ["", "x" * (MIN_PASSWORD_LENGTH - 1), "x" * (MAX_PASSWORD_LENGTH + 1), "long enough\ud800"],
    ids=["empty", "7", "1025", "lone-surrogate"],
)
def test_policy_refuses(password: str) -> None:
    with pytest.raises(WeakPassword):
        check_password(password)


def test_policy_bounds_are_the_asvs_ones() -> None:
    assert MIN_PASSWORD_LENGTH == 8
    assert MAX_PASSWORD_LENGTH >= 64
    assert issubclass(WeakPassword, ValueError)
