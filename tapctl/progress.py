"""Progress of an engine operation on stderr, fed by the engine's events.

On a terminal it is a live view (resources in flight, done, failed, elapsed
time); elsewhere (CI logs, tests) it prints one line per finished or failed
resource so that logs stay readable. Events arrive on the engine's event
thread, hence the lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

if TYPE_CHECKING:
    from tapctl.engine import EngineEvent

#: Past-tense labels of the operations worth a line.
_DONE = {
    "create": "created",
    "update": "updated",
    "replace": "replaced",
    "delete": "deleted",
    "create-replacement": "created replacement of",
    "delete-replaced": "deleted old",
    "refresh": "refreshed",
    "import": "imported",
}
_SHOWN_IN_FLIGHT = 8
_DIAGNOSTIC_STYLES = {"warning": "yellow", "error": "red"}


class ProgressView:
    """Tracks resources in flight and renders them."""

    def __init__(self, console: Console, title: str, *, quiet: bool = False) -> None:
        self.console = console
        self.title = title
        #: With -q only the engine's warnings and errors are printed.
        self.quiet = quiet
        self.started = time.monotonic()
        self.in_flight: dict[str, tuple[str, float]] = {}
        self.done = 0
        self.failed: list[str] = []
        self._lock = threading.Lock()
        self.live: Live | None = None

    def handle(self, event: EngineEvent) -> None:
        """Take one engine event; planning steps of a preview are not progress."""
        if event.kind == "diagnostic" and event.severity in _DIAGNOSTIC_STYLES:
            # Printed above a live view too: a provider's warning must not vanish.
            self.console.print(_diagnostic_line(event))
            return
        if event.planning or event.kind not in ("start", "done", "failed"):
            return
        if event.op not in _DONE:
            return
        with self._lock:
            line = self._apply(event)
        if line is not None and self.live is None and not self.quiet:
            self.console.print(line)

    def _apply(self, event: EngineEvent) -> Text | None:
        label = f"{event.type} {event.name}"
        if event.kind == "start":
            self.in_flight[event.urn] = (label, time.monotonic())
            return None
        _, began = self.in_flight.pop(event.urn, (label, time.monotonic()))
        took = f"({time.monotonic() - began:.0f}s)"
        if event.kind == "failed":
            self.failed.append(label)
            return Text(f"failed {event.op} of {label} {took}", style="red")
        self.done += 1
        return Text(f"{_DONE[event.op]} {label} {took}", style="green")

    def render(self) -> Group:
        """Header line with counts and elapsed time, then resources in flight."""
        with self._lock:
            now = time.monotonic()
            header = Text(
                f"{self.title}: {len(self.in_flight)} in flight, {self.done} done, "
                f"{len(self.failed)} failed, {clock(now - self.started)}"
            )
            rows = [
                Text(f"  {label} ({now - began:.0f}s)", style="dim")
                for label, began in list(self.in_flight.values())[:_SHOWN_IN_FLIGHT]
            ]
        return Group(header, *rows)


@contextmanager
def follow(
    console: Console, title: str, *, enabled: bool = True
) -> Iterator[ProgressView]:
    """A progress view for one operation: live on a terminal, lines elsewhere."""
    view = ProgressView(console, title, quiet=not enabled)
    if not enabled or not console.is_terminal:
        yield view
        return
    with Live(
        get_renderable=view.render,
        console=console,
        refresh_per_second=4,
        transient=True,
    ) as live:
        view.live = live
        yield view


def _diagnostic_line(event: EngineEvent) -> Text:
    first = event.message.strip().splitlines()[0] if event.message.strip() else ""
    where = f"{event.name}: " if event.name else ""
    return Text(
        f"{event.severity}: {where}{first}", style=_DIAGNOSTIC_STYLES[event.severity]
    )


def clock(seconds: float) -> str:
    """Elapsed time as ``1m05s`` or ``42s``."""
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"
