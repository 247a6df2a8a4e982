"""The public surface: exports exist, modules declare ``__all__``, all is documented."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import pkgutil
from types import ModuleType

import pytest

import authmw


def public_modules() -> list[str]:
    """Every module of the authmw package whose own name is public.

    ``authmw.examples`` (the demo apps the wheel carries) is application code
    that needs a framework, not library API.
    """
    names = [
        m.name
        for m in pkgutil.walk_packages(authmw.__path__, "authmw.")
        if not m.name.startswith("authmw.examples")
        and not m.name.rsplit(".", 1)[-1].startswith("_")
    ]
    return ["authmw", *names]


def plugin_modules() -> list[str]:
    # The framework-free install has the plugin packages but not their frameworks;
    # a plugin that cannot be imported there is skipped, not failed.
    names = ["authmw_starlette"]
    if importlib.util.find_spec("fastapi") is not None:
        names.append("authmw_starlette.fastapi")
    return names


def undocumented(module: ModuleType) -> list[str]:
    """Public classes, functions and methods of ``module``'s ``__all__`` without a docstring."""
    missing = []
    for name in module.__all__:
        obj = getattr(module, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if not inspect.getdoc(obj):
            missing.append(name)
        if not inspect.isclass(obj):
            continue
        for attr, value in vars(obj).items():
            if attr.startswith("_"):
                continue
            func = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
            if isinstance(func, property):
                func = func.fget
            if inspect.isfunction(func) and not func.__doc__:
                missing.append(f"{name}.{attr}")
    return missing


def test_public_modules_are_found() -> None:
    found = public_modules()
    for expected in ("authmw.keys", "authmw.store", "authmw.store.sql", "authmw.wsgi"):
        assert expected in found


@pytest.mark.parametrize("name", public_modules())
def test_every_public_module_declares_all(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    for item in exported:
        assert hasattr(module, item), f"{name}.__all__ names missing {item!r}"


@pytest.mark.parametrize("name", [*public_modules(), *plugin_modules()])
def test_every_public_class_and_function_has_a_docstring(name: str) -> None:
    module = (
        pytest.importorskip(name) if name.startswith("authmw_") else importlib.import_module(name)
    )
    assert inspect.getdoc(module), f"{name} has no module docstring"
    assert undocumented(module) == []


@pytest.mark.parametrize("name", plugin_modules())
def test_plugin_exports_exist(name: str) -> None:
    module = pytest.importorskip(name)
    assert module.__all__
    for item in module.__all__:
        assert hasattr(module, item), f"{name}.__all__ names missing {item!r}"


def test_top_level_reexports_are_the_defining_objects() -> None:
    for name in authmw.__all__:
        obj = getattr(authmw, name)
        home = getattr(obj, "__module__", None)
        if home is None or not home.startswith("authmw.") or not hasattr(obj, "__qualname__"):
            continue
        module = importlib.import_module(home)
        assert getattr(module, obj.__qualname__) is obj, name
        assert name in module.__all__, f"{name} is re-exported but not in {home}.__all__"


def test_the_core_api_is_exported_from_the_top() -> None:
    expected = {
        "Authenticator",
        "Principal",
        "Policy",
        "Role",
        "Settings",
        "Credential",
        "AuthError",
        "InvalidToken",
        "InvalidRequest",
        "MissingCredentials",
        "InsufficientRole",
        "InsufficientScope",
        "Forbidden",
        "ServiceUnavailable",
        "ApiKeys",
        "Users",
        "Store",
        "PasswordHasher",
    }
    assert expected <= set(authmw.__all__)


def test_version_matches_the_distribution() -> None:
    assert authmw.__version__ == importlib.metadata.version("authmw")
