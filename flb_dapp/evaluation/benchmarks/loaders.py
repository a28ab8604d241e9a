"""Readers for the benchmarks besides MMLU, one per source format, each giving ``MCQuestion``s.

All of them read one file and take ``(path, benchmark, split, src)``: ``benchmark`` and ``split``
make the ids (``<benchmark>/<split>/<the data's own id, or the row number where it has none>``) and
``category`` is the benchmark's name. Options are the answer texts, in the data's order, as the
cloze formulation scores them; ``question`` is the benchmark's own question or context, unchanged.
"""

from __future__ import annotations

from pathlib import Path

from flb_dapp.evaluation.benchmarks.source import Row, make_question, read_arrow_rows, read_oe_eval_docs
from flb_dapp.evaluation.datasets import MCQuestion

# oe-eval's rc ("ranked classification") query is f"Question: {question}\nAnswer:"; the plain
# question is what lies between, which matches the Hugging Face rows exactly where both exist
# (ARC-Easy, ARC-Challenge and OpenBookQA validation).
OE_EVAL_QUERY_PREFIX = "Question: "
OE_EVAL_QUERY_SUFFIX = "\nAnswer:"


def plain_question(doc: Row) -> str:
    """The question inside an oe-eval ``query``, without its ``Question: ... Answer:`` frame."""
    query = doc.text("query")
    framed = query.startswith(OE_EVAL_QUERY_PREFIX) and query.endswith(OE_EVAL_QUERY_SUFFIX)
    question = query[len(OE_EVAL_QUERY_PREFIX) : -len(OE_EVAL_QUERY_SUFFIX)]
    if not framed or not question.strip():
        raise doc.error("query", f"is not 'Question: <text>\\nAnswer:', got {query!r:.80}")
    return question


def read_oe_eval_questions(path: Path, benchmark: str, split: str, src: str) -> list[MCQuestion]:
    """ARC / OpenBookQA test splits from oe-eval request files; ids are the data's own (``doc['id']``),
    the answer is ``doc['gold']``, an index into ``doc['choices']``."""
    questions = []
    for doc in read_oe_eval_docs(path):
        options = doc.texts("choices")
        index = doc.index("gold", len(options))
        qid = f"{benchmark}/{split}/{doc.text('id')}"
        questions.append(make_question(qid, plain_question(doc), options, index, benchmark, src))
    return questions


def read_labelled_questions(
    path: Path, benchmark: str, split: str, src: str, *, question_field: str = "question"
) -> list[MCQuestion]:
    """Rows with ``id``, a question, ``choices: {text, label}`` and ``answerKey`` (one of the labels):
    ARC and CommonsenseQA (``question``), OpenBookQA (``question_stem``)."""
    questions = []
    row_of_id: dict[str, int] = {}
    for row_number, fields in enumerate(read_arrow_rows(path)):
        row = Row(fields, f"{path} row {row_number}")
        own_id = row.text("id")
        if own_id in row_of_id:
            raise row.error("id", f"{own_id!r} repeats the id of row {row_of_id[own_id]}")
        row_of_id[own_id] = row_number
        options, index = row.labelled_options("choices", "answerKey")
        qid = f"{benchmark}/{split}/{own_id}"
        questions.append(make_question(qid, row.text(question_field), options, index, benchmark, src))
    return questions


def read_sciq(path: Path, benchmark: str, split: str, src: str) -> list[MCQuestion]:
    """SciQ rows (``question``, ``distractor1..3``, ``correct_answer``; no id, so the row number).

    SciQ gives no option order. The options are ``distractor1, distractor2, distractor3,
    correct_answer`` as lm-eval-harness and oe-eval list them, so the answer is always D: score SciQ
    by the options' text (cloze), never by letters. The ``support`` passage is not part of the question.
    """
    questions = []
    for row_number, fields in enumerate(read_arrow_rows(path)):
        row = Row(fields, f"{path} row {row_number}")
        options = tuple(row.text(f) for f in ("distractor1", "distractor2", "distractor3", "correct_answer"))
        qid = f"{benchmark}/{split}/{row_number}"
        questions.append(make_question(qid, row.text("question"), options, 3, benchmark, src))
    return questions


def read_hellaswag(path: Path, benchmark: str, split: str, src: str) -> list[MCQuestion]:
    """HellaSwag rows: the question is ``ctx`` as stored (no WikiHow ``[header]`` clean-up, no
    activity label), the options the four ``endings``, the answer ``label`` (a digit string).

    Ids use the row number: the data's ``ind`` repeats (9,609 distinct in 10,042 validation rows).
    """
    questions = []
    for row_number, fields in enumerate(read_arrow_rows(path)):
        row = Row(fields, f"{path} row {row_number}")
        options = row.texts("endings", count=4)
        index = row.index("label", len(options), digit_string=True)
        qid = f"{benchmark}/{split}/{row_number}"
        questions.append(make_question(qid, row.text("ctx"), options, index, benchmark, src))
    return questions


def read_piqa(path: Path, benchmark: str, split: str, src: str) -> list[MCQuestion]:
    """PIQA rows: the question is ``goal``, the options ``sol1`` and ``sol2``, the answer ``label``
    (0 or 1); no id, so the row number."""
    questions = []
    for row_number, fields in enumerate(read_arrow_rows(path)):
        row = Row(fields, f"{path} row {row_number}")
        options = (row.text("sol1"), row.text("sol2"))
        qid = f"{benchmark}/{split}/{row_number}"
        questions.append(make_question(qid, row.text("goal"), options, row.index("label", 2), benchmark, src))
    return questions
