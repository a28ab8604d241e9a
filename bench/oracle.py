"""Where an oracle round spends its time, and how that grows with the number of clients.

For 3, 10 and 30 clients on the embedded chain with the tiny model, each client submits a
tiny-model adapter (the shared initial adapter plus a client-specific random update, so the bench
measures the oracle rather than client training); the real oracle pipeline then fetches, validates,
aggregates (FedAvg), evaluates, scores (leave-one-out) and finalizes the round.
Last line: {"3": {"fetch_s": T, "validate_s": T, "aggregate_s": T, "evaluate_s": T, "score_s": T,
"finalize_s": T, "finalize_gas": G}, "10": {...}, "30": {...}}
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

SIZES = (3, 10, 30)


def synthetic_update(base, client: str, round_number: int, seed: int):  # type: ignore[no-untyped-def]
    import numpy as np

    from flb_dapp.lora.adapter import Adapter

    rng = np.random.default_rng(seed)
    tensors = {k: (v + rng.normal(0, 0.01, v.shape)).astype(np.float32) for k, v in base.tensors.items()}
    return Adapter(tensors, base.metadata.with_(round=round_number, client=client, num_samples=50 + seed))


def measure(n: int, work: Path, funder, oracle_account, scorer, spec, cache: Path) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from ape import accounts

    from flb_dapp.evaluation.task import make_task
    from flb_dapp.federation import FederationPlan, build_federation
    from flb_dapp.lora.codec import encode_adapter
    from oracle.pipeline import Oracle

    clients = [accounts.test_accounts.generate_test_account() for _ in range(n)]
    for client in clients:
        funder.transfer(client, 10**17)
    plan = FederationPlan(
        spec=spec, round_duration=3600, reward_per_round=10**21, token_supply=10**24, fund_amount=10**23
    )
    # Each client's "dataset" is one distinct question (only its commitment matters here).
    shares = [[q] for q in make_task(seed=0).train[:n]]
    federation = build_federation(work, funder, oracle_account, clients, shares, plan, cache_dir=cache)
    federation.scorer = scorer
    base = federation.global_adapter()
    entries = []
    for i, client in enumerate(clients):
        cid = federation.store.put_bytes(encode_adapter(synthetic_update(base, client.address, 1, i)))
        entries.append((client, 1, cid, 50 + i))
    federation.coordinator.submit_all(entries)
    oracle = Oracle.for_federation(federation)
    processed = oracle.process_round(1)
    t = processed.timings
    return {
        "fetch_s": round(t["fetch"], 3),
        "validate_s": round(t["validate"], 3),
        "aggregate_s": round(t["aggregate"], 3),
        "evaluate_s": round(t["evaluate"], 3),
        "score_s": round(t["score"], 3),
        "finalize_s": round(t["finalize"], 3),
        "finalize_gas": processed.finalize_gas,
    }


def main() -> None:
    import torch
    from ape import accounts, networks

    from flb_dapp.taskspec import TaskSpec, initial_adapter, make_evaluator

    torch.set_num_threads(1)
    spec = TaskSpec(model="tiny", eval_limit=60)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, networks.parse_network_choice("ethereum:local:test"):
        cache = Path(tmp) / "cache"
        scorer = make_evaluator(spec, cache)
        # NOTE: the first evaluation wraps the model with LoRA layers once; keep it out of the figures.
        scorer.evaluate(initial_adapter(spec, cache))
        funder, oracle_account = accounts.test_accounts[0], accounts.test_accounts[1]
        for n in SIZES:
            work = Path(tmp) / f"n{n}"
            work.mkdir()
            results[str(n)] = measure(n, work, funder, oracle_account, scorer, spec, cache)
            print(f"{n:>2} clients: " + ", ".join(f"{k}={v}" for k, v in results[str(n)].items()), flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
