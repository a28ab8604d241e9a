"""Fixtures for the aggregation tests: random client deltas and a lazy mapping that counts reads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping

import numpy as np
import pytest

from flb_dapp.aggregation import ClientUpdate

LAYOUT = {"layer.0.lora_A.weight": (2, 6), "layer.0.lora_B.weight": (6, 2), "layer.1.lora_A.weight": (3,)}


class CountingMapping(Mapping[str, np.ndarray]):
    """A lazy stand-in for a safetensors-backed mapping: counts every tensor read."""

    def __init__(self, tensors: dict[str, np.ndarray]):
        self._tensors = tensors
        self.reads: Counter[str] = Counter()

    def __getitem__(self, key: str) -> np.ndarray:
        self.reads[key] += 1
        return self._tensors[key].copy()

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)


def random_tensors(rng: np.random.Generator, scale: float = 1.0) -> dict[str, np.ndarray]:
    return {k: (rng.standard_normal(shape) * scale).astype(np.float32) for k, shape in LAYOUT.items()}


@pytest.fixture(scope="session")
def make_updates() -> Callable[..., list[ClientUpdate]]:
    """``make_updates(n, seed=0, samples=None)``: n clients "c00".. with random deltas."""

    def make(
        n: int, seed: int = 0, samples: list[int] | None = None, scale: float = 1.0
    ) -> list[ClientUpdate]:
        rng = np.random.default_rng(seed)
        counts = samples if samples is not None else [int(c) for c in rng.integers(1, 100, size=n)]
        return [ClientUpdate(f"c{i:02d}", counts[i], random_tensors(rng, scale)) for i in range(n)]

    return make


@pytest.fixture(scope="session")
def counting_mapping() -> type[CountingMapping]:
    return CountingMapping


def one_key(client: str, values: list[float], num_samples: int = 1) -> ClientUpdate:
    """A client whose delta is a single 1-d tensor: for small hand-checked examples."""
    return ClientUpdate(client, num_samples, {"w": np.asarray(values, dtype=np.float32)})


@pytest.fixture(scope="session")
def single() -> Callable[..., ClientUpdate]:
    return one_key
