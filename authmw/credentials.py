"""Header parsing: the one place where a request's credential is read.

Accepted, and nothing else:

* ``Authorization: Bearer <credential>`` (RFC 6750 section 2.1),
* ``Authorization: apikey <key>`` (the scheme several API platforms use),
* ``X-API-Key: <key>``.

Scheme names are case-insensitive (RFC 9110 section 11.1). The credential must
match the ``b64token`` grammar of RFC 6750 section 2.1; anything else in one of
*our* schemes is a malformed request (400 ``invalid_request``). A foreign scheme
such as ``Basic`` is not ours to judge, so it counts as no credential at all.
Credentials in the query string are never read (RFC 9700 section 4.3.2: they
leak into logs and ``Referer`` headers).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import AnyStr, Generic, Literal

from authmw.errors import InvalidRequest

__all__ = [
    "MAX_CREDENTIAL_LENGTH",
    "Credential",
    "from_asgi_headers",
    "from_wsgi_environ",
    "parse",
    "parse_headers",
]

#: Longest header value we parse. Real credentials are far shorter; the bound
#: keeps a hostile header from costing more than a constant amount of work.
MAX_CREDENTIAL_LENGTH = 8192

Scheme = Literal["bearer", "apikey", "x-api-key"]

# RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_OUR_SCHEMES: dict[str, Scheme] = {"bearer": "bearer", "apikey": "apikey"}
_OWS = " \t"

_MALFORMED = "The Authorization header is malformed."
_MALFORMED_KEY = "The X-API-Key header is malformed."
_TOO_LONG = "The credential header is too long."
_SEVERAL = "Send exactly one credential: one Authorization header or one X-API-Key header."


@dataclass(frozen=True, slots=True)
class Credential:
    """A credential as sent by the client: which header or scheme carried it, and its value.

    The ``repr`` never shows the value, so a credential that ends up in a log line
    or a traceback does not leak.
    """

    scheme: Scheme
    value: str

    def __repr__(self) -> str:
        return f"Credential(scheme={self.scheme!r}, value=<redacted>)"


def parse(authorization: str | None, x_api_key: str | None = None) -> Credential | None:
    """Return the request's credential, or ``None`` when it carries none we accept.

    Raises :class:`~authmw.errors.InvalidRequest` for a malformed value in one of
    our schemes, for an over-long header, and when two credentials are sent.
    """
    from_header = _parse_authorization(authorization) if authorization is not None else None
    if x_api_key is None:
        return from_header
    key = _parse_api_key_header(x_api_key)
    if from_header is not None:
        # Two credentials could name two different principals; refusing is the only
        # answer that cannot pick the wrong one.
        raise InvalidRequest(_SEVERAL)
    return key


def _parse_authorization(value: str) -> Credential | None:
    if len(value) > MAX_CREDENTIAL_LENGTH:
        raise InvalidRequest(_TOO_LONG)
    value = value.strip(_OWS)
    scheme, sep, rest = value.partition(" ")
    # A scheme is an ASCII token (RFC 9110 section 11.1). Without this check
    # str.lower() would map a look-alike such as the Kelvin sign (U+212A) onto
    # "k", and "API\u212aEY" would be taken for our apikey scheme.
    ours = _OUR_SCHEMES.get(scheme.lower()) if scheme.isascii() else None
    if ours is None:
        return None
    token = rest.lstrip(" ")
    if not sep or _B64TOKEN.fullmatch(token) is None:
        raise InvalidRequest(_MALFORMED)
    return Credential(ours, token)


def _parse_api_key_header(value: str) -> Credential:
    if len(value) > MAX_CREDENTIAL_LENGTH:
        raise InvalidRequest(_TOO_LONG)
    token = value.strip(_OWS)
    if _B64TOKEN.fullmatch(token) is None:
        raise InvalidRequest(_MALFORMED_KEY)
    return Credential("x-api-key", token)


def parse_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> Credential | None:
    """Parse a mapping or list of ``(name, value)`` pairs (names in any case).

    A header that appears twice is refused: neither ``Authorization`` nor
    ``X-API-Key`` is a list-valued field (RFC 9110 section 5.3).
    """
    items = headers.items() if isinstance(headers, Mapping) else headers
    authorization: str | None = None
    api_key: str | None = None
    for name, value in items:
        lname = name.lower()
        if lname == "authorization":
            if authorization is not None:
                raise InvalidRequest(_SEVERAL)
            authorization = value
        elif lname == "x-api-key":
            if api_key is not None:
                raise InvalidRequest(_SEVERAL)
            api_key = value
    return parse(authorization, api_key)


def from_asgi_headers(headers: Iterable[tuple[bytes, bytes]]) -> Credential | None:
    """Parse the raw header list of an ASGI scope (names are lower-case bytes)."""
    authorization: bytes | None = None
    api_key: bytes | None = None
    for name, value in headers:
        if name == b"authorization":
            if authorization is not None:
                raise InvalidRequest(_SEVERAL)
            authorization = value
        elif name == b"x-api-key":
            if api_key is not None:
                raise InvalidRequest(_SEVERAL)
            api_key = value
    if authorization is None and api_key is None:
        return None
    return _asgi_memo(authorization, api_key)


def _parse_raw(authorization: bytes | None, api_key: bytes | None) -> Credential | None:
    # latin-1 maps every byte to one character, so decoding never fails; a
    # non-ASCII byte then fails the b64token grammar and becomes a 400.
    return parse(
        authorization.decode("latin-1") if authorization is not None else None,
        api_key.decode("latin-1") if api_key is not None else None,
    )


# An API sees the same few credentials again and again, and parsing one (the
# grammar check, a frozen Credential) was the largest part of what the middleware
# cost a warm request. The parse is a pure function of the two header values, so
# it is remembered for short values. Only results in one of our schemes are kept:
# a malformed value raises and is parsed, and refused, anew every time, and a
# foreign credential (Basic with a password) is never held. Bounded: when full,
# the memo starts over, so junk can only cost a re-parse.
_MEMO_SIZE = 1024
_MEMO_MAX_LENGTH = 512


class _ParseMemo(Generic[AnyStr]):
    """Remember ``parse_fn(authorization, api_key)`` for recent header values."""

    __slots__ = ("_entries", "_parse")

    def __init__(
        self, parse_fn: Callable[[AnyStr | None, AnyStr | None], Credential | None]
    ) -> None:
        self._parse: Callable[[AnyStr | None, AnyStr | None], Credential | None] = parse_fn
        self._entries: dict[tuple[AnyStr | None, AnyStr | None], Credential] = {}

    def __call__(self, authorization: AnyStr | None, api_key: AnyStr | None) -> Credential | None:
        size = (0 if authorization is None else len(authorization)) + (
            0 if api_key is None else len(api_key)
        )
        if size > _MEMO_MAX_LENGTH:
            return self._parse(authorization, api_key)
        raw = (authorization, api_key)
        try:
            credential = self._entries.get(raw)
        except TypeError:  # a lax server's bytearray is unhashable: parse it as it is
            return self._parse(authorization, api_key)
        if credential is None:
            credential = self._parse(authorization, api_key)
            # Keep only what one of our headers carried, not a foreign Authorization beside it.
            if credential is not None and (
                authorization is None or credential.scheme != "x-api-key"
            ):
                if len(self._entries) >= _MEMO_SIZE:
                    self._entries.clear()
                self._entries[raw] = credential
        return credential

    def clear(self) -> None:
        """Forget everything (for tests)."""
        self._entries.clear()


_asgi_memo: _ParseMemo[bytes] = _ParseMemo(_parse_raw)
_wsgi_memo: _ParseMemo[str] = _ParseMemo(parse)


def from_wsgi_environ(environ: Mapping[str, object]) -> Credential | None:
    """Parse the credential headers of a WSGI environ (PEP 3333 latin-1 strings)."""
    authorization = environ.get("HTTP_AUTHORIZATION")
    api_key = environ.get("HTTP_X_API_KEY")
    if authorization is None and api_key is None:
        return None
    if not isinstance(authorization, str):
        authorization = None
    if not isinstance(api_key, str):
        api_key = None
    return _wsgi_memo(authorization, api_key)
