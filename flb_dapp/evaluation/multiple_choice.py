"""Multiple-choice accuracy and held-out loss by the log-likelihood of the option letters.

For each question the model reads the prompt (k-shot examples from a separate dev split, then the
question) and we compare the log-probabilities of the letters ``A``, ``B``, ... at the answer
position: the most likely letter is the prediction (no sampling, no generation, deterministic), and
``-log p(correct letter)`` (softmax over the whole vocabulary) is the question's loss.

:class:`Evaluator` loads the base model and tokenizes the prompts once, then swaps adapters by
copying their weights into the LoRA layers, because the oracle scores many adapters per round.
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flb_dapp.evaluation.cloze import (
    ClozeRequest,
    PrefixCache,
    build_request,
    continuation_logprobs,
    shared_prefix_length,
)
from flb_dapp.evaluation.datasets import LETTERS, MCQuestion
from flb_dapp.evaluation.prompts import has_chat_template, render_prompt
from flb_dapp.evaluation.results import CategoryResult, EvalResult
from flb_dapp.evaluation.wide import keep_float64, wide
from flb_dapp.exceptions import EvaluationError
from flb_dapp.lora.adapter import Adapter, AdapterMetadata
from flb_dapp.training.models import Quantization, load_model, load_tokenizer, resolve_device
from flb_dapp.training.peft_io import load_adapter_weights, lora_config, wrap_with_lora

FORMULATIONS = ("letters", "cloze")


def select_shots(q: MCQuestion, dev: Sequence[MCQuestion], k: int) -> list[MCQuestion]:
    """Up to ``k`` dev examples for ``q``: its own category first, in dev order. A dev question with
    the same id or the same text as ``q`` is never used (it would give the answer away)."""
    if k <= 0:
        return []
    usable = [d for d in dev if d.question_id != q.question_id and d.question.strip() != q.question.strip()]
    same = [d for d in usable if d.category == q.category]
    other = [d for d in usable if d.category != q.category]
    return (same + other)[:k]


class Evaluator:
    """Scores adapters of one base model on a fixed question set.

    ``model`` is a path / hub id (loaded here) or an already loaded causal LM (then pass
    ``tokenizer``). ``k_shot > 0`` needs ``dev``, a split disjoint from ``questions``.
    """

    def __init__(
        self,
        model: str | Path | Any,
        questions: Sequence[MCQuestion],
        *,
        dev: Sequence[MCQuestion] = (),
        k_shot: int = 0,
        batch_size: int = 16,
        device: str = "cpu",
        quantization: Quantization | None = None,
        dtype: str = "float32",
        max_seq_len: int = 2048,
        tokenizer: Any = None,
        formulation: str = "letters",
        chat: bool | None = None,
    ) -> None:
        if not questions:
            raise EvaluationError("no questions to evaluate")
        if k_shot > 0 and not dev:
            raise EvaluationError("k-shot evaluation needs a dev split to draw examples from")
        if formulation not in FORMULATIONS:
            raise EvaluationError(f"unknown formulation {formulation!r}; choose one of {FORMULATIONS}")
        if formulation == "cloze" and k_shot > 0:
            raise EvaluationError("the cloze formulation is zero-shot here; use letters for k-shot")
        self.formulation = formulation
        self.questions = list(questions)
        self.batch_size = max(1, batch_size)
        if isinstance(model, str | Path):
            self.device = resolve_device(device)
            self.tokenizer = tokenizer or load_tokenizer(model)
            self.model = load_model(
                model, device=self.device, quantization=quantization, dtype=dtype, for_training=False
            )
        else:
            if tokenizer is None:
                raise EvaluationError("pass the tokenizer together with an already loaded model")
            self.model, self.tokenizer = model, tokenizer
            self.device = str(next(model.parameters()).device.type)
        self.model.eval()
        self.dtype = str(next(self.model.parameters()).dtype).removeprefix("torch.")
        if self.dtype == "float64":
            keep_float64(self.model)
        self.chat = has_chat_template(self.tokenizer) if chat is None else chat
        if formulation == "cloze":
            self._cloze = [build_request(self.tokenizer, q, self.chat, max_seq_len) for q in self.questions]
            self._shared = self._cloze[0].prefix[: shared_prefix_length(self._cloze)]
        else:
            self.prompts = [
                render_prompt(self.tokenizer, q, select_shots(q, dev, k_shot), self.chat)
                for q in self.questions
            ]
            self._ids = [
                self._encode(q, p, dev, k_shot, max_seq_len)
                for q, p in zip(self.questions, self.prompts, strict=True)
            ]
            self.letter_ids = self._letter_token_ids()
        self._adapter_names: dict[tuple[int, int, tuple[str, ...]], str] = {}
        self._peft: Any = None
        self._keep_last = "logits_to_keep" in inspect.signature(self.model.forward).parameters

    # --- public ---------------------------------------------------------------------------------
    def evaluate(self, adapter: Adapter | None = None) -> EvalResult:
        """Accuracy / loss of the base model with ``adapter`` (``None``: the base model alone)."""
        if adapter is None and self._peft is not None:
            with self._peft.disable_adapter():
                return self._evaluate_model(self._peft)
        if adapter is None:
            return self._evaluate_model(self.model)
        return self._evaluate_model(self._activate(adapter))

    def _evaluate_model(self, model: Any) -> EvalResult:
        if self.formulation == "cloze":
            shared = PrefixCache.build(model, self._shared, self.device)
            sums = [continuation_logprobs(model, r, self.device, shared) for r in self._cloze]
            return score_cloze(self.questions, self._cloze, sums)
        return self._score(self._letter_logprobs(model))

    # --- internals -------------------------------------------------------------------------------
    def _encode(
        self, q: MCQuestion, prompt: str, dev: Sequence[MCQuestion], k: int, max_len: int
    ) -> list[int]:
        ids: list[int] = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        # Too long: drop shots first (keeps the question whole), then keep the prompt's tail.
        while len(ids) > max_len and k > 0:
            k -= 1
            ids = self.tokenizer(
                render_prompt(self.tokenizer, q, select_shots(q, dev, k), self.chat), add_special_tokens=False
            )["input_ids"]
        return ids[-max_len:]

    def _letter_token_ids(self) -> list[int]:
        """The token each letter becomes right at the answer position (a bare letter after a chat
        template's assistant header, `` A`` after ``Answer:`` in plain prompts)."""
        prompt = self.prompts[0]
        base: list[int] = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        sep = "" if self.chat else " "
        n = max(len(q.options) for q in self.questions)
        out = []
        for letter in LETTERS[:n]:
            ids = self.tokenizer(prompt + sep + letter, add_special_tokens=False)["input_ids"]
            if ids[: len(base)] != base or len(ids) != len(base) + 1:
                raise EvaluationError(f"the answer letter {letter!r} is not a single token after the prompt")
            out.append(ids[-1])
        return out

    def _activate(self, adapter: Adapter) -> Any:
        meta: AdapterMetadata = adapter.metadata
        key = (meta.r, meta.lora_alpha, tuple(sorted(meta.target_modules)))
        name = self._adapter_names.get(key)
        if name is None:
            name = f"flb{len(self._adapter_names)}"
            if self._peft is None:
                self._peft = wrap_with_lora(self.model, meta, adapter_name=name)
            else:
                self._peft.add_adapter(name, lora_config(meta))
            self._adapter_names[key] = name
        self._peft.set_adapter(name)
        load_adapter_weights(self._peft, adapter, adapter_name=name)
        self._peft.eval()
        return self._peft

    @torch.no_grad()
    def _letter_logprobs(self, model: Any) -> list[np.ndarray]:
        """Per question: log p(letter) for each of its options, softmax over the full vocabulary."""
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        order = sorted(range(len(self._ids)), key=lambda i: -len(self._ids[i]))  # similar lengths together
        letters = torch.tensor(self.letter_ids)
        out: list[np.ndarray] = [np.empty(0)] * len(self._ids)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            width = max(len(self._ids[i]) for i in batch)
            # Left padding with explicit position ids: each row's last token is the answer position
            # and sits at the positions it would have unpadded.
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                ids = self._ids[i]
                input_ids[row, width - len(ids) :] = torch.tensor(ids)
                mask[row, width - len(ids) :] = 1
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            kwargs = {"logits_to_keep": 1} if self._keep_last else {}
            logits = model(
                input_ids=input_ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=positions.to(self.device),
                **kwargs,
            ).logits[:, -1, :]
            logp = torch.log_softmax(wide(logits), dim=-1)[:, letters.to(logits.device)].cpu().numpy()
            for row, i in enumerate(batch):
                out[i] = logp[row, : len(self.questions[i].options)].astype(np.float64)
        return out

    def _score(self, logprobs: list[np.ndarray]) -> EvalResult:
        by_cat: dict[str, list[bool]] = defaultdict(list)
        correct, losses, preds = [], [], []
        for q, lp in zip(self.questions, logprobs, strict=True):
            pred = int(np.argmax(lp))  # ties go to the earlier letter: deterministic
            ok = pred == q.answer_index
            correct.append(ok)
            losses.append(-float(lp[q.answer_index]))
            preds.append(LETTERS[pred])
            by_cat[q.category].append(ok)
        per_category = {c: CategoryResult(sum(v) / len(v), len(v)) for c, v in sorted(by_cat.items())}
        return EvalResult(
            accuracy=sum(correct) / len(correct),
            loss=float(np.mean(losses)),
            n=len(correct),
            per_category=per_category,
            predictions=tuple(preds),
        )


def _per_category(questions: Sequence[MCQuestion], correct: Sequence[bool]) -> dict[str, CategoryResult]:
    by_cat: dict[str, list[bool]] = defaultdict(list)
    for q, ok in zip(questions, correct, strict=True):
        by_cat[q.category].append(ok)
    return {c: CategoryResult(sum(v) / len(v), len(v)) for c, v in sorted(by_cat.items())}


def score_cloze(
    questions: Sequence[MCQuestion], requests: Sequence[ClozeRequest], sums: Sequence[Sequence[float]]
) -> EvalResult:
    """acc (highest log-likelihood), acc_norm (highest per character) and the loss: the mean per-token
    negative log-likelihood of the correct option. Ties go to the earlier option: deterministic."""
    correct, correct_norm, losses, preds, preds_norm = [], [], [], [], []
    for q, request, lp in zip(questions, requests, sums, strict=True):
        values = np.asarray(lp, dtype=np.float64)
        pred = int(np.argmax(values))
        pred_norm = int(np.argmax(values / np.asarray(request.characters, dtype=np.float64)))
        correct.append(pred == q.answer_index)
        correct_norm.append(pred_norm == q.answer_index)
        losses.append(-float(values[q.answer_index]) / len(request.continuations[q.answer_index]))
        preds.append(LETTERS[pred])
        preds_norm.append(LETTERS[pred_norm])
    return EvalResult(
        accuracy=sum(correct) / len(correct),
        loss=float(np.mean(losses)),
        n=len(correct),
        per_category=_per_category(questions, correct),
        predictions=tuple(preds),
        accuracy_norm=sum(correct_norm) / len(correct_norm),
        per_category_norm=_per_category(questions, correct_norm),
        predictions_norm=tuple(preds_norm),
    )


def evaluate_multiple_choice(
    model: str | Path | Any,
    questions: Sequence[MCQuestion],
    adapter: Adapter | None = None,
    **kwargs: Any,
) -> EvalResult:
    """One-off evaluation; for many adapters build one :class:`Evaluator` and reuse it."""
    return Evaluator(model, questions, **kwargs).evaluate(adapter)
