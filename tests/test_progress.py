"""The remote progress bar: on a terminal only, counting slices, events and errors."""

from __future__ import annotations

import io

from rich.console import Console

from msgtrack.cli.progress import remote_progress


def test_no_bar_when_not_a_terminal() -> None:
    with remote_progress(enabled=None) as update:  # pytest's stderr is not a tty
        assert update is None


def test_bar_counts_time_searched_slices_events_and_errors() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    with remote_progress(enabled=True, console=console) as update:
        assert update is not None
        update("plan", {"servers": 2, "seconds": 4 * 3600})
        for events, hours in ((10, 1), (0, 0.5), (5, 1)):
            update("slice", {"events": events, "seconds": hours * 3600})
        update("skipped", {"seconds": 1800})
        update("error", {})
        update("server-done", {})
        console.print("")  # flush a frame
    text = screen.getvalue()
    assert "servers 1/2 · slices 3 · events 15 · errors 1" in text
    assert "75%" in text  # 3 of the 4 server-hours searched
