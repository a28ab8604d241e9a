"""The round report: the JSON document, stored like an adapter, whose CID goes on chain.

It names the inputs (client, CID, samples, accepted or rejected and why), the strategy and its
parameters, the privacy spent, the metrics before and after, each client's contribution and reward,
and the Merkle proofs. Canonical JSON (sorted keys, no spaces) makes the same report the same CID.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flb_dapp.exceptions import FLBError

REPORT_FORMAT = "flb-round-report/1"
MAX_REPORT_BYTES = 16 << 20


class ReportError(FLBError, ValueError):
    """A round report is malformed."""


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


def parse_report(data: bytes) -> dict[str, Any]:
    """Parse and sanity-check report bytes fetched by CID."""
    if len(data) > MAX_REPORT_BYTES:
        raise ReportError(f"report is {len(data)} bytes, over the limit of {MAX_REPORT_BYTES}")
    try:
        report = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"report is not JSON: {exc}") from exc
    if not isinstance(report, dict) or report.get("format") != REPORT_FORMAT:
        raise ReportError(f"not an FLB round report (format {REPORT_FORMAT!r} expected)")
    for key in ("round", "global_model_cid", "inputs", "rewards", "metrics", "privacy"):
        if key not in report:
            raise ReportError(f"report lacks {key!r}")
    return report
