"""Glue for the one-way flow: pick the sources, apply the Query, hand events to a sink."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence

from msgtrack.events import TrackingEvent
from msgtrack.filters import Query, apply
from msgtrack.report import RunReport


def read_offline(logs: Sequence[str | os.PathLike[str]], clixml: Sequence[str | os.PathLike[str]],
                 report: RunReport, *, culture: str = "en-US") -> Iterator[TrackingEvent]:
    """Events from MSGTRK*.LOG files/folders/globs, then from Export-Clixml files."""
    if logs:
        from msgtrack.sources.logfile import read_logs

        yield from read_logs(logs, report)
    if clixml:
        from msgtrack.sources.clixml import read_clixml

        for path in clixml:
            yield from read_clixml(path, report, culture=culture)


def search(events: Iterable[TrackingEvent], query: Query) -> Iterator[TrackingEvent]:
    """Client-side filtering (remote sources already narrowed what the cmdlet could)."""
    return apply(query, events)
