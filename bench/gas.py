"""Gas used by FLB's transactions on Ape's embedded chain (py-evm; same gas as any EVM node).

Targets: commitUpdate + revealUpdate <= 90,000 together; finalizeRound <= 150,000 and the same for
1, 10 and 100 clients;
claim <= 90,000. The earlier prototype spent 120,859-205,114 gas per upload plus 33,442-50,823 per
client per round to add a score. Each figure is the worst case seen (first use of fresh storage).
Cohorts (a cohort size K > 0): a round that samples costs one more slot when it opens (in the
finalization before it) and a membership check per commit; measured for K of 10 and 100 clients,
finalizing a round with the cohort's reveals that opens the next sampled round.
Settlement (FLBSettlement): propose (its bookkeeping plus the finalizeRound it forwards), attest,
the deciding attestation (which settles and confirms the round), finalize after the window,
challenge, and the deciding vote of a winning challenge (slash, fund the pool, replace and confirm
the round), with 1 and 100 clients per round: the same figures.
The settlement's figures include commitNoise (the DP noise commitment).
Admission: setAdmitted (allowlist), register with a registration bond (approve not counted),
requestExit and withdrawBond.
Last line: {"register": G, "commitUpdate": G, "revealUpdate": G, "commitAndReveal": G,
"finalizeRound": {"1": G, "10": G, "100": G}, "claim": G,
"cohort": {"<clients>/<K>": {"commitUpdate": G, "revealUpdate": G, "finalizeRound": G}, ...}}
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def cid(content: bytes) -> str:
    from flb_dapp.storage.cid import cid_of_bytes

    return cid_of_bytes(content)


def measure(clients_in_round: int, accounts: list, deployer, oracle) -> dict[str, int]:  # type: ignore[no-untyped-def]
    from flb_dapp.chain.coordinator import Coordinator
    from flb_dapp.chain.deployment import deploy_system
    from flb_dapp.chain.types import FinalizeRequest
    from flb_dapp.merkle import build_rewards_tree

    record = deploy_system(
        deployer,
        initial_model_cid=cid(b"initial"),
        oracle=oracle.address,
        round_duration=3600,
        reward_per_round=10**21,
        token_supply=10**24,
        fund_amount=10**23,
    )
    sdk = Coordinator(record.coordinator, record.block)
    clients = accounts[:clients_in_round]
    register_gas: list[int] = []
    commit_gas: list[int] = []
    reveal_gas: list[int] = []
    for i, client in enumerate(clients):
        register_gas.append(sdk.register(client, hashlib.sha256(b"data %d" % i).digest()).gas_used)
    reveals = []
    for i, client in enumerate(clients):
        pending, receipt = sdk.commit_update(client, 1, cid(b"update %d" % i), 100 + i)
        commit_gas.append(receipt.gas_used)
        reveals.append((client, pending))
    for client, pending in reveals:  # the last commit closed the commit phase
        reveal_gas.append(sdk.reveal_update(client, pending).gas_used)
    submit_gas = [c + r for c, r in zip(commit_gas, reveal_gas, strict=True)]
    # The same round budget split among however many clients: identical calldata size, so any
    # difference in finalize gas would come from the number of clients itself.
    budget = 10**20
    shares = [budget // len(clients)] * len(clients)
    shares[-1] += budget - sum(shares)
    tree = build_rewards_tree({c.address: share for c, share in zip(clients, shares, strict=True)})
    request = FinalizeRequest(
        1, cid(b"global"), cid(b"report"), tree.root, sum(tree.amounts.values()), 0.6125, 1.25
    )
    finalize_gas = sdk.finalize_round(oracle, request).gas_used
    claim_gas = [
        sdk.claim(c, tree.amounts[c.address], tree.proofs[c.address]).gas_used
        for c in clients[: min(5, len(clients))]
    ]
    return {
        "register": max(register_gas),
        "commitUpdate": max(commit_gas),
        "revealUpdate": max(reveal_gas),
        "commitAndReveal": max(submit_gas),
        "finalizeRound": finalize_gas,
        "claim": max(claim_gas),
    }


def measure_cohort(population: int, size: int, accounts: list, deployer, oracle) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Gas of a sampled round: ``population`` registered in round 1, round 2 draws ``size``."""
    from flb_dapp.chain.coordinator import Coordinator
    from flb_dapp.chain.deployment import deploy_system
    from flb_dapp.chain.types import FinalizeRequest
    from flb_dapp.merkle import build_rewards_tree

    record = deploy_system(
        deployer,
        initial_model_cid=cid(b"initial"),
        oracle=oracle.address,
        round_duration=3600,
        reward_per_round=10**21,
        token_supply=10**24,
        fund_amount=10**23,
        cohort_size=size,
    )
    sdk = Coordinator(record.coordinator, record.block)
    clients = accounts[:population]
    for i, client in enumerate(clients):
        sdk.register(client, hashlib.sha256(b"cohort data %d" % i).digest())
    _run_out(sdk, 1)
    sdk.finalize_round(oracle, FinalizeRequest(1, cid(b"g1"), cid(b"r1"), b"\x00" * 32, 0, 0.5))
    members = set(sdk.cohort_members(2))
    entries = [c for c in clients if c.address in members]
    commits = [sdk.commit_update(c, 2, cid(b"cohort update %d" % i), 100 + i) for i, c in enumerate(entries)]
    reveal_gas = [
        sdk.reveal_update(c, pending).gas_used for c, (pending, _) in zip(entries, commits, strict=True)
    ]
    budget = 10**20
    shares = [budget // len(entries)] * len(entries)
    shares[-1] += budget - sum(shares)
    tree = build_rewards_tree({c.address: share for c, share in zip(entries, shares, strict=True)})
    request = FinalizeRequest(
        2, cid(b"global"), cid(b"report"), tree.root, sum(tree.amounts.values()), 0.6125, 1.25
    )
    return {
        "commitUpdate": max(receipt.gas_used for _, receipt in commits),
        "revealUpdate": max(reveal_gas),
        "finalizeRound": sdk.finalize_round(oracle, request).gas_used,  # opens sampled round 3
    }


def _run_out(sdk, round_number: int) -> None:  # type: ignore[no-untyped-def]
    """Mine past the round's reveal window (a round nobody submitted to)."""
    from ape import chain

    info = sdk.round(round_number)
    chain.mine(deltatime=max(info.reveal_deadline - chain.pending_timestamp, 0) + 1)


SETTLEMENT_BOND = 10**21


def settle_round(sdk, clients, round_number: int, budget: int):  # type: ignore[no-untyped-def]
    """Every client submits in ``round_number``; returns the honest result for it."""
    from flb_dapp.chain.settlement import RoundResult
    from flb_dapp.merkle import build_rewards_tree

    updates = [cid(b"update %d %d" % (round_number, i)) for i in range(len(clients))]
    sdk.submit_all(
        [
            (c, round_number, update, 100 + i)
            for i, (c, update) in enumerate(zip(clients, updates, strict=True))
        ]
    )
    shares = [budget // len(clients)] * len(clients)
    shares[-1] += budget - sum(shares)
    cumulative = {c.address: share * round_number for c, share in zip(clients, shares, strict=True)}
    tree = build_rewards_tree(cumulative)
    global_cid, report_cid = cid(b"global %d" % round_number), cid(b"report %d" % round_number)
    return RoundResult(global_cid, report_cid, tree.root, budget, 612_500, 0)


def measure_settlement(clients_in_round, accounts, deployer, oracle, staff) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Gas of the settlement's transactions with ``clients_in_round`` clients in every round."""
    from dataclasses import replace

    from flb_dapp.chain.coordinator import Coordinator
    from flb_dapp.chain.deployment import deploy_system
    from flb_dapp.chain.settlement import PART_REWARDS, Settlement, SettlementParameters

    bond = SETTLEMENT_BOND
    parameters = SettlementParameters(bond, bond, bond, 3600, 3600, 3600, 2, 5_000)
    record = deploy_system(
        deployer,
        initial_model_cid=cid(b"initial"),
        oracle=oracle.address,
        round_duration=3600,
        reward_per_round=10**21,
        token_supply=10**24,
        fund_amount=10**23,
        settlement=parameters,
    )
    sdk = Coordinator(record.coordinator, record.block)
    settlement = Settlement(record.settlement, record.block)
    verifiers, challenger = staff[:2], staff[2]
    for member in [oracle, *staff]:
        sdk.token.transfer(member.address, 10 * SETTLEMENT_BOND, sender=deployer)
    settlement.deposit_bond(oracle, SETTLEMENT_BOND)
    for verifier in verifiers:
        settlement.grant(deployer, "VERIFIER_ROLE", verifier.address)
        settlement.register_verifier(verifier, SETTLEMENT_BOND)
    clients = accounts[:clients_in_round]
    for i, client in enumerate(clients):
        sdk.register(client, hashlib.sha256(b"data %d" % i).digest())
    n = len(clients)
    gas: dict[str, int] = {}
    # The DP noise commitment, made while round 1's commit phase runs.
    gas["commitNoise"] = settlement.commit_noise(oracle, 1, hashlib.sha256(b"noise secret").digest()).gas_used
    # Round 1: early finality, the second attestation decides, settles and confirms it.
    first = settle_round(sdk, clients, 1, 10**20)
    gas["propose"] = settlement.propose(oracle, 1, first, n).gas_used
    gas["attest"] = settlement.attest(verifiers[0], 1, settlement.hash_of(1, first)).gas_used
    gas["attestDeciding"] = settlement.attest(verifiers[1], 1, settlement.hash_of(1, first)).gas_used
    # Round 2: final after its window (round 3's clients submit meanwhile: training goes on).
    second = settle_round(sdk, clients, 2, 10**20)
    settlement.propose(oracle, 2, second, n)
    third = settle_round(sdk, clients, 3, 10**20)
    from ape import chain

    chain.mine(deltatime=parameters.challenge_window)
    gas["finalize"] = settlement.finalize(challenger, 2).gas_used
    # Round 3: the proposer pays itself; a challenge wins and replaces the round.
    from flb_dapp.merkle import build_rewards_tree

    stolen = build_rewards_tree({oracle.address: 10**20})
    settlement.propose(oracle, 3, replace(third, rewards_root=stolen.root), n)
    gas["challenge"] = settlement.challenge(challenger, 3, third, PART_REWARDS).gas_used
    settlement.attest(verifiers[0], 3, settlement.hash_of(3, third))
    gas["resolve"] = settlement.attest(verifiers[1], 3, settlement.hash_of(3, third)).gas_used
    return gas


def measure_admission(accounts: list, deployer, oracle) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Gas of an allowlist deployment with a bond: admit, register (locks the bond), exit, withdraw."""
    from ape import chain

    from flb_dapp.chain.admission import AdmissionRules
    from flb_dapp.chain.coordinator import Coordinator
    from flb_dapp.chain.deployment import deploy_system

    record = deploy_system(
        deployer,
        initial_model_cid=cid(b"initial"),
        oracle=oracle.address,
        reward_per_round=10**21,
        token_supply=10**24,
        fund_amount=10**23,
        admission=AdmissionRules("allowlist", 10**19, 60),
    )
    sdk = Coordinator(record.coordinator, record.block)
    client = accounts[0]
    sdk.token.transfer(client.address, 10**19, sender=deployer)
    sdk.lock_bond_allowance(client)
    admitted = sdk.set_admitted(deployer, client.address).gas_used
    registered = sdk.register(client, hashlib.sha256(b"bonded data").digest()).gas_used
    exited = sdk.request_exit(client).gas_used
    chain.mine(deltatime=61)
    withdrawn = sdk.withdraw_bond(client).gas_used
    return {"setAdmitted": admitted, "register": registered, "requestExit": exited, "withdrawBond": withdrawn}


def main() -> None:
    from ape import accounts, networks

    with networks.parse_network_choice("ethereum:local:test"):
        test_accounts = accounts.test_accounts
        deployer, oracle = test_accounts[0], test_accounts[1]
        clients = [test_accounts.generate_test_account() for _ in range(100)]
        for client in clients:
            deployer.transfer(client, 10**18)
        results = {n: measure(n, clients, deployer, oracle) for n in (1, 10, 100)}
        cohorts = {
            f"{n}/{k}": measure_cohort(n, k, clients, deployer, oracle) for n, k in ((10, 3), (100, 10))
        }
        staff = [test_accounts[i] for i in (2, 3, 4)]
        settlement = {n: measure_settlement(n, clients, deployer, oracle, staff) for n in (1, 100)}
        admission = measure_admission(clients[:1], deployer, oracle)
    for n, row in results.items():
        print(f"{n:>3} clients: " + ", ".join(f"{k}={v:,}" for k, v in row.items()))
    for key, row in cohorts.items():
        print(f"cohort {key:>6}: " + ", ".join(f"{k}={v:,}" for k, v in row.items()))
    for n, row in settlement.items():
        print(f"settlement, {n:>3} clients: " + ", ".join(f"{k}={v:,}" for k, v in row.items()))
    print("admission (allowlist, bonded): " + ", ".join(f"{k}={v:,}" for k, v in admission.items()))
    summary = {
        "register": max(r["register"] for r in results.values()),
        "commitUpdate": max(r["commitUpdate"] for r in results.values()),
        "revealUpdate": max(r["revealUpdate"] for r in results.values()),
        "commitAndReveal": max(r["commitAndReveal"] for r in results.values()),
        "finalizeRound": {str(n): r["finalizeRound"] for n, r in results.items()},
        "claim": max(r["claim"] for r in results.values()),
        "cohort": cohorts,
        "settlement": {str(n): row for n, row in settlement.items()},
        "admission": admission,
    }
    targets_met = (
        summary["commitAndReveal"] <= 90_000
        and max(summary["finalizeRound"].values()) <= 150_000
        and len(set(summary["finalizeRound"].values())) == 1
        and summary["claim"] <= 90_000
        and settlement[1] == settlement[100]  # nothing the settlement does grows with the clients
    )
    print(
        f"targets met: {targets_met} (prototype: 120,859-205,114 per upload + 33,442-50,823 per client score)"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
