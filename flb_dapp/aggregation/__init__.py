"""Aggregation: combine the clients' LoRA deltas into the next global adapter.

Pure numpy, no chain or training code. One rule a module (FedAvg, coordinate median, trimmed mean,
Multi-Krum); differential privacy as wrappers around any rule (fixed or adaptive clipping); an RDP
privacy accountant; and a registry that builds strategies from CLI names.

    from flb_dapp.aggregation import ClientUpdate, FedAvg, DPFixedClipping, apply_delta

    strategy = DPFixedClipping(FedAvg(), clip_norm=1.0, noise_multiplier=1.1, seed=secret_seed)
    result = strategy.aggregate([ClientUpdate(addr, n, delta) for addr, n, delta in updates], round=3)
    new_global = apply_delta(global_tensors, result.delta)
"""

from flb_dapp.aggregation.accountant import PrivacyAccountant, local_noise_multiplier
from flb_dapp.aggregation.dp_adaptive import DPAdaptiveClipping
from flb_dapp.aggregation.dp_fixed import DPFixedClipping
from flb_dapp.aggregation.fedavg import FedAvg
from flb_dapp.aggregation.median import CoordinateMedian
from flb_dapp.aggregation.multi_krum import MultiKrum
from flb_dapp.aggregation.registry import DP_MODES, STRATEGIES, from_description, make_strategy
from flb_dapp.aggregation.strategy import Strategy
from flb_dapp.aggregation.tensors import apply_delta, compute_delta, l2_norm
from flb_dapp.aggregation.trimmed_mean import TrimmedMean
from flb_dapp.aggregation.types import AggregationResult, ClientUpdate, PrivacyEvent

__all__ = [
    "DP_MODES",
    "STRATEGIES",
    "AggregationResult",
    "ClientUpdate",
    "CoordinateMedian",
    "DPAdaptiveClipping",
    "DPFixedClipping",
    "FedAvg",
    "MultiKrum",
    "PrivacyAccountant",
    "PrivacyEvent",
    "Strategy",
    "TrimmedMean",
    "apply_delta",
    "compute_delta",
    "from_description",
    "l2_norm",
    "local_noise_multiplier",
    "make_strategy",
]
