"""Multiple-choice questions in the MMLU-Pro schema, and their loaders.

One record is ``{question_id, question, options (2-10 strings), answer ("A".."J"), answer_index,
category, src?}`` as in ``TIGER-Lab/MMLU-Pro``. Records come from a local JSON / JSONL / Parquet /
Arrow file or a Hugging Face dataset id. A malformed record is refused with an error naming it,
because a silently skipped question changes every accuracy computed from the set.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from flb_dapp.atomic import atomic_write_text
from flb_dapp.exceptions import EvaluationError, MalformedRecordError

LETTERS = "ABCDEFGHIJ"
MAX_OPTIONS = len(LETTERS)
FILE_SUFFIXES = (".json", ".jsonl", ".parquet", ".arrow")
# An Arrow IPC *file* starts with these bytes; an IPC *stream* starts with a message instead.
ARROW_FILE_MAGIC = b"ARROW1"


@dataclass(frozen=True)
class MCQuestion:
    """One multiple-choice question; ``answer`` is ``LETTERS[answer_index]``."""

    question_id: int | str
    question: str
    options: tuple[str, ...]
    answer: str
    answer_index: int
    category: str = ""
    src: str = ""

    def to_record(self) -> dict[str, Any]:
        """The MMLU-Pro record (options as a list), ready for JSON."""
        record = asdict(self)
        record["options"] = list(self.options)
        return record


def question_from_record(
    record: Mapping[str, Any], where: str = "record", default_id: int | str | None = None
) -> MCQuestion:
    """Validate one MMLU-Pro record. ``where`` names it in the error (file and position).

    ``default_id`` stands in for a missing ``question_id`` (local files often have none).
    """
    if not isinstance(record, Mapping):
        raise MalformedRecordError(f"{where}: expected an object, got {type(record).__name__}")
    qid = record.get("question_id", default_id)
    if qid is None:
        raise MalformedRecordError(f"{where}: 'question_id' is missing")
    label = f"{where} (question_id={qid!r})"
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise MalformedRecordError(f"{label}: 'question' must be a non-empty string")
    options = record.get("options")
    # NOTE: Parquet and HF datasets may hand lists back as numpy arrays; accept any iterable of str.
    if isinstance(options, str | bytes | Mapping) or not isinstance(options, Iterable):
        raise MalformedRecordError(f"{label}: 'options' must be a list of strings")
    options_t = tuple(options)
    if not 2 <= len(options_t) <= MAX_OPTIONS or not all(isinstance(o, str) for o in options_t):
        raise MalformedRecordError(
            f"{label}: 'options' must hold 2 to {MAX_OPTIONS} strings, got {len(options_t)} items"
        )
    answer, index = record.get("answer"), record.get("answer_index")
    if index is None and isinstance(answer, str) and len(answer) == 1 and answer in LETTERS:
        index = LETTERS.index(answer)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(options_t):
        raise MalformedRecordError(
            f"{label}: 'answer_index' must be an integer in [0, {len(options_t)}), got {index!r}"
        )
    if answer is None:
        answer = LETTERS[index]
    if answer != LETTERS[index]:
        raise MalformedRecordError(
            f"{label}: 'answer' {answer!r} disagrees with 'answer_index' {index} ({LETTERS[index]!r})"
        )
    category = record.get("category") or ""
    if not isinstance(category, str):
        raise MalformedRecordError(f"{label}: 'category' must be a string")
    if not isinstance(qid, int | str) or isinstance(qid, bool):
        raise MalformedRecordError(f"{label}: 'question_id' must be an integer or a string")
    src = record.get("src") or ""
    return MCQuestion(qid, question, options_t, answer, int(index), category, str(src))


def questions_from_records(records: Iterable[Mapping[str, Any]], source: str = "") -> list[MCQuestion]:
    """Validate records in order; the error names the record's position in ``source``."""
    prefix = f"{source} " if source else ""
    questions = [question_from_record(r, f"{prefix}record {i}", i) for i, r in enumerate(records)]
    _check_unique_ids(questions, source)
    return questions


