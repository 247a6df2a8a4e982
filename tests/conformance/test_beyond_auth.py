"""Requests outside authentication: the three demos answer them byte for byte alike.

A second, small table beside the scenario table (which it leaves as it is):
bodies the POST routes refuse, sent with a credential that passes the route's
guard; an unknown path; methods a route does not take; and ``/me``. The FastAPI
demo is the reference: FastAPI's answers, its 422 without the ``input`` pydantic
would echo. The Flask and Django demos check bodies with one shared validator
(``examples/fastapi_style.py``), compared here with pydantic itself.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authmw import Authenticator
from examples.fastapi_style import APP_SETTINGS, PASSWORD_CHANGE, REQUIRED, Body, BodyError
from tests.conformance.support import FRAMEWORKS, Reply, World, call_asgi

#: The passwords the bodies carry: no answer may contain either.
PASSWORD: Final = "the current password, sent to be refused"
NEW_PASSWORD: Final = "the new password, never echoed either"

JSON: Final = "application/json"
USER: Final = "user_employee"  # a user token: what the password route lets through
ADMIN: Final = "admin"  # the admin's key: what the settings route lets through
PASSWORD_ROUTE: Final = "/account/password"
SETTINGS_ROUTE: Final = "/admin/settings"


@dataclass(frozen=True, slots=True)
class Probe:
    """One request outside authentication, and the status (and 422 error types) it gets."""

    id: str
    method: str
    path: str
    credential: str | None  # a label of the world's secrets, sent as Bearer
    status: int
    body: bytes = b""
    content_type: str | None = JSON
    types: tuple[str, ...] = ()  # the error types of a 422, in order

    def headers(self, secrets: Mapping[str, str]) -> dict[str, str]:
        """The request's headers, with the credential of the world it is sent to."""
        headers = {} if self.content_type is None else {"Content-Type": self.content_type}
        if self.credential is not None:
            headers["Authorization"] = f"Bearer {secrets[self.credential]}"
        return headers


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _password(name: str, body: bytes, *types: str, status: int = 422, **kw: Any) -> Probe:
    return Probe(f"password-{name}", "POST", PASSWORD_ROUTE, USER, status, body, types=types, **kw)


def _settings(name: str, body: bytes, *types: str, status: int = 422, **kw: Any) -> Probe:
    return Probe(f"settings-{name}", "POST", SETTINGS_ROUTE, ADMIN, status, body, types=types, **kw)


_BOTH: Final = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}

