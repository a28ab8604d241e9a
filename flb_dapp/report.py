"""The round report: FLB's central artifact, typed, with one canonical JSON form.

A report names the inputs (client, CID, samples, accepted or rejected and why), the strategy and its
parameters, the privacy spent, the metrics before and after, each client's contribution and reward,
and the Merkle proofs. It is stored like an adapter and its CID goes on chain, so the same report
must always give the same bytes: canonical JSON (sorted keys, no spaces, infinities spelled "inf").

Schema 2 writes token amounts as decimal strings: JavaScript's ``JSON.parse`` (every explorer and
front end) rounds integers above 2**53, and a rounded amount makes its Merkle proof fail. Schema 1
reports (amounts as JSON numbers) are still read.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from eth_utils import to_checksum_address
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from flb_dapp.exceptions import ReportError

REPORT_FORMAT = "flb-round-report/2"
LEGACY_FORMATS = ("flb-round-report/1",)
MAX_REPORT_BYTES = 16 << 20
MAX_AMOUNT = 2**256 - 1

__all__ = [
    "LEGACY_FORMATS",
    "MAX_REPORT_BYTES",
    "REPORT_FORMAT",
    "Amount",
    "EvaluationSummary",
    "ReportCohort",
    "ReportError",
    "ReportInput",
    "ReportMetrics",
    "ReportPrivacy",
    "ReportRewards",
    "RoundReport",
    "canonical_json",
    "parse_report",
]


def _amount(value: Any) -> int:
    """A token amount: a non-negative integer below 2**256, as an int or a decimal string."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"an amount is an integer or a decimal string, not {type(value).__name__}")
    if isinstance(value, str) and not (value.isascii() and value.isdigit() and len(value) <= 78):
        raise ValueError(f"an amount string holds decimal digits only, got {value[:80]!r}")
    amount = int(value)
    if not 0 <= amount <= MAX_AMOUNT:
        raise ValueError(f"amount out of uint256 range: {amount}")
    return amount


def _real(value: Any) -> Any:
    """Floats as written by canonical JSON: numbers, or "inf"/"-inf" for infinities."""
    if isinstance(value, str) and value in ("inf", "-inf"):
        return float(value)
    if isinstance(value, bool):
        raise ValueError("a number, not a boolean")
    return value


Amount = Annotated[int, BeforeValidator(_amount)]
Real = Annotated[float, BeforeValidator(_real)]


class _Part(BaseModel):
    # NOTE: strict shapes: a report is read back from the network by verifiers and the API.
    model_config = ConfigDict(extra="forbid")


class CategoryScore(_Part):
    accuracy: Real
    n: int


class EvaluationSummary(_Part):
    """An evaluation of one adapter (``EvalResult.to_dict()``)."""

    accuracy: Real
    loss: Real | None  # None: the loss was NaN
    n: int
    per_category: dict[str, CategoryScore] = {}
    accuracy_norm: Real | None = None  # the cloze formulation's length-normalised accuracy


class ReportInput(_Part):
    """One submitted update and what the round made of it."""

    client: str
    cid: str
    num_samples: int
    accepted: bool
    reason: str
    norm: Real | None = None
    local_dp: dict[str, Real] | None = None
    weight: Real = 0.0
    excluded: str = ""
    contribution: Real = 0.0
    reward: Amount = 0


class ReportPrivacy(_Part):
    server_noise: bool
    round_event: dict[str, Any] | None
    local_dp: dict[str, Any] | None
    epsilon: Real
    delta: Real
    state: dict[str, Any]
    # The DP noise commitment and the block mixed into the noise (flb_dapp.rounds.noise); None
    # without a settlement.
    noise_binding: dict[str, Any] | None = None


class ReportMetrics(_Part):
    before: EvaluationSummary
    after: EvaluationSummary


