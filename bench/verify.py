"""Benchmark: a verifier's recompute of a proposed round against the oracle's own round time.

Run from the repo root: ``.venv/bin/python bench/verify.py``. On Ape's embedded chain with a
settlement (quorum 1), CLIENTS clients train STEPS steps on the tiny model each round; the
oracle processes the round (sync, fetch, validate, aggregate, evaluate, score, report, propose)
and one verifier checks it (reads the inputs, recomputes every step, compares the result hash and
attests), each with its own evaluator (both are long-running services: round 1 pays their model
loads and first event reads, the ratio is the later rounds'). The verifier runs second, so it
finds the updates in the page cache the oracle warmed; on one machine both share the cores.
Target: verifier / oracle <= 1.1. Last line: one JSON object.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLIENTS, ROUNDS, STEPS, TOKEN = 5, 4, 20, 10**18


def main() -> None:
    import torch
    from ape import accounts, chain, networks

    from flb_dapp.chain.settlement import SettlementParameters
    from flb_dapp.evaluation.task import make_task
    from flb_dapp.federation import FederationPlan, build_federation
    from flb_dapp.taskspec import TaskSpec, make_evaluator
    from oracle.pipeline import Oracle
    from oracle.verifier import Verifier

    torch.set_num_threads(1)
    rules = SettlementParameters(1_000 * TOKEN, 100 * TOKEN, 100 * TOKEN, 3_600, 3_600, 3_600, 1, 5_000)
    with (
        tempfile.TemporaryDirectory(prefix="flb-bench-verify-") as tmp,
        networks.parse_network_choice("ethereum:local:test"),
    ):
        root = Path(tmp)
        test = accounts.test_accounts
        spec = TaskSpec(model="tiny", steps=STEPS, eval_limit=200)
        plan = FederationPlan(spec=spec, account="test:1", settlement=rules, oracle={"torch_threads": 1})
        shares = make_task(seed=0).split_non_iid(CLIENTS, seed=0)
        clients = [test[2 + i] for i in range(CLIENTS)]
        federation = build_federation(root, test[0], test[1], clients, shares, plan)
        federation.scorer = make_evaluator(spec, root / "cache")
        oracle = Oracle.for_federation(federation)
        settlement = federation.settlement
        assert settlement is not None
        account = test[9]
        federation.coordinator.token.transfer(account.address, 200 * TOKEN, sender=test[0])
        settlement.grant(test[0], "VERIFIER_ROLE", account.address)
        settlement.register_verifier(account, rules.min_verifier_bond)
        verifier = Verifier(
            federation.settings,
            account=account,
            coordinator=federation.coordinator,
            settlement=settlement,
            store=federation.store,
            start_block=federation.record.block,
            scorer=make_evaluator(spec, root / "cache"),
        )
        oracle_s, verifier_s, actions = [], [], []
        for round_number in range(1, ROUNDS + 1):
            for index in range(CLIENTS):
                federation.submit(index, federation.train(index, seed=round_number * 100 + index))
            chain.mine()
            started = time.perf_counter()
            [_] = oracle.run_once()
            oracle_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            [action] = verifier.run_once()
            verifier_s.append(time.perf_counter() - started)
            actions.append(action.action)
            print(
                f"round {round_number}: oracle {oracle_s[-1]:.2f} s, verifier {verifier_s[-1]:.2f} s "
                f"({action.action}); final: {settlement.proposal(round_number).final}",
                flush=True,
            )
    # Round 1 pays each side's first model load and first full event read: the steady state is
    # the later rounds'.
    later_oracle, later_verifier = statistics.mean(oracle_s[1:]), statistics.mean(verifier_s[1:])
    print(
        json.dumps(
            {
                "task": f"tiny, {CLIENTS} clients x {STEPS} steps, quorum 1, embedded chain",
                "oracle_round_s": [round(x, 3) for x in oracle_s],
                "verifier_round_s": [round(x, 3) for x in verifier_s],
                "actions": actions,
                "verifier_vs_oracle": round(later_verifier / later_oracle, 3),
                "verifier_vs_oracle_round1": round(verifier_s[0] / oracle_s[0], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
