"""Verifiers on a federation with a settlement (embedded chain, one process): the oracle proposes,
two verifiers recompute each round with the round computation; an honest round becomes final by
their attestations; a round whose proposal pays the oracle's own key is challenged with the part
that differs, the second verifier sides with the challenge, the oracle's bond is slashed and the
round is replaced by the honest result, whose rewards the clients then claim. The explorer's
index shows each state on the way (proposed, attested k/n, challenged, final), the bonds and the
slash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flb_dapp.chain.settlement import PART_REWARDS, RoundResult, SettlementParameters, result_hash
from flb_dapp.evaluation.task import make_task
from flb_dapp.federation import FederationPlan, build_federation
from flb_dapp.merkle import build_rewards_tree
from flb_dapp.rounds import RoundComputation
from flb_dapp.taskspec import TaskSpec, make_evaluator
from oracle.pipeline import Oracle, finalize_request
from oracle.verifier import Verifier

pytestmark = pytest.mark.slow
TOKEN = 10**18
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


def explored(indexer: Any, round_number: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the round's settlement state, the contract's settlement block) as the API serves them."""
    from flb_api import crud

    indexer.sync()
    conn = indexer.db.reader()
    round_view, contract = crud.get_round(conn, round_number), crud.contract(conn)
    assert round_view is not None and contract is not None
    return round_view["settlement"], contract["settlement"]


def bonded_verifiers(federation: Any, accounts: Any, spec: TaskSpec, cache: Path) -> list[Verifier]:
    """accounts[6] and [7] as verifiers of ``federation``'s settlement: funded with 200 tokens by
    the admin (accounts[0]), granted the role, bonded, each with its own evaluator."""
    sdk, settlement = federation.coordinator, federation.settlement
    verifiers = []
    for account in (accounts[6], accounts[7]):
        sdk.token.transfer(account.address, 200 * TOKEN, sender=accounts[0])
        settlement.grant(accounts[0], "VERIFIER_ROLE", account.address)
        settlement.register_verifier(account, RULES.min_verifier_bond)
        verifiers.append(
            Verifier(
                federation.settings,
                account=account,
                coordinator=sdk,
                settlement=settlement,
                store=federation.store,
                start_block=federation.record.block,
                scorer=make_evaluator(spec, cache),
            )
        )
    return verifiers


def play_round(federation: Any, round_number: int) -> None:
    for index in range(len(federation.clients)):
        federation.submit(index, federation.train(index, seed=round_number * 10 + index))


