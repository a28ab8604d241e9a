"""How a verifier checks a round with server-side DP noise: everything but the noise.

The noise comes from the oracle's secret, so nobody else can recompute the global model. What a
verifier can check, and does:

- the oracle committed to the round's noise secret before the commit phase ended, and the report
  names that commitment and the first block at or after the deadline, whose hash was mixed into
  the noise (``flb_dapp.rounds.noise``): the oracle could not choose its noise;
- every decision, contribution and reward: coalitions are aggregated before the noise
  (``flb_dapp.rounds.coalitions``), so they do not depend on it;
- the metric: it evaluates the published global model itself;
- the noise's scale: the published model minus the noise-free aggregate (which it computes) must
  have the standard deviation the rule declares (``NOISE_SCALE_TOLERANCE``).

Only fixed clipping is checked: adaptive clipping also noises its clipped count, which moves the
next round's clip, so its rounds are left to the challenge window.

Its honest result is its own recomputation with the published global model and that model's
evaluation in place of its own noised ones. It attests a proposal that matches it (saying the noise
was not checked) and challenges one that does not, with that result.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from flb_dapp.aggregation.tensors import l2_norm
from flb_dapp.audit import ReplayJournal, unfetchable_updates
from flb_dapp.chain.noise import read_noise_binding
from flb_dapp.chain.types import PPM
from flb_dapp.exceptions import AdapterValidationError, StorageError, StoreUnavailableError
from flb_dapp.lora.adapter import Adapter
from flb_dapp.report import AggregationSummary, EvaluationSummary, ReportMetrics, RoundReport
from flb_dapp.rounds import RoundComputation
from flb_dapp.rounds.noise import NoiseBinding

if TYPE_CHECKING:  # pragma: no cover
    from oracle.verifier import Recomputed, Verifier, VerifierAction

log = logging.getLogger("flb.verifier")
NOISE_NOT_CHECKED = "server-side DP: everything but the noise checked"
# The measured noise standard deviation may differ from the declared one by this fraction: the
# estimate over N parameters has a relative error of about 1/sqrt(2N) (0.3 % for 50,000).
NOISE_SCALE_TOLERANCE = 0.05
# The update norm recomputed from the published model (global - previous, in float32) carries
# rounding the oracle's own delta does not.
NORM_TOLERANCE = 1e-4


def _difference(a: Adapter, b: Adapter) -> dict[str, np.ndarray]:
    return {key: a.tensors[key].astype(np.float64) - b.tensors[key] for key in sorted(a.tensors)}


def noise_scale(verifier: Verifier, ours: Recomputed, theirs: RoundReport, published: Adapter) -> str:
    """'' when the published model's noise has the declared scale; else what is wrong."""
    computation = ours.computation
    assert computation is not None
    declared = float(ours.report.aggregation.metrics.get("noise_std") or 0.0)
    strategy = {**computation.settings.strategy, "noise_multiplier": 0.0}
    quiet = RoundComputation(
        computation.inputs,
        computation.settings.model_copy(update={"strategy": strategy}),
        verifier.store,
        verifier.scorer,
        ReplayJournal(unfetchable_updates(theirs)),
    )
    residual = _difference(published, computation.load_global(quiet.result("aggregate").global_model_cid))
    count = sum(r.size for r in residual.values())
    measured = math.sqrt(sum(float(np.square(r).sum()) for r in residual.values()) / max(count, 1))
    if declared <= 0 or abs(measured - declared) > NOISE_SCALE_TOLERANCE * declared:
        return (
            f"the published model's noise has standard deviation {measured:.3g}, "
            f"the rule declares {declared:.3g}"
        )
    return ""


def honest_noised(
    verifier: Verifier, round_number: int, binding: NoiseBinding, published_cid: str
) -> Recomputed | str:
    """This verifier's result for a noised round, built on the published global model; or why it
    cannot build one."""
    ours = verifier.recompute(round_number, noise=binding)
    theirs = ours.proposed_report
    assert ours.computation is not None
    if theirs is None:
        return "the proposer's report cannot be read"
    try:
        published = ours.computation.load_update(published_cid)
    except StoreUnavailableError:
        raise
    except (AdapterValidationError, StorageError) as exc:
        return f"the published global model {published_cid} is unusable: {exc}"
    wrong_scale = noise_scale(verifier, ours, theirs, published)
    if wrong_scale:
        return wrong_scale
    after = EvaluationSummary.model_validate(ours.computation.scorer.evaluate(published).to_dict())
    metrics = dict(ours.report.aggregation.metrics)
    norm = l2_norm(_difference(published, ours.computation.base))
    claimed = theirs.aggregation.metrics.get("update_norm")
    # NOTE: the norm of the published delta, in the proposer's own digits when they agree.
    metrics["update_norm"] = (
        claimed if claimed is not None and math.isclose(norm, claimed, rel_tol=NORM_TOLERANCE) else norm
    )
    report = ours.report.model_copy(
        update={
            "global_model_cid": published_cid,
            "metrics": ReportMetrics(before=ours.report.metrics.before, after=after),
            "aggregation": AggregationSummary(metrics=metrics),
            # The honest noise is seeded: by the committed secret and the block hash.
            "strategy": {**ours.report.strategy, "seeded": True},
        }
    )
    report_cid = verifier.store.put_bytes(report.to_json())
    result = replace(
        ours.result,
        global_model_cid=published_cid,
        report_cid=report_cid,
        metric_ppm=round(after.accuracy * PPM),
    )
    return replace(ours, result=result, report=report)


def check_noised(verifier: Verifier, round_number: int) -> VerifierAction:
    """Attest, challenge or leave a proposed round whose strategy adds server-side DP noise."""
    from oracle.verifier import VerifierAction, proposed_result

    if verifier.round_settings.strategy.get("dp") != "fixed":
        return VerifierAction(
            round_number,
            "none",
            "",
            reason="adaptive clipping noises its clipped count too, which moves the next clip: "
            "left to the challenge window",
        )
    binding = read_noise_binding(verifier.coordinator, verifier.settlement, round_number)
    if binding is None:
        return VerifierAction(
            round_number,
            "none",
            "",
            reason="server-side DP without a noise commitment before the commit deadline: the oracle "
            "could have chosen its noise; left to the challenge window",
        )
    proposal = verifier.settlement.proposal(round_number)
    proposed = proposed_result(verifier.coordinator, round_number, proposal.round_rewards)
    honest = honest_noised(verifier, round_number, binding, proposed.global_model_cid)
    if isinstance(honest, str):
        return VerifierAction(round_number, "none", "", reason=honest)
    noted = f"{NOISE_NOT_CHECKED} (commitment {binding.commitment}, block {binding.block})"
    differs = verifier.agrees(honest, proposed)
    if not differs:
        return replace(verifier.attest(round_number, proposal.result_hash), reason=noted)
    challenge = verifier.settlement.challenge_info(round_number)
    if challenge.open:
        if not verifier.agrees(honest, verifier.settlement.challenge_result(round_number)):
            return replace(verifier.attest(round_number, challenge.result_hash), reason=noted)
        return VerifierAction(round_number, "none", "", reason=f"neither result matches: {differs}")
    return verifier.challenge_with(round_number, honest.result, proposed, differs)
