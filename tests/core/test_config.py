"""authmw.config: settings, and configuration from the environment."""

from __future__ import annotations

import dataclasses
import stat
import sys
from pathlib import Path

import pytest

from authmw import Authenticator, Policy, Settings
from authmw.config import (
    DEFAULT_DATABASE_URL,
    database_url,
    load_policy,
    secret_file_for,
    secret_keys,
)
from authmw.credentials import Credential
from authmw.errors import InvalidToken, MissingCredentials
from authmw.policy import Role
from tests.conftest import AuthenticatorFactory

ENV = ("AUTHMW_DATABASE_URL", "AUTHMW_SECRET_KEY", "AUTHMW_POLICY")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from an environment without authmw's variables."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


# -- Settings ------------------------------------------------------------------------------


def test_settings_defaults() -> None:
    settings = Settings()
    assert settings.key_prefix == "amk"
    assert settings.cache_ttl == 5.0
    assert settings.cache_size == 10_000
    assert settings.realm == "api"
    assert settings.usage_flush_interval == 30.0
    assert settings.secret_keys == ()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key_prefix": "AMK"}, "prefix"),
        ({"cache_ttl": -0.1}, "cache_ttl must be a finite"),
        ({"cache_ttl": float("nan")}, "cache_ttl must be a finite"),
        ({"cache_ttl": float("inf")}, "cache_ttl must be a finite"),
        ({"cache_size": -1}, "not negative"),
        ({"usage_flush_interval": 0}, "positive"),
        ({"usage_flush_interval": float("nan")}, "positive"),
        ({"realm": 'a"b'}, "realm"),
        ({"realm": "a\\b"}, "realm"),
        ({"realm": "\u65e5\u672c"}, "realm"),
        ({"realm": "api\r\nSet-Cookie: x=y"}, "realm"),
        ({"realm": "tab\there"}, "realm"),
        # Every key, not only the newest: an old one still verifies tokens.
        ({"secret_keys": ("k" * 31,)}, "each signing key needs at least 32 characters"),
        ({"secret_keys": ("k" * 32, "short")}, "each signing key needs at least 32"),
    ],
)
def test_settings_are_validated(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings(**kwargs)  # type: ignore[arg-type]


def test_any_accepted_realm_can_be_sent() -> None:
    for realm in ("api", "Billing API v2", "", "a-b_c.d:e/f"):
        challenge = MissingCredentials().www_authenticate(Settings(realm=realm).realm)
        challenge.encode("latin-1")
        assert "\r" not in challenge
        assert "\n" not in challenge


def test_settings_are_frozen_and_hide_secret_keys() -> None:
    settings = Settings(secret_keys=("topsecretvalue" * 3,))
    assert "topsecretvalue" not in repr(settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.cache_ttl = 0  # type: ignore[misc]


def test_key_prefix_reaches_key_generation(make_authenticator: AuthenticatorFactory) -> None:
    acme = make_authenticator(settings=Settings(key_prefix="acme"))
    issued = acme.keys.create(name="k", owner="admin")
    assert issued.key.startswith("acme_")
    assert acme.authenticate(Credential("apikey", issued.key)) is not None
    # A key of another deployment's prefix is refused outright.
    other = make_authenticator()
    with pytest.raises(InvalidToken):
        acme.authenticate(Credential("apikey", other.keys.create(name="k", owner="admin").key))


# -- the environment ------------------------------------------------------------------------


def test_database_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    assert database_url() == DEFAULT_DATABASE_URL == "sqlite:///authmw.db"
    monkeypatch.setenv("AUTHMW_DATABASE_URL", "sqlite:///from-env.db")
    assert database_url() == "sqlite:///from-env.db"
    assert database_url("sqlite:///given.db") == "sqlite:///given.db"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///authmw.db", Path("authmw.db.secret")),
        ("sqlite:///data/auth.sqlite", Path("data/auth.sqlite.secret")),
        ("sqlite:////var/lib/authmw.db", Path("/var/lib/authmw.db.secret")),
        ("sqlite+pysqlite:///authmw.db", Path("authmw.db.secret")),
        ("sqlite:///authmw.db?mode=ro", Path("authmw.db.secret")),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        # A file: URI is SQLite's to resolve; its "name" is no path to put a file beside.
        ("sqlite:///file:authmw.db?uri=true", None),
        ("postgresql+psycopg://db/authmw", None),
        ("not a url", None),
    ],
)
def test_secret_file_sits_beside_a_sqlite_file(url: str, expected: Path | None) -> None:
    assert secret_file_for(url) == expected


def test_secret_keys_from_the_environment_newest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHMW_SECRET_KEY", " newest , older,, oldest ")
    assert secret_keys("sqlite://") == ("newest", "older", "oldest")


