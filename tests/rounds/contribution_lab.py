"""A round whose scorer's loss is a known function of which clients' updates are in the model.

Client ``i``'s delta is the unit vector ``e_i`` (one entry of one LoRA matrix), so every weighted
mean of a coalition's deltas is positive exactly on the coalition's entries: the scorer reads the
coalition back from the adapter it is handed and returns the loss the test chose for it. Everything
else is the real round computation: local store, codec, validation, strategies, rewards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flb_dapp.evaluation.multiple_choice import EvalResult
from flb_dapp.lora.adapter import Adapter, AdapterMetadata
from flb_dapp.lora.codec import encode_adapter
from flb_dapp.rounds import MemoryJournal, RoundComputation, RoundInputs, RoundSettings, UpdateRef
from flb_dapp.storage.local import LocalStore
from flb_dapp.taskspec import TaskSpec

KEY_A = "base_model.model.layers.0.self_attn.q_proj.lora_A.weight"
KEY_B = "base_model.model.layers.0.self_attn.q_proj.lora_B.weight"
SHAPE_A = (2, 8)  # 16 entries: room for 16 clients
META = AdapterMetadata(base_model="synthetic", r=2, lora_alpha=4, target_modules=("q_proj",))
CLIENTS = [f"0x{i:040x}" for i in range(0xA1, 0xB1)]
BUDGET = 1_000_000
#: Free riders (zero deltas) must pass validation for the score step's own rule to be seen.
TASK = TaskSpec(min_update_norm=0.0).to_dict()

Loss = Callable[[frozenset[int]], float]


def base_adapter() -> Adapter:
    tensors = {KEY_A: np.full(SHAPE_A, 0.5, np.float32), KEY_B: np.zeros((8, 2), np.float32)}
    return Adapter(tensors, META)


def unit_delta(index: int | None, scale: float = 1.0) -> dict[str, np.ndarray]:
    """``scale * e_index`` (``None``: the zero delta)."""
    a = np.zeros(SHAPE_A, np.float32)
    if index is not None:
        a.flat[index] = scale
    return {KEY_A: a, KEY_B: np.zeros((8, 2), np.float32)}


@dataclass
class CoalitionScorer:
    """loss = ``loss_of(members)``, where members are the entries the adapter moved up from the base."""

    loss_of: Loss
    calls: list[frozenset[int]] = field(default_factory=list)

    def evaluate(self, adapter: Adapter | None = None) -> EvalResult:
        base = base_adapter().tensors[KEY_A]
        moved = (adapter.tensors[KEY_A] - base).ravel() if adapter is not None else np.zeros(base.size)
        members = frozenset(int(i) for i in np.flatnonzero(moved > 1e-6))
        self.calls.append(members)
        return EvalResult(accuracy=0.5, loss=self.loss_of(members), n=10)


@dataclass
class ContributionLab:
    root: Path
    store: LocalStore = field(init=False)
    base_cid: str = field(init=False)

    def __post_init__(self) -> None:
        self.store = LocalStore(self.root / "store")
        self.base_cid = self.store.put_bytes(encode_adapter(base_adapter()))

    def ref(
        self, client: str, delta: dict[str, np.ndarray], round_number: int = 1, samples: int = 100
    ) -> UpdateRef:
        base = base_adapter().tensors
        tensors = {k: (base[k] + delta[k]).astype(np.float32) for k in base}
        adapter = Adapter(tensors, META.with_(round=round_number, client=client, num_samples=samples))
        return UpdateRef(client, self.store.put_bytes(encode_adapter(adapter)), samples)

    def players(self, n: int, round_number: int = 1) -> list[UpdateRef]:
        return [self.ref(CLIENTS[i], unit_delta(i), round_number) for i in range(n)]

    def computation(
        self,
        refs: Sequence[UpdateRef],
        scorer: CoalitionScorer,
        settings: RoundSettings | None = None,
        round_number: int = 1,
        journal: MemoryJournal | None = None,
    ) -> RoundComputation:
        inputs = RoundInputs(
            "0x" + "c" * 40, 1337, round_number, self.base_cid, list(refs), budget=BUDGET, task=TASK
        )
        return RoundComputation(
            inputs, settings or RoundSettings(), self.store, scorer, journal or MemoryJournal()
        )

    def accept_all(self, refs: Sequence[UpdateRef], scorer: CoalitionScorer, **kwargs: Any) -> MemoryJournal:
        """A journal whose validate step accepted every update: as if screening had missed the copies."""
        journal = MemoryJournal()
        self.computation(refs, scorer, journal=journal, **kwargs).result("validate")
        for decision in journal.results["validate"]["decisions"]:
            decision["accepted"], decision["reason"] = True, ""
        return journal


@dataclass
class BatchingScorer(CoalitionScorer):
    """A CoalitionScorer that takes batches the way the training pool's scorer does; ``batches``
    records each batch's size."""

    parallelism: int = 3
    batches: list[int] = field(default_factory=list)

    def evaluate_many(self, adapters: list[Adapter | None]) -> list[EvalResult]:
        self.batches.append(len(adapters))
        return [self.evaluate(adapter) for adapter in adapters]
