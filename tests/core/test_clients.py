"""authmw.clients: registering OAuth2 clients and apps, their secrets, client authentication."""

from __future__ import annotations

import hmac
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from authmw import Authenticator, NotFound, Settings
from authmw import keys as keys_module
from authmw.clients import Clients, IssuedClient, check_redirect_uri
from authmw.principal import Principal
from authmw.store.sql import SQLStore
from tests.conftest import AuthenticatorFactory

SECRET_RE = re.compile(r"\Aamcs_[A-Za-z0-9]{12}_[A-Za-z0-9]{38}\Z")
CB = "https://app.example/callback"


def make_client(auth: Authenticator, **kwargs: Any) -> IssuedClient:
    kwargs.setdefault("team", "blue")
    return auth.clients.create_client(kwargs.pop("name", "billing"), **kwargs)


def make_app(auth: Authenticator, **kwargs: Any) -> IssuedClient:
    kwargs.setdefault("redirect_uris", [CB])
    return auth.clients.create_app(kwargs.pop("name", "calendar"), **kwargs)


def secret_of(issued: IssuedClient) -> str:
    assert issued.secret is not None
    return issued.secret


# -- the secret format ---------------------------------------------------------------------


def test_the_authenticator_has_a_client_registry(authenticator: Authenticator) -> None:
    assert isinstance(authenticator.clients, Clients)


def test_client_secret_has_the_api_key_format_with_its_own_prefix(
    authenticator: Authenticator,
) -> None:
    issued = make_client(authenticator)
    secret = secret_of(issued)
    assert SECRET_RE.match(secret)
    parsed = keys_module.parse(secret, "amcs")
    assert parsed.key_id == issued.client.id
    assert len(issued.client.id) == 12
    stored = authenticator.store.get_client(issued.client.id)
    assert stored is not None
    # The store holds the API-key hash of the secret, never the secret.
    assert stored.secret_hash == keys_module.hash_secret(parsed)
    assert parsed.secret not in repr(stored)
    assert parsed.secret not in (stored.secret_hash or "")


