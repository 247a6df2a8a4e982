"""authmw.audit: stable event names, allowlisted fields, a log record and hooks."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from authmw.audit import EVENTS, FIELDS, MAX_LENGTH, Audit, AuditEvent


@pytest.fixture
def audit() -> Audit:
    return Audit()


def audit_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "authmw.audit"]


# -- names and fields ---------------------------------------------------------------------


def test_the_event_names_are_the_documented_ones() -> None:
    # Renaming or dropping one breaks every alert built on it: this list only grows.
    assert {
        "login.succeeded",
        "login.failed",
        "login.throttled",
        "token.issued",
        "token.refreshed",
        "token.revoked",
        "token.introspected",
        "refresh.reused",
        "code.reused",
        "consent.granted",
        "consent.denied",
        "consent.revoked",
        "client.authentication_failed",
        "key.created",
        "key.revoked",
        "key.rotated",
        "user.password_changed",
        "user.password_change_failed",
        "user.password_change_throttled",
        "user.disabled",
        "user.roles_changed",
        "credential.rejected",
    } == EVENTS


def test_docs_list_every_event_and_field() -> None:
    text = (Path(__file__).parents[2] / "docs" / "audit.md").read_text()
    for name in EVENTS:
        assert f"`{name}`" in text, name
    for field in FIELDS:
        assert f"`{field}`" in text, field


def test_an_unknown_event_is_refused(audit: Audit, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="authmw.audit")
    with pytest.raises(ValueError, match=r"login\.sucseeded"):
        audit.emit("login.sucseeded", user="alice")
    assert audit_records(caplog) == []


@pytest.mark.parametrize("field", ["password", "secret", "key", "token", "refresh_token", "code"])
def test_a_field_outside_the_allowlist_is_refused(audit: Audit, field: str) -> None:
    hook_calls: list[AuditEvent] = []
    audit.add_hook(hook_calls.append)
    with pytest.raises(ValueError, match=field):
        audit.emit("login.failed", user="alice", **{field: "hunter2"})
    assert hook_calls == []


def test_no_field_is_named_like_a_secret() -> None:
    for field in FIELDS:
        for word in ("password", "secret", "token", "key", "code", "hash"):
            if field in {"key_id", "token_id"}:
                continue
            assert word not in field


@pytest.mark.parametrize("value", [b"bytes", 1.5, ["a"], {"a": 1}, object()])
def test_values_are_str_int_bool_or_none(audit: Audit, value: object) -> None:
    with pytest.raises(TypeError, match="audit field"):
        audit.emit("login.failed", user=value)  # type: ignore[arg-type]


# -- the event ----------------------------------------------------------------------------


def test_emit_returns_the_event(audit: Audit) -> None:
    before = datetime.now(UTC)
    event = audit.emit("token.issued", user="alice", client_id="app", count=2, scope=None)
    after = datetime.now(UTC)
    assert event.name == "token.issued"
    assert event.at.tzinfo is UTC
    assert before <= event.at <= after
    assert dict(event.fields) == {"user": "alice", "client_id": "app", "scope": None, "count": 2}


def test_as_dict() -> None:
    at = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    event = AuditEvent("key.created", at, {"key_id": "k1", "user": "alice", "team": None})
    assert event.as_dict() == {
        "event": "key.created",
        "at": "2025-01-02T03:04:05.678000+00:00",
        "key_id": "k1",
        "user": "alice",
        "team": None,
    }
    json.dumps(event.as_dict())


def test_event_fields_cannot_be_changed_by_a_hook(audit: Audit) -> None:
    event = audit.emit("key.revoked", key_id="k1")
    with pytest.raises(TypeError):
        event.fields["key_id"] = "k2"  # type: ignore[index]


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (
            "alice\r\n2025-01-01 INFO login.succeeded user=admin",
            "alice2025-01-01 INFO login.succeeded user=admin",
        ),
        # Without its ESC, "[31m" is inert text.
        ("a\x1b[31mb\x00c\x7fd\x85e", "a[31mbcde"),
        ("bidi\u202eevil\u200b", "bidievil"),
        ("line\u2028sep\u2029para", "lineseppara"),
        ("lone\ud800surrogate", "lonesurrogate"),
        ("Ünïcödé stays", "Ünïcödé stays"),
        ("tab\there", "tabhere"),
    ],
)
def test_strings_lose_control_characters(audit: Audit, given: str, kept: str) -> None:
    assert audit.emit("login.failed", user=given).fields["user"] == kept


def test_strings_are_cut_to_200_characters(audit: Audit) -> None:
    assert MAX_LENGTH == 200
    event = audit.emit("login.failed", user="x" * 10_000, reason="\n" * 300 + "y" * 250)
    assert event.fields["user"] == "x" * 200
    # Stripped first, then cut: control characters do not eat the budget.
    assert event.fields["reason"] == "y" * 200


# -- the log record ------------------------------------------------------------------------


def test_logs_one_record_with_a_stable_message_and_the_event_as_extra(
    audit: Audit, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="authmw.audit")
    event = audit.emit(
        "token.issued",
        scope="appointments:read reports:read",
        count=3,
        user="alice",
        grant_type="password",
        client_id="app-1",
        token_id="t1",
    )
    (record,) = audit_records(caplog)
    assert record.levelno == logging.INFO
    # Fields in a fixed order (who, what, why), whatever order the caller used.
    assert record.getMessage() == (
        "token.issued user=alice client_id=app-1 token_id=t1 grant_type=password "
        'scope="appointments:read reports:read" count=3'
    )
    assert record.audit == event.as_dict()  # type: ignore[attr-defined]


def test_values_are_quoted_when_they_would_break_key_value_parsing(
    audit: Audit, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="authmw.audit")
    audit.emit("login.failed", user='eve" user=admin', reason=None, count=0, subject="")
    audit.emit("user.disabled", user="bob@example.com", kind=None)
    audit.emit("key.rotated", key_id="k1", count=True)
    messages = [r.getMessage() for r in audit_records(caplog)]
    assert messages == [
        'login.failed user="eve\\" user=admin" subject="" reason=null count=0',
        "user.disabled user=bob@example.com kind=null",
        "key.rotated key_id=k1 count=true",
    ]


@pytest.mark.parametrize(
    ("name", "level"),
    [
        ("login.succeeded", logging.INFO),
        ("token.issued", logging.INFO),
        ("token.revoked", logging.INFO),
        ("key.created", logging.INFO),
        ("user.disabled", logging.INFO),
        ("login.failed", logging.WARNING),
        ("login.throttled", logging.WARNING),
        ("refresh.reused", logging.WARNING),
        ("client.authentication_failed", logging.WARNING),
        ("credential.rejected", logging.WARNING),
    ],
)
def test_failures_are_warnings(
    audit: Audit, caplog: pytest.LogCaptureFixture, name: str, level: int
) -> None:
    caplog.set_level(logging.DEBUG, logger="authmw.audit")
    audit.emit(name)
    (record,) = audit_records(caplog)
    assert record.levelno == level
    assert record.getMessage() == name


def test_a_logger_of_the_applications_choosing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="myapp.security")
    Audit(logging.getLogger("myapp.security")).emit("key.created", key_id="k1")
    assert [r.getMessage() for r in caplog.records if r.name == "myapp.security"] == [
        "key.created key_id=k1"
    ]
    assert audit_records(caplog) == []


def test_a_json_formatter_can_write_the_event(
    audit: Audit, caplog: pytest.LogCaptureFixture
) -> None:
    class JsonFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return json.dumps(getattr(record, "audit", {"message": record.getMessage()}))

    caplog.set_level(logging.INFO, logger="authmw.audit")
    audit.emit("refresh.reused", family_id="f1", client_id="app", user="alice")
    (record,) = audit_records(caplog)
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "refresh.reused"
    assert line["family_id"] == "f1"
    assert datetime.fromisoformat(line["at"]).tzinfo is not None


def test_hooks_run_when_the_logger_is_silent(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("authmw.test.silent")
    logger.setLevel(logging.CRITICAL)
    audit = Audit(logger)
    seen: list[AuditEvent] = []
    audit.add_hook(seen.append)
    audit.emit("login.failed", user="alice")
    assert [e.name for e in seen] == ["login.failed"]
    assert [r for r in caplog.records if r.name == "authmw.test.silent"] == []


# -- hooks ---------------------------------------------------------------------------------------


def test_hooks_receive_each_event_in_order(audit: Audit) -> None:
    calls: list[tuple[str, str]] = []

    def first(event: AuditEvent) -> None:
        calls.append(("first", event.name))

    def second(event: AuditEvent) -> None:
        calls.append(("second", event.name))

    audit.add_hook(first)
    audit.add_hook(second)
    audit.add_hook(first)  # already there: not called twice
    audit.emit("key.created", key_id="k1")
    audit.remove_hook(first)
    audit.remove_hook(first)  # already gone: nothing happens
    audit.emit("key.revoked", key_id="k1")
    assert calls == [("first", "key.created"), ("second", "key.created"), ("second", "key.revoked")]


def test_a_failing_hook_is_logged_and_does_not_stop_the_others(
    audit: Audit, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    seen: list[str] = []

    def broken(event: AuditEvent) -> None:
        raise RuntimeError("the log shipper is down")

    audit.add_hook(broken)
    audit.add_hook(lambda event: seen.append(event.name))
    event = audit.emit("token.revoked", token_id="t1")
    assert event.name == "token.revoked"
    assert seen == ["token.revoked"]
    (failure,) = [r for r in caplog.records if r.name == "authmw"]
    assert failure.levelno == logging.ERROR
    assert "audit hook" in failure.getMessage()
    assert failure.exc_info is not None
    assert "the log shipper is down" in str(failure.exc_info[1])


def test_hooks_can_be_added_while_events_are_emitted(audit: Audit) -> None:
    counts: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def emitter() -> None:
        while not stop.is_set():
            audit.emit("token.introspected", token_id="t")

    def make_hook(n: int) -> None:
        def hook(event: AuditEvent) -> None:
            with lock:
                counts.append(n)

        audit.add_hook(hook)

    threads = [threading.Thread(target=emitter) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for n in range(200):
            make_hook(n)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert len(audit._hooks) == 200
    audit.emit("token.introspected")
    assert counts[-200:] == list(range(200))
