"""One day's events in a stable order, each row once, in bounded memory.

Remote servers answer in parallel, so their rows arrive in an order that changes from
run to run; copies of the same log may sit in two folders. The audit therefore sorts by
``(timestamp, server, origin path, origin line)`` and drops a row whose dedupe key
(the anchors' idea: time, server, internal message id, recipients, event id, plus
source, message id and log id) was already written for the same timestamp. Duplicates
always share their timestamp, so only one timestamp's keys are held at a time.

Python's sort is stable and :func:`heapq.merge` keeps the order of equal keys across
chunks, so rows that tie on the sort key keep the order the source gave them (a file's
line order, a server's own answer order): the output is the same on every run.
Past ``chunk`` events, sorted chunks are pickled to a temporary folder and merged.
"""

from __future__ import annotations

import heapq
import itertools
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from msgtrack.events import TrackingEvent

DEFAULT_CHUNK = 200_000


def sort_key(ev: TrackingEvent) -> tuple[Any, ...]:
    path, _, line = ev.origin.rpartition(":")
    if path and line.isdigit():
        return (ev.timestamp, ev.server_hostname.casefold(), path, int(line))
    return (ev.timestamp, ev.server_hostname.casefold(), ev.origin, 0)


def dedupe_key(ev: TrackingEvent) -> tuple[Any, ...]:
    return (ev.server_hostname.casefold(), ev.internal_message_id, ev.recipients, ev.event_id,
            ev.source, ev.message_id, ev.log_id)


@dataclass
class OrderStats:
    read: int = 0
    duplicates: int = 0
    spilled_chunks: int = 0


def ordered_unique(events: Iterable[TrackingEvent], stats: OrderStats, *,
                   chunk: int = DEFAULT_CHUNK, spill_dir: Path | None = None,
                   key: Callable[[TrackingEvent], Any] = sort_key) -> Iterator[TrackingEvent]:
    """Events sorted by :func:`sort_key`, duplicates dropped (counted in ``stats``)."""
    return _dedupe(_sorted(events, stats, chunk, spill_dir, key), stats)


def _sorted(events: Iterable[TrackingEvent], stats: OrderStats, chunk: int,
            spill_dir: Path | None, key: Callable[[TrackingEvent], Any]
            ) -> Iterator[TrackingEvent]:
    buffer: list[TrackingEvent] = []
    with tempfile.TemporaryDirectory(prefix="msgtrack-sort-", dir=spill_dir) as tmp:
        files: list[Path] = []
        for ev in events:
            stats.read += 1
            buffer.append(ev)
            if len(buffer) >= chunk:
                buffer.sort(key=key)
                files.append(_spill(buffer, Path(tmp) / f"chunk-{len(files):05d}"))
                buffer = []
        buffer.sort(key=key)
        if not files:
            yield from buffer
            return
        stats.spilled_chunks = len(files)
        handles: list[IO[bytes]] = [open(f, "rb") for f in files]  # noqa: SIM115
        try:
            streams = [_unspill(h) for h in handles] + [iter(buffer)]
            yield from heapq.merge(*streams, key=key)
        finally:
            for h in handles:
                h.close()


def _spill(events: list[TrackingEvent], path: Path) -> Path:
    with open(path, "wb") as fh:
        pickler = pickle.Pickler(fh, protocol=pickle.HIGHEST_PROTOCOL)
        for batch in itertools.batched(events, 1000) if hasattr(itertools, "batched") \
                else _batched(events, 1000):
            pickler.dump(list(batch))
            pickler.clear_memo()
    return path


def _batched(items: list[TrackingEvent], n: int) -> Iterator[list[TrackingEvent]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _unspill(fh: IO[bytes]) -> Iterator[TrackingEvent]:
    unpickler = pickle.Unpickler(fh)
    while True:
        try:
            batch = unpickler.load()
        except EOFError:
            return
        yield from batch


def _dedupe(events: Iterator[TrackingEvent], stats: OrderStats) -> Iterator[TrackingEvent]:
    current = None
    keys: set[tuple[Any, ...]] = set()
    for ev in events:
        if ev.timestamp != current:
            current = ev.timestamp
            keys.clear()
        k = dedupe_key(ev)
        if k in keys:
            stats.duplicates += 1
            continue
        keys.add(k)
        yield ev
