"""How every `flb` command talks to people and scripts.

* Results go to stdout; notes, warnings and progress go to stderr, so ``flb status --json | jq``
  and ``flb pull > log`` both stay clean.
* ``--json`` prints exactly one JSON document on stdout and nothing else there.
* Colour and live progress bars only on a terminal; ``NO_COLOR`` turns colour off (rich reads it),
  and off a terminal the progress becomes a few plain lines, fit for cron logs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

TOKEN_DECIMALS = 18


def format_units(amount: int, decimals: int = TOKEN_DECIMALS, places: int = 6) -> str:
    """``1500000000000000000`` -> ``1.5``: an integer amount in a token's smallest unit, readable."""
    value = Decimal(amount) / (Decimal(10) ** decimals)
    text = f"{value:.{places}f}".rstrip("0").rstrip(".")
    return text or "0"


def _no_color() -> bool:
    return bool(os.environ.get("NO_COLOR"))


class Output:
    """One command's output channel: plain or JSON, quiet or verbose."""

    def __init__(self, *, json_mode: bool = False, quiet: bool = False, verbose: bool = False) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self.verbose = verbose

    # NOTE: consoles are made on each use, so they write to whatever sys.stdout / sys.stderr is at
    # that moment (click's test runner swaps them).
    @property
    def out(self) -> Console:
        return Console(file=sys.stdout, no_color=_no_color() or None, highlight=False, soft_wrap=True)

    @property
    def err(self) -> Console:
        return Console(file=sys.stderr, no_color=_no_color() or None, highlight=False, soft_wrap=True)

    # --- messages (stderr) --------------------------------------------------------------------
    def note(self, message: str) -> None:
        """Progress narration: hidden by --quiet and in --json mode."""
        if not (self.quiet or self.json_mode):
            self.err.print(message, markup=False)

    def detail(self, message: str) -> None:
        """Only with --verbose."""
        if self.verbose:
            self.err.print(message, markup=False, style="dim")

    def success(self, message: str) -> None:
        if not (self.quiet or self.json_mode):
            self.err.print(message, markup=False, style="green")

    def warn(self, message: str) -> None:
        """Always shown (also in --json mode: stderr does not disturb the JSON)."""
        self.err.print(f"Warning: {message}", markup=False, style="yellow")

    # --- results (stdout) ---------------------------------------------------------------------
    def result(self, data: Mapping[str, Any], human: Callable[[], None] | None = None) -> None:
        """The command's result: ``data`` as JSON in --json mode, else ``human()`` (or key: value lines)."""
        if self.json_mode:
            sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
            sys.stdout.flush()
        elif human is not None:
            human()
        else:
            self.fields(data)

    def line(self, text: str = "", style: str | None = None) -> None:
        self.out.print(text, markup=False, style=style)

    def fields(self, data: Mapping[str, Any], title: str | None = None) -> None:
        """Aligned ``key  value`` lines; plain text, easy to grep."""
        if title:
            self.out.print(title, markup=False, style="bold")
        width = max((len(str(k)) for k in data), default=0)
        for key, value in data.items():
            shown = "-" if value is None or value == "" else value
            self.out.print(f"{key!s:<{width}}  {shown}", markup=False)

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
        table = Table(*columns, title=title, show_edge=False, header_style="bold")
        for row in rows:
            table.add_row(*(str(cell) for cell in row))
        self.out.print(table)

    # --- progress (stderr) --------------------------------------------------------------------
    @contextmanager
    def progress(self, description: str, total: int | None, unit: str = "steps") -> Iterator[ProgressBar]:
        """A progress bar on a terminal; a few plain lines elsewhere; nothing with --quiet / --json."""
        console = self.err
        if self.quiet or self.json_mode:
            yield ProgressBar(None, None, description, total, unit, silent=True)
            return
        if not console.is_terminal:
            bar = ProgressBar(None, None, description, total, unit, console=console)
            yield bar
            bar.finish()  # NOTE: not on failure: the error message should be the last word
            return
        columns = [
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(unit),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
        ]
        with Progress(*columns, console=console, transient=False) as progress:
            task_id = progress.add_task(description, total=total, info="")
            yield ProgressBar(progress, task_id, description, total, unit)

    @contextmanager
    def status(self, message: str) -> Iterator[None]:
        """A spinner while something of unknown length runs (loading a model, waiting for a node)."""
        console = self.err
        if self.quiet or self.json_mode:
            yield
            return
        if not console.is_terminal:
            console.print(message, markup=False)
            yield
            return
        with console.status(message):
            yield


class ProgressBar:
    """What a command updates while working; rich draws it, or plain lines are printed."""

    def __init__(
        self,
        progress: Progress | None,
        task_id: Any,
        description: str,
        total: int | None,
        unit: str,
        *,
        console: Console | None = None,
        silent: bool = False,
    ) -> None:
        self._progress = progress
        self._task_id = task_id
        self._description = description
        self.total = total
        self._unit = unit
        self._console = console
        self._silent = silent
        self._last_fraction = -1.0
        self._last_time = 0.0
        self._completed = 0
        self._printed = -1
        self._info = ""

    def update(self, completed: int, total: int | None = None, info: str = "") -> None:
        """Set the position (and the total, once known); ``info`` is a short tail such as the loss."""
        self._completed = completed
        self._info = info or self._info
        if total is not None:
            self.total = total
        if self._progress is not None:
            self._progress.update(self._task_id, completed=completed, total=self.total, info=self._info)
            return
        if self._silent or self._console is None:
            return
        # Plain mode: a line at each tenth of the way (or every 30 s), not a line per step.
        fraction = completed / self.total if self.total else 0.0
        now = time.monotonic()
        if fraction - self._last_fraction >= 0.1 or now - self._last_time >= 30:
            self._print()
            self._last_fraction, self._last_time = fraction, now

    def _print(self) -> None:
        assert self._console is not None
        of = f"/{self.total}" if self.total else ""
        tail = f"  {self._info}" if self._info else ""
        self._console.print(f"{self._description}: {self._completed}{of} {self._unit}{tail}", markup=False)
        self._printed = self._completed

    def finish(self) -> None:
        """Plain mode: make sure the last position was printed."""
        if self._console is not None and self._printed != self._completed:
            self._print()
