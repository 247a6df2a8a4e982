"""Password hashing with libpass: argon2id for new hashes, bcrypt verified and upgraded.

Parameters follow the OWASP Password Storage Cheat Sheet's argon2id minimum
(m=19 MiB, t=2, p=1). Hashes made with other parameters or with bcrypt still
verify, and :meth:`PasswordHasher.verify` returns a replacement hash so the
caller can upgrade the stored one on a successful login.
"""

from __future__ import annotations

import contextlib

from passlib.context import CryptContext

__all__ = ["MAX_PASSWORD_LENGTH", "MIN_PASSWORD_LENGTH", "PasswordHasher", "WeakPassword"]

#: ASVS 5.0 V6.2.1: at least 8 characters (15 recommended without MFA).
MIN_PASSWORD_LENGTH = 8
#: ASVS 5.0 V6.2.9: at least 64 characters must be accepted. The cap only stops
#: a megabyte "password" from becoming a denial of service.
MAX_PASSWORD_LENGTH = 1024
_BCRYPT_MAX_BYTES = 72


class WeakPassword(ValueError):
    """The password does not meet the password policy."""


def check_password(password: str) -> str:
    """Return ``password`` if it meets the policy, else raise :class:`WeakPassword`.

    No composition rules (ASVS 5.0 V6.2.5) and no truncation: every character counts.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    if not _encodable(password):
        # A lone surrogate (JSON can carry one) has no UTF-8 form to hash.
        raise WeakPassword("a password must be valid Unicode text")
    return password


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class PasswordHasher:
    """Hash and verify passwords; one instance per application."""

    def __init__(
        self,
        *,
        memory_cost: int = 19456,
        time_cost: int = 2,
        parallelism: int = 1,
    ) -> None:
        self._context = CryptContext(
            schemes=["argon2", "bcrypt"],
            default="argon2",
            deprecated=["bcrypt"],
            argon2__type="ID",
            argon2__memory_cost=memory_cost,
            argon2__time_cost=time_cost,
            argon2__parallelism=parallelism,
        )
        # Verifying against this when the user does not exist makes "no such user"
        # cost the same as "wrong password", so timing does not reveal usernames.
        self._dummy = self._context.hash("authmw-dummy-password")

    def hash(self, password: str) -> str:
        """Return a new argon2id hash of ``password``."""
        return str(self._context.hash(password))

    def verify(self, password: str, stored: str | None) -> tuple[bool, str | None]:
        """Check ``password`` against ``stored``.

        Returns ``(ok, new_hash)``: ``new_hash`` is set when the stored hash uses an
        outdated scheme or parameters and should be replaced. ``stored=None`` (no
        password set, or no such user) verifies against a dummy hash and fails.
        """
        if stored is None:
            return self._fail(password)
        # "surrogatepass": a lone surrogate (JSON text may carry "\ud800") is counted
        # here and refused by the library below, like any password that cannot match.
        if (
            stored.startswith("$2")
            and len(password.encode(errors="surrogatepass")) > _BCRYPT_MAX_BYTES
        ):
            # bcrypt sees only 72 bytes; the library refuses longer input rather than
            # truncate. A longer password cannot be the one that was hashed.
            return self._fail("x")
        try:
            ok, new_hash = self._context.verify_and_update(password, stored)
        except (ValueError, TypeError):
            # A corrupt or unknown hash format: fail the login, never raise a 500.
            return False, None
        return bool(ok), new_hash

    def _fail(self, password: str) -> tuple[bool, None]:
        # Spend a verification's time on the dummy hash, then fail. The library
        # refuses some input outright (over 4096 bytes, or not encodable as UTF-8);
        # that input fails all the same and must not turn a login into a 500.
        with contextlib.suppress(ValueError, TypeError):
            self._context.verify(password, self._dummy)
        return False, None
