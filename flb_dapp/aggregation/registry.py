"""Build strategies by name, as the CLI and round reports name them.

``make_strategy("trimmed-mean", beta=0.1, dp="fixed", clip_norm=1.0, noise_multiplier=0.8)`` is
what ``--strategy trimmed-mean --dp fixed ...`` turns into. Parameters are routed to the rule or to
the DP wrapper by name; an unknown or misplaced parameter is an error, never silently dropped.
``from_description`` rebuilds a strategy from its ``describe()`` output (a report's record).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from flb_dapp.aggregation.dp_adaptive import DPAdaptiveClipping
from flb_dapp.aggregation.dp_fixed import DPFixedClipping
from flb_dapp.aggregation.fedavg import FedAvg
from flb_dapp.aggregation.median import CoordinateMedian
from flb_dapp.aggregation.multi_krum import MultiKrum
from flb_dapp.aggregation.strategy import Strategy
from flb_dapp.aggregation.trimmed_mean import TrimmedMean
from flb_dapp.exceptions import AggregationError

#: Rule name -> class; the names the CLI's ``--strategy`` accepts.
STRATEGIES: dict[str, type[Strategy]] = {
    "fedavg": FedAvg,
    "median": CoordinateMedian,
    "trimmed-mean": TrimmedMean,
    "multi-krum": MultiKrum,
}

#: DP mode -> wrapper class; the values ``--dp`` accepts besides "none".
DP_WRAPPERS: dict[str, type[DPFixedClipping] | type[DPAdaptiveClipping]] = {
    "fixed": DPFixedClipping,
    "adaptive": DPAdaptiveClipping,
}

DP_MODES = ("none", *DP_WRAPPERS)

#: The default rule, chosen by measurement (bench/adversarial.py, README "Security model"): every
#: client trains the same number of steps, so a uniform mean loses nothing against honest clients
#: and gives a client that lies about its sample count no extra weight.
DEFAULT_STRATEGY: Mapping[str, Any] = {"name": "fedavg", "weighting": "uniform"}


def _parameters(factory: Callable[..., Any], skip: tuple[str, ...] = ()) -> list[str]:
    return [p for p in inspect.signature(factory).parameters if p not in ("self", *skip)]


def _required(factory: Callable[..., Any], skip: tuple[str, ...] = ()) -> list[str]:
    params = inspect.signature(factory).parameters.values()
    return [p.name for p in params if p.default is inspect.Parameter.empty and p.name not in ("self", *skip)]


def make_strategy(name: str, dp: str | None = None, **params: Any) -> Strategy:
    """A strategy by rule name (``STRATEGIES``), optionally wrapped in DP (``dp="fixed"|"adaptive"``).

    ``params`` holds the rule's parameters and, with ``dp``, the wrapper's (``clip_norm``,
    ``noise_multiplier``, ...). Parameters set to ``None`` take the default. ``seed`` is accepted
    for every strategy, so a CLI can always pass one: the rules themselves are deterministic and
    need none; only the DP wrappers draw noise from it.
    """
    if name not in STRATEGIES:
        raise AggregationError(f"unknown strategy {name!r}; choose one of {sorted(STRATEGIES)}")
    mode = "none" if dp is None else dp
    if mode not in DP_MODES:
        raise AggregationError(f"unknown dp mode {dp!r}; choose one of {list(DP_MODES)}")
    rule_cls = STRATEGIES[name]
    rule_names = set(_parameters(rule_cls))
    wrapper_cls = DP_WRAPPERS.get(mode)
    wrapper_names = set(_parameters(wrapper_cls, skip=("inner",))) if wrapper_cls else set()
    # None means "not given", so CLI flags that were left out can be passed through as they are.
    given = {k: v for k, v in params.items() if v is not None}
    if wrapper_cls is None:
        given.pop("seed", None)
    unknown = sorted(set(given) - rule_names - wrapper_names)
    if unknown:
        accepted = sorted(rule_names | wrapper_names)
        where = f"strategy {name!r}" + (f" with dp={mode!r}" if wrapper_cls else "")
        raise AggregationError(f"unknown parameter {unknown[0]!r} for {where}; accepted: {accepted}")
    rule = rule_cls(**{k: v for k, v in given.items() if k in rule_names})
    if wrapper_cls is None:
        return rule
    missing = [p for p in _required(wrapper_cls, skip=("inner",)) if p not in given]
    if missing:
        raise AggregationError(f"dp={mode!r} needs {', '.join(missing)}")
    return wrapper_cls(rule, **{k: v for k, v in given.items() if k in wrapper_names})


def from_description(description: Mapping[str, Any], seed: int | None = None) -> Strategy:
    """Rebuild a strategy from ``describe()``. DP seeds are never described, so pass ``seed`` to
    replay a seeded DP round exactly."""
    desc = dict(description)
    name = desc.pop("name", None)
    try:
        for wrapper_cls in DP_WRAPPERS.values():
            if name == wrapper_cls.name:
                inner = from_description(desc.pop("inner"))
                desc.pop("seeded", None)
                return wrapper_cls(inner, seed=seed, **desc)
        if not isinstance(name, str) or name not in STRATEGIES:
            raise AggregationError(f"cannot rebuild a strategy from description with name {name!r}")
        return STRATEGIES[name](**desc)
    except (KeyError, TypeError) as exc:  # a missing "inner", an unknown or missing parameter
        raise AggregationError(f"malformed {name!r} strategy description: {exc}") from exc
