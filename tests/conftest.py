"""Settings and shared fixtures for the whole suite.

The ML stack must never reach a model hub here (a lookup takes ~49 s to fail offline), so the
offline switches are set before anything imports transformers or datasets.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")

import torch

# NOTE: the suite's models are tiny; on a 2-core machine one thread is several times faster than
# two (they spend their time synchronising), and subprocesses get the same hint from OMP.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

pytest_plugins = ["tests.fixtures.nodes", "tests.fixtures.tiny"]