class ReportRewards(_Part):
    budget: Amount
    scoring: str
    note: str = ""
    round: dict[str, Amount]
    round_total: Amount
    cumulative: dict[str, Amount]
    root: str
    proofs: dict[str, list[str]]
    # CID of the rewards tree in OpenZeppelin's StandardMerkleTree dump format (schema 2).
    tree_cid: str | None = None
    # How the contributions were found (optional: reports written before these fields lack them).
    rule: str = ""  # e.g. "shapley-exact", "shapley-monte-carlo", "leave-one-out", "prototype"
    evaluations: int = 0  # scorer evaluations spent on contributions
    seed: str = ""  # hex seed of sampled permutations, so anyone can replay them
    zeroed: dict[str, str] = {}  # client -> why it scored 0 although included (copy, zero delta)

    def _key(self, table: dict[str, Any], account: str) -> str | None:
        # NOTE: reports key clients by checksum address; be lenient about case anyway.
        if account in table:
            return account
        lowered = account.lower()
        return next((k for k in table if k.lower() == lowered), None)

    def cumulative_of(self, account: str) -> int:
        key = self._key(self.cumulative, account)
        return self.cumulative[key] if key is not None else 0

    def proof_of(self, account: str) -> list[str]:
        key = self._key(self.proofs, account)
        return list(self.proofs[key]) if key is not None else []


class ReportCohort(_Part):
    """The round's cohort as the contract drew it, so anyone can re-derive it
    (``flb_dapp.chain.cohort``): ``size`` of the ``population`` first registered clients."""

    seed: str  # 0x-hex, 32 bytes
    size: int
    population: int
    members: list[str]  # checksum addresses, in registration order


class AggregationSummary(_Part):
    metrics: dict[str, Real | None] = {}


class RoundReport(_Part):
    """The whole report. ``to_json`` gives its canonical bytes; ``from_json`` reads schema 1 and 2."""

    format: str = REPORT_FORMAT
    software: dict[str, str]
    contract: str
    chain_id: int
    round: int
    task: dict[str, Any]
    previous_global_model_cid: str
    inputs_block: int = 0
    banned: list[str] = []
    cohort: ReportCohort | None = None  # None: every registered client could submit (no key)
    global_model_cid: str
    settings: dict[str, Any]
    strategy: dict[str, Any]
    strategy_state: dict[str, Any] | None = None
    inputs: list[ReportInput]
    aggregation: AggregationSummary
    privacy: ReportPrivacy
    metrics: ReportMetrics
    rewards: ReportRewards

    @property
    def accepted(self) -> list[str]:
        return [d.client for d in self.inputs if d.accepted]

    @property
    def rejected(self) -> dict[str, str]:
        return {d.client: d.reason for d in self.inputs if not d.accepted}

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, always in the current schema: token amounts as decimal strings."""
        document = self.model_dump()
        document["format"] = REPORT_FORMAT
        for entry in document["inputs"]:
            entry["reward"] = str(entry["reward"])
        rewards = document["rewards"]
        for key in ("budget", "round_total"):
            rewards[key] = str(rewards[key])
        for key in ("round", "cumulative"):
            rewards[key] = {client: str(amount) for client, amount in rewards[key].items()}
        if rewards["tree_cid"] is None:
            rewards.pop("tree_cid")
        for summary in document["metrics"].values():
            if summary["accuracy_norm"] is None:  # letters: no such figure, so no such key
                summary.pop("accuracy_norm")
        if document["cohort"] is None:  # rounds without a cohort keep the bytes they always had
            document.pop("cohort")
        if document["privacy"]["noise_binding"] is None:  # likewise rounds without a binding
            document["privacy"].pop("noise_binding")
        return document

    def to_json(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_json(cls, data: bytes) -> RoundReport:
        return parse_report(data)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def canonical_json(document: dict[str, Any]) -> bytes:
    """Deterministic bytes: sorted keys, compact, infinities spelled as strings."""
    return json.dumps(_finite(document), sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def parse_report(data: bytes) -> RoundReport:
    """Parse and check report bytes fetched by CID; raises ReportError naming what is wrong."""
    if len(data) > MAX_REPORT_BYTES:
        raise ReportError(f"report is {len(data)} bytes, over the limit of {MAX_REPORT_BYTES}")
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ReportError(f"report is not JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") not in (REPORT_FORMAT, *LEGACY_FORMATS):
        raise ReportError(f"not an FLB round report (format {REPORT_FORMAT!r} expected)")
    for key in ("round", "global_model_cid", "inputs", "rewards", "metrics", "privacy"):
        if key not in document:
            raise ReportError(f"report lacks {key!r}")
    try:
        report = RoundReport.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ReportError(f"malformed report at {where}: {first['msg']}") from exc
    for table in (report.rewards.round, report.rewards.cumulative, report.rewards.proofs):
        for account in table:
            try:
                to_checksum_address(account)
            except ValueError as exc:
                raise ReportError(f"malformed report: {account[:60]!r} is not an address") from exc
    return report