PROBES: Final[tuple[Probe, ...]] = (
    # -- POST /account/password: {"current_password", "new_password"}, both strings
    _password("no-body", b"", "missing"),
    _password("invalid-json", f'{{"current_password": "{PASSWORD}",'.encode(), "json_invalid"),
    _password("not-text", _json(_BOTH)[:-2] + b"\xff}", status=400),
    _password("array", _json([PASSWORD, NEW_PASSWORD]), "model_attributes_type"),
    _password("null", b"null", "model_attributes_type"),
    _password("string", _json(PASSWORD), "model_attributes_type"),
    _password("empty-object", b"{}", "missing", "missing"),
    _password("new-missing", _json({"current_password": PASSWORD}), "missing"),
    _password("current-missing", _json({"new_password": NEW_PASSWORD}), "missing"),
    _password(
        "wrong-types",
        _json({"current_password": 1, "new_password": [NEW_PASSWORD]}),
        "string_type",
        "string_type",
    ),
    _password("missing-and-null", _json({"new_password": None}), "missing", "string_type"),
    _password("text-plain", _json(_BOTH), "model_attributes_type", content_type="text/plain"),
    _password("no-content-type", _json(_BOTH), "model_attributes_type", content_type=None),
    # -- POST /admin/settings: optional {"maintenance_mode": bool = false}
    _settings("no-body", b"", status=200),
    _settings("null", b"null", status=200),
    _settings("word", _json({"maintenance_mode": "Yes"}), status=200),
    _settings("one", _json({"maintenance_mode": 1}), status=200),
    _settings("json-subtype", b"{}", status=200, content_type="application/merge-patch+json"),
    _settings("unknown-word", _json({"maintenance_mode": "soon"}), "bool_parsing"),
    _settings("two", _json({"maintenance_mode": 2}), "bool_parsing"),
    _settings("two-point-zero", _json({"maintenance_mode": 2.0}), "bool_parsing"),
    _settings("huge", _json({"maintenance_mode": 10**30}), "bool_type"),
    _settings("null-field", _json({"maintenance_mode": None}), "bool_type"),
    _settings("nan", b'{"maintenance_mode": NaN}', "bool_type"),
    _settings("invalid-json", b'{"maintenance_mode": tru}', "json_invalid"),
    _settings("array", b"[true]", "model_attributes_type"),
    _settings("text-plain", b"{}", "model_attributes_type", content_type="text/plain"),
    # -- no route: unknown paths, methods a route does not take
    Probe("unknown-path", "GET", "/nowhere", None, 404, content_type=None),
    Probe("unknown-path-with-credential", "POST", "/nowhere", ADMIN, 404, b"{}"),
    # A trailing slash is another path: 404, never a redirect (FastAPI's default is a 307).
    Probe("trailing-slash", "GET", "/health/", None, 404, content_type=None),
    Probe("trailing-slash-with-credential", "GET", "/reports/", ADMIN, 404, content_type=None),
    Probe("wrong-method", "GET", SETTINGS_ROUTE, None, 405, content_type=None),
    Probe("wrong-method-with-credential", "DELETE", "/me", ADMIN, 405, content_type=None),
    Probe("options", "OPTIONS", "/health", None, 405, content_type=None),
    # -- successes compared as bytes: key order, spacing, no trailing newline
    Probe("me-key", "GET", "/me", ADMIN, 200, content_type=None),
    Probe("me-user", "GET", "/me", USER, 200, content_type=None),
    Probe("me-client", "GET", "/me", "client", 200, content_type=None),
)

#: What is compared: status, the headers that describe the body, and the body's bytes.
COMPARED_HEADERS: Final = ("content-type", "allow", "www-authenticate", "cache-control")


def _send(world: World, framework: str, probe: Probe) -> Reply:
    caller = world.callers[framework]
    return caller(probe.method, probe.path, probe.headers(world.secrets), probe.body)


def _view(reply: Reply) -> tuple[Any, ...]:
    return (reply.status, *(reply.header(h) for h in COMPARED_HEADERS), reply.body)


def _check(reply: Reply, probe: Probe) -> None:
    assert reply.status == probe.status, reply.body[:300]
    assert reply.header("content-type") == [JSON], reply.headers
    if probe.status == 422:
        assert [e["type"] for e in reply.json()["detail"]] == list(probe.types), reply.body
    if probe.status == 405:
        assert reply.header("allow") == ["POST" if probe.path == SETTINGS_ROUTE else "GET"]


def test_probe_ids_are_unique() -> None:
    ids = [p.id for p in PROBES]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.id)
def test_demos_answer_alike(in_process: World, probe: Probe) -> None:
    replies = {name: _send(in_process, name, probe) for name in FRAMEWORKS}
    _check(replies["fastapi"], probe)
    for name in FRAMEWORKS[1:]:
        assert _view(replies[name]) == _view(replies["fastapi"]), name


@pytest.mark.parametrize("probe", [p for p in PROBES if p.body], ids=lambda p: p.id)
def test_no_answer_echoes_a_password(in_process: World, probe: Probe) -> None:
    for name in FRAMEWORKS:
        reply = _send(in_process, name, probe)
        for password in (PASSWORD, NEW_PASSWORD):
            assert password.encode() not in reply.body, name
            assert all(password not in v for _, v in reply.headers), name


