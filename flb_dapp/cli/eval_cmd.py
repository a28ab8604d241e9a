"""``flb eval``: multiple-choice accuracy of a model (optionally with an adapter), per category.

Questions come from the task's data, a file or dataset id (``--data``), or one of the bundled offline
benchmarks (``--benchmark``, or a benchmark name as ``--data``; ``--limit`` is then a seeded sample,
per category with ``--stratified``). Two formulations: ``letters`` (the log-likelihood of the option
letters after a lettered prompt) and ``cloze`` (of each option's text after the question; with
``acc_norm``). Each figure comes with its standard error; MMLU is shown per subject group (the
results file and ``--json`` also hold every subject).

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
from flb_dapp.cli.eval_questions import gather
from flb_dapp.cli.options import (
    benchmark_option,
    chat_option,
    device_option,
    format_option,
    json_option,
    quantization_option,
    store_option,
    threads_option,
)

if TYPE_CHECKING:
    from flb_dapp.cli.output import Output
    from flb_dapp.evaluation.results import CategoryResult, EvalResult

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
    # since the benchmarks and the cloze formulation (a file with the older header keeps it)
    "format",
    "chat",
    "stderr",
    "accuracy_norm",
    "stderr_norm",
    "questions_per_s",
)


def append_record(path: Path, row: dict[str, Any]) -> None:
    """One CSV row per run; the header is written when the file is new. A file written before
    columns were added keeps its own header (the new columns are left out of its rows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    fields: list[str] = list(RECORD_FIELDS)
    if not new:
        with path.open(newline="", encoding="utf-8") as handle:
            fields = next(csv.reader(handle), []) or fields
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in fields})


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
    help="Questions: .json/.jsonl/.parquet in MMLU-Pro schema, a dataset id, `bundled` or a benchmark name.",
)
@benchmark_option("A bundled offline benchmark (instead of --data).")
@click.option(
    "--split",
    help="Split to evaluate for a dataset id (default test) or a benchmark (default test, else validation).",
)
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
    help="Few-shot pool (default: the dataset's validation split; MMLU's dev split).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help="Evaluate only the first N selected questions (a benchmark: a seeded sample of N).",
)
@click.option("--stratified", is_flag=True, help="With a benchmark's --limit: N questions of every category.")
@click.option("--seed", type=int, help="Seed of a benchmark's --limit sample (default: the task's seed).")
@format_option("letters: the option letters' log-likelihood; cloze: the options' text (default: the task's).")
@chat_option("Inside the model's chat template or not (default: the task's; else when the model has one).")
@device_option("Where to run the model.", default="cpu")
@quantization_option("Load the model quantized.")
@threads_option("CPU threads for torch (on a busy machine 1 is often fastest).")
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
    threads: int | None,
    out_file: Path | None,
    record_file: Path,
    **options: Any,
) -> None:
    """Multiple-choice accuracy by the log-likelihood of the option letters (or, with --format cloze,
    of the options' text), overall and per category, with standard errors; results saved as JSON
    and appended to a CSV record."""
    from flb_dapp.cli.artifacts import fetch_adapter, open_store, read_adapter_file

    out, settings = cli.output, cli.settings
    model_name = model or settings.task.model
    scoring = {k: options.pop(k) for k in ("device", "quantization", "batch_size", "formulation", "chat")}
    questions, dev, drawn = gather(settings.task, **options)
    lora = None
    if adapter is not None:
        lora = (
            read_adapter_file(Path(adapter))
            if Path(adapter).exists()
            else fetch_adapter(open_store(settings.store), adapter, "adapter")
        )
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    scoring["formulation"] = scoring["formulation"] or settings.task.eval_format
    scoring["chat"] = settings.task.eval_chat if scoring["chat"] is None else scoring["chat"]
    result, run = run_evaluator(
        out, model_name, settings.cache_dir, questions, dev, lora, options["shots"], scoring
    )
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = out_file or Path("eval-results") / f"eval-{stamp}.json"
    document = {
        "timestamp": stamp,
        "model": model_name,
        "adapter": adapter,
        **drawn,
        "subjects": sorted(options["subjects"]),
        "shots": options["shots"],
        "limit": options["limit"],
        **run,
        **figures(result),
    }
    if drawn["benchmark"] == "mmlu":
        norms = mmlu_groups(result.per_category_norm)
        groups = mmlu_groups(result.per_category).items()
        document["per_group"] = {g: category_figures(r, norms.get(g)) for g, r in groups}
    title = f"{model_name}{' + ' + adapter if adapter else ''} on {drawn['data']}"
    save_and_show(out, document, result, target, record_file, title)


