"""A round laboratory for attack tests: three honest clients' real trained updates (tiny model, bundled
task), a real local store and evaluator, and the real round computation, built once per session.

Attacks that do not need the chain (crafted files, copies, Sybils, store failures, DP noise) run the
round computation directly on these inputs: it is the same function the oracle and `verify` call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flb_dapp.lora.adapter import Adapter
from flb_dapp.lora.codec import encode_adapter
from flb_dapp.rounds import (
    MemoryJournal,
    RoundComputation,
    RoundInputs,
    RoundOutcome,
    RoundSettings,
    UpdateRef,
)
from flb_dapp.storage.base import ContentStore
from flb_dapp.storage.local import LocalStore
from flb_dapp.taskspec import TaskSpec, initial_adapter, make_evaluator, train_config
from flb_dapp.training.trainer import train_client

CONTRACT = "0x" + "c" * 40
HONEST = [f"0x{i:040x}" for i in (0xA1, 0xA2, 0xA3)]
ATTACKERS = [f"0x{i:040x}" for i in (0xE1, 0xE2, 0xE3, 0xE4)]
BUDGET = 1_000_000


@dataclass
class RoundLab:
    spec: TaskSpec
    store: LocalStore
    base: Adapter
    base_cid: str
    scorer: Any
    honest: list[Adapter]
    extra_stores: list[ContentStore] = field(default_factory=list)

    def delta(self, adapter: Adapter) -> dict[str, np.ndarray]:
        return {k: adapter.tensors[k] - self.base.tensors[k] for k in self.base.tensors}

    def adapter(self, client: str, delta: dict[str, np.ndarray], samples: int = 100) -> Adapter:
        tensors = {k: (self.base.tensors[k] + delta[k]).astype(np.float32) for k in self.base.tensors}
        return Adapter(tensors, self.base.metadata.with_(round=1, client=client, num_samples=samples))

    def put(self, data: bytes) -> str:
        return self.store.put_bytes(data)

    def ref(self, adapter: Adapter, samples: int | None = None) -> UpdateRef:
        cid = self.put(encode_adapter(adapter))
        return UpdateRef(
            adapter.metadata.client, cid, adapter.metadata.num_samples if samples is None else samples
        )

    def inputs(self, refs: Sequence[UpdateRef], **extra: Any) -> RoundInputs:
        return RoundInputs(
            CONTRACT, 1337, 1, self.base_cid, list(refs), budget=BUDGET, task=self.spec.to_dict(), **extra
        )

    def run(
        self,
        refs: Sequence[UpdateRef],
        settings: RoundSettings | None = None,
        store: ContentStore | None = None,
        **extra: Any,
    ) -> RoundOutcome:
        computation = RoundComputation(
            self.inputs(refs, **extra),
            settings or RoundSettings(),
            store or self.store,
            self.scorer,
            MemoryJournal(),
        )
        return computation.run()


def build_lab(root: Path) -> RoundLab:
    from flb_dapp.evaluation.task import make_task

    spec = TaskSpec(model="tiny", steps=30, eval_limit=60)
    cache = root / "cache"
    store = LocalStore(root / "store")
    base = initial_adapter(spec, cache)
    base_cid = store.put_bytes(encode_adapter(base))
    shares = make_task(seed=0).split_non_iid(3, seed=0)
    honest = [
        train_client(train_config(spec, cache, seed=i), share, base, client=HONEST[i], round=1).adapter
        for i, share in enumerate(shares)
    ]
    return RoundLab(spec, store, base, base_cid, make_evaluator(spec, cache), honest)


def decisions(outcome: RoundOutcome) -> dict[str, dict[str, Any]]:
    return {d.client: d.model_dump() for d in outcome.report.inputs}
