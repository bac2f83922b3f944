"""The remote progress bar: on a terminal only, counting slices, events and errors."""

from __future__ import annotations

import io

from rich.console import Console

from msgtrack.cli.progress import remote_progress


def test_no_bar_when_not_a_terminal() -> None:
    with remote_progress(enabled=None) as update:  # pytest's stderr is not a tty
        assert update is None


def test_bar_counts_slices_events_and_errors() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    with remote_progress(enabled=True, console=console) as update:
        assert update is not None
        update("plan", {"servers": 2, "slices": 4})
        update("split", {})
        for events in (10, 0, 5):
            update("slice", {"events": events})
        update("error", {})
        update("server-done", {})
        console.print("")  # flush a frame
    text = screen.getvalue()
    assert "servers 1/2 · events 15 · errors 1" in text
    assert "3/5" in text  # 4 slices, one split in two, 3 done