def test_secret_file_is_created_on_request_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'authmw.db'}"
    path = tmp_path / "authmw.db.secret"
    assert secret_keys(url) == ()
    assert not path.exists()
    created = secret_keys(url, create=True)
    assert len(created) == 1
    assert len(created[0]) >= 43  # 32 random bytes, URL-safe base64
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Later calls read the same key back; they never replace it.
    assert secret_keys(url) == created
    assert secret_keys(url, create=True) == created


def test_environment_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'authmw.db'}"
    secret_keys(url, create=True)
    monkeypatch.setenv("AUTHMW_SECRET_KEY", "from-env")
    assert secret_keys(url) == ("from-env",)


def test_secret_file_lists_keys_newest_first(tmp_path: Path) -> None:
    (tmp_path / "authmw.db.secret").write_text("new,old\n")
    assert secret_keys(f"sqlite:///{tmp_path / 'authmw.db'}") == ("new", "old")


# -- the policy ------------------------------------------------------------------------------


@pytest.fixture
def policy_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An importable module holding policies the way an application would."""
    name = "authmw_test_policies"
    (tmp_path / f"{name}.py").write_text(
        "from authmw import Policy, Role\n"
        "POLICY = Policy({'reader': Role.of(scopes=['read'])}, api_keys='inherit')\n"
        "def make():\n"
        "    return Policy({'writer': Role.of(scopes=['write'])})\n"
        "NOT_A_POLICY = 42\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name


def test_default_policy_is_the_demo_one() -> None:
    policy = load_policy()
    assert policy.top_roles == {"admin"}
    assert policy.all_roles == Policy.default().all_roles


def test_policy_from_the_environment(policy_module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHMW_POLICY", f"{policy_module}:POLICY")
    policy = load_policy()
    assert policy.all_roles == {"reader"}
    assert policy.api_keys == "inherit"
    assert load_policy(f"{policy_module}:make").all_roles == {"writer"}


def test_bad_policy_specs(policy_module: str) -> None:
    with pytest.raises(ValueError, match="module:attribute"):
        load_policy(policy_module)
    for spec, problem in [
        (f"{policy_module}:NOT_A_POLICY", "int, not an authmw Policy"),
        (f"{policy_module}:MISSING", f"module '{policy_module}' has no 'MISSING'"),
        ("authmw_no_such_module:POLICY", "no module named 'authmw_no_such_module'"),
        (f"{policy_module}.sub:POLICY", f"no module named '{policy_module}.sub'"),
    ]:
        with pytest.raises(ValueError) as caught:  # noqa: PT011 - the message is checked below
            load_policy(spec)
        assert str(caught.value) == f"AUTHMW_POLICY = {spec!r}: {problem}"
        assert caught.value.__cause__ is None  # importlib's traceback would say nothing more
    with pytest.raises(TypeError):  # as before: the Django plugin tells a bad factory by it
        load_policy(f"{policy_module}:NOT_A_POLICY")


def test_a_policy_path_is_written_either_way(policy_module: str) -> None:
    assert load_policy(f"{policy_module}.POLICY") == load_policy(f"{policy_module}:POLICY")


def test_policy_module_whose_own_import_fails_keeps_the_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "authmw_test_broken_policy.py").write_text("import authmw_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="importing 'authmw_test_broken_policy' failed") as caught:
        load_policy("authmw_test_broken_policy:POLICY")
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)
    assert caught.value.__cause__.name == "authmw_no_such_dependency"


def test_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy_module: str) -> None:
    url = f"sqlite:///{tmp_path / 'authmw.db'}"
    monkeypatch.setenv("AUTHMW_DATABASE_URL", url)
    monkeypatch.setenv("AUTHMW_POLICY", f"{policy_module}:POLICY")
    auth = Authenticator.from_env(create_secret=True)
    try:
        assert auth.settings.secret_keys == secret_keys(url)
        assert len(auth.settings.secret_keys) == 1
        assert auth.policy.all_roles == {"reader"}
        assert (tmp_path / "authmw.db.secret").exists()
    finally:
        auth.close()


def test_role_is_exported_for_policies() -> None:
    assert Role.of(scopes=["x"]).scopes == {"x"}


def test_cache_ttl_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from authmw.config import DEFAULT_CACHE_TTL, cache_ttl  # noqa: PLC0415 - the unit under test

    monkeypatch.delenv("AUTHMW_CACHE_TTL", raising=False)
    assert cache_ttl() == DEFAULT_CACHE_TTL == Settings().cache_ttl
    monkeypatch.setenv("AUTHMW_CACHE_TTL", "0.5")
    assert cache_ttl() == 0.5
    for bad in ("-1", "nan", "inf", "soon"):
        with pytest.raises(ValueError, match=f"^AUTHMW_CACHE_TTL is .*{bad!r}$"):
            cache_ttl(bad)
