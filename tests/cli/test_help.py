"""`flb --help` lists every command; each command's help lists every option with a one-line text."""

from __future__ import annotations

import re

import click
import pytest

from flb_dapp.cli.main import SUBCOMMANDS, cli
from tests.cli.conftest import invoke_flb


def command_paths() -> list[tuple[str, ...]]:
    """Every command and group subcommand, as argument paths (e.g. ("account", "new"))."""
    ctx = click.Context(cli)
    paths: list[tuple[str, ...]] = []
    for name in sorted(SUBCOMMANDS):
        command = cli.get_command(ctx, name)
        paths.append((name,))
        if isinstance(command, click.Group):
            paths.extend((name, sub) for sub in sorted(command.commands))
    return paths


def resolve(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(command), name)
        assert found is not None, path
        command = found
    return command


def squash(text: str) -> str:
    """Help text without whitespace: click wraps lines (and may break after a hyphen)."""
    return re.sub(r"\s+", "", text)


def test_top_level_help_lists_every_command_and_global_option() -> None:
    result = invoke_flb("--help")
    assert result.exit_code == 0
    for name, (_, short) in SUBCOMMANDS.items():
        assert re.search(rf"^\s+{name}\s+{re.escape(short)}$", result.stdout, re.M), name
    for option in ("--config", "--network", "--json", "--verbose", "--quiet", "--version"):
        assert option in result.stdout


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p))
def test_each_option_has_a_one_line_help(path: tuple[str, ...]) -> None:
    command = resolve(path)
    result = invoke_flb(*path, "--help")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"Usage: flb {' '.join(path)}")
    assert command.help and command.help.strip(), f"{path} has no description"
    shown = squash(result.stdout)
    for param in command.params:
        if not isinstance(param, click.Option) or param.hidden:
            continue
        assert param.help, f"{' '.join(path)} {param.opts[0]} has no help"
        assert "\n" not in param.help.strip(), f"{param.opts[0]}: help must be one line"
        assert all(squash(opt) in shown for opt in param.opts), param.opts
        assert squash(param.help) in shown, f"{param.opts[0]}: help text not shown"
