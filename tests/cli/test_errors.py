"""Every refusal says what went wrong and what to do, and leaves nothing behind: no transaction
(the account's nonce and the contract's events are unchanged), no stored object, no partial file."""

from __future__ import annotations

from pathlib import Path

import pytest

from flb_dapp.lora import decode_adapter, encode_adapter
from flb_dapp.storage.cid import cid_of_bytes
from flb_dapp.storage.local import LocalStore
from tests.cli.conftest import PASSWORD, Workspace, parse_json
from tests.fixtures.processes import free_port

pytestmark = [pytest.mark.anvil]


def address_of(name: str) -> str:
    from flb_dapp.wallet import account_address

    return account_address(name)


def leftovers(root: Path) -> list[Path]:
    """Temp files and folders a crashed or refused write would leave (LocalStore's tmp/ included)."""
    return [p for p in root.rglob("*") if p.name.endswith(".part") or ".old-" in p.name]


def store_objects(ws: Workspace) -> set[str]:
    return {p.name for p in (ws.store / "objects").rglob("*") if p.is_file()}


def error_of(stderr: str) -> str:
    """The `Error: ...` line (narration such as "Hashing data" may come before it)."""
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


def submissions(ws: Workspace, address: str) -> int:
    status = parse_json(ws.invoke("--json", "status", "--address", address).stdout)
    return int(status["account"]["submissions"])


def test_wrong_password_sends_nothing(workspace: Workspace) -> None:
    ws = workspace
    address = parse_json(ws.flb("--json", "account", "new", "alice", FLB_PASSWORD=PASSWORD).stdout)["address"]
    ws.fund(address)
    bad = ws.flb("register", "--account", "alice", check=False, FLB_PASSWORD="not the password")
    assert bad.returncode == 1
    assert error_of(bad.stderr) == "Error: wrong password for account 'alice'"
    password_file = ws.root / "password.txt"
    password_file.write_text("also wrong\n")
    bad = ws.flb("register", "--account", "alice", "--password-file", str(password_file), check=False)
    assert (bad.returncode, error_of(bad.stderr)) == (1, "Error: wrong password for account 'alice'")
    no_tty = ws.flb("register", "--account", "alice", check=False)  # no password source, no terminal
    assert no_tty.returncode == 1 and "pass --password-file FILE or set FLB_PASSWORD" in no_tty.stderr
    assert ws.nonce(address) == 0
    status = parse_json(ws.invoke("--json", "status", "--address", address).stdout)
    assert status["account"]["registered"] is False


def test_submitting_twice_is_refused_before_storing(workspace: Workspace, one_thread: None) -> None:
    ws = workspace
    address = address_of("test:2")
    ws.invoke("register", "--account", "test:2")
    first = parse_json(ws.invoke("--json", "participate", "--account", "test:2", "--threads", "1").stdout)
    nonce, objects = ws.nonce(address), store_objects(ws)
    # Another (different) adapter for the same round: refused before it is stored.
    other = decode_adapter(Path(first["adapter"]).read_bytes())
    other.tensors = {k: v + 0.01 for k, v in other.tensors.items()}
    other_path = ws.root / "other.safetensors"
    other_path.write_bytes(encode_adapter(other))
    again = ws.invoke("submit", str(other_path), "--account", "test:2", expect=1)
    assert error_of(again.stderr) == f"Error: {address} already submitted an update in round 1"
    assert (ws.nonce(address), store_objects(ws)) == (nonce, objects)
    assert not LocalStore(ws.store).has(cid_of_bytes(other_path.read_bytes()))
    assert submissions(ws, address) == 1
    cron = ws.invoke("participate", "--account", "test:2")  # nothing to do is not an error
    assert cron.stdout.strip() == "already submitted in round 1; nothing to do until round 2 opens"
    assert ws.nonce(address) == nonce and leftovers(ws.root) == []


def test_submitting_after_the_deadline_is_refused(workspace: Workspace, one_thread: None) -> None:
    ws = workspace
    address = address_of("test:3")
    ws.invoke("register", "--account", "test:3")
    trained = parse_json(ws.invoke("--json", "train", "--account", "test:3", "--steps", "2").stdout)
    ws.advance_time(3601)
    nonce, objects = ws.nonce(address), store_objects(ws)
    late = ws.invoke("submit", "--account", "test:3", expect=1)
    assert error_of(late.stderr).startswith("Error: the commit phase of round 1 closed at ")
    assert "wait for the oracle to open the next round" in late.stderr
    assert (ws.nonce(address), store_objects(ws)) == (nonce, objects)
    assert not LocalStore(ws.store).has(trained["cid"])
    assert submissions(ws, address) == 0
    cron = ws.invoke("participate", "--account", "test:3")
    assert "round 1 is closed and waits for the oracle" in cron.stdout


