"""Gas used by FLB's transactions on Ape's embedded chain (py-evm; same gas as any EVM node).

Targets: commitUpdate + revealUpdate <= 90,000 together; finalizeRound <= 150,000 and the same for
1, 10 and 100 clients;
claim <= 90,000. The earlier prototype spent 120,859-205,114 gas per upload plus 33,442-50,823 per
client per round to add a score. Each figure is the worst case seen (first use of fresh storage).
Last line: {"register": G, "commitUpdate": G, "revealUpdate": G, "commitAndReveal": G,
"finalizeRound": {"1": G, "10": G, "100": G}, "claim": G}
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


def main() -> None:
    from ape import accounts, networks

    with networks.parse_network_choice("ethereum:local:test"):
        test_accounts = accounts.test_accounts
        deployer, oracle = test_accounts[0], test_accounts[1]
        clients = [test_accounts.generate_test_account() for _ in range(100)]
        for client in clients:
            deployer.transfer(client, 10**18)
        results = {n: measure(n, clients, deployer, oracle) for n in (1, 10, 100)}
    for n, row in results.items():
        print(f"{n:>3} clients: " + ", ".join(f"{k}={v:,}" for k, v in row.items()))
    summary = {
        "register": max(r["register"] for r in results.values()),
        "commitUpdate": max(r["commitUpdate"] for r in results.values()),
        "revealUpdate": max(r["revealUpdate"] for r in results.values()),
        "commitAndReveal": max(r["commitAndReveal"] for r in results.values()),
        "finalizeRound": {str(n): r["finalizeRound"] for n, r in results.items()},
        "claim": max(r["claim"] for r in results.values()),
    }
    targets_met = (
        summary["commitAndReveal"] <= 90_000
        and max(summary["finalizeRound"].values()) <= 150_000
        and len(set(summary["finalizeRound"].values())) == 1
        and summary["claim"] <= 90_000
    )
    print(
        f"targets met: {targets_met} (prototype: 120,859-205,114 per upload + 33,442-50,823 per client score)"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
