"""``AUTHMW["AUTHENTICATOR"]`` and ``AUTHMW["POLICY"]`` as import paths, in either spelling.

Every bad value is Django's ``ImproperlyConfigured``, naming the setting and the
value, never a traceback from inside importlib.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from authmw import Authenticator, Policy, Role
from authmw_django import get_authenticator
from authmw_django.conf import get_config

HERE = __name__
#: For the import paths below: an authenticator (set per test), a policy, and factories.
MODULE_AUTH: Authenticator | None = None
POLICY = Policy({"reader": Role.of(scopes=["read"])})
NOT_EITHER = 42


def make_authenticator() -> Authenticator:
    assert MODULE_AUTH is not None
    return MODULE_AUTH


def make_policy() -> Policy:
    return POLICY


def make_nothing() -> None:
    return None


@pytest.fixture
def module_auth(auth: Authenticator) -> Iterator[Authenticator]:
    global MODULE_AUTH  # noqa: PLW0603
    MODULE_AUTH = auth
    yield auth
    MODULE_AUTH = None


@pytest.mark.parametrize("attr", ["MODULE_AUTH", "make_authenticator"])
@pytest.mark.parametrize("sep", [".", ":"])
def test_authenticator_in_either_spelling(module_auth: Authenticator, attr: str, sep: str) -> None:
    with override_settings(AUTHMW={"AUTHENTICATOR": f"{HERE}{sep}{attr}"}):
        assert get_authenticator() is module_auth


@pytest.mark.parametrize("attr", ["POLICY", "make_policy"])
@pytest.mark.parametrize("sep", [".", ":"])
def test_policy_in_either_spelling(attr: str, sep: str) -> None:
    with override_settings(AUTHMW={"DATABASE_URL": "sqlite://", "POLICY": f"{HERE}{sep}{attr}"}):
        assert get_authenticator().policy is POLICY
        # The spelling the CLI's AUTHMW_POLICY takes, for `manage.py authmw`.
        assert get_config().policy_spec == f"{HERE}:{attr}"


def resolve(setting: str, value: object) -> ImproperlyConfigured:
    options = {setting: value} if setting == "AUTHENTICATOR" else {"POLICY": value}
    with override_settings(AUTHMW=options), pytest.raises(ImproperlyConfigured) as caught:
        get_config()
    message = str(caught.value)
    assert message.startswith(f"AUTHMW[{setting!r}] = {value!r}: "), message
    return caught.value


BAD = [
    # The user's report: a colon path to a module that is not there.
    pytest.param("mysite_not_installed.pol:build", "no module named 'mysite_not_installed'"),
    pytest.param("mysite_not_installed.pol.build", "no module named 'mysite_not_installed'"),
    pytest.param(f"{HERE}_absent:make", f"no module named '{HERE}_absent'"),
    pytest.param(f"{HERE}:absent", f"module '{HERE}' has no 'absent'"),
    pytest.param(f"{HERE}.absent", f"module '{HERE}' has no 'absent'"),
    pytest.param(f"{HERE}:NOT_EITHER", "int, not an authmw"),
    pytest.param(f"{HERE}.make_nothing", "not an authmw"),
    # Not an import path at all: importlib never sees these.
    pytest.param("build", "expected an import path"),
    pytest.param("", "expected an import path"),
    pytest.param(f"{HERE}:", "expected an import path"),
    pytest.param(":make_policy", "expected an import path"),
    pytest.param(f"{HERE}:POLICY:x", "expected an import path"),
    pytest.param(f".{HERE}.POLICY", "expected an import path"),
    pytest.param(f"{HERE}..POLICY", "expected an import path"),
]


@pytest.mark.parametrize(("value", "problem"), BAD)
@pytest.mark.parametrize("setting", ["AUTHENTICATOR", "POLICY"])
def test_a_bad_import_path_is_improperly_configured(setting: str, value: str, problem: str) -> None:
    error = resolve(setting, value)
    assert problem in str(error)
    # Nothing chained: the message says it all, importlib's frames would not.
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("AUTHENTICATOR", 42),
        ("AUTHENTICATOR", POLICY),
        ("AUTHENTICATOR", make_policy),  # a factory of the wrong thing
        ("AUTHENTICATOR", f"{HERE}.make_policy"),
        ("POLICY", 3),
        ("POLICY", make_policy),  # only a path may name a factory here, as for AUTHMW_POLICY
    ],
)
def test_a_wrong_type_is_improperly_configured(setting: str, value: object) -> None:
    resolve(setting, value)


def break_a_factory() -> Policy:
    raise TypeError("a bug of the application's own")


@pytest.mark.parametrize("factory", ["make_authenticator", "break_a_factory"])
def test_a_failing_policy_factory_raises_its_own_error(factory: str) -> None:
    # The application's bug, with its traceback: not dressed up as a bad setting,
    # not even a TypeError, which a factory returning no Policy also gives inside.
    expected = AssertionError if factory == "make_authenticator" else TypeError
    options = {"POLICY": f"{HERE}:{factory}"}
    with override_settings(AUTHMW=options), pytest.raises(expected) as caught:
        get_config()
    assert not isinstance(caught.value, ImproperlyConfigured)
    if expected is TypeError:
        assert str(caught.value) == "a bug of the application's own"


def test_a_module_whose_own_import_fails_keeps_the_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "authmw_test_broken_settings.py").write_text(
        "import authmw_test_missing_dependency\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for setting in ("AUTHENTICATOR", "POLICY"):
        error = resolve(setting, "authmw_test_broken_settings:build")
        assert "importing 'authmw_test_broken_settings' failed" in str(error)
        # Here the traceback matters: it points at the application's import.
        assert isinstance(error.__cause__, ModuleNotFoundError)
        assert error.__cause__.name == "authmw_test_missing_dependency"
