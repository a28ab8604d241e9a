"""`flb-api` as it runs in production: a subprocess connected to a real anvil node, indexing in its
background loop. The node goes away, comes back empty (a restarted dev node), and is redeployed:
the API keeps serving, reports the outage in /health, and re-indexes the new chain."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.fixtures.processes import ROOT, AnvilNode, free_port, start_anvil, wait_for_port

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

SETUP = """
import sys
from ape import accounts, networks
from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.chain.deployment import deploy_system
from flb_dapp.storage.local import LocalStore

uri, record_path, store_path, samples = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with networks.parse_network_choice(uri):
    store = LocalStore(store_path)
    operator, client = accounts.test_accounts[0], accounts.test_accounts[2]
    initial = store.put_bytes(b"initial adapter")
    record = deploy_system(operator, initial_model_cid=initial, round_duration=600, reward_per_round=1000,
                           token_supply=10**6, fund_amount=10_000)
    record.save(record_path)
    sdk = Coordinator(record.coordinator, record.block)
    sdk.register(client, b"\\x01" * 32)
    sdk.submit_all([(client, 1, store.put_bytes(b"update %d" % samples), samples)])
"""


def setup_chain(node: AnvilNode, workdir: Path, samples: int) -> dict[str, Any]:
    """Deploy on ``node`` and submit one update of ``samples`` samples; returns the record."""
    script = workdir / "setup.py"
    script.write_text(SETUP)
    record = workdir / "deployments" / "31337.json"
    result = subprocess.run(
        [sys.executable, str(script), node.uri, str(record), str(workdir / "store"), str(samples)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return dict(json.loads(record.read_text()))


def wait_until(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, KeyError, IndexError):  # not served yet, or not indexed yet
            pass
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout} s")


@pytest.fixture
def node() -> Iterator[AnvilNode]:
    anvil = start_anvil()
    try:
        yield anvil
    finally:
        anvil.stop()


def test_flb_api_survives_a_node_restart(node: AnvilNode, tmp_path: Path) -> None:
    record = setup_chain(node, tmp_path, samples=7)
    port = free_port()
    config = tmp_path / "flb.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "network": node.uri,
                "deployment": str(tmp_path / "deployments" / "31337.json"),
                "store": str(tmp_path / "store"),
                "api": {"port": port, "database": str(tmp_path / "api.sqlite"), "poll_interval_s": 0.3},
            }
        )
    )
    log = (tmp_path / "flb-api.log").open("w")
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("flb-api")), "--config", str(config)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, timeout=120)
        wait_until(lambda: httpx.get(f"{base}/health").json()["status"] == "ok")
        contract = httpx.get(f"{base}/contract").json()
        assert (contract["address"], contract["chain_id"]) == (record["coordinator"], 31337)
        assert httpx.get(f"{base}/rounds/1/updates").json()["data"][0]["num_samples"] == 7

        node.stop()  # the node goes away: reads go on, /health says why
        wait_until(lambda: httpx.get(f"{base}/health").json()["status"] == "degraded")
        assert httpx.get(f"{base}/rounds/1/updates").json()["data"][0]["num_samples"] == 7
        assert server.poll() is None

        restarted = start_anvil(port=node.port)  # back, but empty, as a restarted dev node is
        try:
            again = setup_chain(restarted, tmp_path, samples=9)  # same deployer, same addresses
            assert again["coordinator"] == record["coordinator"]
            wait_until(lambda: httpx.get(f"{base}/rounds/1/updates").json()["data"][0]["num_samples"] == 9)
            wait_until(lambda: httpx.get(f"{base}/health").json()["status"] == "ok")
            assert httpx.get(f"{base}/clients").json()["count"] == 1
        finally:
            restarted.stop()
    finally:
        server.terminate()
        server.wait(20)
        log.close()
    assert "re-indexing" in (tmp_path / "flb-api.log").read_text()
