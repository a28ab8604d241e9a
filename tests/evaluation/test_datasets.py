"""MMLU-Pro records from JSON, JSONL, Parquet and dataset folders; malformed records are named."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flb_dapp.evaluation.datasets import MCQuestion, load_questions, question_from_record, save_questions
from flb_dapp.exceptions import EvaluationError, MalformedRecordError

RECORDS = [
    {"question_id": 70, "question": "Typical advertising regulatory bodies suggest ...",
     "options": ["Safe practices, Fear", "Unsafe practices, Distress", "Safe practices, Wants"],
     "answer": "C", "answer_index": 2, "cot_content": "", "category": "business", "src": "ori_mmlu"},
    {"question_id": 71, "question": "What is 2 + 2?", "options": ["3", "4"], "answer": "B",
     "answer_index": 1, "category": "math", "src": ""},
]  # fmt: skip
EXPECTED = [
    MCQuestion(70, RECORDS[0]["question"], tuple(RECORDS[0]["options"]), "C", 2, "business", "ori_mmlu"),  # type: ignore[arg-type]
    MCQuestion(71, "What is 2 + 2?", ("3", "4"), "B", 1, "math", ""),
]


def write(path: Path, records: list[dict[str, object]]) -> Path:
    if path.suffix == ".json":
        path.write_text(json.dumps(records))
    elif path.suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    else:
        pq.write_table(pa.Table.from_pylist(records), path)
    return path


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".parquet"])
def test_each_format_loads_the_same_questions(tmp_path: Path, suffix: str) -> None:
    assert load_questions(write(tmp_path / f"q{suffix}", RECORDS)) == EXPECTED
    assert load_questions(tmp_path / f"q{suffix}", limit=1) == EXPECTED[:1]


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".parquet"])
def test_malformed_record_is_named(tmp_path: Path, suffix: str) -> None:
    bad = [RECORDS[0], {**RECORDS[1], "answer": "A"}]  # answer disagrees with answer_index
    with pytest.raises(MalformedRecordError, match=r"record 1 \(question_id=71\).*'A' disagrees"):
        load_questions(write(tmp_path / f"bad{suffix}", bad))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"question": ""}, "'question' must be a non-empty string"),
        ({"options": "A or B"}, "'options' must be a list"),
        ({"options": ["only one"]}, "2 to 10 strings"),
        ({"options": [str(i) for i in range(11)]}, "2 to 10 strings"),
        ({"answer_index": 5, "answer": None}, "'answer_index' must be an integer in"),
        ({"answer_index": True}, "'answer_index' must be an integer"),
        ({"category": 3}, "'category' must be a string"),
    ],
)
def test_schema_checks(change: dict[str, object], message: str) -> None:
    with pytest.raises(MalformedRecordError, match=message):
        question_from_record({**RECORDS[1], **change}, "q.jsonl record 4")


def test_answer_or_index_alone_is_enough() -> None:
    base = {k: v for k, v in RECORDS[1].items() if k not in ("answer", "answer_index")}
    assert question_from_record({**base, "answer": "B"}).answer_index == 1
    assert question_from_record({**base, "answer_index": 1}).answer == "B"


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="no such file"):
        load_questions(tmp_path / "missing.jsonl")
    (tmp_path / "broken.jsonl").write_text(json.dumps(RECORDS[0]) + "\n{not json\n")
    with pytest.raises(MalformedRecordError, match="line 2"):
        load_questions(tmp_path / "broken.jsonl")
    (tmp_path / "dict.json").write_text('{"a": 1}')
    with pytest.raises(EvaluationError, match="JSON list"):
        load_questions(tmp_path / "dict.json")
    write(tmp_path / "dup.jsonl", [RECORDS[0], RECORDS[0]])
    with pytest.raises(MalformedRecordError, match="appears twice"):
        load_questions(tmp_path / "dup.jsonl")
    (tmp_path / "q.csv").write_text("x")
    with pytest.raises(EvaluationError, match="unsupported"):
        load_questions(tmp_path / "q.csv")


def test_data_wrapper_and_missing_ids(tmp_path: Path) -> None:
    no_ids = [{k: v for k, v in r.items() if k != "question_id"} for r in RECORDS]
    (tmp_path / "wrapped.json").write_text(json.dumps({"data": no_ids}))
    assert [q.question_id for q in load_questions(tmp_path / "wrapped.json")] == [0, 1]


def test_dataset_folder_goes_through_datasets(tmp_path: Path) -> None:
    """A local clone of an HF dataset repo (parquet per split) loads through ``datasets``."""
    (tmp_path / "mmlu" / "data").mkdir(parents=True)
    write(tmp_path / "mmlu" / "data" / "test-00000-of-00001.parquet", RECORDS)
    write(tmp_path / "mmlu" / "data" / "validation-00000-of-00001.parquet", RECORDS[:1])
    assert load_questions(tmp_path / "mmlu", split="test") == EXPECTED
    assert load_questions(tmp_path / "mmlu", split="validation") == EXPECTED[:1]


def test_hub_id_offline_is_a_clear_error() -> None:
    with pytest.raises(EvaluationError, match="Offline, pass a local"):
        load_questions("TIGER-Lab/MMLU-Pro")


def test_save_round_trip(tmp_path: Path) -> None:
    assert load_questions(save_questions(EXPECTED, tmp_path / "out.jsonl")) == EXPECTED
