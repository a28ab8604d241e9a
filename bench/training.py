"""Benchmark: training steps/s of the FLB client (``train_client``) against a direct trl call.

Run from the repo root: ``.venv/bin/python bench/training.py [--smollm2]``. Both contenders train the
same model on the same prompt-completion records with the same settings (LoRA r=8 on attention and
MLP, batch 8, AdamW, constant learning rate, completion-only loss, no gradient checkpointing, one
torch thread), for the same number of optimizer steps:

* FLB: ``train_client(config, questions, global_adapter)``: load, wrap with LoRA, load the global
  adapter's weights, fine-tune with ``SFTTrainer``, extract the adapter.
* trl: ``AutoModelForCausalLM.from_pretrained`` + ``SFTTrainer(peft_config=LoraConfig(...))`` +
  ``train()``, written out here without FLB code.

Steps/s is the number of steps over the time of the whole call (model load to trained weights).
After a warm-up of each, the two run in ``REPEATS`` interleaved pairs; the headline ratio is the
median over pairs of ``FLB steps/s / trl steps/s`` in process CPU time (one torch thread, so CPU
time is the work done): on a shared 2-core machine the wall clock mostly measures the other
processes, and even CPU time of the very same ``trainer.train()`` varies by about 10% there. The
wall-clock ratio (same median of pairs) is printed too. The default model is the tiny test Llama,
where fixed per-call costs weigh most against FLB; ``--smollm2`` uses the real
SmolLM2-135M-Instruct (converted once into a temporary cache folder; slower). The last line printed
is one JSON object: ``{"steps_per_s_vs_trl": R, ...}``.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from flb_dapp.evaluation.prompts import prompt_completion_record
from flb_dapp.evaluation.task import make_task
from flb_dapp.training.lora_init import initial_adapter
from flb_dapp.training.models import convert_smollm2
from flb_dapp.training.tiny_model import build_tiny_model
from flb_dapp.training.trainer import TrainConfig, train_client

REPEATS = 7
LR, BATCH, MAX_LEN, RANK, ALPHA, SEED = 5e-3, 8, 256, 8, 16, 0


def timed(run: Any, *args: Any) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``run(*args)``. The previous run's garbage (trainers hold
    reference cycles) is collected first, so neither contender pays for the other's."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    run(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def flb_run(model: str, steps: int, questions: list[Any], global_adapter: Any) -> None:
    """The FLB client call."""
    config = TrainConfig(
        model=model,
        steps=steps,
        learning_rate=LR,
        batch_size=BATCH,
        max_seq_len=MAX_LEN,
        r=RANK,
        alpha=ALPHA,
        seed=SEED,
    )
    train_client(config, questions, global_adapter)


def trl_run(model: str, steps: int, questions: list[Any], targets: list[str]) -> None:
    """The same training as a user would write it with transformers + peft + trl directly."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model)
    base = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    chat = bool(tokenizer.chat_template)
    data = Dataset.from_list([prompt_completion_record(q, chat) for q in questions])
    with tempfile.TemporaryDirectory() as out:
        args = SFTConfig(
            output_dir=out, max_steps=steps, per_device_train_batch_size=BATCH,
            learning_rate=LR, lr_scheduler_type="constant", warmup_steps=0,
            weight_decay=0.0, max_length=MAX_LEN, gradient_checkpointing=False,
            seed=SEED, data_seed=SEED, use_cpu=True, save_strategy="no",
            report_to=[], disable_tqdm=True, logging_steps=max(1, steps // 10),
        )  # fmt: skip
        lora = LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=targets,
                          lora_dropout=0.0, task_type="CAUSAL_LM")  # fmt: skip
        trainer = SFTTrainer(
            model=base, args=args, train_dataset=data, processing_class=tokenizer, peft_config=lora
        )
        trainer.remove_callback(PrinterCallback)
        trainer.train()


def main() -> None:
    smollm2 = "--smollm2" in sys.argv
    torch.set_num_threads(1)  # same for both; on a tiny model one thread is also the fastest
    task = make_task(seed=0)
    questions = list(task.train[:160])
    with tempfile.TemporaryDirectory(prefix="flb-bench-") as tmp:
        if smollm2:
            model, steps = str(convert_smollm2(Path(tmp) / "cache")), 8
        else:
            model, steps = str(build_tiny_model(Path(tmp) / "tiny", task.texts(), seed=0)), 80
        global_adapter = initial_adapter(model, r=8, alpha=16, seed=0, include_mlp=True)
        targets = list(global_adapter.metadata.target_modules)
        print(f"model={Path(model).name} steps={steps} repeats={REPEATS} targets={targets}", flush=True)
        flb_run(model, 2, questions, global_adapter)  # warm-up: imports, first-call caches
        trl_run(model, 2, questions, targets)
        flb: list[tuple[float, float]] = []
        trl: list[tuple[float, float]] = []
        for rep in range(REPEATS):
            order = ("flb", "trl") if rep % 2 == 0 else ("trl", "flb")
            for who in order:
                if who == "flb":
                    flb.append(timed(flb_run, model, steps, questions, global_adapter))
                else:
                    trl.append(timed(trl_run, model, steps, questions, targets))
            print(f"rep {rep}: flb {flb[-1][0]:.2f}s wall {flb[-1][1]:.2f}s CPU   "
                  f"trl {trl[-1][0]:.2f}s wall {trl[-1][1]:.2f}s CPU", flush=True)  # fmt: skip
    cpu_ratio = statistics.median(t[1] / f[1] for f, t in zip(flb, trl, strict=True))
    wall_ratio = statistics.median(t[0] / f[0] for f, t in zip(flb, trl, strict=True))
    flb_cpu = steps / statistics.median(c for _, c in flb)
    trl_cpu = steps / statistics.median(c for _, c in trl)
    print(f"median steps per CPU second: FLB {flb_cpu:.2f}, trl {trl_cpu:.2f}")
    print(f"median pair ratio FLB / trl: CPU {cpu_ratio:.3f}, wall {wall_ratio:.3f}")
    print(json.dumps({
        "steps_per_s_vs_trl": round(cpu_ratio, 4),
        "wall_steps_per_s_vs_trl": round(wall_ratio, 4),
        "flb_steps_per_cpu_s": round(flb_cpu, 3),
        "trl_steps_per_cpu_s": round(trl_cpu, 3),
        "model": Path(model).name,
        "steps": steps,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
