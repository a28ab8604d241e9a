"""How the oracle combines and rewards a round: the one owner of every round default.

``RoundRules`` are the published settings (every report records them); the oracle's configuration
section inherits its fields, so a default is written once, here, and no key can be lost between
the YAML file and the round. ``RoundSettings`` adds the one secret, the DP noise seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from flb_dapp.aggregation import Strategy, make_strategy
from flb_dapp.aggregation.registry import DEFAULT_STRATEGY
from flb_dapp.exceptions import RoundError
from flb_dapp.rewards import SCORING_RULES
from flb_dapp.rounds.noise import NoiseBinding

SERVER_NOISE_MODES = ("fixed", "adaptive")  # DP modes whose noise the oracle adds to the aggregate

#: Exact Shapley asks for 2**n coalitions: past this many players it would take hours per round.
MAX_EXACT_PLAYERS = 12


class RoundRules(BaseModel):
    """The round settings a report publishes. Checked when built: a bad strategy fails at start."""

    strategy: dict[str, Any] = Field(default_factory=lambda: dict(DEFAULT_STRATEGY))
    # Chosen by measurement (bench/contributions.py): exact Shapley pays every honest client of an
    # overlapping cohort and ranks them stably; leave-one-out paid some of them nothing.
    scoring: str = "shapley"
    # exact Shapley up to this many players (2**n - 2 evaluations: 62 at 6; each one is a held-out
    # evaluation, seconds to minutes with a real model), the sampled estimate beyond that
    shapley_exact_max: int = 6
    shapley_budget: int = 64  # evaluations for the sampled estimate (2 n at least)
    # The precision to which evaluation losses and contributions are reproducible across machines:
    # another CPU kernel set moves a float32 loss by about 2e-7 (measured: ATEN_CPU_CAPABILITY=default
    # against AVX2 on the tiny model), so a verifier accepts reported losses and contributions
    # within this absolute distance of its own, and the rewards they determine exactly.
    score_tolerance: float = 1e-5
    # Exact re-execution: with score_decimals set, every evaluation loss is rounded to that many
    # decimals before contributions and rewards are computed from it, so a verifier on other
    # kernels or thread counts reproduces the result hash itself, not only within score_tolerance.
    # That needs losses that vary far below the rounding: in score_dtype float64 they move by about
    # 2e-15 between kernel sets (float32: 1e-8; tests/evaluation/test_wide.py). The settled
    # deployments' choice: float64 with 8 decimals.
    score_dtype: Literal["float32", "float64"] = "float32"
    score_decimals: int | None = None
    # Reject a delta whose norm exceeds this multiple of the round's median norm. Off by default:
    # the median of self-selected clients is steerable by Sybils; the task's absolute bound is not.
    norm_factor: float | None = None
    duplicate_cosine: float = 0.95  # a delta this similar to an earlier one is a copy
    max_update_bytes: int = 256 << 20
    fetch_timeout_s: float = 60.0  # total per update, however slowly its bytes arrive
    fetch_retry_s: float = 0.5  # first pause before retrying a store that is down (then doubled)
    fetch_concurrency: int = 4
    fetch_round_budget_s: float = 600.0  # all fetches of a round together; later ones are rejected
    max_updates: int = 256  # updates past this many in chain order are not processed
    privacy_delta: float = 1e-5
    privacy_budget: float | None = None  # stop before a round that would exceed this epsilon

    @model_validator(mode="after")
    def _check(self) -> RoundRules:
        if self.scoring not in SCORING_RULES:
            raise RoundError(f"unknown scoring rule {self.scoring!r}; choose one of {SCORING_RULES}")
        if not 0 <= self.shapley_exact_max <= MAX_EXACT_PLAYERS or self.shapley_budget < 1:
            raise RoundError(
                f"need 0 <= shapley_exact_max <= {MAX_EXACT_PLAYERS} and shapley_budget >= 1, got "
                f"{self.shapley_exact_max} and {self.shapley_budget}"
            )
        if not 0 <= self.score_tolerance < 1:
            raise RoundError(f"score_tolerance must be in [0, 1), got {self.score_tolerance}")
        if self.score_decimals is not None and not 0 <= self.score_decimals <= 15:
            raise RoundError(f"score_decimals must be 0 .. 15 or unset, got {self.score_decimals}")
        if self.norm_factor is not None and self.norm_factor <= 1:
            raise RoundError(f"norm_factor must be > 1 or unset, got {self.norm_factor}")
        if not 0 < self.duplicate_cosine <= 1:
            raise RoundError(f"duplicate_cosine must be in (0, 1], got {self.duplicate_cosine}")
        if self.fetch_concurrency < 1 or self.max_updates < 1:
            raise RoundError("fetch_concurrency and max_updates must be >= 1")
        if "name" not in self.strategy:
            raise RoundError(f"the strategy needs a name, got {self.strategy!r}")
        try:
            self.build_strategy()  # NOTE: a misconfigured strategy fails at start, not after a deadline
        except (TypeError, ValueError) as exc:
            # NOTE: a RoundError (not a ValueError) passes through pydantic unwrapped, with its words.
            raise RoundError(f"invalid strategy {self.strategy!r}: {exc}") from exc
        return self

    def build_strategy(self, dp_seed: int | None = None) -> Strategy:
        params = dict(self.strategy)
        name = params.pop("name")
        dp = params.pop("dp", None)
        if dp:
            params.setdefault("seed", dp_seed)
        return make_strategy(name, dp=dp, **params)

    @property
    def server_noise(self) -> bool:
        """Whether the oracle adds DP noise to the aggregate (from its secret seed)."""
        return self.strategy.get("dp") in SERVER_NOISE_MODES

    def rules(self) -> RoundRules:
        """Only the published fields (an oracle configuration carries more)."""
        return RoundRules(**{name: getattr(self, name) for name in RoundRules.model_fields})


class RoundSettings(RoundRules):
    """The published rules plus the secret seed of server-side DP noise."""

    model_config = ConfigDict(frozen=True)

    # None draws the noise from OS entropy (private by default).
    dp_seed: int | None = None

    def build_strategy(self, dp_seed: int | None = None) -> Strategy:
        return super().build_strategy(self.dp_seed if dp_seed is None else dp_seed)

    def for_round(self, noise: NoiseBinding | None, round_number: int) -> RoundSettings:
        """The settings one round runs with: bound by a noise commitment, the seed of its noise
        is the committed secret mixed with the block hash (:mod:`flb_dapp.rounds.noise`)."""
        if noise is None or self.dp_seed is None:
            return self
        try:
            seed = noise.seed(self.dp_seed, round_number)
        except ValueError as exc:
            raise RoundError(str(exc)) from exc
        return self.model_copy(update={"dp_seed": seed})

    def describe(self) -> dict[str, Any]:
        """What a report records: every rule, never the seed (it would let anyone subtract the noise).
        The exact-scores rules appear once set, so reports without them keep their bytes."""
        described = self.rules().model_dump()
        for key, default in (("score_dtype", "float32"), ("score_decimals", None)):
            if described[key] == default:
                del described[key]
        return described

    @classmethod
    def from_description(cls, data: Mapping[str, Any]) -> RoundSettings:
        """The settings a report records (unknown keys, and any seed, are ignored)."""
        return cls(**{k: v for k, v in data.items() if k in RoundRules.model_fields})

    @classmethod
    def from_rules(cls, rules: RoundRules, dp_seed: int | None) -> RoundSettings:
        """The round settings of an oracle configuration (every rule carried, none lost)."""
        return cls(dp_seed=dp_seed, **{name: getattr(rules, name) for name in RoundRules.model_fields})
