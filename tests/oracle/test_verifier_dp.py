"""Server-side DP on a settled federation (embedded chain, one process): the oracle commits to
each round's noise secret before the commit phase ends and draws the noise from that secret mixed
with the hash of the first block at the deadline; verifiers check everything but the noise (the
commitment, every decision and reward, the published model's accuracy), attest an honest round
and overturn one that pays the oracle's key."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from flb_dapp.audit import load_report, read_round_inputs
from flb_dapp.chain.noise import first_block_at, read_noise_binding
from flb_dapp.chain.settlement import PART_REWARDS, RoundResult
from flb_dapp.chain.settlement_errors import SettlementNoiseCommitClosed
from flb_dapp.evaluation.task import make_task
from flb_dapp.exceptions import ConfigError
from flb_dapp.federation import FederationPlan, build_federation
from flb_dapp.merkle import build_rewards_tree
from flb_dapp.rounds import RoundComputation
from flb_dapp.rounds.noise import noise_commitment, round_secret
from flb_dapp.taskspec import TaskSpec, make_evaluator
from oracle.noised_rounds import NOISE_NOT_CHECKED, honest_noised
from oracle.pipeline import Oracle, finalize_request
from tests.oracle.test_verifier import RULES, bonded_verifiers, play_round

pytestmark = pytest.mark.slow
SEED = 20_261_204
DP = {"name": "fedavg", "dp": "fixed", "clip_norm": 5.0, "noise_multiplier": 0.02}


def test_noise_is_bound_and_everything_else_is_verified(
    tmp_path: Path, accounts: Any, chain: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = TaskSpec(model="tiny", steps=5, eval_limit=40)
    oracle_section = {"strategy": DP, "torch_threads": 1, "dp_seed_env": "FLB_TEST_DP_SEED"}
    plan = FederationPlan(spec=spec, account="test:1", settlement=RULES, oracle=oracle_section)
    shares = make_task(seed=spec.task_seed).split_non_iid(3, seed=0)
    clients = [accounts[2 + i] for i in range(3)]
    federation = build_federation(tmp_path, accounts[0], accounts[1], clients, shares, plan)
    federation.scorer = make_evaluator(spec, tmp_path / "cache")
    unseeded = federation.settings.oracle.model_copy(update={"dp_seed_env": None})
    with pytest.raises(ConfigError, match="commits to each round's noise before the round"):
        Oracle.for_federation(
            replace(federation, settings=federation.settings.model_copy(update={"oracle": unseeded}))
        )
    monkeypatch.setenv("FLB_TEST_DP_SEED", str(SEED))
    sdk, settlement, oracle = federation.coordinator, federation.settlement, Oracle.for_federation(federation)
    assert settlement is not None
    verifiers = bonded_verifiers(federation, accounts, spec, tmp_path / "cache")

    # Round 1: the commitment goes on chain while the commit phase runs.
    oracle.commit_noise()
    assert settlement.noise_commitment(1) == noise_commitment(round_secret(SEED, 1))
    play_round(federation, 1)
    [first] = oracle.run_once()
    binding = read_noise_binding(sdk, settlement, 1)
    assert binding is not None and (binding.block, binding.block_hash) == first_block_at(
        sdk.round(1).deadline
    )
    report = load_report(federation.store, first.report_cid)
    assert report.privacy.server_noise and report.privacy.noise_binding == binding.to_json()
    # The oracle moved on to round 2 and committed to its noise at once.
    assert settlement.noise_commitment(2) == noise_commitment(round_secret(SEED, 2))

    # The block hash is in the noise: the same round with another block's hash is another model.
    inputs = read_round_inputs(sdk, federation.store, 1, spec, start_block=federation.record.block)
    bound = RoundComputation(
        replace(inputs, noise=binding), oracle.round_settings, federation.store, federation.scorer
    )
    assert bound.run().global_model_cid == first.global_model_cid
    other = replace(binding, block_hash="0x" + "ab" * 32)
    moved = RoundComputation(
        replace(inputs, noise=other), oracle.round_settings, federation.store, federation.scorer
    )
    assert moved.run().global_model_cid != first.global_model_cid

    [attest_a] = verifiers[0].run_once()
    assert attest_a.action == "attest" and attest_a.reason.startswith(NOISE_NOT_CHECKED), attest_a
    assert f"block {binding.block}" in attest_a.reason
    [attest_b] = verifiers[1].run_once()
    assert attest_b.action == "attest" and settlement.proposal(1).final
    # A published model without the declared noise (here: the previous model, no update at all)
    # is caught by its noise's scale, which the verifier measures against the noise-free aggregate.
    wrong = honest_noised(verifiers[0], 1, binding, sdk.round(0).global_model_cid)
    assert isinstance(wrong, str) and wrong.startswith("the published model's noise has standard deviation")

    # Round 2: the oracle computes the honest round, then proposes one that pays its own key.
    play_round(federation, 2)
    chain.mine(deltatime=1)
    inputs = read_round_inputs(sdk, federation.store, 2, spec, start_block=federation.record.block)
    inputs = replace(inputs, noise=read_noise_binding(sdk, settlement, 2))
    honest = RoundComputation(inputs, oracle.round_settings, federation.store, federation.scorer).run()
    honest_result = RoundResult.from_request(finalize_request(honest, 3))
    budget = sdk.reward_per_round
    greedy = build_rewards_tree({**honest.report.rewards.cumulative, accounts[1].address: budget})
    forged = replace(honest_result, rewards_root=greedy.root, round_rewards=budget)
    settlement.propose(accounts[1], 2, forged, 3)
    [challenge] = verifiers[0].run_once()
    assert challenge.action == "challenge" and challenge.parts & PART_REWARDS
    [sided] = verifiers[1].run_once()
    assert (sided.action, sided.result_hash) == ("attest", challenge.result_hash)
    assert settlement.bond(accounts[1].address).amount == 0  # the oracle's bond is slashed
    # The replacement pays exactly what the honest round pays, on the oracle's published model.
    assert sdk.round(2).rewards_root == "0x" + honest_result.rewards_root.hex()
    assert sdk.round(2).global_model_cid == honest_result.global_model_cid

    # A commitment that races the round's last client commit is refused by the contract: the
    # oracle logs it and goes on (the round's noise is then unbound, which verifiers report).
    assert settlement.noise_commitment(3) == b"\x00" * 32

    tried: list[int] = []

    def refused(_settlement: Any, _account: Any, round_number: int, _seed: int) -> None:
        tried.append(round_number)
        raise SettlementNoiseCommitClosed("closed", round=round_number, open_round=round_number, deadline=0)

    monkeypatch.setattr("oracle.pipeline.commit_round_noise", refused)
    oracle.commit_noise()
    assert tried == [3] and settlement.noise_commitment(3) == b"\x00" * 32
