"""Glue for the one-way flow: pick the sources, apply the Query, hand events to a sink."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from msgtrack.events import TrackingEvent
from msgtrack.filters import Query, apply
from msgtrack.report import RunReport

if TYPE_CHECKING:
    from msgtrack.sources.remote import Connection, Plan

PathLike = str | os.PathLike[str]


def read_offline(logs: Sequence[PathLike], clixml: Sequence[PathLike], report: RunReport, *,
                 culture: str = "en-US") -> Iterator[TrackingEvent]:
    """Events from MSGTRK*.LOG files/folders/globs, then from Export-Clixml files."""
    if logs:
        from msgtrack.sources.logfile import read_logs

        yield from read_logs(logs, report)
    if clixml:
        from msgtrack.sources.clixml import read_clixml

        for path in clixml:
            yield from read_clixml(path, report, culture=culture)


def search(events: Iterable[TrackingEvent], query: Query) -> Iterator[TrackingEvent]:
    """Client-side filtering of offline events (none at all for an empty query)."""
    if query == Query():
        return iter(events)
    return apply(query, events)


def open_events(logs: Sequence[PathLike], clixml: Sequence[PathLike],
                remote: tuple[Connection, Plan] | None, query: Query, report: RunReport, *,
                culture: str = "en-US",
                progress: Callable[[str, dict[str, int]], None] | None = None,
                ) -> Iterator[TrackingEvent]:
    """Every matching event from every named source, streamed."""
    if logs or clixml:
        yield from search(read_offline(logs, clixml, report, culture=culture), query)
    if remote is not None:
        from msgtrack.sources.remote import RemoteSearch

        conn, plan = remote
        yield from RemoteSearch(conn, plan, query, report, progress=progress).events()


def completeness_line(report: RunReport) -> str:
    c = report.counts
    failed = report.problem_counts.get("server", 0)
    return (f"servers {c['servers-tried']} tried, {c['servers-succeeded']} succeeded, "
            f"{c['servers-tried'] - c['servers-succeeded']} failed ({failed} unreachable); "
            f"slices {c['slices']} done, {report.problem_counts.get('slice', 0)} failed, "
            f"{c['slices-split']} split at the cap; rows {c['events']}; "
            f"warnings {len(report.warnings)}; retries {c['retries']}; "
            f"{'complete' if report.complete else 'INCOMPLETE'}")


def write_report(report: RunReport, path: Path) -> None:
    """The completeness summary as JSON (no credentials: the report never holds any)."""
    import json  # here: most runs write no report (start-up)

    path.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