def test_no_data_at_the_path(workspace: Workspace) -> None:
    ws = workspace
    address = address_of("test:4")
    nonce = ws.nonce(address)  # anvil is shared by the session: compare, do not assume 0
    missing = ws.root / "no-such-data"
    for command in (["register"], ["train"], ["participate"]):
        result = ws.invoke(*command, "--account", "test:4", "--data", str(missing), expect=2)
        expected = f"Error: no data at {missing}: give a data file or folder with --data"
        assert error_of(result.stderr).startswith(expected)
    empty = ws.root / "empty"
    (empty / ".hidden").mkdir(parents=True)
    (empty / ".DS_Store").write_text("x")
    result = ws.invoke("register", "--account", "test:4", "--data", str(empty), expect=2)
    assert error_of(result.stderr) == f"Error: no data files in {empty} (hidden files are ignored)"
    assert ws.nonce(address) == nonce
    assert not (ws.root / "updates").exists() and leftovers(ws.root) == []


def test_unreachable_chain_node(workspace: Workspace) -> None:
    ws = workspace
    uri = f"http://127.0.0.1:{free_port()}"
    nonce = ws.nonce(address_of("test:5"))
    for command in (["status"], ["register", "--account", "test:5"], ["claim", "--account", "test:5"]):
        result = ws.invoke("--network", uri, *command, expect=1)
        expected = f"Error: cannot reach the chain node at {uri}; is it running?"
        assert error_of(result.stderr).startswith(expected)
    assert ws.nonce(address_of("test:5")) == nonce


def test_unreachable_store(workspace: Workspace, one_thread: None) -> None:
    ws = workspace
    address = address_of("test:6")
    ws.invoke("register", "--account", "test:6")
    ws.invoke("train", "--account", "test:6", "--steps", "1")
    nonce = ws.nonce(address)
    url = f"http://127.0.0.1:{free_port()}"
    result = ws.invoke("submit", "--account", "test:6", "--store", url, expect=1)
    assert error_of(result.stderr).startswith(f"Error: the IPFS node at {url} cannot be reached")
    assert ws.nonce(address) == nonce and submissions(ws, address) == 0
    pulled = ws.invoke("pull", "--store", url, "--out", str(ws.root / "global"), expect=1)
    assert f"the IPFS node at {url} cannot be reached" in pulled.stderr
    assert not (ws.root / "global").exists() and leftovers(ws.root) == []


def test_a_global_model_that_does_not_verify_is_never_used(workspace: Workspace) -> None:
    ws = workspace
    store = LocalStore(ws.store)
    cid = ws.record.initial_model_cid
    good = store.path_of(cid).read_bytes()
    nonce = ws.nonce(address_of("test:7"))

    def corrupt() -> None:
        store.path_of(cid).write_bytes(good[:-1] + bytes([good[-1] ^ 0xFF]))  # one bit pattern flipped

    corrupt()
    pulled = ws.invoke("pull", "--out", str(ws.root / "global"), "--merge", str(ws.root / "merged"), expect=1)
    assert error_of(pulled.stderr).startswith(f"Error: the global model {cid} does not verify")
    assert not (ws.root / "global").exists() and not (ws.root / "merged").exists()
    corrupt()  # the store deleted its bad copy on the failed read; plant it again
    trained = ws.invoke("train", "--account", "test:7", expect=1)
    assert error_of(trained.stderr).startswith(f"Error: the global model {cid} does not verify")
    assert not (ws.root / "updates").exists() and leftovers(ws.root) == []
    assert ws.nonce(address_of("test:7")) == nonce


def test_a_named_configuration_file_that_is_not_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative --config from the wrong folder is an error, never a silent fall-back to defaults
    (which would talk to another chain and store)."""
    from tests.cli.conftest import invoke_flb

    monkeypatch.chdir(tmp_path)
    result = invoke_flb("--config", ".flb/devnet/flb.yaml", "status", expect=2)
    assert (
        error_of(result.stderr) == f"Error: no configuration file at .flb/devnet/flb.yaml (from {tmp_path})"
    )
