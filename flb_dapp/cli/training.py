"""Local training for `flb train` and `flb participate`: their options' values, data loading, the
progress bar.

The task in flb.yaml fixes the defaults (model, steps, learning rate, batch size, LoRA shape); the
command line (:func:`flb_dapp.cli.options.train_options`) overrides what a client may choose for
itself (device, quantization, steps, local DP).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flb_dapp.cli.output import Output
from flb_dapp.exceptions import ConfigError, DataNotFoundError

DATA_SUFFIXES = (".json", ".jsonl", ".parquet")


@dataclass(frozen=True)
class TrainOptions:
    """What the command line may change about local training (None: the task's value); one field
    per option of :func:`flb_dapp.cli.options.train_options`."""

    model: str | None = None
    device: str | None = None
    quantization: str | None = None
    steps: int | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    seed: int | None = None
    threads: int | None = None
    local_dp: str | None = None
    dp_epsilon: float | None = None
    dp_delta: float = 1e-5
    dp_clip: float | None = None


def options_from(kwargs: dict[str, Any]) -> TrainOptions:
    """Pop the training options out of a command's keyword arguments."""
    names = TrainOptions.__dataclass_fields__
    return TrainOptions(**{name: kwargs.pop(name) for name in list(kwargs) if name in names})


def local_dp_config(options: TrainOptions) -> Any:
    from flb_dapp.training.local_dp import LocalDPConfig

    if options.local_dp is None:
        if options.dp_epsilon is not None or options.dp_clip is not None:
            raise ConfigError("--dp-epsilon and --dp-clip need --local-dp update or --local-dp dp-sgd")
        return None
    if options.dp_epsilon is None or options.dp_clip is None:
        raise ConfigError(f"--local-dp {options.local_dp} needs --dp-epsilon and --dp-clip")
    return LocalDPConfig(
        epsilon=options.dp_epsilon,
        delta=options.dp_delta,
        clip_norm=options.dp_clip,
        method="dp_sgd" if options.local_dp == "dp-sgd" else "update",
    )


def build_config(settings: Any, options: TrainOptions) -> Any:
    """The ``TrainConfig``: the task's values, then the command line's."""
    from flb_dapp.taskspec import train_config

    return train_config(
        settings.task,
        settings.cache_dir,
        model=options.model,
        device=options.device,
        quantization=options.quantization,
        steps=options.steps,
        learning_rate=options.learning_rate,
        batch_size=options.batch_size,
        seed=options.seed,
        num_threads=options.threads,
        local_dp=local_dp_config(options),
    )


def load_examples(path: str | Path) -> list[Any]:
    """Training questions (MMLU-Pro schema) from a file, or every .json/.jsonl/.parquet in a folder."""
    from flb_dapp.dataset import data_files
    from flb_dapp.evaluation.datasets import load_questions

    root, files = data_files(path)
    if root.is_file():
        return list(load_questions(root))
    usable = [full for _, full in files if full.suffix.lower() in DATA_SUFFIXES]
    if not usable:
        raise DataNotFoundError(f"no .json, .jsonl or .parquet files in {root}")
    examples: list[Any] = []
    for full in usable:
        examples.extend(load_questions(full))
    return examples


def data_path(settings: Any) -> str:
    if not settings.data:
        raise DataNotFoundError("no data given: pass --data PATH or set `data:` in flb.yaml")
    return str(settings.data)


def run_training(
    out: Output, config: Any, examples: list[Any], global_adapter: Any, client: str, round_number: int
) -> Any:
    """``train_client`` with a progress bar fed by its progress callback."""
    from flb_dapp.training.trainer import train_client

    out.note(f"Training {config.steps} steps on {len(examples)} examples (base model {config.model})")
    with out.progress("Training", total=config.steps, unit="steps") as bar:
        # NOTE: loading the model takes a while before the first step is logged; say so on the bar.
        if bar.total:
            bar.update(0, config.steps, "loading the base model ...")

        def progress(step: int, total: int, logs: dict[str, float]) -> None:
            loss = logs.get("loss", logs.get("train_loss"))
            bar.update(step, total, f"loss {loss:.4f}" if loss is not None else "training")

        result = train_client(
            config, examples, global_adapter, client=client, round=round_number, progress=progress
        )
        bar.update(config.steps, config.steps)
    return result


def save_update(path: Path, encoded: bytes) -> Path:
    """Write a trained adapter where `flb submit` finds it, all or nothing."""
    from flb_dapp.atomic import OWNER_ONLY, atomic_write_bytes

    # NOTE: owner-only: until the reveal, the update's bytes (its CID) are what the commitment hides.
    return atomic_write_bytes(path, encoded, mode=OWNER_ONLY)


def default_update_path(settings: Any, round_number: int, address: str) -> Path:
    """Where `flb train` saves and `flb submit` looks: beside the cache, one file per round and account."""
    name = f"round-{round_number}-{address}.safetensors"
    return Path(settings.cache_dir).expanduser().parent / "updates" / name
