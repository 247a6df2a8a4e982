"""The plugin's public names: complete, importable, typed."""

from __future__ import annotations

import inspect
from importlib.resources import files
from types import ModuleType

import pytest

import authmw_starlette
import authmw_starlette.fastapi
from authmw.asgi import AuthMiddleware


@pytest.mark.parametrize("module", [authmw_starlette, authmw_starlette.fastapi])
def test_all_lists_exactly_the_public_names(module: ModuleType) -> None:
    exported = set(module.__all__)
    defined = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == module.__name__
    }
    assert defined <= exported
    assert all(hasattr(module, name) for name in exported)
    assert len(module.__all__) == len(exported)


def test_plugin_middleware_is_the_core_one_with_the_same_request_code() -> None:
    assert issubclass(authmw_starlette.AuthMiddleware, AuthMiddleware)
    # Only construction differs: every request runs the core's own code.
    assert authmw_starlette.AuthMiddleware.__call__ is AuthMiddleware.__call__


def test_plugin_is_marked_typed() -> None:
    assert files("authmw_starlette").joinpath("py.typed").is_file()
