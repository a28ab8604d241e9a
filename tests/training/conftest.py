"""Fixtures for the training tests: the bundled task and a tiny model built from it, once per session.

The offline switches (HF_HUB_OFFLINE, HF_DATASETS_OFFLINE) are set by tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from flb_dapp.evaluation.task import SyntheticTask, make_task
from flb_dapp.training.tiny_model import build_tiny_model


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny models train ~4x faster on one thread than on two busy cores."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def task() -> SyntheticTask:
    return make_task(seed=0)


@pytest.fixture(scope="session")
def tiny_model(task: SyntheticTask, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-train"), task.texts(), seed=0)
