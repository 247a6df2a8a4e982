"""authmw.addresses: X-Forwarded-For is believed only from trusted proxies."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authmw import Settings
from authmw.addresses import client_address, parse_trusted_proxies
from authmw.config import trusted_proxies
from tests.conftest import AuthenticatorFactory

PROXIES = parse_trusted_proxies(["10.0.0.0/8", "::1", "fd00::/8"])


# -- parse_trusted_proxies ---------------------------------------------------------------


def test_parse_addresses_and_networks() -> None:
    assert parse_trusted_proxies(["10.0.0.0/8", " 127.0.0.1 ", "::1", "fd00::/8"]) == (
        IPv4Network("10.0.0.0/8"),
        IPv4Network("127.0.0.1/32"),
        IPv6Network("::1/128"),
        IPv6Network("fd00::/8"),
    )
    assert parse_trusted_proxies([]) == ()


def test_parse_unmaps_ipv4_mapped_entries() -> None:
    assert parse_trusted_proxies(["::ffff:10.0.0.1", "::ffff:10.0.0.0/104"]) == (
        IPv4Network("10.0.0.1/32"),
        IPv4Network("10.0.0.0/8"),
    )


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "1",
        "10.0.0.256",
        "10.0.0.0/33",
        # Host bits set: the host or the network? Refused rather than guessed.
        "10.0.0.1/8",
        "fe80::1%eth0",
        "10.0.0.1:8080",
        "[::1]",
        "010.0.0.1",
    ],
)
def test_parse_refuses_garbage(value: str) -> None:
    with pytest.raises(ValueError, match="trusted proxy"):
        parse_trusted_proxies([value])


def test_parse_refuses_one_string_and_non_strings() -> None:
    # Iterating "10.0.0.1" would otherwise parse one entry per character.
    with pytest.raises(TypeError, match="not one string"):
        parse_trusted_proxies("10.0.0.1")
    # ip_network() would take the integer as an address.
    with pytest.raises(TypeError, match="int"):
        parse_trusted_proxies([167772161])  # type: ignore[list-item]


# -- client_address ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        # Not behind a trusted proxy: the header is whatever the client wrote.
        ("203.0.113.7", "198.51.100.1", "203.0.113.7"),
        ("203.0.113.7", None, "203.0.113.7"),
        # Behind one: the rightmost address a trusted proxy did not add.
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "1.1.1.1, 198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "1.1.1.1, 198.51.100.1, 10.0.0.9", "198.51.100.1"),
        ("::1", "1.1.1.1,198.51.100.1,\t10.1.2.3 ,10.0.0.9", "198.51.100.1"),
        # A client forging a trusted address on the left gains nothing.
        ("10.0.0.2", "10.0.0.5, 198.51.100.1", "198.51.100.1"),
        # Every hop trusted: the leftmost is the best known.
        ("10.0.0.2", "10.0.0.3, 10.0.0.4", "10.0.0.3"),
        # A trusted peer without the header is the client itself.
        ("10.0.0.2", None, "10.0.0.2"),
        ("10.0.0.2", "", "10.0.0.2"),
        # A malformed entry stops the walk at the last trusted hop.
        ("10.0.0.2", "198.51.100.1, garbage", "10.0.0.2"),
        ("10.0.0.2", "198.51.100.1, unknown, 10.0.0.4", "10.0.0.4"),
        ("10.0.0.2", "198.51.100.1,,10.0.0.4", "10.0.0.4"),
        ("10.0.0.2", "198.51.100.1:4711", "10.0.0.2"),
        ("10.0.0.2", "fe80::1%eth0\r\nX: y", "10.0.0.2"),
        # IPv6, and IPv4-mapped IPv6 as one address.
        ("10.0.0.2", "2001:db8::1", "2001:db8::1"),
        ("10.0.0.2", "2001:DB8:0::1", "2001:db8::1"),
        ("::ffff:10.0.0.2", "::ffff:198.51.100.1", "198.51.100.1"),
        ("::ffff:203.0.113.7", None, "203.0.113.7"),
        ("fd00::1", "198.51.100.1", "198.51.100.1"),
        # A peer that is not an IP address (a Unix socket) or no peer at all.
        ("", "198.51.100.1", None),
        ("unix:/run/app.sock", "198.51.100.1", None),
        (None, "198.51.100.1", None),
        # A zone identifier is dropped with the rest of the peer's oddities.
        ("fe80::1%eth0", None, None),
    ],
)
def test_client_address(peer: str | None, forwarded_for: str | None, expected: str | None) -> None:
    assert client_address(peer, forwarded_for, PROXIES) == expected


def test_no_trusted_proxies_means_the_peer() -> None:
    assert client_address("10.0.0.2", "198.51.100.1", ()) == "10.0.0.2"


def test_ipv4_peer_is_not_in_an_ipv6_network() -> None:
    trusted = parse_trusted_proxies(["::/0"])
    assert client_address("10.0.0.2", "198.51.100.1", trusted) == "10.0.0.2"
    assert client_address("2001:db8::2", "198.51.100.1", trusted) == "198.51.100.1"


def canonical(value: str) -> bool:
    return str(ip_address(value)) == value


hosts = st.one_of(
    st.ip_addresses().map(str),
    st.sampled_from(["10.0.0.1", "::1", "::ffff:10.0.0.3", "fd00::5", "garbage", ""]),
    st.text(max_size=20),
)
headers = st.one_of(
    st.none(),
    st.text(max_size=60),
    st.lists(hosts, max_size=6).map(",".join),
    st.lists(hosts, max_size=6).map(" , ".join),
)


@given(st.one_of(st.none(), hosts), headers)
def test_fuzz_never_raises_and_returns_an_ip(peer: str | None, forwarded_for: str | None) -> None:
    for trusted in (PROXIES, ()):
        result = client_address(peer, forwarded_for, trusted)
        assert result is None or canonical(result)
        if peer is None:
            assert result is None


@given(st.ip_addresses().map(str), headers)
def test_fuzz_untrusted_peer_wins(peer: str, forwarded_for: str | None) -> None:
    expected = ip_address(peer)
    if isinstance(expected, IPv6Address) and expected.ipv4_mapped is not None:
        expected = expected.ipv4_mapped
    assert client_address(peer, forwarded_for, ()) == str(expected)


# -- Settings and the environment --------------------------------------------------------


def test_settings_validate_trusted_proxies() -> None:
    assert Settings().trusted_proxies == ()
    assert Settings(trusted_proxies=("10.0.0.0/8", "::1")).trusted_proxies == ("10.0.0.0/8", "::1")
    with pytest.raises(ValueError, match="trusted proxy"):
        Settings(trusted_proxies=("10.0.0.0/8", "proxy.internal"))


def test_trusted_proxies_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTHMW_TRUSTED_PROXIES", raising=False)
    assert trusted_proxies() == ()
    monkeypatch.setenv("AUTHMW_TRUSTED_PROXIES", " 10.0.0.0/8, ,::1 ")
    assert trusted_proxies() == ("10.0.0.0/8", "::1")
    assert trusted_proxies("127.0.0.1") == ("127.0.0.1",)
    monkeypatch.setenv("AUTHMW_TRUSTED_PROXIES", "10.0.0.0/8,nope")
    with pytest.raises(ValueError, match="nope"):
        trusted_proxies()


def test_the_authenticator_believes_forwarded_addresses_from_its_trusted_proxies_only(
    make_authenticator: AuthenticatorFactory,
) -> None:
    auth = make_authenticator(settings=Settings(trusted_proxies=("10.0.0.0/8",)))
    assert auth.client_address("10.1.2.3", "203.0.113.5") == "203.0.113.5"
    assert auth.client_address("192.0.2.9", "203.0.113.5") == "192.0.2.9"
    assert auth.client_address("10.1.2.3", None) == "10.1.2.3"
    assert auth.client_address(None, "203.0.113.5") is None
    # By default no proxy is trusted: the peer is the client.
    assert make_authenticator().client_address("127.0.0.1", "203.0.113.5") == "127.0.0.1"