def run_evaluator(
    out: Output,
    model_name: str,
    cache_dir: str,
    questions: list[Any],
    dev: list[Any],
    lora: Any,
    shots: int,
    scoring: dict[str, Any],
) -> tuple[EvalResult, dict[str, Any]]:
    """Load the model, score the questions; (the result, how it ran: format, chat, timings)."""
    from flb_dapp.cli.models import resolve_model
    from flb_dapp.evaluation.multiple_choice import Evaluator

    started = time.perf_counter()
    with out.status(f"Loading {model_name} ..."):
        evaluator = Evaluator(
            resolve_model(model_name, cache_dir), questions, dev=dev, k_shot=shots, **scoring
        )
    with out.status(f"Evaluating {len(questions)} questions ..."):
        begun = time.perf_counter()
        result = evaluator.evaluate(lora)
        now = time.perf_counter()
    return result, {
        "format": evaluator.formulation,
        "chat": evaluator.chat,
        "seconds": round(now - started, 3),
        "questions_per_s": round(result.n / (now - begun), 3),
    }


def category_figures(r: CategoryResult, norm: CategoryResult | None = None) -> dict[str, Any]:
    from flb_dapp.evaluation.results import binomial_stderr

    out: dict[str, Any] = {"accuracy": r.accuracy, "n": r.n, "stderr": binomial_stderr(r.accuracy, r.n)}
    if norm is not None:
        out.update(accuracy_norm=norm.accuracy, stderr_norm=binomial_stderr(norm.accuracy, norm.n))
    return out


def figures(result: EvalResult) -> dict[str, Any]:
    """The result's JSON form (:meth:`EvalResult.to_dict`) with standard errors, overall and per
    category, and ``acc_norm`` per category where the formulation has one."""
    norms = result.per_category_norm
    document = {
        **result.to_dict(),
        "stderr": result.stderr,
        "per_category": {c: category_figures(r, norms.get(c)) for c, r in result.per_category.items()},
    }
    if result.accuracy_norm is not None:
        document["stderr_norm"] = result.stderr_norm
    return document


def mmlu_groups(per_subject: dict[str, CategoryResult]) -> dict[str, CategoryResult]:
    """Per MMLU subject group (STEM, humanities, social sciences, other), from per-subject counts."""
    from flb_dapp.evaluation.benchmarks import MMLU_GROUPS, mmlu_group
    from flb_dapp.evaluation.results import CategoryResult

    totals: dict[str, tuple[int, int]] = {}
    for subject, r in per_subject.items():
        correct, n = totals.get(mmlu_group(subject), (0, 0))
        totals[mmlu_group(subject)] = (correct + round(r.accuracy * r.n), n + r.n)
    return {g: CategoryResult(totals[g][0] / totals[g][1], totals[g][1]) for g in MMLU_GROUPS if g in totals}


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
            "stderr": f"{result.stderr:.6f}",
            "accuracy_norm": "" if result.accuracy_norm is None else f"{result.accuracy_norm:.6f}",
            "stderr_norm": "" if result.stderr_norm is None else f"{result.stderr_norm:.6f}",
            "results": str(target),
        },
    )
    out.note(f"Results: {target}; record: {record_file}")

    def human() -> None:
        out.table(*result_table(document), title=title)
        speed = document["questions_per_s"]
        chat = "in the chat template" if document["chat"] else "without a chat template"
        out.line(f"{result.n} questions, {document['format']} {chat}: {speed:.2f} questions/s")

    out.result({**document, "results_file": str(target), "record_file": str(record_file)}, human)


def result_table(document: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(columns, rows): per category (per group for MMLU), then overall; accuracy with its
    standard error, and ``acc_norm`` with its own for cloze."""
    norm = "accuracy_norm" in document
    columns = ["category", "questions", "accuracy", "stderr"] + (["acc_norm", "stderr_norm"] if norm else [])

    def row(name: str, figures: dict[str, Any]) -> list[str]:
        cells = [name, str(figures["n"]), f"{figures['accuracy']:.4f}", f"{figures['stderr']:.4f}"]
        if norm:
            cells += [f"{figures['accuracy_norm']:.4f}", f"{figures['stderr_norm']:.4f}"]
        return cells

    categories = document.get("per_group") or document["per_category"]
    return columns, [*(row(c, f) for c, f in categories.items()), row("overall", document)]
