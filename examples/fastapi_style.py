"""The FastAPI demo's way of answering, written once for the Flask and Django demos.

The three demos must answer alike, byte for byte, and the FastAPI demo is the
reference: its JSON (:func:`render`), its ``404`` and ``405`` bodies, and the
``422`` FastAPI gives a request body its pydantic model refuses. :class:`Body`
checks a body as FastAPI and pydantic do, and :class:`BodyError` carries the
answer: the same error entries (``type``, ``loc``, ``msg``) for no body, a body
that is not JSON, a JSON value that is not an object, missing fields (all of
them, in field order) and values of the wrong type.

An entry never carries the ``input`` pydantic would add: here that would be a
password. The FastAPI demo drops it too, keeping only :data:`ERROR_KEYS`.

Standard library only: the Flask and Django demos install no pydantic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "APP_SETTINGS",
    "ERROR_KEYS",
    "METHOD_NOT_ALLOWED",
    "NOT_FOUND",
    "PASSWORD_CHANGE",
    "REQUIRED",
    "Body",
    "BodyError",
    "Field",
    "render",
]

#: The keys of a validation error entry that an answer shows. ``input`` echoes the
#: request (a password, here); ``ctx`` may too (a validator's ``value_error`` carries
#: its message, often made from the value); ``url`` shows nothing of the request,
#: but is left out with everything else not named here, so that a key a later
#: FastAPI or pydantic adds is never shown by accident.
ERROR_KEYS: Final = ("type", "loc", "msg")

#: FastAPI's answer to a path no route has.
NOT_FOUND: Final = {"detail": "Not Found"}
#: FastAPI's answer to a method the path's route does not take (with an ``Allow`` header).
METHOD_NOT_ALLOWED: Final = {"detail": "Method Not Allowed"}
#: FastAPI's answer to a body it cannot even decode (bytes that are not text, nesting
#: too deep for the JSON parser): a 400, not a 422.
_UNREADABLE: Final = {"detail": "There was an error parsing the body"}

# pydantic's messages, for each error type these bodies can raise.
_MISSING: Final = "Field required"
_NOT_AN_OBJECT: Final = "Input should be a valid dictionary or object to extract fields from"
_STRING: Final = "Input should be a valid string"
_BOOL: Final = "Input should be a valid boolean"
_BOOL_PARSING: Final = "Input should be a valid boolean, unable to interpret input"

# The strings pydantic reads as booleans, in any ASCII case; any other string is
# refused as unparsable.
_WORDS: Final = {
    **dict.fromkeys(("0", "f", "n", "no", "off", "false"), False),
    **dict.fromkeys(("1", "t", "y", "yes", "on", "true"), True),
}
# pydantic-core holds an int in 64 bits: a larger one is not "an int it could not
# read as a boolean" but not a boolean at all, a different error type.
_I64: Final = range(-(2**63), 2**63)


def render(data: Any) -> bytes:
    """Serialise ``data`` as FastAPI's ``JSONResponse`` does: compact, UTF-8, keys in order."""
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


class _Required:
    """The marker of a field without a default."""

    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of a field the body must carry.
