"""`flb eval` on the bundled benchmarks: a seeded sample, cloze or letters, figures with standard
errors, MMLU per subject group; the numbers are those of an Evaluator on the same questions."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from flb_dapp.evaluation.benchmarks import MMLU_GROUPS, load_benchmark, mmlu_group, stratified_sample
from flb_dapp.evaluation.multiple_choice import Evaluator
from flb_dapp.evaluation.results import EvalResult, binomial_stderr
from flb_dapp.taskspec import TaskSpec, model_path
from tests.cli.conftest import Invocation, invoke_flb

MMLU_SUBJECTS = "abstract_algebra,anatomy,philosophy,marketing,sociology"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with flb.yaml (task model: tiny) and the tiny model built in its cache."""
    root = tmp_path_factory.mktemp("eval")
    (root / "flb.yaml").write_text(
        yaml.safe_dump({"cache_dir": str(root / "cache"), "task": {"model": "tiny"}})
    )
    model_path(TaskSpec(model="tiny"), root / "cache")
    return root


def flb_eval(home: Path, *args: str, expect: int | None = 0) -> Invocation:
    return invoke_flb(
        "--config", str(home / "flb.yaml"), "eval", *args,
        "--out", str(home / "eval.json"), "--record", str(home / "record.csv"), expect=expect,
    )  # fmt: skip


def reference(home: Path, questions: list[Any], **kwargs: Any) -> EvalResult:
    return Evaluator(model_path(TaskSpec(model="tiny"), home / "cache"), questions, **kwargs).evaluate()


def table_rows(stdout: str) -> list[list[str]]:
    """The cells of each line of the table (rich draws columns with ┃ in the header, │ below)."""
    lines = [line.replace("┃", "│") for line in stdout.splitlines()]
    return [[c.strip() for c in line.split("│")] for line in lines if "│" in line]


def test_cloze_on_a_benchmark_sample_equals_the_evaluator(home: Path) -> None:
    result = flb_eval(home, "--json", "--benchmark", "arc-easy", "--limit", "6", "--format", "cloze")
    shown = json.loads(result.stdout)
    questions = load_benchmark("arc-easy", limit=6, seed=0)  # the task's seed
    want = reference(home, questions, formulation="cloze")
    assert set(shown) == {
        "timestamp", "model", "adapter", "data", "benchmark", "split", "seed", "stratified", "subjects",
        "shots", "limit", "format", "chat", "seconds", "questions_per_s", "accuracy", "loss", "n",
        "per_category", "accuracy_norm", "stderr", "stderr_norm", "results_file", "record_file",
    }  # fmt: skip
    assert (shown["data"], shown["benchmark"], shown["split"], shown["seed"]) == (
        "arc-easy",
        "arc-easy",
        "test",
        0,
    )
    assert (shown["format"], shown["chat"], shown["n"], shown["limit"]) == ("cloze", True, 6, 6)
    assert shown["accuracy"] == want.accuracy and shown["accuracy_norm"] == want.accuracy_norm
    assert shown["loss"] == pytest.approx(want.loss, abs=1e-6)
    assert shown["stderr"] == want.stderr and shown["stderr_norm"] == want.stderr_norm
    assert shown["per_category"] == {
        "arc-easy": {
            "accuracy": want.accuracy, "n": 6, "stderr": want.stderr,
            "accuracy_norm": want.accuracy_norm, "stderr_norm": want.stderr_norm,
        }
    }  # fmt: skip
    assert shown["questions_per_s"] > 0
    saved = json.loads((home / "eval.json").read_text())
    assert {k: v for k, v in shown.items() if not k.endswith("_file")} == saved
    row = list(csv.DictReader((home / "record.csv").open()))[-1]
    assert (row["data"], row["format"], row["chat"], row["n"]) == ("arc-easy", "cloze", "True", "6")
    assert float(row["accuracy_norm"]) == pytest.approx(want.accuracy_norm, abs=1e-6)