def test_custom_client_secret_prefix(make_authenticator: AuthenticatorFactory) -> None:
    auth = make_authenticator(settings=Settings(client_secret_prefix="acme"), seed=False)
    issued = make_client(auth)
    assert secret_of(issued).startswith(f"acme_{issued.client.id}_")
    assert auth.clients.authenticate(issued.client.id, secret_of(issued)) == issued.client
    relabelled = "amcs" + secret_of(issued).removeprefix("acme")
    assert auth.clients.authenticate(issued.client.id, relabelled) is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"client_secret_prefix": "Bad"}, "prefix"),
        ({"client_secret_prefix": "a"}, "prefix"),
        ({"client_secret_prefix": "amk"}, "differ"),
        ({"key_prefix": "amcs"}, "differ"),
    ],
)
def test_bad_client_secret_prefix(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings(**changes)


def test_generate_for_a_given_id_keeps_the_id() -> None:
    value, parsed = keys_module.generate("amcs", "AbCdEf123456")
    assert parsed.key_id == "AbCdEf123456"
    assert value.startswith("amcs_AbCdEf123456_")
    assert keys_module.parse(value, "amcs") == parsed
    other, again = keys_module.generate("amcs", "AbCdEf123456")
    assert again.secret != parsed.secret
    assert other != value


@pytest.mark.parametrize("key_id", ["", "short", "AbCdEf1234567", "AbCdEf12345_", "AbCdEf12345é"])
def test_generate_refuses_a_malformed_id(key_id: str) -> None:
    with pytest.raises(ValueError, match="key id"):
        keys_module.generate("amcs", key_id)


def test_issued_client_repr_hides_the_secret(authenticator: Authenticator) -> None:
    issued = make_client(authenticator)
    assert secret_of(issued) not in repr(issued)
    assert "<redacted>" in repr(issued)
    assert "v1$" not in repr(issued)
    public = make_app(authenticator, public=True)
    assert "secret=None" in repr(public)


# -- registering clients ---------------------------------------------------------------------


def test_create_client(authenticator: Authenticator) -> None:
    issued = make_client(
        authenticator,
        name="Billing sync",
        team="blue",
        scopes=["reports:read", "appointments:read"],
        roles=["employee"],
    )
    client = issued.client
    assert client.kind == "client"
    assert client.name == "Billing sync"
    assert client.team == "blue"
    assert client.scopes == {"reports:read", "appointments:read"}
    assert client.roles == {"employee"}
    assert (client.redirect_uris, client.public, client.first_party) == ((), False, False)
    assert not client.disabled
    assert client.created_at.tzinfo == UTC
    assert authenticator.clients.get(client.id) == client
    bare = make_client(authenticator, name="bare")
    assert (bare.client.scopes, bare.client.roles) == (frozenset(), frozenset())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "client name"),
        ({"name": "   "}, "client name"),
        ({"name": "x" * 201}, "client name"),
        ({"name": "new\nline"}, "client name"),
        ({"team": ""}, "team name"),
        ({"team": "no spaces"}, "team name"),
        ({"scopes": ["root"]}, r"unknown scope\(s\): root"),
        ({"roles": ["boss"]}, r"unknown role\(s\): boss"),
    ],
)
def test_create_client_validates_its_input(
    authenticator: Authenticator, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_client(authenticator, **kwargs)
    assert authenticator.clients.list() == []


# -- registering apps ---------------------------------------------------------------------


def test_create_confidential_app(authenticator: Authenticator) -> None:
    uris = ["https://b.example/cb?x=1", "http://127.0.0.1:8400/cb", "com.example.app:/cb"]
    issued = make_app(authenticator, redirect_uris=uris, scopes=["appointments:read"])
    app = issued.client
    assert app.kind == "app"
    assert app.team is None
    assert app.roles == frozenset()
    assert app.redirect_uris == tuple(uris)  # exactly as given, in order
    assert app.scopes == {"appointments:read"}
    assert (app.public, app.first_party) == (False, False)
    assert SECRET_RE.match(secret_of(issued))
    assert authenticator.clients.authenticate(app.id, secret_of(issued)) == app


def test_create_public_first_party_app(authenticator: Authenticator) -> None:
    issued = make_app(authenticator, public=True, first_party=True)
    assert issued.secret is None
    assert issued.client.public
    assert issued.client.first_party
    assert issued.client.secret_hash is None
    stored = authenticator.clients.get(issued.client.id)
    assert stored.secret_hash is None
    assert re.fullmatch(r"[A-Za-z0-9]{12}", stored.id)


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example/callback",
        "https://app.example",
        "https://app.example:8443/cb?tenant=1",
        "HTTPS://App.Example/CB",
        "http://127.0.0.1/cb",
        "http://127.0.0.1:51004/oauth/cb",
        "http://[::1]:8080/cb",
        "http://localhost:3000/cb",
        "com.example.app:/oauth2redirect",
        "com.example.app:/",
        "net.example.native://callback",
    ],
)
def test_allowed_redirect_uris(uri: str) -> None:
    assert check_redirect_uri(uri) == uri


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("http://app.example/cb", "http on a host other than a loopback"),
        ("http://127.0.0.2/cb", "http on a host other than a loopback"),
        ("http://localhost.evil.example/cb", "http on a host other than a loopback"),
        ("http://10.0.0.1/cb", "http on a host other than a loopback"),
        ("https://app.example/cb#top", "fragment"),
        ("https://app.example/cb#", "fragment"),
        ("com.example.app:/cb#x", "fragment"),
        ("https://user@app.example/cb", "userinfo"),
        ("https://app.example@evil.example/cb", "userinfo"),
        ("http://user:pw@127.0.0.1/cb", "userinfo"),
        ("/relative/cb", "absolute URI"),
        ("app.example/cb", "absolute URI"),
        ("", "printable ASCII"),
        ("https://app.example/c b", "printable ASCII"),
        ("https://app.example/cb\n", "printable ASCII"),
        ("https://app.exämple/cb", "printable ASCII"),
        ("https:", "absolute URI"),
        ("https:///cb", "no host"),
        ("https:app.example/cb", "no host"),
        ("https://app.example:99999/cb", "invalid port"),
        ("https://app.example:port/cb", "invalid port"),
        ("myapp:/cb", "private-use scheme with a dot"),
        ("javascript:alert(1)", "private-use scheme with a dot"),
        ("data:text/html,hi", "private-use scheme with a dot"),
        ("file:///etc/passwd", "private-use scheme with a dot"),
        ("ftp://app.example/cb", "private-use scheme with a dot"),
        ("1com.example:/cb", "absolute URI"),
        ("https://app.example/" + "x" * 2000, "at most 2000"),
    ],
)
def test_refused_redirect_uris(authenticator: Authenticator, uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        check_redirect_uri(uri)
    with pytest.raises(ValueError, match=re.escape(message)):
        make_app(authenticator, redirect_uris=[CB, uri])
    assert authenticator.clients.list() == []


def test_redirect_uri_length_limit_is_inclusive() -> None:
    uri = "https://app.example/" + "x" * (2000 - len("https://app.example/"))
    assert len(uri) == 2000
    assert check_redirect_uri(uri) == uri


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"redirect_uris": []}, "at least one redirect URI"),
        ({"redirect_uris": [f"https://a.example/{i}" for i in range(11)]}, "at most 10"),
        ({"redirect_uris": [CB, CB]}, "listed twice"),
        ({"redirect_uris": CB}, "not one string"),
        ({"scopes": ["root"]}, r"unknown scope\(s\): root"),
        ({"name": ""}, "client name"),
    ],
)
def test_create_app_validates_its_input(
    authenticator: Authenticator, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_app(authenticator, **kwargs)
    assert authenticator.clients.list() == []


def test_ten_redirect_uris_are_allowed(authenticator: Authenticator) -> None:
    uris = [f"https://a.example/{i}" for i in range(10)]
    assert make_app(authenticator, redirect_uris=uris).client.redirect_uris == tuple(uris)


# -- reading -------------------------------------------------------------------------------


def test_get_and_list(authenticator: Authenticator) -> None:
    z = make_client(authenticator, name="zulu").client
    a = make_app(authenticator, name="alpha").client
    m = make_client(authenticator, name="mike").client
    assert [c.id for c in authenticator.clients.list()] == [a.id, m.id, z.id]
    assert authenticator.clients.list(kind="client") == [m, z]
    assert authenticator.clients.list(kind="app") == [a]
    with pytest.raises(ValueError, match="kind"):
        authenticator.clients.list(kind="robot")
    with pytest.raises(NotFound, match="no client with id 'nosuchclient'"):
        authenticator.clients.get("nosuchclient")


# -- authentication ------------------------------------------------------------------------


def test_authenticate_accepts_only_the_right_secret(authenticator: Authenticator) -> None:
    issued = make_client(authenticator)
    client, secret = issued.client, secret_of(issued)
    other = make_client(authenticator, name="other")
    assert authenticator.clients.authenticate(client.id, secret) == client
    # Same client id, another secret (well formed, right checksum).
    forged, _ = keys_module.generate("amcs", client.id)
    assert authenticator.clients.authenticate(client.id, forged) is None
    # Another client's secret under this id, and this secret under another id.
    assert authenticator.clients.authenticate(client.id, secret_of(other)) is None
    assert authenticator.clients.authenticate(other.client.id, secret) is None
    # Unknown id with a secret that names it.
    ghost, parsed = keys_module.generate("amcs")
    assert authenticator.clients.authenticate(parsed.key_id, ghost) is None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"),  # checksum broken
        lambda s: s[:-2],  # truncated
        lambda s: s + "x",  # extended
        lambda s: s.replace("amcs_", "amk_", 1),  # an API key's prefix
        lambda s: "",
        lambda s: s.upper(),
        lambda s: " " + s,
    ],
)
def test_authenticate_refuses_malformed_secrets(authenticator: Authenticator, mangle: Any) -> None:
    issued = make_client(authenticator)
    assert authenticator.clients.authenticate(issued.client.id, mangle(secret_of(issued))) is None


