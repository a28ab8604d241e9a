"""One client's local training round: global adapter in, trained adapter out.

The client loads the base model, wraps it with LoRA, **loads the round's global adapter into the
LoRA layers** and fine-tunes from there with trl's ``SFTTrainer`` (loss on the answer only). Every
client of a round so starts from the same point, which is what makes averaging their updates sound.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from flb_dapp.evaluation.datasets import MCQuestion
from flb_dapp.evaluation.prompts import cloze_record, has_chat_template, prompt_completion_record
from flb_dapp.exceptions import AdapterMismatchError, ConfigError, TrainingError
from flb_dapp.lora.adapter import Adapter
from flb_dapp.training.local_dp import LocalDPConfig, PrivacySpent, privatize_update
from flb_dapp.training.models import (
    Quantization,
    load_model,
    load_tokenizer,
    resolve_device,
    resolve_gradient_checkpointing,
)
from flb_dapp.training.peft_io import extract_adapter, load_adapter_weights, wrap_with_lora

Example = MCQuestion | Mapping[str, Any]
PROMPT_FORMATS = ("letters", "cloze")
ProgressCallback = Callable[[int, int, dict[str, float]], None]  # (step, total steps, logs)


@dataclass(frozen=True)
class TrainConfig:
    """Local training settings. ``r``, ``alpha`` and ``target_modules`` (``None``: the global
    adapter's) must agree with the global adapter, which fixes the round's LoRA shape."""

    model: str
    steps: int = 50
    learning_rate: float = 5e-3
    batch_size: int = 8
    max_seq_len: int = 512
    r: int = 8
    alpha: int = 16
    target_modules: tuple[str, ...] | None = None
    seed: int = 0
    device: str = "cpu"
    quantization: Quantization | None = None
    gradient_checkpointing: bool | None = None  # None: on for CUDA, off elsewhere
    local_dp: LocalDPConfig | None = None
    dtype: str = "float32"
    lr_scheduler: str = "constant"
    weight_decay: float = 0.0
    # CPU threads for this call (None: torch's default). Tiny models train several times faster
    # on 1 thread than on 2 busy cores: the parallel overhead outweighs the work.
    num_threads: int | None = None
    # The task's cap on claimed samples: an honest client reports min(its examples, cap), since
    # the oracle rejects claims above it.
    sample_cap: int | None = None
    # How questions become records: "letters" (the lettered prompt, the letter as the answer) or
    # "cloze" (the cloze context, the correct option's text): the task's eval_format. ``chat``: in
    # the chat template or not (None: whenever the tokenizer has one): the task's eval_chat.
    prompt_format: str = "letters"
    chat: bool | None = None

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ConfigError(f"steps must be >= 0, got {self.steps}")
        if self.batch_size < 1 or self.max_seq_len < 8:
            raise ConfigError("batch_size must be >= 1 and max_seq_len >= 8")
        if not (self.learning_rate >= 0 and math.isfinite(self.learning_rate)):
            raise ConfigError(f"learning_rate must be a finite number >= 0, got {self.learning_rate}")
        if self.quantization not in (None, "4bit", "8bit"):
            raise ConfigError(f"quantization must be None, '4bit' or '8bit', got {self.quantization!r}")
        if self.prompt_format not in PROMPT_FORMATS:
            raise ConfigError(f"prompt_format must be one of {PROMPT_FORMATS}, got {self.prompt_format!r}")


@dataclass
class TrainResult:
    """The trained adapter (metadata: round, client, num_samples) and local-only metrics (loss,
    timing, privacy). Metrics stay with the client; only ``adapter`` is published."""

    adapter: Adapter
    num_examples: int
    metrics: dict[str, float] = field(default_factory=dict)


def to_records(
    examples: Sequence[Example], chat: bool, tokenizer: Any = None, prompt_format: str = "letters"
) -> list[dict[str, Any]]:
    """trl prompt-completion records; questions are rendered by the shared prompt format (cloze
    needs the tokenizer, which renders its chat template); mappings pass through as they are."""
    if prompt_format == "cloze" and tokenizer is None:
        raise ConfigError("cloze records need the tokenizer (its chat template renders the context)")

    def record(q: MCQuestion) -> dict[str, Any]:
        return (
            cloze_record(tokenizer, q, chat)
            if prompt_format == "cloze"
            else prompt_completion_record(q, chat)
        )

    return [record(e) if isinstance(e, MCQuestion) else dict(e) for e in examples]


def check_adapter_fits(config: TrainConfig, global_adapter: Adapter) -> None:
    """The config may not silently train a different LoRA shape than the round's global adapter."""
    meta = global_adapter.metadata
    if (config.r, config.alpha) != (meta.r, meta.lora_alpha):
        raise AdapterMismatchError(
            f"config asks r={config.r}, alpha={config.alpha}; the global adapter has r={meta.r}, "
            f"alpha={meta.lora_alpha}"
        )
    if config.target_modules is not None and set(config.target_modules) != set(meta.target_modules):
        raise AdapterMismatchError(
            f"config targets {list(config.target_modules)}; "
            f"the global adapter targets {list(meta.target_modules)}"
        )


def train_client(
    config: TrainConfig,
    examples: Sequence[Example],
    global_adapter: Adapter,
    client: str = "",
    round: int = 0,
    progress: ProgressCallback | None = None,
) -> TrainResult:
    """Fine-tune from ``global_adapter`` on ``examples`` for ``config.steps`` optimizer steps.

    Deterministic for a given ``config.seed`` (unless local DP draws OS-random noise). With
    ``steps=0`` the result equals the global adapter bit for bit.
    """
    check_adapter_fits(config, global_adapter)
    if config.steps > 0 and not examples:
        raise TrainingError("no training examples")
    with torch_threads(config.num_threads):
        return _train(config, examples, global_adapter, client, round, progress)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``n`` torch CPU threads, restoring the previous count afterwards."""
    import torch

    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _train(
    config: TrainConfig,
    examples: Sequence[Example],
    global_adapter: Adapter,
    client: str,
    round: int,
    progress: ProgressCallback | None,
) -> TrainResult:
    started = time.perf_counter()
    device = resolve_device(config.device)
    checkpointing = resolve_gradient_checkpointing(config.gradient_checkpointing, device)
    tokenizer = load_tokenizer(config.model)
    model = load_model(
        config.model,
        device=device,
        quantization=config.quantization,
        dtype=config.dtype,
        gradient_checkpointing=checkpointing,
    )
    peft_model = wrap_with_lora(model, global_adapter.metadata)
    load_adapter_weights(peft_model, global_adapter)
    chat = has_chat_template(tokenizer) if config.chat is None else config.chat
    records = to_records(examples, chat, tokenizer, config.prompt_format)
    metrics: dict[str, float] = {"load_seconds": time.perf_counter() - started}
    dp = config.local_dp
    spent: PrivacySpent | None = None
    if config.steps > 0 and dp is not None and dp.method == "dp_sgd":
        from flb_dapp.training.dp_sgd import dp_sgd_train

        spent, loop_metrics = dp_sgd_train(peft_model, tokenizer, records, config, dp, progress)
        metrics.update(loop_metrics)
    elif config.steps > 0:
        metrics.update(_sft(peft_model, tokenizer, records, config, device, checkpointing, progress))
    claimed = len(examples) if config.sample_cap is None else min(len(examples), config.sample_cap)
    meta = global_adapter.metadata.with_(round=round, client=client, num_samples=claimed)
    extra = {"train.steps": str(config.steps), "train.learning_rate": repr(config.learning_rate)}
    adapter = extract_adapter(peft_model, meta, extra=extra)
    if dp is not None and dp.method == "update":
        # Noise goes on the update (trained - global), calibrated to the clip norm.
        adapter, spent = privatize_update(global_adapter, adapter, dp)
    if spent is not None:
        adapter.extra.update(spent.as_metadata())
        metrics.update({"dp_epsilon": spent.epsilon, "dp_delta": spent.delta, "dp_sigma": spent.sigma})
    metrics["total_seconds"] = time.perf_counter() - started
    return TrainResult(adapter=adapter, num_examples=len(examples), metrics=metrics)


def sft_config(config: TrainConfig, output_dir: str, device: str, checkpointing: bool) -> Any:
    """The ``SFTConfig`` for a client round: exactly ``steps`` steps, no saving, no reporting.

    Gradient checkpointing is always passed explicitly: trl's default is on, which on CPU only
    costs time (about 35%).
    """
    from trl import SFTConfig

    return SFTConfig(
        output_dir=output_dir,
        max_steps=config.steps,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=0,
        weight_decay=config.weight_decay,
        max_length=config.max_seq_len,
        gradient_checkpointing=checkpointing,
        seed=config.seed,
        data_seed=config.seed,
        use_cpu=device == "cpu",
        bf16=config.dtype == "bfloat16",
        fp16=config.dtype == "float16",
        completion_only_loss=None,  # prompt-completion records -> loss on the answer only
        logging_steps=max(1, config.steps // 10),
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def build_sft_trainer(peft_model: Any, tokenizer: Any, records: list[dict[str, Any]], args: Any) -> Any:
    """trl's ``SFTTrainer`` on the records, quiet (no per-log printing)."""
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTTrainer

    trainer = SFTTrainer(
        model=peft_model, args=args, train_dataset=Dataset.from_list(records), processing_class=tokenizer
    )
    trainer.remove_callback(PrinterCallback)
    return trainer


def _sft(
    peft_model: Any,
    tokenizer: Any,
    records: list[dict[str, Any]],
    config: TrainConfig,
    device: str,
    checkpointing: bool,
    progress: ProgressCallback | None,
) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="flb-train-") as out:
        trainer = build_sft_trainer(
            peft_model, tokenizer, records, sft_config(config, out, device, checkpointing)
        )
        if progress is not None:
            trainer.add_callback(_progress_callback(progress))
        started = time.perf_counter()
        output = trainer.train()
        seconds = time.perf_counter() - started
    return {
        "train_loss": float(output.training_loss),
        "steps": float(output.global_step),
        "train_seconds": seconds,
        "steps_per_second": output.global_step / seconds if seconds > 0 else 0.0,
    }


def _progress_callback(progress: ProgressCallback) -> Any:
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):  # type: ignore[misc]
        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kw: Any
        ) -> None:
            progress(state.global_step, state.max_steps, dict(logs or {}))

    return _Progress()
