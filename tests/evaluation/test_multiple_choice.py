"""Letter log-likelihood evaluation: exact numbers, clean few-shot prompts, fast adapter swaps."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from flb_dapp.evaluation.datasets import MCQuestion
from flb_dapp.evaluation.multiple_choice import Evaluator, evaluate_multiple_choice, select_shots
from flb_dapp.evaluation.prompts import format_question
from flb_dapp.evaluation.task import SyntheticTask
from flb_dapp.exceptions import EvaluationError
from flb_dapp.lora.adapter import Adapter
from flb_dapp.training.lora_init import initial_adapter


class FixedLogits(torch.nn.Module):
    """A stand-in LM whose next-token logits are the same vector everywhere."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.vector = torch.nn.Parameter(logits, requires_grad=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: Any = None, position_ids: Any = None,
                logits_to_keep: int = 0) -> Any:  # fmt: skip
        width = logits_to_keep or input_ids.shape[1]
        return SimpleNamespace(logits=self.vector.expand(input_ids.shape[0], width, -1))


def random_adapter(start: Adapter, seed: int) -> Adapter:
    rng = np.random.default_rng(seed)
    return Adapter(
        {k: rng.normal(0, 0.3, v.shape).astype(np.float32) for k, v in start.tensors.items()}, start.metadata
    )


@pytest.fixture(scope="module")
def evaluator(tiny_model: Path, task: SyntheticTask) -> Evaluator:
    return Evaluator(tiny_model, task.test[:40], batch_size=16)


def test_exact_accuracy_loss_and_per_category(tiny_model: Path, task: SyntheticTask) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_model)
    ids = [tok.convert_tokens_to_ids(letter) for letter in "ABCD"]
    logits = torch.zeros(len(tok))
    logits[ids[0]], logits[ids[1]] = 2.0, 1.0  # A always wins, B second
    questions = task.test[:30]
    result = Evaluator(FixedLogits(logits), questions, tokenizer=tok).evaluate()

    log_z = math.log(math.e**2 + math.e + len(tok) - 2)
    logp = {0: 2 - log_z, 1: 1 - log_z, 2: -log_z, 3: -log_z}
    assert result.n == 30
    assert result.accuracy == sum(q.answer == "A" for q in questions) / 30
    assert result.loss == pytest.approx(-sum(logp[q.answer_index] for q in questions) / 30, rel=1e-6)
    assert result.predictions == ("A",) * 30
    for category in ("diet", "habitat"):
        in_cat = [q for q in questions if q.category == category]
        expected = sum(q.answer == "A" for q in in_cat) / len(in_cat)
        assert result.per_category[category] == (expected, len(in_cat))
    assert result.to_dict()["per_category"]["diet"]["n"] == result.per_category["diet"].n


def test_few_shot_never_contains_the_evaluated_question(tiny_model: Path, task: SyntheticTask) -> None:
    questions = list(task.test[:12])
    twin = MCQuestion("twin", questions[1].question, questions[1].options, "A", 0, questions[1].category)
    dev = [*task.dev, *questions, twin]  # a contaminated dev split: it holds the questions themselves
    ev = Evaluator(tiny_model, questions, dev=dev, k_shot=3)
    for q, prompt in zip(questions, ev.prompts, strict=True):
        assert prompt.count(q.question) == 1  # only as the question being asked
        assert prompt.count("<|im_start|>user") == 4  # three shots + the question
        assert prompt.rstrip().endswith("<|im_start|>assistant")
        shots = select_shots(q, dev, 3)
        assert all(s.question_id != q.question_id and s.question != q.question for s in shots)
        assert all(s.category == q.category for s in shots)  # same category first
        assert all(s in task.dev for s in shots)  # dev order: the real dev split comes first


