"""Which redirect URIs an app may send users back to: exact string comparison.

RFC 9700 section 2.1 asks for exact matching: no prefix, no pattern, no
normalisation, so a trailing slash, an extra query, a case change or another
port is another URI. The one exception is RFC 8252 section 7.3: a native app
listening on the loopback interface gets a port from the operating system at run
time, so for an app that registered ``http://127.0.0.1/...`` (or ``[::1]``) any
port matches, and everything else must still be identical.
"""

from __future__ import annotations

import re

from authmw.store import Client

__all__ = ["redirect_uri_allowed"]

# http://127.0.0.1[:port]/rest or http://[::1][:port]/rest, split into host and rest.
_LOOPBACK = re.compile(r"http://(127\.0\.0\.1|\[::1\])(?::[0-9]{1,5})?(/[^#]*)?")


def _without_port(uri: str) -> str | None:
    match = _LOOPBACK.fullmatch(uri)
    if match is None:
        return None
    return f"http://{match.group(1)}{match.group(2) or ''}"


def redirect_uri_allowed(client: Client, uri: str) -> bool:
    """Whether ``uri`` is one of ``client``'s registered redirect URIs."""
    if uri in client.redirect_uris:
        return True
    requested = _without_port(uri)
    if requested is None:
        return False
    return any(_without_port(registered) == requested for registered in client.redirect_uris)
