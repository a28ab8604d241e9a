"""The validate step: decode and check each fetched update against the task, the global adapter,
its submission and the other updates. Any exception about one update is that update's rejection."""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from flb_dapp.aggregation import l2_norm
from flb_dapp.exceptions import AdapterValidationError
from flb_dapp.lora.adapter import Adapter
from flb_dapp.lora.codec import decode_adapter
from flb_dapp.rounds.fetching import describe
from flb_dapp.rounds.results import Decision, FetchedUpdate, ValidateResult
from flb_dapp.screening import find_copies, flatten, relative_outliers
from flb_dapp.taskspec import TaskSpec

if TYPE_CHECKING:
    from flb_dapp.rounds.computation import RoundComputation


def declared_local_dp(adapter: Adapter) -> dict[str, float] | None:
    """The local DP a client declares in its adapter (``dp.epsilon``/``dp.delta``), or None."""
    extra = adapter.extra
    if "dp.epsilon" not in extra and "dp.delta" not in extra:
        return None
    try:
        epsilon, delta = float(extra["dp.epsilon"]), float(extra["dp.delta"])
    except (KeyError, ValueError) as exc:
        raise AdapterValidationError(f"malformed local DP metadata: {exc}") from exc
    if not (math.isfinite(epsilon) and epsilon > 0 and 0 < delta < 1):
        raise AdapterValidationError(f"local DP metadata out of range: epsilon={epsilon}, delta={delta}")
    declared = {"epsilon": epsilon, "delta": delta}
    if extra.get("dp.mechanism", "").startswith("gaussian-update") or "dp.sigma" in extra:
        try:
            sigma = float(extra.get("dp.sigma", "0"))
        except ValueError as exc:
            raise AdapterValidationError(f"malformed local DP metadata: dp.sigma: {exc}") from exc
        if not (math.isfinite(sigma) and sigma >= 0):
            raise AdapterValidationError(f"local DP metadata out of range: sigma={sigma}")
        declared["sigma"] = sigma
    return declared


def content_digest(adapter: Adapter) -> str:
    """The tensors' identity, whatever their encoding: two files with this equal are one update."""
    digest = hashlib.sha256()
    for key in sorted(adapter.tensors):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(adapter.tensors[key], dtype=np.float32).tobytes())
    return digest.hexdigest()


class _Checker:
    """The per-update rules, with what the round has seen so far (for exact duplicates)."""

    def __init__(self, run: RoundComputation) -> None:
        self.run = run
        self.base = run.base
        self.layout = self.base.layout()
        task = run.inputs.task
        self.task = TaskSpec.from_dict(dict(task)) if task else TaskSpec()
        self.banned = {c.lower() for c in run.inputs.banned}
        self.cohort = run.inputs.cohort
        self.seen: dict[str, str] = {}

    def check(self, entry: FetchedUpdate, decision: Decision) -> tuple[str, np.ndarray | None]:
        """(why ``entry`` is rejected or "", its flattened delta). Raises on undecodable content."""
        client, base = entry.client, self.base
        if client.lower() in self.banned:
            return f"{client} was banned before the round was processed", None
        if self.cohort is not None and not self.cohort.includes(client):
            # NOTE: the contract refuses a non-member's commit; this holds if it ever did not.
            cohort = self.cohort
            return (
                f"{client} is not in the cohort of round {self.run.inputs.round} "
                f"({cohort.size} of {cohort.population} clients drawn by seed {cohort.seed})"
            ), None
        adapter = decode_adapter(
            self.run.cache.get_bytes(entry.cid), self.run.limits, expected_layout=self.layout
        )
        problem = self._metadata_problem(adapter, client)
        if problem:
            return problem, None
        if entry.num_samples > self.task.sample_cap:
            return (
                f"claims {entry.num_samples} samples, over the task's maximum of {self.task.sample_cap} "
                "(steps x batch_size unless the task sets max_samples)"
            ), None
        decision.local_dp = declared_local_dp(adapter)
        delta = {k: adapter.tensors[k] - base.tensors[k] for k in self.layout}
        norm = decision.norm = l2_norm(delta)
        problem = self._norm_problem(norm, delta, decision.local_dp)
        if problem:
            return problem, None
        digest = content_digest(adapter)
        if digest in self.seen:
            return f"duplicate of the update of {self.seen[digest]}", None
        self.seen[digest] = client
        return "", flatten(delta)

    def _metadata_problem(self, adapter: Adapter, client: str) -> str:
        meta, base_meta, round_number = adapter.metadata, self.base.metadata, self.run.inputs.round
        if meta.base_model != base_meta.base_model:
            return f"trained on base model {meta.base_model!r}, not {base_meta.base_model!r}"
        if (meta.r, meta.lora_alpha) != (base_meta.r, base_meta.lora_alpha):
            return f"LoRA r={meta.r}, alpha={meta.lora_alpha} differ from the global adapter's"
        if meta.round != round_number:
            return f"adapter is labelled round {meta.round}, submitted in round {round_number}"
        if meta.client.lower() != client.lower():
            return f"adapter belongs to {meta.client or 'nobody'}, submitted by {client}"
        return ""

    def _norm_problem(self, norm: float, delta: dict[str, Any], local_dp: dict[str, float] | None) -> str:
        bound = self.task.max_update_norm
        if bound is not None and local_dp and local_dp.get("sigma", 0) > 0:
            # Local DP noise of std sigma adds about sigma * sqrt(d) of norm that the server cannot
            # tell from signal: the bound grows by that much (local DP trades robustness for privacy).
            size = sum(int(v.size) for v in delta.values())
            bound += 1.1 * local_dp["sigma"] * math.sqrt(size)
        if bound is not None and norm > bound:
            return f"update norm {norm:.4g} exceeds the task's bound of {bound:.4g}"
        if norm < self.task.min_update_norm:
            minimum = self.task.min_update_norm
            return f"update norm {norm:.4g} is below the task's minimum of {minimum:g} (no training)"
        return ""


def validate_step(run: RoundComputation) -> ValidateResult:
    checker = _Checker(run)
    decisions: list[Decision] = []
    vectors: list[tuple[str, np.ndarray]] = []
    for entry in run.result("fetch").updates:
        decision = Decision(
            client=entry.client, cid=entry.cid, num_samples=entry.num_samples, reason=entry.reason
        )
        decisions.append(decision)
        if not entry.ok:
            continue
        try:
            problem, vector = checker.check(entry, decision)
        except Exception as exc:  # NOTE: a crafted file must never stop the round
            problem, vector = f"invalid adapter: {describe(exc)}", None
        if problem:
            decision.reason = problem
            continue
        assert vector is not None
        decision.accepted = True
        vectors.append((entry.client, vector))
    by_client = {d.client: d for d in decisions}
    cosine = run.settings.duplicate_cosine
    for copy in find_copies(vectors, cosine):
        found = by_client[copy.client]
        found.accepted = False
        found.reason = (
            f"near-duplicate of the update of {copy.original} (cosine {copy.cosine:.4f} >= {cosine:g})"
        )
    if run.settings.norm_factor is not None:
        norms = {d.client: d.norm for d in decisions if d.accepted and d.norm is not None}
        for client, reason in relative_outliers(norms, run.settings.norm_factor).items():
            by_client[client].accepted, by_client[client].reason = False, reason
    return ValidateResult(decisions=decisions)
