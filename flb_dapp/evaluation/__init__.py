"""Evaluation: multiple-choice data (MMLU-Pro schema), the bundled task, and log-likelihood scoring."""

from flb_dapp.evaluation.datasets import LETTERS, MCQuestion, load_questions, questions_from_records
from flb_dapp.evaluation.multiple_choice import (
    CategoryResult,
    EvalResult,
    Evaluator,
    evaluate_multiple_choice,
    select_shots,
)
from flb_dapp.evaluation.task import SyntheticTask, make_task, split_non_iid

__all__ = [
    "LETTERS",
    "CategoryResult",
    "EvalResult",
    "Evaluator",
    "MCQuestion",
    "SyntheticTask",
    "evaluate_multiple_choice",
    "load_questions",
    "make_task",
    "questions_from_records",
    "select_shots",
    "split_non_iid",
]
