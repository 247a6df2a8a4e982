"""No log line ever carries a key, a key's secret or a password.

Every logger is captured at DEBUG, SQLAlchemy's statement log included (it
logs bound parameters), across every flow that handles a secret: user
creation, password change, key creation, verification, every kind of
rejection, revocation, rotation, usage flushing and a store failure.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from authmw import AuthError, Settings
from authmw import keys as keys_module
from authmw.credentials import Credential
from authmw.store.sql import SQLStore, metadata
from tests.conftest import AuthenticatorFactory
from tests.core.conftest import sqlite_file_url

PASSWORD = "first secret password"
NEW_PASSWORD = "second secret password"


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    """All that any handler could write: messages, arguments, extras and tracebacks."""
    formatter = logging.Formatter()
    parts = [caplog.text]
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.__dict__))
        if record.exc_info:
            parts.append(formatter.formatException(record.exc_info))
    return "\n".join(parts)


def test_no_secret_is_ever_logged(
    make_authenticator: AuthenticatorFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="authmw")
    # Set before the engine exists, so SQLAlchemy logs every statement and its parameters.
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")
    secrets: list[str] = [PASSWORD, NEW_PASSWORD]

    def remember(key: str) -> str:
        secrets.extend([key, keys_module.parse(key).secret])
        return key

    auth = make_authenticator(sqlite_file_url(tmp_path), settings=Settings(cache_ttl=0))
    auth.users.create("alice", password=PASSWORD, roles=["admin"])
    auth.users.set_password("alice", NEW_PASSWORD)
    auth.passwords.verify(NEW_PASSWORD, auth.users.get("alice").password_hash)
    auth.passwords.verify(PASSWORD, auth.users.get("alice").password_hash)

    issued = auth.keys.create(name="laptop", owner="alice")
    good = remember(issued.key)
    assert auth.authenticate(Credential("apikey", good)) is not None

    unknown = remember(keys_module.generate()[0])
    tampered = good[:-1] + ("A" if good[-1] != "A" else "B")
    secrets.append(tampered)
    other_secret = remember(keys_module.generate()[0])
    presented = [unknown, tampered, f"{good[:17]}{other_secret[17:]}", "amk_short"]
    for value in presented:
        with pytest.raises(AuthError):
            auth.authenticate(Credential("bearer", value))
    with pytest.raises(AuthError):
        auth.authenticate(Credential("x-api-key", good + "x"))

    rotated = auth.keys.rotate(issued.record.id, grace=timedelta(hours=1))
    remember(rotated.key)
    assert auth.authenticate(Credential("apikey", rotated.key)) is not None
    auth.keys.revoke(issued.record.id)
    with pytest.raises(AuthError):
        auth.authenticate(Credential("apikey", good))
    auth.flush_usage()

    # The store goes away: verification fails closed and usage cannot be written.
    store = auth.store
    assert isinstance(store, SQLStore)
    assert auth.authenticate(Credential("apikey", rotated.key)) is not None  # pending usage
    metadata.drop_all(store.engine)
    with pytest.raises(AuthError):
        auth.authenticate(Credential("apikey", rotated.key))
    auth.flush_usage()

    logged = everything_logged(caplog)
    messages = {r.getMessage() for r in caplog.records if r.name == "authmw"}
    # The flows really ran and really logged, including the tracebacks.
    audit = [r.getMessage() for r in caplog.records if r.name == "authmw.audit"]
    assert any(m.startswith("credential.rejected kind=api_key") for m in audit)
    assert "authmw: credential store unavailable" in messages
    assert "authmw: could not record key usage" in messages
    assert any(r.name.startswith("sqlalchemy.engine") for r in caplog.records)
    assert "Traceback" in logged
    for secret in secrets:
        assert secret not in logged
