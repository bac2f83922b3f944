"""Where events go: a table for people, CSV for Excel, JSON Lines for scripts.

:func:`write` is the one place that chooses between human and machine output.
Everything streams except the table, which must measure its columns; it holds at most
``limit`` rows and says how many it cut.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from msgtrack.decode import format_log_timestamp
from msgtrack.errors import UsageError
from msgtrack.events import TrackingEvent
from msgtrack.sinks.rows import COLUMNS, csv_rows, event_record, per_recipient, quote_cells

FORMATS = ("table", "csv", "jsonl")

#: Characters that make Excel/LibreOffice treat a cell as a formula (OWASP CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_FIRST = frozenset(_FORMULA_START)
#: A cell after the first that may start a formula, quoted or not (a hit inside a quoted
#: cell is checked cell by cell). Spelled as two branches: sre tries the pattern at every
#: comma, and an optional quote costs more there than a second branch (1.1 vs 1.4 us a
#: row).
_FORMULA_CELL = re.compile(r',(?:[=+\-@\t\r]|"[=+\-@\t\r])').search

TABLE_COLUMNS: tuple[str, ...] = (
    "Timestamp", "ServerHostname", "EventId", "Source", "Sender", "Recipients",
    "MessageSubject", "Decoded",
)
_TABLE_WIDTH = {"Recipients": 40, "MessageSubject": 40, "Sender": 32, "Decoded": 44}


@dataclass(frozen=True)
class SinkOptions:
    per_recipient: bool = False
    #: Neutralise cells that a spreadsheet would run as a formula (subjects are attacker text).
    safe_csv: bool = True
    #: Table only: the most rows to show.
    limit: int = 100


@dataclass(frozen=True)
class SinkResult:
    rows: int  #: rows written (for the table: shown)
    total: int  #: rows produced (for the table: shown + cut)

    @property
    def cut(self) -> int:
        return self.total - self.rows


def neutralise(cell: str) -> str:
    """Prefix a quote to cells a spreadsheet would evaluate (``=cmd|' /c calc'!A1``)."""
    if cell and cell.startswith(_FORMULA_START):
        return "'" + cell
    return cell


def write(events: Iterable[TrackingEvent], fmt: str, out: TextIO,
          options: SinkOptions = SinkOptions()) -> SinkResult:
    """Write events to ``out`` in ``fmt`` (table, csv or jsonl)."""
    if options.per_recipient:
        events = (split for ev in events for split in per_recipient(ev))
    if fmt == "csv":
        return _write_csv(csv_rows(events), COLUMNS, out, options.safe_csv)
    if fmt == "jsonl":
        return _write_jsonl(map(event_record, events), out)
    if fmt == "table":
        return _write_table(map(table_row, events), TABLE_COLUMNS, out, options.limit)
    raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def write_rows(rows: Iterable[dict[str, Any]], fmt: str, out: TextIO, *,
               safe_csv: bool = True, limit: int = 100,
               columns: Sequence[str] | None = None) -> SinkResult:
    """Write report rows (dicts, one shape) through the same three formats.

    Columns come from ``columns`` or the first row's keys. Lists become ``;``-joined
    text in CSV and tables; datetimes become ISO 8601 UTC with ``Z``.
    """
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        if fmt == "csv" and columns:
            _write_csv(iter(()), tuple(columns), out, safe_csv)
        return SinkResult(0, 0)
    names = tuple(columns) if columns else tuple(first.keys())

    def chained() -> Iterator[dict[str, Any]]:
        yield first
        yield from iterator

    if fmt == "jsonl":
        return _write_jsonl(({k: _json_ready(r.get(k)) for k in names} for r in chained()), out)
    cells = ([_text(r.get(k)) for k in names] for r in chained())
    if fmt == "csv":
        return _write_csv(map(quote_cells, cells), names, out, safe_csv)
    if fmt == "table":
        return _write_table(cells, names, out, limit)
    raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


# --------------------------------------------------------------------------- formats


def _write_csv(rows: Iterable[Sequence[str]], header: Sequence[str], out: TextIO,
               safe: bool) -> SinkResult:
    """Rows of cells already quoted (:func:`quote_cells`), as csv.writer with QUOTE_MINIMAL
    and ``\\r\\n`` would write them: what Excel and Export-Csv consumers expect."""
    # Not csv.writer: it looks at every character of every cell (~17 us for a 900-byte
    # row); the cells come quoted, so a join is the whole job. One write a row keeps the
    # output streaming, and costs less than joining batches of rows.
    write = out.write
    names = [h if isinstance(h, str) else "" if h is None else str(h) for h in header]  # as csv.writer
    write(",".join(quote_cells(names)) + "\r\n")
    if getattr(out, "encoding", None) == "utf-8-sig" and isinstance(out, io.TextIOWrapper):
        # The BOM is out; from here utf-8-sig writes what utf-8 writes, but its encoder
        # is Python code called on every write where utf-8's is C (0.3 us a row).
        out.reconfigure(encoding="utf-8")
    count = 0
    formula, first, lead = _FORMULA_CELL, _FORMULA_FIRST, _GUARD_LEAD
    for cells in rows:
        line = ",".join(cells)
        if safe and (formula(line) or (line[:1] in lead and (line[0] != '"' or line[1:2] in first))):
            # Only cells that start with one of these can change: no call for the others.
            line = ",".join([_guard_quoted(c) if c[:1] in lead else c for c in cells])
        write(line + "\r\n")
        count += 1
    return SinkResult(count, count)


#: First characters of a cell, as written, that _guard_quoted may change.
_GUARD_LEAD = _FORMULA_FIRST | {'"'}


def _guard_quoted(cell: str) -> str:
    """:func:`neutralise` for a cell as written (the quote goes inside CSV quotes)."""
    lead = cell[:1]
    if lead in _FORMULA_FIRST:
        return "'" + cell
    if lead == '"' and cell[1:2] in _FORMULA_FIRST:
        return "\"'" + cell[1:]
    return cell


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_log_timestamp(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _write_jsonl(records: Iterable[dict[str, Any]], out: TextIO) -> SinkResult:
    import json  # here: a CSV or table run has no use for it (start-up)

    dumps = json.JSONEncoder(ensure_ascii=False, default=_json_default).encode
    count = 0
    for record in records:
        out.write(dumps(record))
        out.write("\n")
        count += 1
    return SinkResult(count, count)


def _write_table(rows: Iterable[list[str]], header: Sequence[str], out: TextIO,
                 limit: int) -> SinkResult:
    shown: list[list[str]] = []
    total = 0
    for cells in rows:
        total += 1
        if len(shown) < limit:
            shown.append([_clip(h, c) for h, c in zip(header, cells, strict=False)])
    if shown:
        from tabulate import tabulate  # not imported for machine formats (~20 ms at start-up)

        out.write(tabulate(shown, headers=list(header), tablefmt="simple", disable_numparse=True))
        out.write("\n")
    return SinkResult(len(shown), total)


def _clip(column: str, text: str) -> str:
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    width = _TABLE_WIDTH.get(column, 60)
    return text if len(text) <= width else text[: width - 1] + "…"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_log_timestamp(value)
    if isinstance(value, (list, tuple)):
        return ";".join(_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _json_ready(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_log_timestamp(value)
    if isinstance(value, tuple):
        return [_json_ready(v) for v in value]
    return value


# --------------------------------------------------------------------------- table view


def describe(ev: TrackingEvent) -> str:
    """A short human reading of MessageInfo for the table view."""
    info = ev.info
    if info.auth is not None:
        a = info.auth
        text = f"{a.method} ({a.code}) · {a.category}"
        return f"{text} · {a.domain}" if a.domain else text
    if info.latency is not None and info.latency.this_server is not None:
        block = info.latency.this_server
        total = "?" if block.total is None else f"{block.total:.3f}s"
        return f"latency {total} {block.process or ''} on {block.server}".replace("  ", " ")
    if info.timestamp is not None:
        label = "retry at" if ev.event_id == "DEFER" else "arrived"
        return f"{label} {format_log_timestamp(info.timestamp)}"
    return info.raw.strip()


def _recipients_text(ev: TrackingEvent) -> str:
    if len(ev.recipients) <= 1:
        return ev.recipients[0] if ev.recipients else ""
    return f"{ev.recipients[0]} (+{len(ev.recipients) - 1})"


_TABLE_GETTERS: dict[str, Callable[[TrackingEvent], str]] = {
    "Timestamp": lambda ev: format_log_timestamp(ev.timestamp),
    "ServerHostname": lambda ev: ev.server_hostname,
    "EventId": lambda ev: ev.event_id,
    "Source": lambda ev: ev.source,
    "Sender": lambda ev: ev.sender,
    "Recipients": _recipients_text,
    "MessageSubject": lambda ev: ev.message_subject,
    "Decoded": describe,
}


def table_row(ev: TrackingEvent) -> list[str]:
    return [_TABLE_GETTERS[c](ev) for c in TABLE_COLUMNS]


__all__ = [
    "COLUMNS", "FORMATS", "SinkOptions", "SinkResult", "describe", "neutralise", "write",
    "write_rows",
]
