"""Which questions `flb eval` scores: the task's data, a file or dataset id, or a bundled benchmark
(a seeded sample of it with ``--limit``), and the few-shot pool."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from flb_dapp.cli.options import BENCHMARK_NAMES
from flb_dapp.exceptions import EvaluationError

if TYPE_CHECKING:
    from flb_dapp.taskspec import TaskSpec


def load_eval_questions(
    data: str, split: str, shots: int, dev_source: str | None, task_seed: int
) -> tuple[list[Any], list[Any]]:
    """(questions, few-shot pool). ``bundled`` is the built-in task; else a file or a dataset id."""
    from flb_dapp.evaluation.datasets import load_questions
    from flb_dapp.taskspec import BUNDLED

    if data == BUNDLED:
        from flb_dapp.evaluation.task import make_task

        task = make_task(seed=task_seed)
        return list(task.test), list(task.dev)
    questions = load_questions(data, split=split)
    dev: list[Any] = []
    if dev_source:
        dev = load_dev_pool(dev_source)
    elif shots > 0:
        if Path(data).exists():
            raise EvaluationError(
                f"--shots {shots} needs a few-shot pool: pass --dev FILE (disjoint from {data})"
            )
        dev = load_questions(data, split="validation")
    return questions, dev


def load_dev_pool(source: str) -> list[Any]:
    """``--dev``: a benchmark's few-shot split (MMLU dev, else validation), a file or a dataset id."""
    from flb_dapp.evaluation.benchmarks import BENCHMARKS, load_benchmark
    from flb_dapp.evaluation.datasets import load_questions

    if source in BENCHMARKS:
        return load_benchmark(source, "dev" if source == "mmlu" else "validation")
    return load_questions(source, split="validation")


def load_benchmark_questions(
    name: str, split: str | None, shots: int, dev_source: str | None
) -> tuple[list[Any], list[Any], str]:
    """(questions, few-shot pool, split) of a bundled benchmark. The pool is ``--dev`` or the
    benchmark's own: MMLU's dev split, else validation (never the split being evaluated)."""
    from flb_dapp.evaluation.benchmarks import BENCHMARKS, load_benchmark

    split = split or BENCHMARKS[name].default_split
    questions = load_benchmark(name, split)
    if dev_source:
        return questions, load_dev_pool(dev_source), split
    if shots == 0:
        return questions, [], split
    pool = "dev" if name == "mmlu" else "validation"
    if pool == split or pool not in BENCHMARKS[name].splits:
        raise EvaluationError(
            f"--shots {shots} on {name} {split} needs a few-shot pool: pass --dev ID_OR_FILE"
        )
    return questions, load_benchmark(name, pool), split


def select(questions: list[Any], subjects: tuple[str, ...], limit: int | None) -> list[Any]:
    """Keep the chosen categories (case-insensitive), then the first ``limit`` questions."""
    if subjects:
        wanted = {s.strip().lower() for item in subjects for s in item.split(",") if s.strip()}
        kept = [q for q in questions if q.category.lower() in wanted]
        if not kept:
            available = sorted({q.category for q in questions})
            raise EvaluationError(f"no questions in subjects {sorted(wanted)}; available: {available}")
        questions = kept
    return questions[:limit] if limit else questions


def sample(questions: list[Any], limit: int | None, seed: int, stratified: bool) -> list[Any]:
    """A benchmark's ``--limit``: a seeded sample of ``limit`` questions (``limit`` per category
    with ``stratified``), in data order: what ``load_benchmark(name, limit=, seed=)`` keeps."""
    from flb_dapp.evaluation.benchmarks import sample_questions, stratified_sample

    if limit is None:
        return questions
    return (
        stratified_sample(questions, limit, seed) if stratified else sample_questions(questions, limit, seed)
    )


def gather(
    task: TaskSpec,
    *,
    benchmark: str | None,
    data: str | None,
    split: str | None,
    subjects: tuple[str, ...],
    shots: int,
    dev_source: str | None,
    limit: int | None,
    seed: int | None,
    stratified: bool,
) -> tuple[list[Any], list[Any], dict[str, Any]]:
    """(questions, few-shot pool, what the results document says about them): from ``benchmark``,
    else ``data``, else the ``task``'s data (a benchmark name there counts as a benchmark)."""
    if benchmark and data:
        raise click.UsageError("pass --benchmark or --data, not both")
    if stratified and limit is None:
        raise click.UsageError("--stratified needs --limit: the number of questions per category")
    data_name = benchmark or data or task.data
    if data_name in BENCHMARK_NAMES:
        seed = task.task_seed if seed is None else seed
        questions, dev, split = load_benchmark_questions(data_name, split, shots, dev_source)
        questions = sample(select(questions, subjects, None), limit, seed, stratified)
        drawn = {"benchmark": data_name, "seed": seed, "stratified": stratified}
    else:
        if stratified or seed is not None:
            raise click.UsageError(f"--{'stratified' if stratified else 'seed'} is for a --benchmark sample")
        split = split or "test"
        questions, dev = load_eval_questions(data_name, split, shots, dev_source, task.task_seed)
        questions = select(questions, subjects, limit)
        drawn = {"benchmark": None}
    return questions, dev, {"data": data_name, "split": split, **drawn}
