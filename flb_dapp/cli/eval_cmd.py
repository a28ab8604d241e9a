"""``flb eval``: multiple-choice accuracy of a model (optionally with an adapter), per category.

Each run saves its full results as JSON and appends one row to a CSV record, so runs can be
compared over time (model, adapter, data, shots, accuracy ...).
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from flb_dapp.cli.context import CLIContext, pass_cli
from flb_dapp.cli.options import device_option, json_option, quantization_option, store_option
from flb_dapp.exceptions import EvaluationError

if TYPE_CHECKING:
    from flb_dapp.cli.output import Output
    from flb_dapp.evaluation.multiple_choice import EvalResult

RECORD_FIELDS = (
    "timestamp",
    "model",
    "adapter",
    "data",
    "split",
    "subjects",
    "shots",
    "limit",
    "n",
    "accuracy",
    "loss",
    "seconds",
    "results",
)


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
        dev = load_questions(dev_source, split="validation")
    elif shots > 0:
        if Path(data).exists():
            raise EvaluationError(
                f"--shots {shots} needs a few-shot pool: pass --dev FILE (disjoint from {data})"
            )
        dev = load_questions(data, split="validation")
    return questions, dev


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


def append_record(path: Path, row: dict[str, Any]) -> None:
    """One CSV row per run; the header is written when the file is new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=RECORD_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in RECORD_FIELDS})


@click.command("eval")
@click.option(
    "--model",
    "-m",
    metavar="PATH_OR_ID",
    help="Model folder, hub id, `tiny` or `smollm2` (default: the task's model).",
)
@click.option(
    "--adapter",
    metavar="PATH_OR_CID",
    help="LoRA adapter to apply: a .safetensors file, a PEFT folder or a CID in the store.",
)
@click.option(
    "--data",
    "-d",
    metavar="ID_OR_FILE",
    help="Questions: .json/.jsonl/.parquet in MMLU-Pro schema, a dataset id, or `bundled`.",
)
@click.option("--split", default="test", show_default=True, help="Split to evaluate for a dataset id.")
@click.option(
    "--subjects",
    multiple=True,
    metavar="NAMES",
    help="Only these categories (repeat or comma-separate), e.g. --subjects math,physics.",
)
@click.option(
    "--shots",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Few-shot examples per question, drawn from the dev pool.",
)
@click.option(
    "--dev",
    "dev_source",
    metavar="ID_OR_FILE",
    help="Few-shot pool (default: the dataset's validation split).",
)
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only the first N selected questions.")
@device_option("Where to run the model.", default="cpu")
@quantization_option("Load the model quantized.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Questions per forward pass.",
)
@click.option(
    "--out",
    "-o",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Results JSON (default eval-results/eval-TIMESTAMP.json).",
)
@click.option(
    "--record",
    "record_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("eval-results/record.csv"),
    show_default=True,
    help="CSV file that gets one row per run.",
)
@store_option
@json_option
@pass_cli
def evaluate(
    cli: CLIContext,
    model: str | None,
    adapter: str | None,
    data: str | None,
    split: str,
    subjects: tuple[str, ...],
    shots: int,
    dev_source: str | None,
    limit: int | None,
    device: str,
    quantization: str | None,
    batch_size: int,
    out_file: Path | None,
    record_file: Path,
) -> None:
    """Multiple-choice accuracy by the log-likelihood of the option letters, overall and per
    category; results saved as JSON and appended to a CSV record."""
    from flb_dapp.cli.artifacts import fetch_adapter, open_store, read_adapter_file
    from flb_dapp.cli.models import resolve_model
    from flb_dapp.evaluation.multiple_choice import Evaluator

    out, settings = cli.output, cli.settings
    model_name = model or settings.task.model
    data_name = data or settings.task.data
    questions, dev = load_eval_questions(data_name, split, shots, dev_source, settings.task.task_seed)
    questions = select(questions, subjects, limit)
    lora = None
    if adapter is not None:
        lora = (
            read_adapter_file(Path(adapter))
            if Path(adapter).exists()
            else fetch_adapter(open_store(settings.store), adapter, "adapter")
        )
    started = time.perf_counter()
    with out.status(f"Loading {model_name} ..."):
        evaluator = Evaluator(
            resolve_model(model_name, settings.cache_dir),
            questions,
            dev=dev,
            k_shot=shots,
            batch_size=batch_size,
            device=device,
            quantization=quantization,  # type: ignore[arg-type]
        )
    with out.status(f"Evaluating {len(questions)} questions ..."):
        result = evaluator.evaluate(lora)
    seconds = time.perf_counter() - started
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = out_file or Path("eval-results") / f"eval-{stamp}.json"
    document = {
        "timestamp": stamp,
        "model": model_name,
        "adapter": adapter,
        "data": data_name,
        "split": split,
        "subjects": sorted(subjects),
        "shots": shots,
        "limit": limit,
        "seconds": round(seconds, 3),
        **result.to_dict(),
    }
    title = f"{model_name}{' + ' + adapter if adapter else ''} on {data_name}"
    save_and_show(out, document, result, target, record_file, title)


def save_and_show(
    out: Output, document: dict[str, Any], result: EvalResult, target: Path, record_file: Path, title: str
) -> None:
    """Save a run's ``document`` as JSON at ``target``, append its row to ``record_file``, and print
    the result (a table per category, or the document with ``--json``)."""
    from flb_dapp.atomic import atomic_write_text

    atomic_write_text(target, json.dumps(document, indent=2, sort_keys=True) + "\n")
    append_record(
        record_file,
        {
            **document,
            "subjects": ",".join(document["subjects"]),
            "accuracy": f"{result.accuracy:.6f}",
            "loss": f"{result.loss:.6f}",
            "results": str(target),
        },
    )
    out.note(f"Results: {target}; record: {record_file}")

    def human() -> None:
        rows = [(cat, r.n, f"{r.accuracy:.4f}") for cat, r in result.per_category.items()]
        rows.append(("overall", result.n, f"{result.accuracy:.4f}"))
        out.table(["category", "questions", "accuracy"], rows, title=title)

    out.result({**document, "results_file": str(target), "record_file": str(record_file)}, human)
