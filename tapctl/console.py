"""The one place tapctl writes to the terminal.

Results (tables, JSON documents) go to stdout; progress, logs, warnings and
errors go to stderr. ``-q`` silences progress, ``-v`` adds detail, and errors
are never hidden. Colours keep one meaning: green done, yellow warning or
rollback, red failure.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tapctl.errors import TapctlError, one_line
from tapctl.outputs import MASK

_STATUS_STYLES = {
    "pass": "green",
    "ok": "green",
    "fail": "red",
    "error": "red",
    "skip": "yellow",
    "warn": "yellow",
}


def _console(*, stderr: bool, no_color: bool) -> Console:
    # Rich falls back to 80 columns off a terminal, which folds CI logs badly.
    probe = Console(stderr=stderr)
    width = None if probe.is_terminal else 160
    return Console(stderr=stderr, width=width, no_color=no_color, highlight=False)


class Output:
    """Owns both streams for one invocation."""

    def __init__(
        self, *, quiet: bool = False, verbose: bool = False, no_color: bool = False
    ) -> None:
        self.quiet = quiet
        self.verbose = verbose
        self.out = _console(stderr=False, no_color=no_color)
        self.err = _console(stderr=True, no_color=no_color)

    # -- results (stdout) -------------------------------------------------
    def json(self, document: Any) -> None:
        """Write exactly one JSON document to stdout."""
        sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
        sys.stdout.flush()

    def table(
        self,
        title: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        status_column: str | None = None,
    ) -> None:
        """Render rows as a table on stdout; a status column is coloured."""
        table = Table(title=title, title_justify="left", expand=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        status_index = columns.index(status_column) if status_column else -1
        for row in rows:
            cells = [Text(_cell(value)) for value in row]
            if status_index >= 0:
                cells[status_index].stylize(
                    _STATUS_STYLES.get(str(row[status_index]), "")
                )
            table.add_row(*cells)
        self.out.print(table)

    def mapping(self, title: str, values: Mapping[str, Any]) -> None:
        """Render a key/value table on stdout."""
        self.table(title, ["key", "value"], sorted(values.items()))

    def result(self, message: str, *, ok: bool = True) -> None:
        """A summary line that belongs to the result (stdout)."""
        self.out.print(Text(message, style="green" if ok else "red"))

    # -- progress (stderr) ------------------------------------------------
    def info(self, message: str) -> None:
        if not self.quiet:
            self._line(message)

    def done(self, message: str) -> None:
        if not self.quiet:
            self._line(message, "green")

    def detail(self, message: str) -> None:
        if self.verbose:
            self._line(message, "dim")

    def warn(self, message: str) -> None:
        self._line(f"tapctl: warning: {message}", "yellow")

    def error(self, error: TapctlError) -> None:
        self._line(f"tapctl: error: {error.message}", "red")
        if error.hint:
            self._line(error.hint, indent="  ")

    def _line(self, message: str, style: str = "", *, indent: str = "") -> None:
        # One message, one line: never folded at the console width, so logs
        # and scripts can grep it whole.
        text = Text(indent + one_line(message), style=style)
        self.err.print(text, soft_wrap=True)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return "" if value is None else str(value)


def mask_secrets(
    values: Mapping[str, Any], secret_keys: Iterable[str], *, show: bool = False
) -> dict[str, Any]:
    """Replace the values of secret keys unless the user asked to see them."""
    hidden = set() if show else set(secret_keys)
    return {key: MASK if key in hidden else value for key, value in values.items()}


_current = Output()


def configure(*, quiet: bool, verbose: bool, no_color: bool) -> Output:
    global _current
    _current = Output(quiet=quiet, verbose=verbose, no_color=no_color)
    return _current


def get() -> Output:
    return _current
