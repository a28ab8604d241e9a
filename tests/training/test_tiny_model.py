"""The tiny test model: fast to build, deterministic, and shaped as the toolchain notes require."""

from __future__ import annotations

import json
import time
from pathlib import Path

from transformers import AutoConfig, AutoTokenizer

from flb_dapp.evaluation.task import SyntheticTask
from flb_dapp.training.tiny_model import build_tiny_model


def test_config_is_the_tiny_recipe(tiny_model: Path) -> None:
    config = AutoConfig.from_pretrained(tiny_model)
    assert (config.model_type, config.hidden_size, config.num_hidden_layers) == ("llama", 64, 2)
    assert config.tie_word_embeddings is True
    assert config.initializer_range == 0.2


def test_same_seed_same_files_other_seed_other_weights(task: SyntheticTask, tmp_path: Path) -> None:
    started = time.perf_counter()
    a = build_tiny_model(tmp_path / "a", task.texts(), seed=3)
    assert time.perf_counter() - started < 1.0  # warm imports: well under a second
    b = build_tiny_model(tmp_path / "b", task.texts(), seed=3)
    c = build_tiny_model(tmp_path / "c", task.texts(), seed=4)
    for f in sorted(a.iterdir()):
        assert f.read_bytes() == (b / f.name).read_bytes(), f.name
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()
    assert (a / "tokenizer.json").read_bytes() == (c / "tokenizer.json").read_bytes()


def test_tokenizer_has_chat_template_and_special_tokens(tiny_model: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_model)
    text = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|pad|>"
    assert json.loads((tiny_model / "config.json").read_text())["vocab_size"] == len(tok)
    # Every answer letter is one token, so letter log-likelihoods are well defined.
    assert all(len(tok(letter, add_special_tokens=False)["input_ids"]) == 1 for letter in "ABCDEFGHIJ")
