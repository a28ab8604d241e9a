"""`flb account new | import | list` on Ape keystores in a temporary APE_DATA_FOLDER (never ~/.ape)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import FLB, PASSWORD

# Anvil's well-known first dev key: public knowledge, safe in a test.
DEV_KEY = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DEV_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def flb(
    data: Path, *args: str, input: str | None = None, password: str | None = PASSWORD
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLB_", "APE_"))}
    empty = data / "empty.yaml"  # no settings from any flb.yaml (a named file must exist)
    data.mkdir(parents=True, exist_ok=True)
    empty.touch()
    env.update(APE_DATA_FOLDER=str(data), NO_COLOR="1", FLB_CONFIG=str(empty))
    if password is not None:
        env["FLB_PASSWORD"] = password
    return subprocess.run(
        [str(FLB), *args], env=env, input=input, capture_output=True, text=True, timeout=120, cwd=data
    )


@pytest.mark.slow
def test_new_import_list_and_refusals(tmp_path: Path) -> None:
    data = tmp_path / "ape"
    data.mkdir()
    created = flb(data, "--json", "account", "new", "alice")
    assert created.returncode == 0, created.stderr
    alice = json.loads(created.stdout)
    assert Path(alice["keystore"]) == data / "accounts" / "alice.json"

    # The key comes on stdin (never argv); the keystore holds it encrypted only.
    imported = flb(data, "--json", "account", "import", "dev", input=DEV_KEY + "\n")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["address"] == DEV_ADDRESS
    keystore = (data / "accounts" / "dev.json").read_text()
    assert DEV_KEY not in keystore and "crypto" in json.loads(keystore)

    listed = json.loads(flb(data, "--json", "account", "list").stdout)
    assert listed["accounts"] == [
        {"alias": "alice", "address": alice["address"]},
        {"alias": "dev", "address": DEV_ADDRESS},
    ]
    table = flb(data, "account", "list").stdout
    assert "alice" in table and DEV_ADDRESS in table and "\x1b[" not in table  # NO_COLOR, not a TTY

    taken = flb(data, "account", "new", "alice")
    assert (taken.returncode, taken.stderr.strip()) == (
        1,
        "Error: an account named 'alice' exists already; choose another alias",
    )
    secret_typo = "0x1234" + "zz" * 30
    bad_key = flb(data, "account", "import", "bob", input=secret_typo + "\n")
    assert bad_key.returncode == 1 and "not a private key" in bad_key.stderr
    assert secret_typo not in bad_key.stderr + bad_key.stdout  # a mistyped key is never echoed
    short = flb(data, "account", "new", "carol", password="short")
    assert short.returncode == 1 and "at least 8 characters" in short.stderr
    assert sorted(p.name for p in (data / "accounts").iterdir()) == ["alice.json", "dev.json"]
