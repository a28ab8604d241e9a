"""``flb config show``: the effective settings and where each value comes from."""

from __future__ import annotations

import json
from typing import Any

import click

from flb_dapp.cli.context import CLIContext, pass_cli
from flb_dapp.cli.options import json_option


@click.group("config")
def config() -> None:
    """Inspect FLB's settings (flb.yaml, FLB_* environment variables, defaults)."""


def _plain(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "model_dump"):
        return value.model_dump()
    return value


def _flatten(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        return [pair for key, inner in value.items() for pair in _flatten(f"{prefix}.{key}", inner)]
    return [(prefix, value)]


@config.command("show")
@json_option
@pass_cli
def show(cli: CLIContext) -> None:
    """Print every setting's effective value and its source (command line, env, file or default)."""
    from flb_dapp.config import FLBSettings, settings_sources

    out = cli.output
    settings = cli.settings
    sources = settings_sources(settings, cli.config_path)
    for name in cli.overrides:
        sources[name] = "command line"
    if cli.network:
        sources["network"] = "command line"
    values = {name: _plain(getattr(settings, name)) for name in FLBSettings.model_fields}
    data = {name: {"value": values[name], "source": sources.get(name, "default")} for name in values}

    def human() -> None:
        # One `key = value  (source)` line per leaf, nested settings as dotted keys: greppable.
        rows = [
            (key, value, entry["source"])
            for name, entry in data.items()
            for key, value in _flatten(name, entry["value"])
        ]
        width = max(len(key) for key, _, _ in rows)
        for key, value, source in rows:
            shown = "-" if value is None else json.dumps(value) if isinstance(value, list) else str(value)
            out.line(f"{key:<{width}} = {shown}  ({source})")

    out.result(data, human)
