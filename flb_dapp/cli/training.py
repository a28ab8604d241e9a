"""Local training for `flb train` and `flb participate`: options, data loading, the progress bar.

The task in flb.yaml fixes the defaults (model, steps, learning rate, batch size, LoRA shape); the
options here override what a client may choose for itself (device, quantization, steps, local DP).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from flb_dapp.cli.output import Output
from flb_dapp.exceptions import ConfigError, DataNotFoundError

F = TypeVar("F", bound=Callable[..., Any])
DATA_SUFFIXES = (".json", ".jsonl", ".parquet")


@dataclass(frozen=True)
class TrainOptions:
    """What the command line may change about local training (None: the task's value)."""

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


def train_options(f: F) -> F:
    """The training options, shared by `flb train` and `flb participate`."""
    options = [
        click.option(
            "--model",
            metavar="PATH_OR_ID",
            help="Base model to load instead of the task's (a local copy of the same model).",
        ),
        click.option(
            "--device",
            type=click.Choice(["auto", "cpu", "cuda", "mps"]),
            help="Where to train (default cpu; auto picks cuda, then mps, then cpu).",
        ),
        click.option(
            "--quantization",
            type=click.Choice(["4bit", "8bit"]),
            help="Load the frozen base model quantized with bitsandbytes (QLoRA).",
        ),
        click.option("--steps", type=click.IntRange(min=0), help="Optimizer steps (default: the task's)."),
        click.option("--learning-rate", type=float, help="Learning rate (default: the task's)."),
        click.option(
            "--batch-size", type=click.IntRange(min=1), help="Examples per step (default: the task's)."
        ),
        click.option("--seed", type=int, help="Training seed (data order, dropout); default 0."),
        click.option(
            "--threads",
            type=click.IntRange(min=1),
            help="CPU threads for torch (tiny models train fastest on 1).",
        ),
        click.option(
            "--local-dp",
            type=click.Choice(["update", "dp-sgd"]),
            help="Local differential privacy: clip+noise the update, or DP-SGD (Opacus).",
        ),
        click.option(
            "--dp-epsilon",
            type=click.FloatRange(min=0, min_open=True),
            help="Privacy budget epsilon of this round's release (needs --local-dp).",
        ),
        click.option(
            "--dp-delta",
            type=click.FloatRange(0, 1, min_open=True, max_open=True),
            default=1e-5,
            show_default=True,
            help="Privacy parameter delta (needs --local-dp).",
        ),
        click.option(
            "--dp-clip",
            type=click.FloatRange(min=0, min_open=True),
            help="L2 clip norm: of the whole update (update) or per example (dp-sgd).",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


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


def default_update_path(settings: Any, round_number: int, address: str) -> Path:
    """Where `flb train` saves and `flb submit` looks: beside the cache, one file per round and account."""
    name = f"round-{round_number}-{address}.safetensors"
    return Path(settings.cache_dir).expanduser().parent / "updates" / name
