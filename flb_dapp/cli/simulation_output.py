"""What `flb simulate` leaves in its run folder besides summary.json: each round's report with its
rewards tree beside it, and the plot of accuracy and rewards per round."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flb_dapp.atomic import atomic_write_bytes
from flb_dapp.chain.deployment import TOKEN_DECIMALS
from flb_dapp.merkle import RewardsTree
from flb_dapp.report import RoundReport, canonical_json


def write_report(folder: Path, report: RoundReport, tree: RewardsTree) -> Path:
    """``round-N.json`` and, beside it, ``round-N.rewards-tree.json``: the rewards tree as
    OpenZeppelin's ``StandardMerkleTree.load`` reads it (what claim front ends use)."""
    path = folder / f"round-{report.round}.json"
    atomic_write_bytes(path, report.to_json())
    if tree.amounts:
        atomic_write_bytes(
            folder / f"round-{report.round}.rewards-tree.json", canonical_json(tree.standard_dump())
        )
    return path


def plot_summary(summary: dict[str, Any], path: Path) -> Path:
    """Accuracy per round, and each client's reward per round, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [0] + [r["round"] for r in summary["rounds"]]
    accuracy = [summary["initial_accuracy"]] + [r["accuracy"] for r in summary["rounds"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    left.plot(rounds, accuracy, marker="o", color="#2563eb", linewidth=2)
    left.set(title="Held-out accuracy", xlabel="round", ylabel="accuracy", ylim=(0, 1), xticks=rounds)
    left.grid(alpha=0.3)
    clients = sorted({c for r in summary["rounds"] for c in r["rewards"]} | set(summary["claimed"]))
    width = 0.8 / max(1, len(clients))
    for i, client in enumerate(clients):
        values = [r["rewards"].get(client, 0) / TOKEN_DECIMALS for r in summary["rounds"]]
        xs = [r["round"] + (i - (len(clients) - 1) / 2) * width for r in summary["rounds"]]
        label = client[:8] + ("… (malicious)" if client in summary.get("malicious", []) else "…")
        right.bar(xs, values, width=width, label=label)
    right.set(
        title="Rewards per round (FLBR)",
        xlabel="round",
        ylabel="tokens",
        xticks=[r["round"] for r in summary["rounds"]],
    )
    right.legend(fontsize=7)
    right.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