def test_verifiers_attest_an_honest_round_and_overturn_a_self_paying_one(
    tmp_path: Path, accounts: Any, chain: Any
) -> None:
    spec = TaskSpec(model="tiny", steps=5, eval_limit=40)
    plan = FederationPlan(
        spec=spec,
        account="test:1",
        settlement=RULES,
        oracle={"strategy": {"name": "fedavg"}, "torch_threads": 1},
    )
    shares = make_task(seed=spec.task_seed).split_non_iid(3, seed=0)
    clients = [accounts[2 + i] for i in range(3)]
    federation = build_federation(tmp_path, accounts[0], accounts[1], clients, shares, plan)
    federation.scorer = make_evaluator(spec, tmp_path / "cache")
    sdk, settlement, oracle = federation.coordinator, federation.settlement, Oracle.for_federation(federation)
    assert settlement is not None and settlement.bond(accounts[1].address).amount == RULES.min_finalizer_bond
    verifiers = bonded_verifiers(federation, accounts, spec, tmp_path / "cache")

    from flb_api.core.db import Database
    from flb_api.indexer import Indexer

    indexer = Indexer(
        Database(tmp_path / "index.sqlite"), sdk, federation.store, start_block=federation.record.block
    )

    # Round 1, honest: proposed, attested by both, final; its rewards become claimable.
    play_round(federation, 1)
    [first] = oracle.run_once()
    assert sdk.round(1).finalized and not sdk.round(1).confirmed and sdk.latest_confirmed_round == 0
    state, overview = explored(indexer, 1)
    assert (state["state"], state["attestations"], state["quorum"]) == ("proposed", 0, 2)
    assert state["proposer"] == accounts[1].address and state["challenger"] == ""
    assert (overview["quorum"], overview["final_round"], overview["slashes"]) == (2, 0, [])
    assert {(b["account"], b["role"], b["amount"]) for b in overview["bonds"]} == {
        (accounts[1].address, "finalizer", str(RULES.min_finalizer_bond)),
        (accounts[6].address, "verifier", str(RULES.min_verifier_bond)),
        (accounts[7].address, "verifier", str(RULES.min_verifier_bond)),
    }
    expected = first.rewards_root
    [attest_a] = verifiers[0].run_once()
    assert (attest_a.action, attest_a.reason) == ("attest", "")
    assert attest_a.result_hash == "0x" + settlement.proposal(1).result_hash.hex()
    state, _ = explored(indexer, 1)
    assert (state["state"], state["attestations"], state["result_hash"]) == (
        "attested",
        1,
        attest_a.result_hash,
    )
    [attest_b] = verifiers[1].run_once()  # the quorum: decided, and B finalizes what is ready
    assert attest_b.action == "attest" and settlement.proposal(1).final
    state, overview = explored(indexer, 1)
    assert (state["state"], overview["final_round"]) == ("final", 1)
    assert sdk.latest_confirmed_round == 1 and sdk.round(1).rewards_root == expected
    assert verifiers[0].run_once() == []  # nothing left to check

    # Round 2: the oracle computes the honest round, then proposes one that pays its own key.
    play_round(federation, 2)
    chain.mine(deltatime=1)
    from flb_dapp.audit import read_round_inputs

    inputs = read_round_inputs(sdk, federation.store, 2, spec, start_block=federation.record.block)
    honest = RoundComputation(inputs, oracle.round_settings, federation.store, federation.scorer).run()
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
    [challenge] = verifiers[0].run_once()
    assert (challenge.action, challenge.parts) == ("challenge", PART_REWARDS)
    parent = settlement.proposal(2).parent_hash
    assert challenge.result_hash == "0x" + result_hash(2, parent, honest_result).hex()
    assert settlement.challenge_info(2).open and settlement.proposal(2).challenge_votes == 1  # its own vote
    state, _ = explored(indexer, 2)
    assert (state["state"], state["challenger"], state["challenge_votes"]) == (
        "challenged",
        accounts[6].address,
        1,
    )
    pool = sdk.reward_totals
    [sided] = verifiers[1].run_once()
    assert (sided.action, sided.result_hash) == ("attest", challenge.result_hash)
    # The whole finalizer bond is slashed: half to the challenger (with its challenge bond back),
    # half to the reward pool.
    assert settlement.bond(accounts[1].address).amount == 0
    assert sdk.token_balance(accounts[6].address) == (200 - 100 - 100 + 500 + 100) * TOKEN
    assert sdk.reward_totals[0] == pool[0] + 500 * TOKEN
    assert sdk.round(2).rewards_root == "0x" + honest_result.rewards_root.hex()
    state, overview = explored(indexer, 2)
    assert state["state"] == "final"  # the verifier that decided it also finalized it
    assert [(s["account"], s["round"], s["amount"]) for s in overview["slashes"]] == [
        (accounts[1].address, 2, str(RULES.min_finalizer_bond))
    ]
    assert {b["account"]: b["amount"] for b in overview["bonds"]}[accounts[1].address] == "0"
    chain.mine(deltatime=RULES.challenge_window + 1)
    settlement.finalize_ready(accounts[6], sdk.now())
    assert sdk.latest_confirmed_round == 2
    for client in clients:
        owed = honest.report.rewards.cumulative_of(client.address)
        proof = [bytes.fromhex(p[2:]) for p in honest.report.rewards.proof_of(client.address)]
        sdk.claim(client, owed, proof)
        assert sdk.client(client.address).claimed == owed > 0

    # Round 3 ran out with no update while round 2 was decided; nobody votes in time: past its
    # window the proposal is no longer open to a vote, and the verifier's tick finalizes it instead.
    sdk.token.transfer(accounts[1].address, RULES.min_finalizer_bond, sender=accounts[0])
    settlement.deposit_bond(accounts[1], RULES.min_finalizer_bond)  # slashed: it bonds again
    [third] = oracle.run_once()
    assert third.round == 3
    chain.mine(deltatime=RULES.challenge_window + 1)
    assert verifiers[0].open_rounds() == [] and verifiers[0].run_once() == []
    assert settlement.proposal(3).final and sdk.latest_confirmed_round == 3
    assert sdk.round(3).rewards_root == third.rewards_root
