"""MMLU (Hendrycks et al., 2021): 57 subjects, four options each, from ``hails/mmlu_no_train``.

Each question's ``category`` is its subject; :data:`MMLU_SUBJECT_GROUPS` maps subjects to the four
groups the MMLU paper reports (its ``categories.py``: STEM, humanities, social sciences, and
"other (business, health, misc.)", here ``"other"``). Note the paper puts anatomy, clinical knowledge
and the medical subjects under "other", where some harnesses put anatomy under STEM.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from flb_dapp.evaluation.benchmarks.source import Row, hf_arrow_path, make_question, read_arrow_rows
from flb_dapp.evaluation.datasets import MCQuestion
from flb_dapp.exceptions import EvaluationError

MMLU_DATASET_DIR = "hails/mmlu_no_train"
MMLU_SPLITS = ("test", "validation", "dev")
MMLU_GROUPS = ("STEM", "humanities", "social sciences", "other")

_SUBJECTS_BY_GROUP = {
    "STEM": (
        "abstract_algebra", "astronomy", "college_biology", "college_chemistry",
        "college_computer_science", "college_mathematics", "college_physics", "computer_security",
        "conceptual_physics", "electrical_engineering", "elementary_mathematics",
        "high_school_biology", "high_school_chemistry", "high_school_computer_science",
        "high_school_mathematics", "high_school_physics", "high_school_statistics",
        "machine_learning",
    ),
    "humanities": (
        "formal_logic", "high_school_european_history", "high_school_us_history",
        "high_school_world_history", "international_law", "jurisprudence", "logical_fallacies",
        "moral_disputes", "moral_scenarios", "philosophy", "prehistory", "professional_law",
        "world_religions",
    ),
    "social sciences": (
        "econometrics", "high_school_geography", "high_school_government_and_politics",
        "high_school_macroeconomics", "high_school_microeconomics", "high_school_psychology",
        "human_sexuality", "professional_psychology", "public_relations", "security_studies",
        "sociology", "us_foreign_policy",
    ),
    "other": (
        "anatomy", "business_ethics", "clinical_knowledge", "college_medicine", "global_facts",
        "human_aging", "management", "marketing", "medical_genetics", "miscellaneous", "nutrition",
        "professional_accounting", "professional_medicine", "virology",
    ),
}  # fmt: skip

MMLU_SUBJECT_GROUPS: dict[str, str] = {
    subject: group for group, subjects in _SUBJECTS_BY_GROUP.items() for subject in subjects
}
"""Subject -> group (18 STEM, 13 humanities, 12 social sciences, 14 other)."""

MMLU_SUBJECTS: tuple[str, ...] = tuple(sorted(MMLU_SUBJECT_GROUPS))
"""The 57 subjects in the order their folders sort, which is the order questions load in."""


def mmlu_group(subject: str) -> str:
    """The paper's group of one subject."""
    try:
        return MMLU_SUBJECT_GROUPS[subject]
    except KeyError:
        raise EvaluationError(f"{subject!r} is not an MMLU subject") from None


def with_mmlu_groups(questions: Iterable[MCQuestion]) -> list[MCQuestion]:
    """The same questions with ``category`` set to the subject's group, for per-group accuracy."""
    return [dataclasses.replace(q, category=mmlu_group(q.category)) for q in questions]


def load_mmlu(root: Path, split: str) -> list[MCQuestion]:
    """Every subject's questions of one split, subjects in :data:`MMLU_SUBJECTS` order."""
    questions: list[MCQuestion] = []
    for subject in MMLU_SUBJECTS:
        questions += read_mmlu_file(
            hf_arrow_path(root, f"{MMLU_DATASET_DIR}/{subject}", split), split, subject
        )
    return questions


def read_mmlu_file(path: Path, split: str, subject: str) -> list[MCQuestion]:
    """One subject's split; ids are ``mmlu/<split>/<subject>/<row>``, answers the data's 0-3 index."""
    questions = []
    for row_number, fields in enumerate(read_arrow_rows(path)):
        row = Row(fields, f"{path} row {row_number}")
        # A row filed under another subject would be counted in the wrong category.
        if row.text("subject") != subject:
            raise row.error("subject", f"is {row.fields['subject']!r} in the folder of {subject!r}")
        options = row.texts("choices", count=4)
        questions.append(
            make_question(
                f"mmlu/{split}/{subject}/{row_number}",
                row.text("question"),
                options,
                row.index("answer", len(options)),
                category=subject,
                src=f"hf_datasets/{MMLU_DATASET_DIR}",
            )
        )
    return questions
