"""The real federated task: SmolLM2-135M-Instruct, clients that each hold a different real source,
and a held-out benchmark none of them trains on.

Non-IID by origin, the way real data owners differ: each client holds a fixed-size seeded sample of
one source, in the order of :data:`CLIENT_SOURCES` (client 0 SciQ, client 1 OpenBookQA, client 2
CommonsenseQA, client 3 MMLU STEM). The oracle scores ARC (Easy and Challenge test, a seeded
sample) in the cloze formulation, plain text (no chat template), as lm-evaluation-harness scores
it; clients train on the same format (``TaskSpec.eval_format`` -> ``TrainConfig.prompt_format``).

Nothing here trains on ARC: the sources are other benchmarks' validation / dev splits. SciQ's
answer is always its last option in the data's order; the cloze format trains on the answer's
text only, so the order cannot leak.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flb_dapp.evaluation.benchmarks import load_benchmark, mmlu_group, sample_questions
from flb_dapp.evaluation.datasets import MCQuestion
from flb_dapp.exceptions import ConfigError
from flb_dapp.taskspec import SMOLLM2, TaskSpec

REAL = "real"
EVAL_DATA = "arc-easy+arc-challenge"  # the test splits of both, joined, then a seeded sample


@dataclass(frozen=True)
class ClientSource:
    """Where one client's data comes from: benchmark splits, optionally one MMLU group."""

    name: str
    benchmark: str
    splits: tuple[str, ...]
    mmlu_group: str | None = None

    def questions(self) -> list[MCQuestion]:
        out: list[MCQuestion] = []
        for split in self.splits:
            out += load_benchmark(self.benchmark, split=split)
        if self.mmlu_group is not None:
            out = [q for q in out if mmlu_group(q.category) == self.mmlu_group]
        return out


CLIENT_SOURCES: tuple[ClientSource, ...] = (
    ClientSource("sciq", "sciq", ("validation",)),
    ClientSource("openbookqa", "openbookqa", ("validation",)),
    ClientSource("commonsenseqa", "commonsenseqa", ("validation",)),
    ClientSource("mmlu-stem", "mmlu", ("validation", "dev"), mmlu_group="STEM"),  # 475 questions
)


@dataclass(frozen=True)
class RealTaskSettings:
    """The real task's knobs. The defaults are what ``flb simulate --model smollm2 --task real``
    runs (3 clients, 3 rounds): about 13 minutes on 2 busy CPU cores, one torch thread (measured
    there: 3 s a training step of 8 questions, 0.3 s a scored ARC question)."""

    per_client: int = 256  # questions each client holds
    eval_limit: int = 100  # ARC questions the oracle scores each round
    steps: int = 10
    batch_size: int = 8
    learning_rate: float = 1e-3
    max_seq_len: int = 256  # above every source's longest cloze record but 2% of MMLU's
    max_update_norm: float = 100.0


def real_task_spec(seed: int = 0, settings: RealTaskSettings | None = None, model: str = SMOLLM2) -> TaskSpec:
    """The TaskSpec every party agrees on for the real task."""
    s = settings or RealTaskSettings()
    return TaskSpec(
        model=model,
        data=EVAL_DATA,
        task_seed=seed,
        eval_limit=s.eval_limit,
        eval_format="cloze",
        eval_chat=False,
        lora_seed=seed,
        steps=s.steps,
        max_seq_len=s.max_seq_len,
        learning_rate=s.learning_rate,
        batch_size=s.batch_size,
        max_update_norm=s.max_update_norm,
    )


def client_names(clients: int) -> list[str]:
    return [source.name for source in _sources(clients)]


def real_task_shares(clients: int, per_client: int = 256, seed: int = 0) -> list[list[MCQuestion]]:
    """Client ``i``'s share: ``per_client`` questions drawn (seeded) from source ``i``."""
    if per_client < 1:
        raise ConfigError(f"per_client must be >= 1, got {per_client}")
    shares = []
    for source in _sources(clients):
        pool = source.questions()
        if len(pool) < per_client:
            raise ConfigError(f"{source.name} has {len(pool)} questions, fewer than {per_client}")
        shares.append(sample_questions(pool, per_client, seed))
    return shares


def pooled(shares: Sequence[Sequence[MCQuestion]]) -> list[MCQuestion]:
    """Every client's questions together (what a central trainer would hold)."""
    return [q for share in shares for q in share]


def _sources(clients: int) -> tuple[ClientSource, ...]:
    if not 1 <= clients <= len(CLIENT_SOURCES):
        raise ConfigError(f"the real task has 1 to {len(CLIENT_SOURCES)} clients, got {clients}")
    return CLIENT_SOURCES[:clients]