REQUIRED: Final = _Required()


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a pydantic model: its name, its type (``str`` or ``bool``), its default."""

    name: str
    kind: type[str] | type[bool]
    default: object = REQUIRED


class BodyError(Exception):
    """A body refused as FastAPI refuses it: ``status`` and the JSON ``payload`` to answer with."""

    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.payload = payload


def _entry(kind: str, loc: tuple[str | int, ...], msg: str) -> dict[str, Any]:
    # Key for key, and in order, what the FastAPI demo keeps of pydantic's entry (ERROR_KEYS).
    return {"type": kind, "loc": ["body", *loc], "msg": msg}


def _refuse(*entries: dict[str, Any]) -> BodyError:
    return BodyError(422, {"detail": list(entries)})


@dataclass(frozen=True, slots=True)
class Body:
    """A route's JSON body, as a FastAPI route declares it with a pydantic model.

    ``fields`` are the model's, in its order. ``optional``: the route takes
    ``Model | None = None``, so no body, or JSON ``null``, means the defaults.
    """

    fields: tuple[Field, ...]
    optional: bool = False

    def __post_init__(self) -> None:
        """Refuse an optional body with a required field: it would have nothing to default to."""
        required = [f.name for f in self.fields if f.default is REQUIRED]
        if self.optional and required:
            raise ValueError(f"an optional body needs defaults for {', '.join(required)}")

    def parse(self, content_type: str | None, raw: bytes) -> dict[str, Any]:
        """Return the body's fields by name (defaults filled in), or raise :class:`BodyError`.

        ``content_type`` is the request's ``Content-Type`` header (``None`` when
        absent): as FastAPI does, only ``application/json`` or ``application/*+json``
        is parsed, and any other body is refused as not an object.
        """
        if not raw and not self.optional:
            raise _refuse(_entry("missing", (), _MISSING))
        value = _decode(content_type, raw) if raw else None
        if value is None and self.optional:
            return {f.name: f.default for f in self.fields}
        if not isinstance(value, dict):
            raise _refuse(_entry("model_attributes_type", (), _NOT_AN_OBJECT))
        parsed: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        for field in self.fields:  # pydantic reports every field, in the model's order
            if field.name in value:
                checked = _check(field.kind, value[field.name])
            elif field.default is REQUIRED:
                checked = _Invalid("missing", _MISSING)
            else:
                checked = field.default
            if isinstance(checked, _Invalid):
                errors.append(_entry(checked.kind, (field.name,), checked.msg))
            else:
                parsed[field.name] = checked
        if errors:
            raise _refuse(*errors)
        return parsed


def _decode(content_type: str | None, raw: bytes) -> Any:
    """Return the body as FastAPI hands it to pydantic: parsed JSON, or bytes that are not JSON."""
    if not _is_json(content_type):
        return raw  # not an object, whatever it holds
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        # The decoder's position, never its document: that is the request.
        raise _refuse(_entry("json_invalid", (error.pos,), "JSON decode error")) from None
    except (ValueError, RecursionError):  # not UTF-8/16/32 text, or nested too deep
        raise BodyError(400, dict(_UNREADABLE)) from None


@dataclass(frozen=True, slots=True)
class _Invalid:
    """Why a value was refused: pydantic's error type and message."""

    kind: str
    msg: str


def _check(kind: type[str] | type[bool], value: Any) -> Any:
    """Read a field's JSON value as pydantic's lax mode does; an :class:`_Invalid` if it cannot."""
    if kind is str:
        return value if isinstance(value, str) else _Invalid("string_type", _STRING)
    return _as_bool(value)


def _as_bool(value: Any) -> bool | _Invalid:
    """Read a JSON value as pydantic reads a ``bool``."""
    if isinstance(value, str):
        word = _WORDS.get(value.lower() if value.isascii() else value)
        return _Invalid("bool_parsing", _BOOL_PARSING) if word is None else word
    if isinstance(value, float):
        # pydantic reads a float without a fraction as that int, if strictly inside
        # 64 bits; any other float (NaN, infinities) is not a boolean at all.
        if not (value.is_integer() and -(2**63) < value < 2**63):
            return _Invalid("bool_type", _BOOL)
        value = int(value)
    if isinstance(value, int) and value in (0, 1):  # true and false too
        return bool(value)
    if isinstance(value, int) and value in _I64:
        return _Invalid("bool_parsing", _BOOL_PARSING)
    return _Invalid("bool_type", _BOOL)


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI parses a body of this ``Content-Type`` as JSON.

    ``application/json`` or ``application/<anything>+json``, parameters aside
    (``; charset=utf-8``), in any case. A body that does not say it is JSON is
    not read as JSON (FastAPI's ``strict_content_type``, its default).
    """
    if not content_type:
        return False
    media_type = content_type.partition(";")[0].strip().lower()
    main, slash, sub = media_type.partition("/")
    return main == "application" and bool(slash) and (sub == "json" or sub.endswith("+json"))


#: The body of ``POST /account/password`` (the FastAPI demo's ``PasswordChange``).
PASSWORD_CHANGE: Final = Body((Field("current_password", str), Field("new_password", str)))
#: The body of ``POST /admin/settings`` (the FastAPI demo's ``AppSettings | None``).
APP_SETTINGS: Final = Body((Field("maintenance_mode", bool, False),), optional=True)
