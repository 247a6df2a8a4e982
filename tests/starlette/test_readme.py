"""README.md: the quick-start app answers the curl lines beneath it, read from the README."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from authmw.cli import main
from tests.doc_pages import load_module

README = Path(__file__).resolve().parents[2] / "README.md"
PASSPHRASE = "correct horse battery staple"


def quick_start() -> str:
    """The README's first python block."""
    found = re.search(r"^```python\n(.*?)^```", README.read_text("utf-8"), re.M | re.S)
    assert found is not None
    return found.group(1)


def cli(*args: str, stdin: str | None = None) -> str:
    result = CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.anyio
async def test_the_quick_start_answers_its_curl_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTHMW_DATABASE_URL", f"sqlite:///{tmp_path / 'authmw.db'}")
    for name in ("AUTHMW_SECRET_KEY", "AUTHMW_POLICY", "AUTHMW_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    # The README's commands, in its order.
    cli("init")
    cli("users", "create", "alice", "--role", "admin", "--password-stdin", stdin=PASSPHRASE)
    key = re.search(r"amk_\w+", cli("keys", "create", "--name", "laptop", "--owner", "alice"))
    assert key is not None
    created = cli(
        "apps",
        "create",
        "--name",
        "web",
        "--redirect-uri",
        "https://app.example/cb",
        "--first-party",
    )
    app = re.search(r"client_id:\s+(\S+)\s+client_secret:\s+(\S+)", created)
    source = tmp_path / "myapp.py"
    source.write_text(quick_start(), encoding="utf-8")
    myapp = load_module(source, "myapp_of_the_readme")
    try:
        transport = httpx.ASGITransport(app=myapp.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            by_key = await client.get("/reports", headers={"Authorization": f"apikey {key[0]}"})
            assert by_key.status_code == 200
            assert app is not None
            token = await client.post(
                "/oauth/token",
                data={"grant_type": "password", "username": "alice", "password": PASSPHRASE},
                auth=(app[1], app[2]),
            )
            assert token.status_code == 200, token.text
            bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
            assert (await client.get("/reports", headers=bearer)).status_code == 200
            assert (await client.get("/reports")).status_code == 401
    finally:
        myapp.auth.close()
