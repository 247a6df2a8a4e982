"""OAuth2 clients and apps: registration, secrets and client authentication.

Two kinds share one registry:

* a **client** (kind ``"client"``) is a machine: it uses the client credentials
  grant, is bound to one team, and gets the scopes (and, if any, the roles) it
  was registered with;
* an **app** (kind ``"app"``) acts for users: the authorization code grant with
  PKCE, redirecting only to the exact URIs it registered. A *first-party* app
  (one the deployment itself ships) may also use the password grant; RFC 9700
  section 2.4 says a third party must never see a user's password. A *public*
  app (a native or browser app that cannot keep a secret) has no secret at all.

A client secret has the format and hash of an API key (:mod:`authmw.keys`),
with its own prefix (``Settings.client_secret_prefix``, default ``amcs``)::

    amcs_<client_id: 12>_<secret: 32><checksum: 6>

so a leaked secret is recognisable to a scanner and names its client, and the
store keeps only ``v1$sha256(client_id:secret)``. The secret embeds the
``client_id`` and keeps it across rotations.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from authmw import keys
from authmw.errors import InvalidToken
from authmw.store import Client, NotFound

if TYPE_CHECKING:
    from authmw.authenticator import Authenticator

__all__ = [
    "KINDS",
    "MAX_REDIRECT_URIS",
    "MAX_REDIRECT_URI_LENGTH",
    "Clients",
    "IssuedClient",
    "check_redirect_uri",
]

#: The two kinds of registered client.
KINDS = ("client", "app")
MAX_REDIRECT_URIS = 10
MAX_REDIRECT_URI_LENGTH = 2000

#: Hosts a redirect URI may name over plain ``http``, and that any app on the
#: user's device could listen on (so they prove nothing about who is asking).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
# RFC 3986 section 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
# Printable ASCII without space: a URI has no other characters (RFC 3986 section 2).
_URI_CHARS_RE = re.compile(r"[\x21-\x7e]+")


def check_redirect_uri(uri: str) -> str:
    """Return ``uri`` unchanged if it may be registered; raise ``ValueError`` saying why not.

    Redirect URIs are compared as exact strings (RFC 9700 section 2.1), so
    what is stored is what was given. Allowed:

    * ``https://host/...``;
    * ``http://`` on a loopback host only (``127.0.0.1``, ``[::1]``,
      ``localhost``), for native apps listening locally (RFC 8252 section 7.3);
      any other ``http`` URI would send the code over the network in clear;
    * a private-use scheme with a dot in it, a reversed domain name the app
      owns such as ``com.example.app:/callback`` (RFC 8252 section 7.1).

    Never a fragment (RFC 6749 section 3.1.2) and never userinfo
    (``user@host``, which makes a URI read as another host).
    """
    if len(uri) > MAX_REDIRECT_URI_LENGTH:
        raise ValueError(f"a redirect URI is at most {MAX_REDIRECT_URI_LENGTH} characters")
    if _URI_CHARS_RE.fullmatch(uri) is None:
        raise ValueError(
            f"redirect URI {uri!r} must be printable ASCII without spaces "
            "(percent-encode anything else)"
        )
    scheme, colon, rest = uri.partition(":")
    if not colon or _SCHEME_RE.fullmatch(scheme) is None or not rest:
        raise ValueError(f"redirect URI {uri!r} is not an absolute URI (scheme:...)")
    if "#" in uri:
        raise ValueError(f"redirect URI {uri!r} must not have a fragment (RFC 6749 3.1.2)")
    parts = urlsplit(uri)
    if "@" in parts.netloc:
        raise ValueError(f"redirect URI {uri!r} must not carry userinfo (user@host)")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError:
        raise ValueError(f"redirect URI {uri!r} has an invalid port") from None
    scheme = scheme.lower()
    if scheme in ("https", "http"):
        if not rest.startswith("//") or not parts.hostname:
            raise ValueError(f"redirect URI {uri!r} has no host")
        if scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            raise ValueError(
                f"redirect URI {uri!r} uses http on a host other than a loopback address: "
                "use https, or http://127.0.0.1, http://[::1] or http://localhost "
                "for a native app"
            )
        return uri
    if "." not in scheme:
        raise ValueError(
            f"redirect URI {uri!r} must use https, http on a loopback host, or a private-use "
            "scheme with a dot such as com.example.app:/callback (RFC 8252 7.1)"
        )
    return uri


@dataclass(frozen=True, slots=True)
class IssuedClient:
    """A client just registered or given a new secret; ``secret`` is shown this once only.

    ``secret`` is ``None`` for a public app, which has none.
    """

    client: Client
    secret: str | None

    def __repr__(self) -> str:
        secret = "None" if self.secret is None else "<redacted>"
        return f"IssuedClient(client={self.client!r}, secret={secret})"


class Clients:
    """Register OAuth2 clients and apps, manage their secrets, authenticate them.

    Reached as ``authenticator.clients``.
    """

    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator

    # -- validation ------------------------------------------------------------------

    def _check_name(self, name: str) -> None:
        if keys._NAME_RE.fullmatch(name) is None or not name.strip():
            raise ValueError("a client name is 1-200 printable characters")

    def _check_scopes(self, scopes: Iterable[str]) -> frozenset[str]:
        wanted = frozenset(scopes)
        unknown = wanted - self._auth.policy.all_scopes
        if unknown:
            raise ValueError(f"unknown scope(s): {', '.join(sorted(unknown))}")
        return wanted

    # -- registration ---------------------------------------------------------------

    def _new_secret(self, client_id: str | None = None) -> tuple[str, keys.ParsedKey]:
        return keys.generate(self._auth.settings.client_secret_prefix, client_id)

    def create_client(
        self,
        name: str,
        *,
        team: str,
        scopes: Iterable[str] = (),
        roles: Iterable[str] = (),
    ) -> IssuedClient:
        """Register a machine-to-machine client of ``team`` and return it with its secret.

        Its tokens carry exactly ``scopes`` and ``roles`` (none by default), and
        reach only resources of ``team``. Raises ``ValueError`` for bad input.
        """
        self._check_name(name)
        if keys._TEAM_RE.fullmatch(team) is None:
            raise ValueError("a team name is 1-150 letters, digits or _.:-")
        granted = self._check_scopes(scopes)
        wanted_roles = self._auth.policy.check_roles(roles)
        value, parsed = self._new_secret()
        client = Client(
            id=parsed.key_id,
            name=name,
            kind="client",
            team=team,
            scopes=granted,
            roles=wanted_roles,
            redirect_uris=(),
            public=False,
            first_party=False,
            created_at=datetime.now(UTC),
            secret_hash=keys.hash_secret(parsed),
        )
        return IssuedClient(self._auth.store.add_client(client), value)

    def create_app(
        self,
        name: str,
        *,
        redirect_uris: Iterable[str],
        scopes: Iterable[str] = (),
        public: bool = False,
        first_party: bool = False,
    ) -> IssuedClient:
        """Register an app acting for users; return it with its secret (``None`` if public).

        ``scopes`` are the scopes the app may ask users for. ``redirect_uris``
        (1 to 10, see :func:`check_redirect_uri`) are kept exactly as given, in
        order. ``first_party`` allows the password grant: only for an app the
        deployment itself ships. Raises ``ValueError`` for bad input.
        """
        self._check_name(name)
        if isinstance(redirect_uris, str):
            raise ValueError("redirect_uris is a list of URIs, not one string")
        uris = tuple(redirect_uris)
        if not uris:
            raise ValueError("an app needs at least one redirect URI")
        if len(uris) > MAX_REDIRECT_URIS:
            raise ValueError(f"an app has at most {MAX_REDIRECT_URIS} redirect URIs")
        if len(set(uris)) != len(uris):
            raise ValueError("a redirect URI is listed twice")
        for uri in uris:
            check_redirect_uri(uri)
        allowed = self._check_scopes(scopes)
        value: str | None = None
        if public:
            client_id, secret_hash = self._new_secret()[1].key_id, None
        else:
            value, parsed = self._new_secret()
            client_id, secret_hash = parsed.key_id, keys.hash_secret(parsed)
        app = Client(
            id=client_id,
            name=name,
            kind="app",
            team=None,
            scopes=allowed,
            roles=frozenset(),
            redirect_uris=uris,
            public=public,
            first_party=first_party,
            created_at=datetime.now(UTC),
            secret_hash=secret_hash,
        )
        return IssuedClient(self._auth.store.add_client(app), value)

    # -- reading ------------------------------------------------------------------------

    def get(self, client_id: str) -> Client:
        """Return a client or app; :class:`~authmw.store.NotFound` if there is none."""
        client = self._auth.store.get_client(client_id)
        if client is None:
            raise NotFound(f"no client with id {client_id!r}")
        return client

    def list(self, *, kind: str | None = None) -> list[Client]:
        """Return clients and apps (or one ``kind`` of them), by name."""
        if kind is not None and kind not in KINDS:
            raise ValueError("kind is 'client' or 'app'")
        return list(self._auth.store.list_clients(kind=kind))

    # -- changes --------------------------------------------------------------------------

    def disable(self, client_id: str) -> Client:
        """Disable a client or app: its secret stops authenticating, its tokens stop working.

        Every access token issued to it ends at once: its client-credentials
        tokens and the tokens it holds for users alike (cached verifications are
        dropped here and, with a shared bus, on every instance). Its refresh
        tokens and the codes it has not exchanged are refused too. All of them
        stay dead if it is enabled again (see :meth:`enable`).
        """
        client = self._auth.store.update_client(client_id, disabled=True)
        # "subject" too: a client's own tokens have it as their subject, and an
        # instance of an earlier release, during a rolling upgrade, knows only that.
        self._auth.invalidate(subject=client_id, client_id=client_id)
        return client

    def enable(self, client_id: str) -> Client:
        """Re-enable a disabled client or app: it authenticates again and gets new tokens.

        What was issued to it before it was disabled stays dead, as a user's tokens
        do when the user is enabled again: a client disabled because its secret
        leaked comes back with none of the tokens the leak may have given away.
        The line is drawn now (``Client.reenabled_at``), not at the disable, so it
        takes also what a request under way at the disable went on to issue.
        Enabling a client that is not disabled changes nothing.
        """
        now = datetime.now(UTC)
        client = self._auth.store.reenable_client(client_id, now)
        if client.reenabled_at != now:
            return client  # it was not disabled (or another enable came first)
        # The disabled record is remembered for token checks: forget it here and,
        # with a shared bus, on every instance.
        self._auth.invalidate(subject=client_id, client_id=client_id)
        return client

    def rotate_secret(self, client_id: str, *, grace: timedelta = timedelta(0)) -> IssuedClient:
        """Give a client or confidential app a new secret; return it (shown this once).

        The old secret keeps working for ``grace`` (zero: it stops now), so the
        client can switch over without downtime. A secret still in an earlier
        grace period stops now: at most two secrets work at any time. Public
        apps have no secret (``ValueError``).
        """
        if grace < timedelta(0):
            raise ValueError("grace must not be negative")
        current = self.get(client_id)
        if current.public or current.secret_hash is None:
            raise ValueError(f"app {client_id!r} is public: it has no secret to rotate")
        value, parsed = self._new_secret(current.id)
        new_hash = keys.hash_secret(parsed)
        if grace > timedelta(0):
            client = self._auth.store.update_client(
                client_id,
                secret_hash=new_hash,
                previous_secret_hash=current.secret_hash,
                previous_secret_expires_at=datetime.now(UTC) + grace,
            )
        else:
            client = self._auth.store.update_client(
                client_id, secret_hash=new_hash, clear_previous=True
            )
        return IssuedClient(client, value)

    # -- authentication ----------------------------------------------------------------

    def authenticate(self, client_id: str, secret: str) -> Client | None:
        """Return the client if ``secret`` is its secret and it is enabled, else ``None``.

        The secret must be the client's current one, or its previous one within
        the rotation grace. Unknown ids, malformed or wrong secrets, a secret
        of another client, disabled clients and public apps all get ``None``.
        An unknown id costs the same hash and comparisons as a wrong secret,
        so timing does not tell them apart.
        """
        try:
            parsed = keys.parse(secret, self._auth.settings.client_secret_prefix)
        except InvalidToken:
            return None  # malformed: answered without touching the store
        if parsed.key_id != client_id:
            return None  # a secret names its client: this one belongs to another
        presented = keys.hash_secret(parsed)
        client = self._auth.store.get_client(client_id)
        now = datetime.now(UTC)
        current_hash = previous_hash = keys.DUMMY_HASH
        previous_valid = False
        if client is not None:
            current_hash = client.secret_hash or keys.DUMMY_HASH
            if client.previous_secret_hash is not None:
                previous_hash = client.previous_secret_hash
                expires = client.previous_secret_expires_at
                previous_valid = expires is not None and now < expires
        # Both comparisons always run, each in constant time.
        current_ok = hmac.compare_digest(current_hash, presented)
        previous_ok = hmac.compare_digest(previous_hash, presented) and previous_valid
        if client is None or client.disabled or client.public or client.secret_hash is None:
            return None
        return client if current_ok or previous_ok else None
