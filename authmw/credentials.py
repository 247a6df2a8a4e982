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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from authmw.errors import InvalidRequest

__all__ = [
    "MAX_CREDENTIAL_LENGTH",
    "Credential",
    "RawCredential",
    "asgi_raw",
    "from_asgi_headers",
    "from_wsgi_environ",
    "is_rememberable",
    "parse",
    "parse_headers",
    "parse_raw",
    "wsgi_raw",
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


#: The raw values of the two credential headers, ``(authorization, x_api_key)``:
#: latin-1 ``bytes`` from an ASGI scope or ``str`` from a WSGI environ, ``None``
#: for a header not sent. :func:`parse_raw` turns it into the credential.
RawCredential = tuple[bytes | None, bytes | None] | tuple[str | None, str | None]


def asgi_raw(headers: Iterable[tuple[bytes, bytes]]) -> tuple[bytes | None, bytes | None] | None:
    """Find the credential headers in an ASGI header list (names are lower-case bytes).

    ``None`` when neither is sent. A repeated header raises
    :class:`~authmw.errors.InvalidRequest` here, before anything looks at the values.
    """
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
    return authorization, api_key


def wsgi_raw(environ: Mapping[str, object]) -> tuple[str | None, str | None] | None:
    """Find the credential headers in a WSGI environ (PEP 3333 latin-1 strings).

    ``None`` when neither is sent; a value that is not a string counts as not sent.
    """
    authorization = environ.get("HTTP_AUTHORIZATION")
    api_key = environ.get("HTTP_X_API_KEY")
    if authorization is None and api_key is None:
        return None
    return (
        authorization if isinstance(authorization, str) else None,
        api_key if isinstance(api_key, str) else None,
    )


def parse_raw(raw: RawCredential | None) -> Credential | None:
    """Parse what :func:`asgi_raw` or :func:`wsgi_raw` found: :func:`parse`, after decoding."""
    if raw is None:
        return None
    authorization, api_key = raw
    # latin-1 maps every byte to one character, so decoding never fails; a
    # non-ASCII byte then fails the b64token grammar and becomes a 400.
    if isinstance(authorization, bytes | bytearray):
        authorization = authorization.decode("latin-1")
    if isinstance(api_key, bytes | bytearray):
        api_key = api_key.decode("latin-1")
    return parse(authorization, api_key)


#: Longest raw header values (both together) :func:`is_rememberable` admits.
_REMEMBER_MAX_LENGTH = 512


def is_rememberable(raw: RawCredential, credential: Credential) -> bool:
    """Say whether ``raw``, parsed into ``credential``, may also be a cache key.

    The credential cache files a verified credential under its raw header values
    too, so a warm request is one dict lookup (``CredentialCache.alias``). That is
    sound because :func:`parse_raw` is a pure function of ``raw``. Kept only:

    * values a dict can hold (a lax server's ``bytearray`` is not hashable);
    * short values: real credentials are, and a client padding a valid key with
      whitespace cannot make the cache hold kilobytes per entry;
    * values that carry nothing but the credential: a foreign ``Authorization``
      (``Basic`` with a password) beside an ``X-API-Key`` is never held in memory.
    """
    authorization, api_key = raw
    if isinstance(authorization, bytearray) or isinstance(api_key, bytearray):
        return False
    size = (0 if authorization is None else len(authorization)) + (
        0 if api_key is None else len(api_key)
    )
    if size > _REMEMBER_MAX_LENGTH:
        return False
    return authorization is None or credential.scheme != "x-api-key"


def from_asgi_headers(headers: Iterable[tuple[bytes, bytes]]) -> Credential | None:
    """Parse the raw header list of an ASGI scope (names are lower-case bytes)."""
    return parse_raw(asgi_raw(headers))


def from_wsgi_environ(environ: Mapping[str, object]) -> Credential | None:
    """Parse the credential headers of a WSGI environ (PEP 3333 latin-1 strings)."""
    return parse_raw(wsgi_raw(environ))
