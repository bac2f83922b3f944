"""A progress bar on stderr (only on a terminal): slices done, events, errors."""

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
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    counts = {"events": 0, "errors": 0, "servers": 0, "servers_done": 0}
    with Progress(TextColumn("[bold]slices"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.description}"), console=console or Console(stderr=True),
                  transient=True) as bar:
        task = bar.add_task("", total=None)

        def update(what: str, data: dict[str, int]) -> None:
            if what == "plan":
                counts["servers"] = data["servers"]
                bar.update(task, total=data["slices"])
            elif what == "split":
                bar.update(task, total=(bar.tasks[0].total or 0) + 1)
            elif what == "slice":
                counts["events"] += data["events"]
                bar.advance(task)
            elif what == "error":
                counts["errors"] += 1
            elif what == "server-done":
                counts["servers_done"] += 1
            bar.update(task, description=(
                f"servers {counts['servers_done']}/{counts['servers']} · "
                f"events {counts['events']} · errors {counts['errors']}"))

        yield update
