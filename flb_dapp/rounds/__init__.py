"""The round computation, one module per part: inputs, settings (the one owner of round defaults),
the steps (fetching, validation, combining, scoring, reporting), their typed results, and the
computation with its step table. Pure layer: no chain code, no service."""

from flb_dapp.rounds.combining import LazyDelta
from flb_dapp.rounds.computation import (
    STEP_TABLE,
    STEPS,
    MemoryJournal,
    RoundComputation,
    RoundOutcome,
    Scorer,
    Step,
    StepJournal,
    compute_round,
)
from flb_dapp.rounds.fetching import UNFETCHABLE_PREFIXES
from flb_dapp.rounds.inputs import RoundInputs, UpdateRef, inputs_after
from flb_dapp.rounds.settings import RoundRules, RoundSettings

__all__ = [
    "STEPS",
    "STEP_TABLE",
    "UNFETCHABLE_PREFIXES",
    "LazyDelta",
    "MemoryJournal",
    "RoundComputation",
    "RoundInputs",
    "RoundOutcome",
    "RoundRules",
    "RoundSettings",
    "Scorer",
    "Step",
    "StepJournal",
    "UpdateRef",
    "compute_round",
    "inputs_after",
]