def load_questions(source: str | Path, *, split: str = "test", limit: int | None = None) -> list[MCQuestion]:
    """Questions from a ``.json`` / ``.jsonl`` / ``.parquet`` / ``.arrow`` file, a local dataset
    folder (e.g. a clone of ``TIGER-Lab/MMLU-Pro``: ``split`` picks its files), or a Hugging Face
    dataset id. ``.arrow`` may be an Arrow IPC stream (what ``datasets`` caches and
    ``Dataset.save_to_disk`` write) or an Arrow IPC file (``pyarrow.ipc.new_file``).

    Folders and ids go through ``datasets.load_dataset``, which respects ``HF_DATASETS_OFFLINE``.
    ``limit`` keeps the first questions (in file order).
    """
    path = Path(source)
    if path.is_dir():
        records = _read_hub(str(path), split)
        label = f"{path}[{split}]"
    elif path.exists():
        records = _read_file(path)
        label = str(path)
    else:
        if path.suffix.lower() in FILE_SUFFIXES:
            raise EvaluationError(f"{path}: no such file")
        records = _read_hub(str(source), split)
        label = f"{source}[{split}]"
    if limit is not None:
        records = records[:limit]
    return questions_from_records(records, label)


def save_questions(questions: Sequence[MCQuestion], path: str | Path) -> Path:
    """Write questions as JSONL (one MMLU-Pro record a line), all or nothing."""
    out = Path(path)
    atomic_write_text(out, "".join(json.dumps(q.to_record(), ensure_ascii=False) + "\n" for q in questions))
    return out


def _read_file(path: Path) -> list[Any]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            records = []
            # NOTE: JSON Lines ends a record at "\n" only. str.splitlines() (and text-mode reading)
            # would also break at U+0085, U+2028, U+2029, \v, \f, ... which json.dumps leaves
            # unescaped inside strings (real MMLU questions hold U+0085), so read bytes and split
            # on "\n", dropping the "\r" of a CRLF line end.
            lines = path.read_bytes().decode("utf-8").split("\n")
            for lineno, raw_line in enumerate(lines, start=1):
                line = raw_line.removesuffix("\r")
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise MalformedRecordError(f"{path} line {lineno}: not JSON ({exc.msg})") from exc
            return records
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            # Accept a bare list or the common {"data": [...]} wrapper.
            if isinstance(data, Mapping) and isinstance(data.get("data"), list):
                data = data["data"]
            if not isinstance(data, list):
                raise EvaluationError(f"{path}: expected a JSON list of records")
            return data
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return list(pq.read_table(path).to_pylist())
        if suffix == ".arrow":
            return read_arrow_records(path)
    except json.JSONDecodeError as exc:
        raise EvaluationError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    except OSError as exc:
        raise EvaluationError(f"{path}: cannot be read ({exc})") from exc
    except Exception as exc:
        if isinstance(exc, EvaluationError):
            raise
        raise EvaluationError(f"{path}: cannot be read as {suffix} ({exc})") from exc
    raise EvaluationError(f"{path}: unsupported file type {suffix!r}; use {', '.join(FILE_SUFFIXES)}")


def read_arrow_records(path: Path) -> list[dict[str, Any]]:
    """The rows of an Arrow IPC stream or file as dicts; the format is told by the file's first bytes."""
    import pyarrow as pa

    try:
        with path.open("rb") as f:
            is_file_format = f.read(len(ARROW_FILE_MAGIC)) == ARROW_FILE_MAGIC
        with pa.memory_map(str(path)) as source:
            reader = pa.ipc.open_file(source) if is_file_format else pa.ipc.open_stream(source)
            return list(reader.read_all().to_pylist())
    except (pa.ArrowException, OSError) as exc:
        raise EvaluationError(f"{path}: not a readable Arrow IPC stream or file ({exc})") from exc


def _read_hub(dataset_id: str, split: str) -> list[Any]:
    try:
        import datasets

        return list(datasets.load_dataset(dataset_id, split=split))
    except Exception as exc:  # datasets raises many kinds; all mean "not available"
        raise EvaluationError(
            f"dataset {dataset_id!r} (split {split!r}) could not be loaded: {exc}. "
            "Offline, pass a local .json/.jsonl/.parquet file instead."
        ) from exc


def _check_unique_ids(questions: Sequence[MCQuestion], source: str) -> None:
    seen: set[int | str] = set()
    for q in questions:
        if q.question_id in seen:
            raise MalformedRecordError(f"{source}: question_id {q.question_id!r} appears twice")
        seen.add(q.question_id)
