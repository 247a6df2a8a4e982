"""Read the code of a page in docs/, so tests can run what the page tells users to run."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

DOCS = Path(__file__).resolve().parents[1] / "docs"


class Page:
    """One page of docs/: its sections and their ```python blocks."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.text = (DOCS / name).read_text(encoding="utf-8")

    def section(self, title: str) -> str:
        """Return the text of the section ``## title``, up to the next one."""
        found = re.search(
            rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", self.text, re.MULTILINE | re.DOTALL
        )
        assert found is not None, f"docs/{self.name} has no section {title!r}"
        return found.group(1)


def python_blocks(text: str) -> list[str]:
    """Return the ```python blocks of ``text``."""
    return re.findall(r"^```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def load_module(source: Path, name: str = "myapp_of_the_page") -> ModuleType:
    """Import the file ``source`` (the page's app, written out) as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, source)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def without_authmw_env() -> dict[str, str]:
    """The environment minus every ``AUTHMW_*`` variable: a user's has none of ours."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AUTHMW_")}


def run_pytest_as_a_user(directory: Path, test_file: str) -> subprocess.CompletedProcess[str]:
    """Run pytest on ``test_file`` in ``directory``, as a user runs it.

    In a process of its own, outside the repository (no conftest of ours), with
    no ``AUTHMW_*`` variables, and warnings as errors, as in our own suite.
    """
    command = [sys.executable, "-m", "pytest", "-q", "-W", "error", "-p", "no:cacheprovider"]
    return subprocess.run(
        [*command, test_file],
        cwd=directory,
        env=without_authmw_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def routed_functions(text: str) -> list[tuple[str, bool]]:
    """List each function the ```python blocks of ``text`` route, and whether it returns a value.

    A function counts as routed when a decorator call named ``get``, ``post`` or
    ``route`` wraps it (``@app.get(...)``, ``@router.post(...)``, ``@bp.route(...)``).
    """
    found: list[tuple[str, bool]] = []
    for code in python_blocks(text):
        for node in ast.walk(ast.parse(code)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if any(
                isinstance(d, ast.Call)
                and isinstance(d.func, ast.Attribute)
                and d.func.attr in {"get", "post", "route"}
                for d in node.decorator_list
            ):
                returns = [n for n in ast.walk(node) if isinstance(n, ast.Return)]
                found.append((node.name, any(r.value is not None for r in returns)))
    return found
