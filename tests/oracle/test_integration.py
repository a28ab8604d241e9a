"""The oracle end to end on the embedded chain and the embedded store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flb_dapp.audit import load_report, verify_round
from flb_dapp.merkle import verify_proof
from tests.fixtures.federation import REWARD_PER_ROUND, Federation, build_federation
from tests.fixtures.processes import require_helia, start_anvil

pytestmark = pytest.mark.slow


@pytest.fixture(params=["embedded", pytest.param("anvil+ipfs", marks=[pytest.mark.anvil, pytest.mark.ipfs])])
def federation(request: pytest.FixtureRequest, tmp_path: Path, accounts: Any) -> Iterator[Federation]:
    """Embedded chain + local store, or a real anvil node + the Helia IPFS node over Kubo's RPC."""
    if request.param == "embedded":
        yield build_federation(tmp_path, accounts, steps=30)
        return
    from ape import networks

    from flb_dapp.storage.helia_node import HeliaNode

    require_helia()
    anvil = start_anvil()
    try:
        with HeliaNode() as ipfs, networks.parse_network_choice(anvil.uri):
            yield build_federation(
                tmp_path,
                accounts,
                steps=30,
                store_url=ipfs.url,
                network=anvil.uri,
                cache_dir=tmp_path / "cache",
            )
    finally:
        anvil.stop()


def test_two_rounds_from_submissions_to_claims_and_verification(federation: Federation) -> None:
    sdk = federation.coordinator
    initial = sdk.latest_global_model_cid
    processed = federation.run_round()

    info = sdk.round(1)
    assert sdk.current_round == 2
    assert info.finalized
    assert info.global_model_cid == processed.global_model_cid != initial
    assert info.report_cid == processed.report_cid
    assert info.rewards_root == processed.rewards_root
    assert federation.store.has(info.global_model_cid) and federation.store.has(info.report_cid)

    report = load_report(federation.store, info.report_cid).model_dump()
    assert [d["client"] for d in report["inputs"]] == [c.address for c in federation.clients]
    assert all(d["accepted"] for d in report["inputs"])
    assert report["previous_global_model_cid"] == initial
    after, before = report["metrics"]["after"], report["metrics"]["before"]
    assert info.metric == round(after["accuracy"] * 1_000_000) / 1_000_000
    assert after["loss"] < before["loss"]
    rewards = report["rewards"]
    assert 0 < rewards["round_total"] <= REWARD_PER_ROUND
    assert sum(rewards["round"].values()) == rewards["round_total"]
    assert sdk.reward_totals[1] == rewards["round_total"]

    root = bytes.fromhex(info.rewards_root[2:])
    for client in federation.clients:
        amount = int(rewards["cumulative"].get(client.address, 0))
        if amount == 0:
            continue
        proof = [bytes.fromhex(p[2:]) for p in rewards["proofs"][client.address]]
        assert verify_proof(root, client.address, amount, proof)
        before_balance = sdk.token_balance(client.address)
        sdk.claim(client, amount, proof)
        assert sdk.token_balance(client.address) - before_balance == amount
        assert sdk.client(client.address).claimed == amount

    result = verify_round(sdk, federation.store, 1, federation.scorer, start_block=federation.record.block)
    assert result.ok, result.to_dict()
    assert result.exact
    assert set(result.checks) == {
        "inputs",
        "decisions",
        "rewards_tree",
        "report_global_cid",
        "global_model_cid",
        "rewards_root",
        "metric",
    }

    # Round 2 trains from round 1's global model and inherits its cumulative rewards.
    first_global = sdk.round(1).global_model_cid
    adapter = federation.train(0)
    assert federation.global_adapter(first_global).metadata.round == 1
    federation.submit(0, adapter)
    for i in (1, 2):
        federation.submit(i, federation.train(i))
    [processed] = federation.oracle().run_once()
    report = load_report(federation.store, processed.report_cid).model_dump()
    assert report["previous_global_model_cid"] == first_global
    previous = load_report(federation.store, sdk.round(1).report_cid).model_dump()
    for client, amount in report["rewards"]["cumulative"].items():
        assert amount == previous["rewards"]["cumulative"].get(client, 0) + report["rewards"]["round"].get(
            client, 0
        )
    assert verify_round(sdk, federation.store, 2, federation.scorer, start_block=federation.record.block).ok