def test_without_its_handler_the_fastapi_demo_would_echo(
    in_process: World, shared_auth: Authenticator
) -> None:
    """The check above can fail: FastAPI's own handler shows the refused body's password."""
    from fastapi.exception_handlers import request_validation_exception_handler  # noqa: PLC0415
    from fastapi.exceptions import RequestValidationError  # noqa: PLC0415

    from examples.fastapi_app.app import create_app  # noqa: PLC0415

    app = create_app(shared_auth)
    app.exception_handlers[RequestValidationError] = request_validation_exception_handler
    world = World({"fastapi": call_asgi(app)}, in_process.secrets, in_process.ids, {})
    probe = next(p for p in PROBES if p.id == "password-new-missing")
    reply = _send(world, "fastapi", probe)
    assert reply.status == 422
    assert PASSWORD.encode() in reply.body


@pytest.mark.parametrize("probe", [p for p in PROBES if p.path != "/me"], ids=lambda p: p.id)
def test_servers_answer_alike(live: dict[str, World], probe: Probe) -> None:
    replies = {name: _send(live[name], name, probe) for name in FRAMEWORKS}
    _check(replies["fastapi"], probe)
    for name in FRAMEWORKS[1:]:
        assert _view(replies[name]) == _view(replies["fastapi"]), name


# -- the shared validator against pydantic itself


def _models() -> dict[str, tuple[Body, Any]]:
    """Each shared body, and the type its FastAPI route declares for it."""
    from examples.fastapi_app.app import AppSettings, PasswordChange  # noqa: PLC0415

    return {"password": (PASSWORD_CHANGE, PasswordChange), "settings": (APP_SETTINGS, AppSettings)}


@pytest.mark.parametrize("name", ["password", "settings"])
def test_the_shared_bodies_have_the_fastapi_models_fields(name: str) -> None:
    body, model = _models()[name]
    fields = [
        (n, f.annotation, REQUIRED if f.is_required() else f.default)
        for n, f in model.model_fields.items()
    ]
    assert [(f.name, f.kind, f.default) for f in body.fields] == fields


def _pydantic(body: Body, model: Any, value: Any) -> Any:
    """What FastAPI makes of a parsed JSON body (validated as it does): fields, or 422 entries."""
    from pydantic import TypeAdapter, ValidationError  # noqa: PLC0415

    declared = model | None if body.optional else model
    try:
        parsed = TypeAdapter(declared).validate_python(value, from_attributes=True)
    except ValidationError as error:
        return 422, [
            {"type": e["type"], "loc": ["body", *e["loc"]], "msg": e["msg"]}
            for e in error.errors(include_url=False)
        ]
    return 200, (parsed or model()).model_dump()


def _shared(body: Body, value: Any) -> Any:
    """What the Flask and Django demos make of the same value, sent as JSON."""
    try:
        return 200, body.parse(JSON, json.dumps(value).encode())
    except BodyError as error:
        return error.status, error.payload["detail"]


# JSON values a field may meet; "\uff59es" has a fullwidth y, which is no "yes".
_SCALARS: Final = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0.0, -0.0, 1.0, 2.0, -1.0, 0.5, 2.0**63, -(2.0**63), 9.2e18])
    | st.sampled_from([2**63, -(2**63), 2**63 - 1, -(2**63) - 1])
    | st.text(max_size=8)
    | st.sampled_from(["true", "FALSE", "Yes", "oFf", "t", "N", "0", "1", " 1", "1.0", "\uff59es"])
)
_VALUES: Final = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3), max_leaves=4)
_KEYS: Final = st.sampled_from(["current_password", "new_password", "maintenance_mode", "other"])
_BODIES: Final = st.dictionaries(_KEYS, _VALUES, max_size=4) | _VALUES


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_BODIES, name=st.sampled_from(["password", "settings"]))
def test_the_shared_validator_answers_as_pydantic(value: Any, name: str) -> None:
    body, model = _models()[name]
    assert _shared(body, value) == _pydantic(body, model, value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_no_booleans(value: float) -> None:
    # json.dumps writes NaN and Infinity, which both parsers read back.
    body, model = _models()["settings"]
    document = {"maintenance_mode": value}
    assert _shared(body, document) == _pydantic(body, model, document)
