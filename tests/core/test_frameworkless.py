"""The core must import and work with no web framework installed.

The tox ``core`` environment installs none and sets ``AUTHMW_TEST_FRAMEWORKLESS``;
there this test proves the environment really is framework-free, so the rest of
tests/core proves the core does not need one.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil

import pytest

import authmw

FRAMEWORKS = ("starlette", "fastapi", "flask", "django", "uvicorn")


@pytest.mark.skipif(
    not os.environ.get("AUTHMW_TEST_FRAMEWORKLESS"),
    reason="only meaningful in the framework-free tox env (AUTHMW_TEST_FRAMEWORKLESS=1)",
)
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_no_framework_is_installed(framework: str) -> None:
    assert importlib.util.find_spec(framework) is None


def test_every_core_module_imports_without_a_framework() -> None:
    names = [
        m.name
        for m in pkgutil.walk_packages(authmw.__path__, "authmw.")
        if not m.name.startswith(("authmw.examples", "authmw.demo"))
    ]
    assert "authmw.asgi" in names
    assert "authmw.wsgi" in names
    for name in names:
        module = importlib.import_module(name)
        for framework in FRAMEWORKS:
            assert framework not in vars(module), f"{name} imports {framework}"