def test_shot_selection_order() -> None:
    def mk(qid: int, cat: str) -> MCQuestion:
        return MCQuestion(qid, f"q{qid}", ("x", "y"), "A", 0, cat)

    dev = [mk(1, "a"), mk(2, "b"), mk(3, "a"), mk(4, "b")]
    assert [s.question_id for s in select_shots(mk(9, "b"), dev, 3)] == [2, 4, 1]
    assert [s.question_id for s in select_shots(mk(2, "b"), dev, 5)] == [4, 1, 3]
    assert select_shots(mk(9, "a"), dev, 0) == []


def test_results_do_not_depend_on_batching(
    tiny_model: Path, task: SyntheticTask, evaluator: Evaluator
) -> None:
    one = Evaluator(tiny_model, task.test[:40], batch_size=1).evaluate()
    many = evaluator.evaluate()
    assert one.predictions == many.predictions and one.accuracy == many.accuracy
    assert one.loss == pytest.approx(many.loss, abs=1e-5)


def test_adapter_swaps_match_fresh_evaluations(
    tiny_model: Path, task: SyntheticTask, evaluator: Evaluator
) -> None:
    start = initial_adapter(tiny_model, r=4, alpha=8, seed=0)
    a, b = random_adapter(start, 1), random_adapter(start, 2)
    base = evaluator.evaluate()
    first = evaluator.evaluate(a)
    second = evaluator.evaluate(b)
    assert evaluator.evaluate(a) == first  # swapping back gives exactly the same numbers
    off = evaluator.evaluate()  # the adapter can be switched off (through peft: last-bit differences)
    assert off.predictions == base.predictions and off.loss == pytest.approx(base.loss, abs=1e-6)
    assert first != base and second != first
    fresh = evaluate_multiple_choice(tiny_model, task.test[:40], a, batch_size=16)
    assert fresh.predictions == first.predictions and fresh.loss == pytest.approx(first.loss, abs=1e-6)
    # B = 0: the round-0 adapter is the base model.
    init = evaluator.evaluate(start)
    assert init.predictions == base.predictions and init.loss == pytest.approx(base.loss, abs=1e-6)
    # Another LoRA shape is added beside the first, not mixed into it.
    other = random_adapter(initial_adapter(tiny_model, r=2, alpha=2, seed=0, include_mlp=True), 3)
    evaluator.evaluate(other)
    assert evaluator.evaluate(a) == first


def test_plain_prompts_without_a_chat_template(tiny_model: Path, task: SyntheticTask) -> None:
    from transformers import AutoModelForCausalLM

    tok = AutoTokenizer.from_pretrained(tiny_model)
    tok.chat_template = None
    ev = Evaluator(
        AutoModelForCausalLM.from_pretrained(tiny_model), task.test[:4], dev=task.dev, k_shot=1, tokenizer=tok
    )
    assert ev.prompts[0].endswith(f"{format_question(task.test[0])}\nAnswer:")
    assert ev.prompts[0].count("Answer: ") == 1  # the shot's answer
    assert tok.convert_ids_to_tokens(ev.letter_ids) == ["ĠA", "ĠB", "ĠC", "ĠD"]
    assert ev.evaluate().n == 4


def test_long_prompts_drop_shots_first(tiny_model: Path, task: SyntheticTask) -> None:
    full = Evaluator(tiny_model, task.test[:2], dev=task.dev, k_shot=4)
    short = Evaluator(tiny_model, task.test[:2], dev=task.dev, k_shot=4, max_seq_len=130)
    assert all(len(ids) <= 130 for ids in short._ids)
    assert all(len(s) < len(f) for s, f in zip(short._ids, full._ids, strict=True))
    assert short._ids[0][-45:] == full._ids[0][-45:]  # the question itself is kept whole


def test_usage_errors(tiny_model: Path, task: SyntheticTask) -> None:
    with pytest.raises(EvaluationError, match="no questions"):
        Evaluator(tiny_model, [])
    with pytest.raises(EvaluationError, match="dev split"):
        Evaluator(tiny_model, task.test[:2], k_shot=2)
    with pytest.raises(EvaluationError, match="tokenizer"):
        Evaluator(FixedLogits(torch.zeros(4)), task.test[:2])
