"""Training on the cloze format: the records carry exactly the context and the answer text that the
cloze evaluator scores, and the task's eval_format/eval_chat reach the trainer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flb_dapp.evaluation.cloze import build_request, render_context
from flb_dapp.evaluation.datasets import MCQuestion
from flb_dapp.evaluation.prompts import cloze_record, prompt_completion_record
from flb_dapp.evaluation.task import SyntheticTask
from flb_dapp.exceptions import ConfigError
from flb_dapp.taskspec import TaskSpec, train_config
from flb_dapp.training.lora_init import initial_adapter
from flb_dapp.training.models import load_tokenizer
from flb_dapp.training.trainer import TrainConfig, build_sft_trainer, sft_config, to_records, train_client


@pytest.fixture(scope="module")
def tokenizer(tiny_model: Path) -> Any:
    return load_tokenizer(str(tiny_model))


@pytest.mark.parametrize("chat", [True, False])
def test_a_cloze_record_is_the_evaluators_context_and_the_answer_text(
    tokenizer: Any, task: SyntheticTask, chat: bool
) -> None:
    questions = task.train[:6]
    records = to_records(questions, chat, tokenizer, "cloze")
    for q, record in zip(questions, records, strict=True):
        assert record == {
            "prompt": render_context(tokenizer, q, chat),
            "completion": f" {q.options[q.answer_index]}",
        }
        assert record == cloze_record(tokenizer, q, chat)
    assert records[0]["prompt"].startswith("<|") is chat  # the chat template's turns, or plain text


def test_letters_records_stay_the_default(tokenizer: Any, task: SyntheticTask) -> None:
    questions = task.train[:4]
    for chat in (True, False):
        assert to_records(questions, chat) == [prompt_completion_record(q, chat) for q in questions]
        assert to_records(questions, chat, tokenizer) == to_records(questions, chat)
    with pytest.raises(ConfigError, match="tokenizer"):
        to_records(questions, False, None, "cloze")
    with pytest.raises(ConfigError, match="prompt_format"):
        TrainConfig(model="m", prompt_format="free text")


@pytest.mark.parametrize("chat", [True, False])
def test_trl_trains_on_the_tokens_the_evaluator_scores(
    tiny_model: Path, tokenizer: Any, task: SyntheticTask, chat: bool, tmp_path: Path
) -> None:
    """trl's tokenized sequence is the evaluator's prefix + the answer's continuation (+ EOS), and
    its labels (the loss) are exactly the continuation and the EOS."""
    from transformers import AutoModelForCausalLM

    questions: list[MCQuestion] = task.train[:8]
    config = TrainConfig(model=str(tiny_model), steps=1, max_seq_len=512, prompt_format="cloze", chat=chat)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    args = sft_config(config, str(tmp_path), "cpu", checkpointing=False)
    trainer = build_sft_trainer(model, tokenizer, to_records(questions, chat, tokenizer, "cloze"), args)
    for q, row in zip(questions, trainer.train_dataset, strict=True):
        request = build_request(tokenizer, q, chat)
        scored = [*request.prefix, *request.continuations[q.answer_index]]
        answer = [*request.continuations[q.answer_index], tokenizer.eos_token_id]
        assert row["input_ids"] == [*scored, tokenizer.eos_token_id]
        assert row["labels"] == [-100] * len(request.prefix) + answer


def test_the_task_format_reaches_the_trainer(tiny_model: Path, tmp_path: Path) -> None:
    letters = train_config(TaskSpec(), tmp_path)
    assert (letters.prompt_format, letters.chat) == ("letters", None)  # unchanged defaults
    cloze = train_config(TaskSpec(eval_format="cloze", eval_chat=False), tmp_path)
    assert (cloze.prompt_format, cloze.chat) == ("cloze", False)


def test_a_client_trains_on_cloze_records(tiny_model: Path, task: SyntheticTask) -> None:
    start = initial_adapter(tiny_model, r=4, alpha=8, seed=0)
    config = TrainConfig(
        model=str(tiny_model), steps=3, r=4, alpha=8, batch_size=4, max_seq_len=128, prompt_format="cloze"
    )
    result = train_client(config, task.train[:16], start)
    assert result.metrics["steps"] == 3 and np.isfinite(result.metrics["train_loss"])
    assert any(not np.array_equal(result.adapter.tensors[k], start.tensors[k]) for k in start.tensors)
