"""One oracle and three verifiers as separate processes on anvil (`flb-oracle once`, `flb-verifier
once`), the verifiers on different CPU kernel sets and thread counts.

Round 1 is honest: verifier A (``ATEN_CPU_CAPABILITY=default``, 2 threads) attests it within the
declared precision, B (the oracle's kernels, 1 thread) exactly; the quorum makes it final.
Round 2's proposal pays the oracle's own key: A challenges it naming the rewards, B sides with the
challenge, the oracle's whole bond is slashed and the round is replaced by the honest result,
which pays the clients exactly what the honest computation gives. Round 3 is honest and C, whose
configuration applies other rules (the median), challenges it: A and B attest the proposal, and C
loses its challenge bond and its verifier bond.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from flb_dapp.audit import read_round_inputs
from flb_dapp.chain.settlement import PART_REWARDS, RoundResult, SettlementParameters
from flb_dapp.evaluation.task import make_task
from flb_dapp.federation import FederationPlan, build_federation
from flb_dapp.merkle import build_rewards_tree
from flb_dapp.rounds import RoundComputation
from flb_dapp.taskspec import TaskSpec, make_evaluator
from oracle.pipeline import finalize_request, settings_for_rounds
from oracle.verifier import WITHIN_PRECISION
from tests.fixtures.devnode import enable_time_travel
from tests.fixtures.processes import start_anvil

pytestmark = [pytest.mark.slow, pytest.mark.anvil]
TOKEN = 10**18
BIN = Path(sys.executable).parent
RULES = SettlementParameters(
    min_finalizer_bond=1_000 * TOKEN,
    min_verifier_bond=100 * TOKEN,
    challenge_bond=100 * TOKEN,
    challenge_window=3_600,
    resolution_period=3_600,
    exit_delay=3_600,
    quorum=2,
    slash_share_bps=5_000,
)
ORACLE_RULES = {"strategy": {"name": "fedavg"}, "torch_threads": 1}


def run(command: str, config: Path, *, env: dict[str, str] | None = None) -> Any:
    done = subprocess.run(
        [str(BIN / command), "--config", str(config), "once", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # NOTE: Ape logs confirmations on stdout before the JSON document.
    return json.loads(done.stdout[done.stdout.index("[") :])


def write_config(path: Path, settings: Any, account: str, oracle: dict[str, Any]) -> Path:
    document = json.loads(settings.model_dump_json())
    document.update(account=account, oracle={**document["oracle"], **oracle})
    path.write_text(yaml.safe_dump(document, sort_keys=True))
    return path


def test_one_oracle_three_verifier_processes(tmp_path: Path, accounts: Any) -> None:
    from ape import networks

    anvil = start_anvil()
    try:
        with networks.parse_network_choice(anvil.uri) as provider:
            assert enable_time_travel(provider)
            settle_three_rounds(tmp_path, accounts, anvil.uri)
    finally:
        anvil.stop()


def settle_three_rounds(tmp_path: Path, accounts: Any, uri: str) -> None:
    from ape import chain

    spec = TaskSpec(model="tiny", steps=5, eval_limit=40)
    plan = FederationPlan(spec=spec, account="test:1", network=uri, settlement=RULES, oracle=ORACLE_RULES)
    shares = make_task(seed=spec.task_seed).split_non_iid(3, seed=0)
    clients = [accounts[2 + i] for i in range(3)]
    federation = build_federation(
        tmp_path, accounts[0], accounts[1], clients, shares, plan, cache_dir=tmp_path / "cache"
    )
    sdk, settlement = federation.coordinator, federation.settlement
    assert settlement is not None
    oracle_config = write_config(tmp_path / "oracle.yaml", federation.settings, "test:1", {})
    configs = {}
    verifiers = (("a", 6, {"torch_threads": 2}), ("b", 7, {}), ("c", 8, {"strategy": {"name": "median"}}))
    for name, index, rules in verifiers:
        account = accounts[index]
        sdk.token.transfer(account.address, 300 * TOKEN, sender=accounts[0])
        settlement.grant(accounts[0], "VERIFIER_ROLE", account.address)
        settlement.register_verifier(account, RULES.min_verifier_bond)
        configs[name] = write_config(tmp_path / f"{name}.yaml", federation.settings, f"test:{index}", rules)
    other_kernels = {"ATEN_CPU_CAPABILITY": "default"}

    def play(round_number: int) -> None:
        for i in range(3):
            federation.submit(i, federation.train(i, seed=round_number * 10 + i))
        chain.mine()

    # Round 1: proposed by the oracle process, attested by A (other kernels) and B: final.
    play(1)
    [proposed] = run("flb-oracle", oracle_config)
    assert proposed["round"] == 1 and not sdk.round(1).confirmed
    [a1] = run("flb-verifier", configs["a"], env=other_kernels)
    assert (a1["action"], a1["reason"]) == ("attest", WITHIN_PRECISION)
    [b1] = run("flb-verifier", configs["b"])
    assert (b1["action"], b1["reason"]) == ("attest", "")
    assert settlement.proposal(1).final and sdk.latest_confirmed_round == 1
    assert run("flb-verifier", configs["c"]) == []  # decided before C looked

    # Round 2: the oracle's key proposes a result that pays itself.
    play(2)
    inputs = read_round_inputs(sdk, federation.store, 2, spec, start_block=federation.record.block)
    scorer = make_evaluator(spec, tmp_path / "cache")
    rules = settings_for_rounds(federation.settings)
    honest = RoundComputation(inputs, rules, federation.store, scorer).run()
    honest_result = RoundResult.from_request(finalize_request(honest, 3))
    budget = sdk.reward_per_round
    greedy = build_rewards_tree({**honest.report.rewards.cumulative, accounts[1].address: budget})
    forged = RoundResult(
        honest_result.global_model_cid,
        honest_result.report_cid,
        greedy.root,
        budget,
        honest_result.metric_ppm,
        honest_result.epsilon_micros,
    )
    settlement.propose(accounts[1], 2, forged, 3)
    [b2] = run("flb-verifier", configs["b"])  # B: the oracle's kernels
    assert (b2["action"], b2["parts"]) == ("challenge", PART_REWARDS)
    assert b2["reason"] == "the proposed rewards are not the allocation of the reported contributions"
    [a2] = run("flb-verifier", configs["a"], env=other_kernels)
    assert (a2["action"], a2["reason"]) == ("attest", WITHIN_PRECISION)
    assert settlement.bond(accounts[1].address).amount == 0  # the whole finalizer bond
    # B: its verifier bond and challenge bond paid, half the slashed bond and the challenge bond back
    assert sdk.token_balance(accounts[7].address) == (300 - 100 - 100 + 500 + 100) * TOKEN
    replaced = sdk.round(2)
    assert (replaced.rewards_root, replaced.report_cid) == (
        "0x" + honest_result.rewards_root.hex(),
        honest_result.report_cid,
    )
    for client in clients:
        owed = honest.report.rewards.cumulative_of(client.address)
        proof = [bytes.fromhex(p[2:]) for p in honest.report.rewards.proof_of(client.address)]
        sdk.claim(client, owed, proof)
        assert sdk.client(client.address).claimed == owed > 0

    # Round 3: honest (proposed in-process: the slashed oracle must bond again); C challenges.
    play(3)
    sdk.token.transfer(accounts[1].address, RULES.min_finalizer_bond, sender=accounts[0])
    settlement.deposit_bond(accounts[1], RULES.min_finalizer_bond)
    [third] = run("flb-oracle", oracle_config)
    assert third["round"] == 3
    [c3] = run("flb-verifier", configs["c"])
    assert c3["action"] == "challenge"
    [a3] = run("flb-verifier", configs["a"], env=other_kernels)
    [b3] = run("flb-verifier", configs["b"])
    assert (a3["action"], b3["action"]) == ("attest", "attest")
    assert a3["result_hash"] == b3["result_hash"] == "0x" + settlement.proposal(3).result_hash.hex()
    assert settlement.bond(accounts[8].address).amount == 0  # C voted for its own challenge
    assert sdk.latest_confirmed_round == 3 and settlement.proposal(3).final
    balance_c = sdk.token_balance(accounts[8].address)
    assert balance_c == (300 - 100 - 100) * TOKEN  # both of C's bonds are gone
