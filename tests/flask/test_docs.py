"""docs/flask.md: the code on the page does what the page says, taken from the page itself.

* the "Test it" file passes under pytest, run as a user runs it: on its own, in a
  directory of its own, in a process of its own;
* the app the page builds (its "Configure" file with the "Protect a route"
  snippets added) answers its routes, on a database made as the page makes it;
* every view on the page returns a value: Flask answers 500 for a view that
  returns ``None``, as one whose body is ``...`` does;
* its table of ``app.config`` keys is exactly what the extension accepts.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import authmw_flask
from tests.doc_pages import (
    Page,
    load_module,
    python_blocks,
    routed_functions,
    run_pytest_as_a_user,
)

PAGE = Page("flask.md")
TEXT = PAGE.text
section = PAGE.section


def test_the_test_it_file_passes_under_pytest(tmp_path: Path) -> None:
    (code,) = python_blocks(section("Test it"))
    (tmp_path / "test_myapp.py").write_text(code, encoding="utf-8")
    result = run_pytest_as_a_user(tmp_path, "test_myapp.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_the_pages_app_answers_its_routes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AUTHMW_"):
            monkeypatch.delenv(name)
    # Authenticator.from_env() on the page: a database of this test's own.
    monkeypatch.setenv("AUTHMW_DATABASE_URL", f"sqlite:///{tmp_path / 'authmw.db'}")
    (configure,) = python_blocks(section("Configure"))
    (protect,) = python_blocks(section("Protect a route"))
    source = tmp_path / "myapp.py"
    source.write_text(f"{configure}\n\n{protect}", encoding="utf-8")
    myapp = load_module(source, "myapp")
    auth = myapp.app.extensions["authmw"].authenticator
    try:
        # What `flask authmw init`, `users create` and `keys create` do on the page.
        auth.store.create_schema()
        auth.users.create("alice", password="a long passphrase", roles=["admin"])
        headers = {"X-API-Key": auth.keys.create(name="dev", owner="alice").key}
        client = myapp.app.test_client()
        assert client.get("/me").status_code == 401
        assert client.get("/me", headers=headers).json == {"subject": "alice"}
        for path in ("/reports", "/appointments", "/teams/blue/usage"):
            response = client.get(path, headers=headers)
            assert response.status_code == 200, path
            assert isinstance(response.json, dict), path
        # User tokens only: an API key is refused before the view runs.
        assert client.post("/account/password", headers=headers).status_code == 403
    finally:
        auth.close()


def test_every_view_on_the_page_returns_a_value() -> None:
    routed = routed_functions(PAGE.text)
    assert len(routed) >= 6
    assert [name for name, returns in routed if not returns] == []


def test_the_pages_config_table_lists_the_keys_the_extension_reads() -> None:
    documented = re.findall(r"^\| `(AUTHMW_\w+)` \|", section("Configure"), re.MULTILINE)
    assert documented == list(authmw_flask._CONFIG_KEYS)
