"""The cloze and letter scores against log-likelihoods computed here by hand.

The hand computation uses only transformers: tokenize the whole text (context + `` option``), run
one plain forward pass over it, and add up ``log_softmax`` of each continuation token at the
position before it. A continuation starts where the tokens of *every* option of the question stop
sharing tokens with the tokenized context (so an option whose first characters merge with the end
of the context is scored from the merge on; the tokens the other options then add before their own
are the same context tokens, the same constant for each). Real ARC questions, the tiny test model,
with and without the chat template.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

from flb_dapp.evaluation.benchmarks import load_benchmark
from flb_dapp.evaluation.cloze import (
    ClozeRequest,
    PrefixCache,
    build_request,
    continuation_logprobs,
    continuation_logprobs_plain,
    shared_prefix_length,
)
from flb_dapp.evaluation.datasets import LETTERS, MCQuestion
from flb_dapp.evaluation.multiple_choice import Evaluator, score_cloze
from flb_dapp.evaluation.prompts import render_prompt
from flb_dapp.taskspec import TaskSpec, model_path
from flb_dapp.training.tiny_model import CHAT_TEMPLATE


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    folder = model_path(TaskSpec(model="tiny"), tmp_path_factory.mktemp("cloze"))
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def arc() -> list[MCQuestion]:
    """Real ARC questions: 3-5 options of different lengths."""
    return [*load_benchmark("arc-easy", limit=4, seed=1), *load_benchmark("arc-challenge", limit=3, seed=1)]


# --- the hand computation -------------------------------------------------------------------------
def context_text(tok: Any, q: MCQuestion, chat: bool) -> str:
    text = f"Question: {q.question}\nAnswer:"
    if not chat:
        return text
    return str(
        tok.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
    )


def encode(tok: Any, text: str) -> list[int]:
    return list(tok(text, add_special_tokens=False)["input_ids"])


@torch.no_grad()
def full_logprobs(model: Any, ids: Sequence[int]) -> torch.Tensor:
    """log p of every next token: row t is the distribution of token t + 1."""
    return torch.log_softmax(model(input_ids=torch.tensor([list(ids)])).logits[0].double(), dim=-1)


def shared_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def hand_scores(model: Any, tok: Any, q: MCQuestion, chat: bool) -> tuple[list[float], list[int]]:
    """(sum of log p of each option's continuation tokens, their token counts)."""
    context = encode(tok, context_text(tok, q, chat))
    wholes = [encode(tok, context_text(tok, q, chat) + " " + option) for option in q.options]
    split = min(shared_length(context, w) for w in wholes)
    sums, counts = [], []
    for whole in wholes:
        logp = full_logprobs(model, whole)
        sums.append(float(sum(logp[t - 1, whole[t]] for t in range(split, len(whole)))))
        counts.append(len(whole) - split)
    return sums, counts


def hand_cloze(model: Any, tok: Any, questions: Sequence[MCQuestion], chat: bool) -> dict[str, Any]:
    correct, correct_norm, losses = [], [], []
    for q in questions:
        sums, counts = hand_scores(model, tok, q, chat)
        per_char = [s / len(" " + o) for s, o in zip(sums, q.options, strict=True)]
        correct.append(int(np.argmax(sums)) == q.answer_index)
        correct_norm.append(int(np.argmax(per_char)) == q.answer_index)
        losses.append(-sums[q.answer_index] / counts[q.answer_index])
    n = len(questions)
    return {
        "accuracy": sum(correct) / n,
        "accuracy_norm": sum(correct_norm) / n,
        "loss": float(np.mean(losses)),
    }


# --- cloze ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("chat", [True, False])
def test_continuation_logprobs_equal_a_plain_forward_pass(
    tiny: tuple[Any, Any], arc: list[MCQuestion], chat: bool
) -> None:
    model, tok = tiny
    requests = [build_request(tok, q, chat) for q in arc]
    shared = PrefixCache.build(model, requests[0].prefix[: shared_prefix_length(requests)], "cpu")
    if chat:
        assert shared is not None and shared.length > 0  # the template's header runs once for all
    for q, request in zip(arc, requests, strict=True):
        want, counts = hand_scores(model, tok, q, chat)
        assert [len(c) for c in request.continuations] == counts
        assert request.characters == tuple(len(" " + o) for o in q.options)
        assert continuation_logprobs(model, request, "cpu") == pytest.approx(want, abs=1e-4)
        assert continuation_logprobs(model, request, "cpu", shared) == pytest.approx(want, abs=1e-4)
        assert continuation_logprobs_plain(model, request, "cpu") == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize("chat", [True, False])
def test_evaluator_cloze_scores_equal_the_hand_computation(
    tiny: tuple[Any, Any], arc: list[MCQuestion], chat: bool
) -> None:
    model, tok = tiny
    result = Evaluator(model, arc, tokenizer=tok, formulation="cloze", chat=chat).evaluate()
    want = hand_cloze(model, tok, arc, chat)
    assert result.n == len(arc)
    assert result.accuracy == want["accuracy"] and result.accuracy_norm == want["accuracy_norm"]
    assert result.loss == pytest.approx(want["loss"], abs=1e-5)
    assert set(result.per_category) == set(result.per_category_norm) == {"arc-easy", "arc-challenge"}


def test_acc_and_acc_norm_pick_by_hand() -> None:
    def request(*characters: int) -> ClozeRequest:
        return ClozeRequest((1,), tuple((7,) * c for c in characters), characters)

    q = MCQuestion("q", "?", ("a", "b", "c"), "C", 2, "x")
    cases = [  # (sums, characters, acc's pick, acc_norm's pick)
        ([-10.0, -12.0, -30.0], (5, 20, 60), 0, 2),  # per char: -2.0, -0.6, -0.5
        ([-3.0, -9.0, -4.0], (2, 4, 2), 0, 0),  # both pick the first
        ([-6.0, -6.0, -8.0], (3, 3, 4), 0, 0),  # ties go to the earlier option
        ([-9.0, -8.0, -12.0], (9, 4, 24), 1, 2),  # per char: -1.0, -2.0, -0.5
    ]
    for sums, characters, pick, pick_norm in cases:
        assert int(np.argmax(sums)) == pick and int(np.argmax(np.divide(sums, characters))) == pick_norm
        result = score_cloze([q], [request(*characters)], [sums])
        assert result.predictions == (LETTERS[pick],)
        assert result.accuracy == (pick == 2) and result.accuracy_norm == (pick_norm == 2)
        assert result.loss == pytest.approx(
            -sums[2] / characters[2]
        )  # per token: one token per character here
    both = score_cloze([q, q], [request(5, 20, 60), request(9, 4, 24)], [cases[0][0], cases[3][0]])
    assert both.accuracy == 0.0 and both.accuracy_norm == 1.0
    assert both.stderr == 0.0 and both.stderr_norm == 0.0


def test_acc_and_acc_norm_disagree_on_the_model_as_by_hand(tiny: tuple[Any, Any]) -> None:
    """A short and a long option: the sum favours the short one, the per-character mean the long one."""
    model, tok = tiny
    base = load_benchmark("arc-easy", limit=1, seed=3)[0]
    long = "the energy that moves from the sun to the plants and animals every day"
    q = MCQuestion("long", base.question, ("ok", long), "B", 1, "arc-easy")
    sums, _ = hand_scores(model, tok, q, chat=True)
    assert sums[0] > sums[1] and sums[1] / len(" " + long) > sums[0] / len(" ok")  # the case is real
    result = Evaluator(model, [q], tokenizer=tok, formulation="cloze", chat=True).evaluate()
    assert result.predictions == ("A",) and result.accuracy == 0.0 and result.accuracy_norm == 1.0
    assert result.predictions_norm == ("B",)


# --- an option that merges with the end of the context --------------------------------------------
@pytest.fixture(scope="module")
def merging_tokenizer(arc: list[MCQuestion]) -> Any:
    """A byte-level BPE that does not split on spaces first, trained so that ``: `` + letters and
    ``\\n`` + space merge: ``Answer:`` + `` Paris`` then tokenizes across the boundary."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = [f"Question: {q.question}\nAnswer: {o}" for q in arc for o in q.options] * 20
    bpe.train_from_iterator([*texts, *["Answer: the\n the"] * 200], trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", chat_template=CHAT_TEMPLATE
    )


@pytest.mark.parametrize("chat", [True, False])
def test_an_option_merged_with_the_context_is_scored_from_the_merge(
    tiny: tuple[Any, Any], merging_tokenizer: Any, arc: list[MCQuestion], chat: bool
) -> None:
    model, tok = tiny[0], merging_tokenizer
    assert len(tok) <= model.config.vocab_size
    q = MCQuestion("merge", arc[0].question, ("the", "then", "Paris", "x"), "A", 0, "arc-easy")
    context = encode(tok, context_text(tok, q, chat))
    whole = encode(tok, context_text(tok, q, chat) + " the")
    assert whole[: len(context)] != context  # the boundary really is crossed
    request = build_request(tok, q, chat)
    assert len(request.prefix) < len(context)  # scored from before the end of the context
    want, counts = hand_scores(model, tok, q, chat)
    assert [len(c) for c in request.continuations] == counts
    assert continuation_logprobs(model, request, "cpu") == pytest.approx(want, abs=1e-4)
    result = Evaluator(model, [q], tokenizer=tok, formulation="cloze", chat=chat).evaluate()
    assert result.predictions == (LETTERS[int(np.argmax(want))],)


# --- letters --------------------------------------------------------------------------------------
def hand_letters(model: Any, tok: Any, q: MCQuestion, chat: bool) -> list[float]:
    """log p of each option's letter at the answer position (softmax over the whole vocabulary)."""
    prompt = render_prompt(tok, q, (), chat)
    ids = encode(tok, prompt)
    letters = []
    for letter in LETTERS[: len(q.options)]:
        with_letter = encode(tok, prompt + ("" if chat else " ") + letter)
        assert with_letter[:-1] == ids  # one token after the prompt
        letters.append(with_letter[-1])
    logp = full_logprobs(model, ids)[-1]
    return [float(logp[i]) for i in letters]


@pytest.mark.parametrize("chat", [True, False])
def test_letter_logprobs_equal_a_hand_log_softmax(
    tiny: tuple[Any, Any], arc: list[MCQuestion], chat: bool
) -> None:
    model, tok = tiny
    hand = [hand_letters(model, tok, q, chat) for q in arc]
    result = Evaluator(model, arc, tokenizer=tok, chat=chat, batch_size=3).evaluate()  # left padding
    assert result.predictions == tuple(LETTERS[int(np.argmax(h))] for h in hand)
    assert result.accuracy == np.mean(
        [int(np.argmax(h)) == q.answer_index for h, q in zip(hand, arc, strict=True)]
    )
    assert result.loss == pytest.approx(
        np.mean([-h[q.answer_index] for h, q in zip(hand, arc, strict=True)]), abs=1e-5
    )
    assert result.accuracy_norm is None and result.stderr_norm is None
    for q, h in zip(arc[:3], hand, strict=False):
        one = Evaluator(model, [q], tokenizer=tok, chat=chat).evaluate()
        assert one.loss == pytest.approx(-h[q.answer_index], abs=1e-5)


def test_long_contexts_keep_their_end_and_too_long_options_are_refused(tiny: tuple[Any, Any]) -> None:
    from flb_dapp.exceptions import EvaluationError

    tok = tiny[1]
    q = MCQuestion("long", "why " * 200, ("yes", "no because " * 5), "A", 0, "x")
    full = build_request(tok, q, chat=False)
    cut = build_request(tok, q, chat=False, max_len=64)
    longest = max(len(c) for c in cut.continuations)
    assert len(cut.prefix) + longest == 64 and cut.prefix == full.prefix[-len(cut.prefix) :]
    assert cut.continuations == full.continuations
    with pytest.raises(EvaluationError, match="leaves no room for the context"):
        build_request(tok, q, chat=False, max_len=longest)