def test_mmlu_table_per_subject_group_with_standard_errors(home: Path) -> None:
    args = ["--benchmark", "mmlu", "--subjects", MMLU_SUBJECTS, "--limit", "2", "--stratified"]
    result = flb_eval(home, *args, "--format", "cloze", "--no-chat", "--seed", "5")
    wanted = set(MMLU_SUBJECTS.split(","))
    questions = stratified_sample([q for q in load_benchmark("mmlu") if q.category in wanted], 2, 5)
    want = reference(home, questions, formulation="cloze", chat=False)
    rows = table_rows(result.stdout)
    assert rows[0] == ["category", "questions", "accuracy", "stderr", "acc_norm", "stderr_norm"]
    assert [r[0] for r in rows[1:]] == [*MMLU_GROUPS, "overall"]  # every group has a subject here
    for group, *cells in rows[1:-1]:
        mine = [i for i, q in enumerate(questions) if mmlu_group(q.category) == group]
        acc = sum(want.predictions[i] == questions[i].answer for i in mine) / len(mine)
        subjects = [s for s in want.per_category_norm if mmlu_group(s) == group]
        norm = sum(want.per_category_norm[s].accuracy * want.per_category_norm[s].n for s in subjects) / len(
            mine
        )
        assert cells == [
            str(len(mine)), f"{acc:.4f}", f"{binomial_stderr(acc, len(mine)):.4f}",
            f"{norm:.4f}", f"{binomial_stderr(norm, len(mine)):.4f}",
        ]  # fmt: skip
    assert want.accuracy_norm is not None and want.stderr_norm is not None
    overall = [str(len(questions)), f"{want.accuracy:.4f}", f"{want.stderr:.4f}"]
    assert rows[-1] == ["overall", *overall, f"{want.accuracy_norm:.4f}", f"{want.stderr_norm:.4f}"]
    assert re.search(
        r"^10 questions, cloze without a chat template: [0-9.]+ questions/s$", result.stdout, re.M
    )
    saved = json.loads((home / "eval.json").read_text())
    assert set(saved["per_category"]) == wanted and set(saved["per_group"]) == set(MMLU_GROUPS)  # keys sorted
    norms = {g: 0 for g in MMLU_GROUPS}
    for s, figures in saved["per_category"].items():
        norms[mmlu_group(s)] += round(figures["accuracy_norm"] * figures["n"])
    assert {g: round(f["accuracy_norm"] * f["n"]) for g, f in saved["per_group"].items()} == norms


def test_letters_on_a_benchmark_and_the_default_data(home: Path) -> None:
    result = flb_eval(
        home, "--benchmark", "arc-challenge", "--limit", "5", "--format", "letters", "--seed", "2"
    )
    want = reference(home, load_benchmark("arc-challenge", limit=5, seed=2), chat=True)
    rows = table_rows(result.stdout)
    assert rows[0] == ["category", "questions", "accuracy", "stderr"]
    assert rows[1:] == [
        ["arc-challenge", "5", f"{want.accuracy:.4f}", f"{want.stderr:.4f}"],
        ["overall", "5", f"{want.accuracy:.4f}", f"{want.stderr:.4f}"],
    ]
    assert "5 questions, letters in the chat template:" in result.stdout
    # Without --benchmark or --data: the task's data (bundled), the first N questions as before.
    bundled = json.loads(flb_eval(home, "--json", "--limit", "4").stdout)
    assert (bundled["data"], bundled["benchmark"], bundled["split"], bundled["format"]) == (
        "bundled", None, "test", "letters"
    )  # fmt: skip
    assert "accuracy_norm" not in bundled and bundled["n"] == 4


def test_an_older_record_file_keeps_its_columns(home: Path) -> None:
    old = ["timestamp", "model", "adapter", "data", "split", "subjects", "shots", "limit", "n", "accuracy",
           "loss", "seconds", "results"]  # fmt: skip
    with (home / "record.csv").open("w", newline="") as handle:
        csv.writer(handle).writerow(old)
    flb_eval(home, "--benchmark", "piqa", "--limit", "3", "--format", "cloze")
    lines = list(csv.reader((home / "record.csv").open()))
    assert lines[0] == old and len(lines) == 2 and len(lines[1]) == len(old) and lines[1][3] == "piqa"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--benchmark", "sciq", "--data", "bundled"], 2, "--benchmark or --data, not both"),
        (["--benchmark", "sciq", "--stratified"], 2, "--stratified needs --limit"),
        (["--limit", "3", "--stratified"], 2, "--stratified is for a --benchmark sample"),
        (["--limit", "3", "--seed", "1"], 2, "--seed is for a --benchmark sample"),
        (["--benchmark", "sciq", "--shots", "1"], 1, "needs a few-shot pool: pass --dev"),
        (["--benchmark", "arc-easy", "--split", "train"], 1, "arc-easy has no split 'train'"),
        (["--benchmark", "mmlu", "--limit", "200", "--stratified"], 1, "fewer than 200 per category"),
        (["--benchmark", "nope"], 2, "'nope' is not one of"),
        (["--benchmark", "piqa", "--format", "cloze", "--shots", "1", "--dev", "piqa"], 1, "zero-shot"),
    ],
)
def test_usage_errors(home: Path, args: list[str], code: int, message: str) -> None:
    result = flb_eval(home, *args, expect=code)
    assert message in result.stderr
