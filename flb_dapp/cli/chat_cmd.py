"""``flb chat``: a small terminal chat with the base model plus the current global adapter."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from flb_dapp.cli.context import CLIContext, pass_cli
from flb_dapp.cli.options import device_option, store_option

_EXIT_WORDS = {"exit", "quit", "/exit", "/quit"}


def _adapter(cli: CLIContext, cid: str | None, adapter_path: Path | None, base_only: bool) -> tuple[Any, str]:
    """The adapter to apply and a label for it."""
    from flb_dapp.cli.artifacts import check_base_model, fetch_adapter, open_store, read_adapter_file

    settings = cli.settings
    if base_only:
        return None, "base model only"
    if adapter_path is not None:
        adapter = read_adapter_file(adapter_path)
        label = str(adapter_path)
    else:
        if cid is None:
            from flb_dapp.cli.pull_cmd import resolve_global

            ref = resolve_global(cli, None)
            cid, label = ref.cid, f"global model of round {ref.round}"
        else:
            label = cid
        adapter = fetch_adapter(open_store(settings.store), cid)
    check_base_model(adapter, settings.task, "adapter")
    return adapter, label


@click.command("chat")
@click.option("--cid", metavar="CID", help="Use this global adapter CID instead of the chain's latest.")
@click.option(
    "--adapter",
    "adapter_path",
    type=click.Path(exists=True, path_type=Path),
    help="Use a local adapter file or PEFT folder.",
)
@click.option("--base-only", is_flag=True, help="Chat with the base model alone (no adapter).")
@click.option("--prompt", "-p", metavar="TEXT", help="Answer this one prompt and exit.")
@click.option("--system", metavar="TEXT", help="System message that starts the conversation.")
@click.option(
    "--max-new-tokens",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Longest answer, in tokens (greedy decoding).",
)
@device_option("Where to run the model.", default="cpu")
@store_option
@pass_cli
def chat(
    cli: CLIContext,
    cid: str | None,
    adapter_path: Path | None,
    base_only: bool,
    prompt: str | None,
    system: str | None,
    max_new_tokens: int,
    device: str,
) -> None:
    """Chat in the terminal with the task's base model plus the current global adapter (greedy).
    Type `exit` or press Ctrl-D to leave; lines piped on stdin are answered one by one."""
    from flb_dapp.cli.models import generate, load_with_adapter
    from flb_dapp.taskspec import model_path

    if sum(x is not None and x is not False for x in (cid, adapter_path, base_only or None)) > 1:
        raise click.UsageError("give at most one of --cid, --adapter and --base-only")
    out, settings = cli.output, cli.settings
    adapter, label = _adapter(cli, cid, adapter_path, base_only)
    with out.status("Loading the model ..."):
        model, tokenizer = load_with_adapter(model_path(settings.task, settings.cache_dir), adapter, device)
    history: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []

    def answer(text: str) -> str:
        history.append({"role": "user", "content": text})
        reply = generate(model, tokenizer, history, max_new_tokens)
        history.append({"role": "assistant", "content": reply})
        return reply

    if prompt is not None:
        out.line(answer(prompt))
        return
    interactive = sys.stdin.isatty()
    if interactive:
        out.note(f"Chatting with {settings.task.model} + {label}. Type `exit` or Ctrl-D to leave.")
    while True:
        try:
            text = click.prompt("you", prompt_suffix="> ") if interactive else sys.stdin.readline()
        except (EOFError, click.exceptions.Abort):
            break
        if not interactive and text == "":
            break  # end of piped input
        text = text.strip()
        if text.lower() in _EXIT_WORDS:
            break
        if not text:
            continue
        reply = answer(text)
        out.line(f"model> {reply}" if interactive else reply)