def test_authenticate_refuses_disabled_clients_until_enabled(
    authenticator: Authenticator,
) -> None:
    issued = make_client(authenticator)
    disabled = authenticator.clients.disable(issued.client.id)
    assert disabled.disabled
    assert authenticator.clients.authenticate(issued.client.id, secret_of(issued)) is None
    enabled = authenticator.clients.enable(issued.client.id)
    assert not enabled.disabled
    assert authenticator.clients.authenticate(issued.client.id, secret_of(issued)) == enabled
    with pytest.raises(NotFound):
        authenticator.clients.disable("nosuchclient")
    with pytest.raises(NotFound):
        authenticator.clients.enable("nosuchclient")


def test_a_public_app_never_authenticates_with_a_secret(authenticator: Authenticator) -> None:
    app = make_app(authenticator, public=True).client
    presented, _ = keys_module.generate("amcs", app.id)
    assert authenticator.clients.authenticate(app.id, presented) is None


def test_an_unknown_client_costs_the_same_hash_and_compares(
    authenticator: Authenticator, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = make_client(authenticator)
    calls: list[str] = []
    real_hash, real_compare = keys_module.hash_secret, hmac.compare_digest

    def hash_secret(parsed: keys_module.ParsedKey) -> str:
        calls.append("hash")
        return real_hash(parsed)

    def compare_digest(a: str, b: str) -> bool:
        calls.append("compare")
        return real_compare(a, b)

    monkeypatch.setattr("authmw.keys.hash_secret", hash_secret)
    monkeypatch.setattr("hmac.compare_digest", compare_digest)
    wrong, _ = keys_module.generate("amcs", issued.client.id)
    assert authenticator.clients.authenticate(issued.client.id, wrong) is None
    wrong_calls = list(calls)
    calls.clear()
    ghost, parsed = keys_module.generate("amcs")
    assert authenticator.clients.authenticate(parsed.key_id, ghost) is None
    assert calls == wrong_calls
    assert wrong_calls.count("hash") == 1
    # The checksum, then the current and the previous secret: both always compared.
    assert wrong_calls.count("compare") == 3


def test_authenticate_never_logs_the_secret(
    authenticator: Authenticator, caplog: pytest.LogCaptureFixture
) -> None:
    issued = make_client(authenticator)
    caplog.set_level(logging.DEBUG)
    authenticator.clients.authenticate(issued.client.id, secret_of(issued))
    forged, _ = keys_module.generate("amcs", issued.client.id)
    authenticator.clients.authenticate(issued.client.id, forged)
    authenticator.clients.rotate_secret(issued.client.id)
    for text in (secret_of(issued), forged):
        assert text not in caplog.text
        assert text[-38:-6] not in caplog.text


# -- secret rotation ------------------------------------------------------------------------


def test_rotation_without_grace_stops_the_old_secret_now(authenticator: Authenticator) -> None:
    issued = make_client(authenticator)
    rotated = authenticator.clients.rotate_secret(issued.client.id)
    new = secret_of(rotated)
    assert rotated.client.id == issued.client.id
    assert new.startswith(f"amcs_{issued.client.id}_")
    assert new != secret_of(issued)
    assert rotated.client.previous_secret_hash is None
    assert authenticator.clients.authenticate(issued.client.id, new) == rotated.client
    assert authenticator.clients.authenticate(issued.client.id, secret_of(issued)) is None


def test_rotation_with_grace_keeps_both_secrets_working(authenticator: Authenticator) -> None:
    issued = make_app(authenticator)
    before = datetime.now(UTC)
    rotated = authenticator.clients.rotate_secret(issued.client.id, grace=timedelta(hours=1))
    until = rotated.client.previous_secret_expires_at
    assert until is not None
    assert before + timedelta(hours=1) <= until <= datetime.now(UTC) + timedelta(hours=1)
    assert rotated.client.previous_secret_hash == issued.client.secret_hash
    client_id = issued.client.id
    assert authenticator.clients.authenticate(client_id, secret_of(issued)) is not None
    assert authenticator.clients.authenticate(client_id, secret_of(rotated)) is not None
    # Once the grace has passed (moved into the past here), only the new secret works.
    authenticator.store.update_client(
        client_id, previous_secret_expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    assert authenticator.clients.authenticate(client_id, secret_of(issued)) is None
    assert authenticator.clients.authenticate(client_id, secret_of(rotated)) is not None


def test_a_second_rotation_stops_the_first_secret(authenticator: Authenticator) -> None:
    first = make_client(authenticator)
    client_id = first.client.id
    second = authenticator.clients.rotate_secret(client_id, grace=timedelta(hours=1))
    third = authenticator.clients.rotate_secret(client_id, grace=timedelta(hours=1))
    assert authenticator.clients.authenticate(client_id, secret_of(first)) is None
    assert authenticator.clients.authenticate(client_id, secret_of(second)) is not None
    assert authenticator.clients.authenticate(client_id, secret_of(third)) is not None
    fourth = authenticator.clients.rotate_secret(client_id)
    assert authenticator.clients.authenticate(client_id, secret_of(second)) is None
    assert authenticator.clients.authenticate(client_id, secret_of(third)) is None
    assert authenticator.clients.authenticate(client_id, secret_of(fourth)) is not None


def test_a_disabled_client_in_grace_stays_refused(authenticator: Authenticator) -> None:
    issued = make_client(authenticator)
    rotated = authenticator.clients.rotate_secret(issued.client.id, grace=timedelta(hours=1))
    authenticator.clients.disable(issued.client.id)
    for secret in (secret_of(issued), secret_of(rotated)):
        assert authenticator.clients.authenticate(issued.client.id, secret) is None


def test_rotate_secret_refusals(authenticator: Authenticator) -> None:
    public = make_app(authenticator, public=True)
    with pytest.raises(ValueError, match="public"):
        authenticator.clients.rotate_secret(public.client.id)
    assert authenticator.clients.get(public.client.id).secret_hash is None
    issued = make_client(authenticator)
    with pytest.raises(ValueError, match="negative"):
        authenticator.clients.rotate_secret(issued.client.id, grace=timedelta(seconds=-1))
    assert authenticator.clients.authenticate(issued.client.id, secret_of(issued)) is not None
    with pytest.raises(NotFound):
        authenticator.clients.rotate_secret("nosuchclient")


# -- disabling reaches the cache -----------------------------------------------------------


def test_disable_drops_the_clients_cached_principals(authenticator: Authenticator) -> None:
    client = make_client(authenticator).client
    mine = Principal(kind="client", subject=client.id, team="blue", client_id=client.id)
    others = Principal(kind="client", subject="someoneelse", team="blue")
    authenticator.cache.put("token-of-mine", mine, 0.0, 60.0)
    authenticator.cache.put("token-of-others", others, 0.0, 60.0)
    authenticator.clients.disable(client.id)
    assert authenticator.cache.get("token-of-mine", 1.0) is None
    assert authenticator.cache.get("token-of-others", 1.0) == others


# -- on each backend --------------------------------------------------------------------------


def test_client_lifecycle_on_each_backend(
    make_authenticator: AuthenticatorFactory, store_url: tuple[str, dict[str, Any]]
) -> None:
    url, options = store_url
    auth = make_authenticator(SQLStore(url, **options), seed=False)
    issued = make_client(auth, scopes=["reports:read"], roles=["employee"])
    app = make_app(auth, redirect_uris=["com.example.app:/cb", CB], first_party=True)
    assert auth.clients.list() == [issued.client, app.client]
    rotated = auth.clients.rotate_secret(issued.client.id, grace=timedelta(minutes=5))
    assert auth.clients.authenticate(issued.client.id, secret_of(issued)) == rotated.client
    assert auth.clients.authenticate(issued.client.id, secret_of(rotated)) == rotated.client
    auth.clients.disable(app.client.id)
    assert auth.clients.authenticate(app.client.id, secret_of(app)) is None
    assert auth.clients.get(app.client.id).redirect_uris == ("com.example.app:/cb", CB)
