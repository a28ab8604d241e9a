"""Evaluation: multiple-choice data (MMLU-Pro schema), the bundled task, and log-likelihood scoring.

The names below load on first use (PEP 562): the data modules are pure Python, while the scorer
(``multiple_choice``) imports torch, which a process that only reads questions must not pay for.
"""

from __future__ import annotations

from flb_dapp.lazy import lazy_getattr

_HOMES = {
    "LETTERS": "datasets",
    "MCQuestion": "datasets",
    "load_questions": "datasets",
    "questions_from_records": "datasets",
    "CategoryResult": "multiple_choice",
    "EvalResult": "multiple_choice",
    "Evaluator": "multiple_choice",
    "evaluate_multiple_choice": "multiple_choice",
    "select_shots": "multiple_choice",
    "SyntheticTask": "task",
    "make_task": "task",
    "split_non_iid": "task",
}

__all__ = sorted(_HOMES)
__getattr__ = lazy_getattr(__name__, _HOMES)
