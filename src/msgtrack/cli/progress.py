"""A progress bar on stderr (only on a terminal): servers × time searched, slices, events,
errors."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Callback = Callable[[str, dict[str, int]], None]


@contextmanager
def remote_progress(enabled: bool | None = None, console: Any = None
                    ) -> Iterator[Callback | None]:
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    counts = {"events": 0, "errors": 0, "servers": 0, "servers_done": 0, "slices": 0}
    # Slices adapt their width as they go, so the bar measures what is known up front:
    # the hours of the window still to search, on every server.
    with Progress(TextColumn("[bold]searched"), BarColumn(), TaskProgressColumn(),
                  TextColumn("{task.description}"), console=console or Console(stderr=True),
                  transient=True) as bar:
        task = bar.add_task("", total=None)

        def update(what: str, data: dict[str, int]) -> None:
            if what == "plan":
                counts["servers"] = data["servers"]
                bar.update(task, total=data["seconds"])
            elif what == "slice":
                counts["events"] += data["events"]
                counts["slices"] += 1
                bar.advance(task, data["seconds"])
            elif what == "skipped":  # given up after errors: searched no further
                bar.advance(task, data["seconds"])
            elif what == "error":
                counts["errors"] += 1
            elif what == "server-done":
                counts["servers_done"] += 1
            bar.update(task, description=(
                f"servers {counts['servers_done']}/{counts['servers']} · "
                f"slices {counts['slices']} · events {counts['events']} · "
                f"errors {counts['errors']}"))

        yield update
