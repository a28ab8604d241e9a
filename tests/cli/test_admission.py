"""`flb admit` and `flb exit` on an allowlist federation with registration bonds (anvil): the
registrar admits, an admitted client registers and locks its bond, exits, and takes the bond back
after the delay; every refusal comes before a password or a transaction, with its rule named."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import TOKEN, Workspace, deploy, parse_json

BOND = 5 * TOKEN
DELAY = 3_600


def _allowlist_workspace(ws: Workspace) -> str:
    """Redeploy the workspace's federation as allowlist + bond; give test:3 the bond's tokens."""
    from ape import accounts, networks

    from flb_dapp.chain.admission import AdmissionRules
    from flb_dapp.chain.coordinator import Coordinator

    record_path = Path(ws.settings["deployment"])
    rules = AdmissionRules("allowlist", BOND, DELAY)
    ws.record = deploy(ws.anvil, ws.record.initial_model_cid, record_path, admission=rules)
    client = accounts.test_accounts[3]
    with networks.parse_network_choice(ws.anvil.uri):
        Coordinator(ws.record.coordinator).token.transfer(client, BOND, sender=accounts.test_accounts[0])
    return str(client.address)


def test_admit_register_exit_withdraw(workspace: Workspace) -> None:
    ws = workspace
    client = _allowlist_workspace(ws)
    assert ws.record.admission == "allowlist" and ws.record.registration_bond == BOND

    refused = ws.invoke("register", "--account", "test:3", expect=1)
    assert f"{client} is not admitted" in refused.stderr
    # Only a registrar admits (test:0, the admin, is the first one).
    outsider = ws.invoke("admit", client, "--account", "test:4", expect=1)
    assert "does not hold the registrar role" in outsider.stderr
    admitted = parse_json(ws.invoke("--json", "admit", client, "--account", "test:0").stdout)
    assert admitted["admitted"] == {client: True}

    registered = parse_json(ws.invoke("--json", "register", "--account", "test:3").stdout)
    assert registered["registered"]
    balance = parse_json(ws.invoke("--json", "balance", "--account", "test:3").stdout)
    assert int(balance["token"]) == 0  # the whole bond is locked

    early = ws.invoke("exit", "--withdraw", "--account", "test:3", expect=1)
    assert "has not exited; run `flb exit` first" in early.stderr
    exited = parse_json(ws.invoke("--json", "exit", "--account", "test:3").stdout)
    assert exited["bond"] == BOND and exited["released_at"] > 0 and not exited["withdrawn"]
    locked = ws.invoke("exit", "--withdraw", "--account", "test:3", expect=1)
    assert f"{client}'s bond is locked until {exited['released_at']}" in locked.stderr
    again = ws.invoke("exit", "--account", "test:3", expect=1)
    assert f"{client} exited already" in again.stderr

    status = parse_json(ws.invoke("--json", "status", "--account", "test:3").stdout)["account"]
    assert (status["exited"], status["bond"], status["bond_released_at"]) == (
        True,
        BOND,
        exited["released_at"],
    )
    shown = ws.invoke("status", "--account", "test:3").stdout
    assert "exited; bond released at" in shown and "bond" in shown

    ws.advance_time(DELAY)
    withdrawn = parse_json(ws.invoke("--json", "exit", "--withdraw", "--account", "test:3").stdout)
    assert withdrawn["withdrawn"] and withdrawn["bond"] == BOND
    balance = parse_json(ws.invoke("--json", "balance", "--account", "test:3").stdout)
    assert int(balance["token"]) == BOND


def test_admit_on_an_open_federation_is_refused(workspace: Workspace) -> None:
    refused = workspace.invoke("admit", "0x" + "11" * 20, "--account", "test:0", expect=1)
    assert "this federation is open" in refused.stderr
    bad = workspace.invoke("admit", "not-an-address", "--account", "test:0", expect=2)
    assert "not an address: not-an-address" in bad.stderr
