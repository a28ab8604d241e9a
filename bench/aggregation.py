"""Benchmark: streaming FedAvg over file-backed adapters, against a plain numpy weighted sum.

Run from the repo root: ``.venv/bin/python bench/aggregation.py``. It writes 20 adapters of ~50 MB
(float32, LoRA-shaped: 256 ``(16, 1536)`` A matrices and as many ``(1536, 16)`` B matrices) as
safetensors files to a temporary directory and opens each lazily through ``safe_open``, as the
oracle does. Both contenders read the same files the same way, one tensor at a time.

What is measured:

* time: best of ``REPEATS`` runs each, interleaved, after one warm-up run of each (so both read from
  the page cache; disk speed is not what is compared).
* memory: ``tracemalloc`` peak of Python-heap allocations during one ``FedAvg.aggregate`` call. This
  counts numpy buffers (numpy reports them to tracemalloc) and the tensors ``safe_open`` returns; it
  does not count the mmap'd file pages the OS caches, which are not the aggregator's memory.
  A non-streaming implementation would peak at 20x here.

The last line printed is one JSON object: ``{"fedavg_vs_numpy": R, "peak_memory_vs_adapter": R}``.
"""

from __future__ import annotations

import gc
import json
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flb_dapp.aggregation import ClientUpdate, FedAvg

NUM_CLIENTS = 20
NUM_MODULES = 256  # LoRA A/B pairs per adapter
RANK, HIDDEN = 16, 1536
REPEATS = 5


class SafetensorsMapping(Mapping[str, np.ndarray]):
    """A lazy adapter: each ``[key]`` reads that one tensor from the file."""

    def __init__(self, path: Path):
        self._file = safe_open(str(path), framework="numpy")
        self._keys = list(self._file.keys())

    def __getitem__(self, key: str) -> np.ndarray:
        return self._file.get_tensor(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def write_adapters(directory: Path) -> tuple[list[Path], int]:
    """Write the clients' adapter deltas, one in memory at a time; return paths and one's size."""
    rng = np.random.default_rng(0)
    paths, nbytes = [], 0
    for client in range(NUM_CLIENTS):
        tensors: dict[str, np.ndarray] = {}
        for module in range(NUM_MODULES):
            prefix = f"base_model.model.layers.{module // 8}.mlp.proj{module % 8}"
            tensors[f"{prefix}.lora_A.weight"] = rng.standard_normal((RANK, HIDDEN), dtype=np.float32)
            tensors[f"{prefix}.lora_B.weight"] = rng.standard_normal((HIDDEN, RANK), dtype=np.float32)
        nbytes = sum(t.nbytes for t in tensors.values())
        path = directory / f"client{client:02d}.safetensors"
        save_file(tensors, str(path))
        paths.append(path)
    return paths, nbytes


def updates_for(paths: list[Path]) -> list[ClientUpdate]:
    return [ClientUpdate(f"0x{i:040x}", 100 + 37 * i, SafetensorsMapping(p)) for i, p in enumerate(paths)]


def run_fedavg(paths: list[Path]) -> dict[str, np.ndarray]:
    return FedAvg().aggregate(updates_for(paths)).delta


def run_numpy(paths: list[Path]) -> dict[str, np.ndarray]:
    """The baseline: sample-weighted sum, same lazy loading, float32, no checks."""
    updates = updates_for(paths)
    total = sum(u.num_samples for u in updates)
    acc: dict[str, np.ndarray] = {}
    for update in updates:
        weight = update.num_samples / total
        for key in update.tensors:
            x = update.tensors[key]
            if key in acc:
                acc[key] += weight * x
            else:
                acc[key] = weight * x
    return acc


def best_time(fn: Callable[[list[Path]], object], paths: list[Path]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn(paths)
    return time.perf_counter() - start


def peak_memory(fn: Callable[[list[Path]], object], paths: list[Path]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        result = fn(paths)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del result
    return peak


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="flb-bench-agg-") as tmp:
        paths, adapter_bytes = write_adapters(Path(tmp))
        print(
            f"{NUM_CLIENTS} adapters x {adapter_bytes / 1e6:.1f} MB ({2 * NUM_MODULES} tensors each) in {tmp}"
        )

        fedavg, reference = run_fedavg(paths), run_numpy(paths)  # warm-up, and a correctness check
        worst = max(float(np.max(np.abs(fedavg[k] - reference[k]))) for k in reference)
        print(f"max |fedavg - numpy| = {worst:.3g}")
        del fedavg, reference

        times: dict[str, list[float]] = {"fedavg": [], "numpy": []}
        for _ in range(REPEATS):
            times["fedavg"].append(best_time(run_fedavg, paths))
            times["numpy"].append(best_time(run_numpy, paths))
        t_fedavg, t_numpy = min(times["fedavg"]), min(times["numpy"])
        print(f"time: FedAvg {t_fedavg:.3f} s, numpy weighted sum {t_numpy:.3f} s (best of {REPEATS})")

        peak_fedavg = peak_memory(run_fedavg, paths)
        peak_numpy = peak_memory(run_numpy, paths)
        print(
            f"tracemalloc peak: FedAvg {peak_fedavg / 1e6:.1f} MB, numpy {peak_numpy / 1e6:.1f} MB, "
            f"one adapter {adapter_bytes / 1e6:.1f} MB"
        )
    print(f"total bench time {time.perf_counter() - started:.1f} s")
    print(
        json.dumps(
            {
                "fedavg_vs_numpy": round(t_fedavg / t_numpy, 3),
                "peak_memory_vs_adapter": round(peak_fedavg / adapter_bytes, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
