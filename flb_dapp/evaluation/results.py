"""What an evaluation found: accuracy, loss and their standard errors, per category too.

Plain data with no model code (the scorer lives in ``multiple_choice``): a process that receives
results from an evaluating worker unpickles these without importing torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class CategoryResult(NamedTuple):
    accuracy: float
    n: int


@dataclass(frozen=True)
class EvalResult:
    """Accuracy and mean loss over ``n`` questions, per category too; ``predictions`` are the
    predicted letters in question order."""

    accuracy: float
    loss: float
    n: int
    per_category: dict[str, CategoryResult] = field(default_factory=dict)
    predictions: tuple[str, ...] = ()
    # cloze only: accuracy when each option's log-likelihood is divided by its length in characters
    accuracy_norm: float | None = None
    per_category_norm: dict[str, CategoryResult] = field(default_factory=dict)
    predictions_norm: tuple[str, ...] = ()  # cloze only: the letters acc_norm predicts

    @property
    def stderr(self) -> float:
        """Standard error of the accuracy (sample standard deviation over sqrt(n), as harnesses report)."""
        return binomial_stderr(self.accuracy, self.n)

    @property
    def stderr_norm(self) -> float | None:
        return None if self.accuracy_norm is None else binomial_stderr(self.accuracy_norm, self.n)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for round reports (``accuracy_norm`` only where the formulation has one)."""
        out: dict[str, Any] = {
            "accuracy": self.accuracy,
            "loss": self.loss,
            "n": self.n,
            "per_category": {c: {"accuracy": r.accuracy, "n": r.n} for c, r in self.per_category.items()},
        }
        if self.accuracy_norm is not None:
            out["accuracy_norm"] = self.accuracy_norm
        return out


def binomial_stderr(accuracy: float, n: int) -> float:
    return math.sqrt(accuracy * (1 - accuracy) / (n - 1)) if n > 1 else 0.0
