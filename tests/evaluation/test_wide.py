"""Float64 evaluation stays float64 (exact scores): the tiny Llama's RMSNorm and rotary modules are
patched, and its loss under another CPU kernel set and thread count (a fresh process with
``ATEN_CPU_CAPABILITY=default``, 1 thread against 2) moves by at most 1e-12, far below the 8
decimals exact scores round to; in float32 it moves by about 1e-8."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flb_dapp.evaluation.wide import keep_float64
from flb_dapp.taskspec import TaskSpec, initial_adapter, make_evaluator

pytestmark = pytest.mark.slow
SPEC = TaskSpec(model="tiny", steps=5, eval_limit=60)
PROBE = """
import json, sys, torch
torch.set_num_threads(1)
from flb_dapp.taskspec import TaskSpec, initial_adapter, make_evaluator
spec = TaskSpec(model="tiny", steps=5, eval_limit=60)
evaluator = make_evaluator(spec, sys.argv[1], dtype=sys.argv[2])
print(json.dumps(repr(evaluator.evaluate(initial_adapter(spec, sys.argv[1])).loss)))
"""


def probe(cache: Path, dtype: str) -> float:
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(cache), dtype], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return float(json.loads(done.stdout.strip().splitlines()[-1]))


def test_float64_losses_are_identical_under_another_kernel_set(tmp_path: Path) -> None:
    import torch

    evaluator = make_evaluator(SPEC, tmp_path, dtype="float64")
    assert evaluator.dtype == "float64"
    # Patching again finds the same modules (norms of each layer and the final one, the rotary one).
    assert keep_float64(evaluator.model) == 2 * evaluator.model.config.num_hidden_layers + 2
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        here = evaluator.evaluate(initial_adapter(SPEC, tmp_path)).loss
        float32 = make_evaluator(SPEC, tmp_path).evaluate(initial_adapter(SPEC, tmp_path)).loss
    finally:
        torch.set_num_threads(previous)
    there = probe(tmp_path, "float64")
    assert abs(there - here) < 1e-12 and round(there, 8) == round(here, 8)
    assert abs(probe(tmp_path, "float32") - float32) > 1e-10  # what rounding could not absorb
