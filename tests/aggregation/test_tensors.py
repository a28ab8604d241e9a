"""apply_delta, compute_delta and l2_norm."""

from __future__ import annotations

import numpy as np
import pytest

from flb_dapp.aggregation import apply_delta, compute_delta, l2_norm
from flb_dapp.exceptions import AggregationError


def test_compute_then_apply_recovers_the_trained_adapter():
    rng = np.random.default_rng(0)
    base = {
        "a": rng.standard_normal((3, 4)).astype(np.float32),
        "b": rng.standard_normal(5).astype(np.float32),
    }
    trained = {k: (v + rng.standard_normal(v.shape)).astype(np.float32) for k, v in base.items()}
    delta = compute_delta(trained, base)
    np.testing.assert_allclose(delta["a"], trained["a"] - base["a"], rtol=1e-6)
    restored = apply_delta(base, delta)
    for key in base:
        assert restored[key].dtype == np.float32
        np.testing.assert_allclose(restored[key], trained[key], rtol=1e-6, atol=1e-6)


def test_l2_norm_over_all_tensors():
    tensors = {"a": np.array([3.0, 0.0], np.float32), "b": np.array([[4.0]], np.float32)}
    assert l2_norm(tensors) == 5.0
    assert l2_norm({}) == 0.0


def test_apply_delta_rejects_mismatched_keys_and_shapes():
    with pytest.raises(AggregationError, match=r"the delta lacks \['b'\]"):
        apply_delta({"a": np.zeros(2), "b": np.zeros(2)}, {"a": np.zeros(2)})
    with pytest.raises(
        AggregationError, match=r"key 'a': the global adapter has shape \(2,\), the delta has shape \(3,\)"
    ):
        apply_delta({"a": np.zeros(2)}, {"a": np.zeros(3)})
    with pytest.raises(AggregationError, match=r"the trained adapter has extra \['z'\]"):
        compute_delta({"a": np.zeros(2), "z": np.zeros(1)}, {"a": np.zeros(2)})
