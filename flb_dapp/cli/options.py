"""The options several `flb` commands share, written once: the same flag means the same thing (type,
choices, where its value goes) in every command that takes it.

Options that only change a setting (``--account``, ``--store``, ``--password-file``, ...) do not
reach the command function: their callbacks put the value into the :class:`CLIContext`, where
``cli.settings`` picks it up over flb.yaml. Where commands describe the same flag in their own words
(``--device`` for training vs. for inference), the help text is a parameter.

Nothing heavy is imported here: `flb --help` must stay fast.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import click

from flb_dapp.cli.context import CLIContext

F = TypeVar("F", bound=Callable[..., Any])

DEVICES = ("auto", "cpu", "cuda", "mps")
QUANTIZATIONS = ("4bit", "8bit")
# NOTE: the names of flb_dapp.aggregation's STRATEGIES and DP_MODES, spelled out so that building
# the command line does not import the aggregation code (tests/cli/test_options.py keeps them equal).
STRATEGY_NAMES = ("fedavg", "median", "trimmed-mean", "multi-krum")
DP_MODES = ("none", "fixed", "adaptive")
# NOTE: flb_dapp.cli.engines.BACKENDS, spelled out so that `flb --help` does not import torch.
BACKENDS = ("local", "ray")
# NOTE: flb_dapp.evaluation's FORMULATIONS and BENCHMARKS names, spelled out for the same reason.
FORMULATIONS = ("letters", "cloze")
BENCHMARK_NAMES = (
    "arc-easy",
    "arc-challenge",
    "mmlu",
    "openbookqa",
    "sciq",
    "commonsenseqa",
    "hellaswag",
    "piqa",
)


# --- options that set the output mode or a setting ------------------------------------------------
def _group_flag(*names: str, attribute: Literal["json_mode", "verbose"], help: str) -> Callable[[F], F]:
    """A flag on a command that does what the group's flag does: it sets ``attribute`` of the
    :class:`CLIContext` (eager, so the output mode is known before the other options are read)."""

    def set_flag(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            setattr(ctx.ensure_object(CLIContext), attribute, True)

    return click.option(*names, is_flag=True, expose_value=False, callback=set_flag, is_eager=True, help=help)


#: ``--json`` on a command (same as ``flb --json COMMAND``).
json_option = _group_flag(
    "--json", "json_flag", attribute="json_mode", help="Print the result as one JSON document on stdout."
)

#: ``-v/--verbose`` after a command that starts a whole system: the same as ``flb -v COMMAND``
#: (so `flb simulate ... -v` works where users add it, at the end).
verbose_option = _group_flag(
    "--verbose", "-v", attribute="verbose", help="Also show Ape's log: every transaction sent and confirmed."
)


def as_json_option(help: str) -> Callable[[F], F]:
    """``--json`` passed to the command as ``as_json``, for commands that print their own JSON
    (`flb simulate`, `flb devnet`) rather than through the CLIContext's output."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def setting_option(*names: str, setting: str, metavar: str, help: str) -> Callable[[F], F]:
    """An option that overrides the flb.yaml setting ``setting`` (e.g. ``--store`` -> ``store``);
    its value goes to the :class:`CLIContext`, not to the command function."""

    def override(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value:
            ctx.ensure_object(CLIContext).use(**{setting: value})

    return click.option(*names, metavar=metavar, expose_value=False, callback=override, help=help)


#: ``--account`` (who is acting; no password needed).
account_option = setting_option(
    "--account",
    "-a",
    setting="account",
    metavar="ALIAS",
    help="Ape account alias (or test:N on a dev chain); default: `account` in flb.yaml.",
)

#: ``--store``: a local folder or an IPFS (Kubo RPC) URL.
store_option = setting_option(
    "--store",
    setting="store",
    metavar="PATH_OR_URL",
    help="Content store: a folder or an IPFS node's RPC URL (default: `store` in flb.yaml).",
)

#: ``--upload-grpc``: store through the oracle's gRPC upload service instead of the store.
upload_option = setting_option(
    "--upload-grpc",
    setting="upload_grpc",
    metavar="HOST:PORT",
    help="Upload through the oracle's gRPC service instead of the store (for clients without IPFS).",
)


def _set_password_file(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value:
        ctx.ensure_object(CLIContext).password_file = str(value)


def password_file_option(help: str) -> Callable[[F], F]:
    """``--password-file``: where the password comes from (``help`` says which password)."""
    return click.option(
        "--password-file",
        type=click.Path(dir_okay=False, path_type=Path),
        expose_value=False,
        callback=_set_password_file,
        help=help,
    )


def signer_options(f: F) -> F:
    """``--account`` and ``--password-file`` for commands that sign."""
    f = password_file_option(
        "File whose first line unlocks the account (else $FLB_PASSWORD, else a hidden prompt)."
    )(f)
    return account_option(f)


# --- options passed to the command ------------------------------------------------------------------
def data_option(help: str) -> Callable[[F], F]:
    """``--data PATH``: the client's training data, a file or a folder (passed as ``data``)."""
    return click.option("--data", "data", type=click.Path(path_type=Path), help=help)


def device_option(help: str, default: str | None = None) -> Callable[[F], F]:
    """``--device``: where the model runs. Without ``default`` the command gets None (not given)."""
    shown: dict[str, Any] = {} if default is None else {"default": default, "show_default": True}
    return click.option("--device", type=click.Choice(list(DEVICES)), help=help, **shown)


def quantization_option(help: str) -> Callable[[F], F]:
    """``--quantization 4bit|8bit``: load the base model quantized (bitsandbytes)."""
    return click.option("--quantization", type=click.Choice(list(QUANTIZATIONS)), help=help)


def threads_option(help: str) -> Callable[[F], F]:
    """``--threads N``: CPU threads for torch (None: torch's default)."""
    return click.option("--threads", type=click.IntRange(min=1), help=help)


def engine_options(f: F) -> F:
    """``--workers``, ``--backend``, ``--address``: where a command that trains many clients runs
    their training (`flb simulate`). The default uses every core of this machine."""
    f = click.option(
        "--address",
        default=None,
        help="--backend ray: the address of an existing Ray cluster [default: start a local instance].",
    )(f)
    f = click.option(
        "--backend",
        type=click.Choice(BACKENDS),
        default="local",
        show_default=True,
        help="local: worker processes on this machine. ray: Ray tasks (clients) and a Ray actor "
        "(the oracle's evaluation).",
    )(f)
    return click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=os.cpu_count() or 1,
        show_default="the number of cores",
        help="Clients trained at once (worker processes, or Ray CPUs); 1 trains them one after another "
        "in this process. The same results either way.",
    )(f)


def format_option(help: str) -> Callable[[F], F]:
    """``--format letters|cloze``: how a multiple-choice question is scored (passed as
    ``formulation``; None when not given, so the task's ``eval_format`` applies)."""
    return click.option("--format", "formulation", type=click.Choice(list(FORMULATIONS)), help=help)


def chat_option(help: str) -> Callable[[F], F]:
    """``--chat/--no-chat``: inside the model's chat template or not (None when not given)."""
    return click.option("--chat/--no-chat", "chat", default=None, help=help)


def benchmark_option(help: str) -> Callable[[F], F]:
    """``--benchmark NAME``: one of the bundled offline benchmarks (flb_dapp.evaluation.benchmarks)."""
    return click.option("--benchmark", "-b", type=click.Choice(list(BENCHMARK_NAMES)), help=help)


def strategy_option(default: str = "fedavg") -> Callable[[F], F]:
    """``--strategy``: the aggregation rule, by the name the aggregation registry knows it by."""
    return click.option(
        "--strategy",
        type=click.Choice(list(STRATEGY_NAMES)),
        default=default,
        show_default=True,
        help="Aggregation rule the oracle uses.",
    )


def scoring_option(f: F) -> F:
    """``--scoring``: the contribution rule rewards follow (default: the round rules' default)."""
    from flb_dapp.rewards import SCORING_RULES
    from flb_dapp.rounds.settings import RoundRules

    return click.option(
        "--scoring",
        type=click.Choice(list(SCORING_RULES)),
        default=RoundRules().scoring,
        show_default=True,
        help="Contribution rule: Shapley values (exact for small cohorts, sampled beyond), "
        "leave-one-out, or the prototype formula.",
    )(f)


def dp_option(f: F) -> F:
    """``--dp none|fixed|adaptive``: server-side differential privacy."""
    return click.option(
        "--dp",
        type=click.Choice(list(DP_MODES)),
        default="none",
        show_default=True,
        help="Server-side differential privacy (clipping + Gaussian noise).",
    )(f)


def train_options(f: F) -> F:
    """The training options, shared by `flb train` and `flb participate` (their values become a
    :class:`flb_dapp.cli.training.TrainOptions`)."""
    options = [
        click.option(
            "--model",
            metavar="PATH_OR_ID",
            help="Base model to load instead of the task's (a local copy of the same model).",
        ),
        device_option("Where to train (default cpu; auto picks cuda, then mps, then cpu)."),
        quantization_option("Load the frozen base model quantized with bitsandbytes (QLoRA)."),
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
