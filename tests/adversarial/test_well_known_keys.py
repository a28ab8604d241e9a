"""Ape's test accounts have public keys: they never sign on a chain that is not a local dev chain.

The first build counted any URL network as local in `ape run deploy` and let the oracle fall back
to `test:0` everywhere. Shown against a real anvil node on loopback that says it is chain 1.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from flb_dapp.chain.accounts import is_local_chain, load_account
from flb_dapp.exceptions import WalletError
from tests.fixtures.processes import start_anvil

pytestmark = [pytest.mark.anvil]
ROOT = Path(__file__).resolve().parents[2]


def test_a_loopback_node_with_mainnet_chain_id_is_not_local(tmp_path: Path) -> None:
    from ape import networks

    anvil = start_anvil(chain_id=1)
    try:
        with networks.parse_network_choice(anvil.uri):
            assert not is_local_chain()
            with pytest.raises(WalletError, match=r"test:0 is one of Ape's test accounts.*on chain 1,"):
                load_account("test:0")
        deploy = subprocess.run(
            [
                str(ROOT / ".venv" / "bin" / "ape"),
                *("run", "deploy", "--network", anvil.uri, "--records", str(tmp_path / "deployments")),
                *("--initial-model-cid", "bafkreifayhvop2bccuibi4rfjrz6pmz6qf35cf6yctc3o6l6ja2gayg5ai"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert deploy.returncode != 0
        assert "on a live network pass --account ALIAS" in deploy.stdout + deploy.stderr
        assert not (tmp_path / "deployments").exists()
    finally:
        anvil.stop()


def test_the_same_node_with_a_dev_chain_id_is_local() -> None:
    from ape import networks

    anvil = start_anvil()
    try:
        with networks.parse_network_choice(anvil.uri):
            assert is_local_chain()
            assert load_account("test:0").address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    finally:
        anvil.stop()
