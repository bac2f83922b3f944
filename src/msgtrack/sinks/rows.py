"""Events -> flat rows with the cmdlet's column names plus the annotation columns.

Output code never knows where an event came from; it only sees TrackingEvents. One
shortcut looks behind that: an event read from a log line still holds the line's cells
as written (:func:`msgtrack.events.source_cells`), and :func:`csv_cells` copies those
that need no formatting, CSV quoting included, instead of formatting them again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from msgtrack.decode import (
    ANNOTATION_COLUMNS,
    annotation_values,
    format_log_timestamp,
    join_list,
    submission_values,
    summarize_message_info,
)
from msgtrack.events import (
    FIELDS,
    LATENCY_EVENTS,
    RowLayout,
    TrackingEvent,
    cmdlet_latency,
    custom_data_text,
    latency_type,
    source_cells,
)

#: File-only columns: written after the annotations so cmdlet-shaped consumers are undisturbed.
_FILE_ONLY = ("OriginalServerIp", "LogId")

_CMDLET_FIELDS = tuple(f for f in FIELDS if f.prop not in _FILE_ONLY)
_FILE_FIELDS = tuple(f for f in FIELDS if f.prop in _FILE_ONLY)


def _columns() -> tuple[str, ...]:
    names: list[str] = []
    for f in _CMDLET_FIELDS:
        names.append(f.prop)
        if f.prop == "MessageInfo":  # the cmdlet's own order
            names += ["MessageLatency", "MessageLatencyType"]
    return (*names, *ANNOTATION_COLUMNS, *(f.prop for f in _FILE_FIELDS), "ExtraFields", "Origin")


#: Every column, in output order.
COLUMNS: tuple[str, ...] = _columns()

def _short_timespan(value: timedelta) -> str:
    """format_timespan of 0 <= value < 1 day: str() gives ``H:MM:SS[.ffffff]`` in C."""
    text = str(value)
    if len(text) < 9:
        text += ".000000"
    return "0" + text + "0" if len(text) == 14 else text + "0"


def format_timespan(value: timedelta | None) -> str:
    """.NET TimeSpan text (``[d.]hh:mm:ss.fffffff``), as the cmdlet's MessageLatency prints."""
    if value is None:
        return ""
    if value.days == 0:
        return _short_timespan(value)
    total_us = value.days * 86_400_000_000 + value.seconds * 1_000_000 + value.microseconds
    days, rem = divmod(total_us, 86_400_000_000)
    hours, rem = divmod(rem, 3_600_000_000)
    minutes, rem = divmod(rem, 60_000_000)
    seconds, micro = divmod(rem, 1_000_000)
    text = f"{hours:02d}:{minutes:02d}:{seconds:02d}.{micro:06d}0"
    return f"{days}.{text}" if days else text


def _latency_cells(event_id: str, source: str, message_info: str, timestamp: datetime) -> tuple[str, str]:
    """(MessageLatency, MessageLatencyType) as text."""
    latency, kind = cmdlet_latency(event_id, source, message_info, timestamp)
    return format_timespan(latency), kind


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_log_timestamp(value)
    return value


def event_record(ev: TrackingEvent) -> dict[str, Any]:
    """One event as a JSON-ready dict: lists stay lists, EventData stays an object."""
    record: dict[str, Any] = {}
    for f in _CMDLET_FIELDS:
        value = getattr(ev, f.attr)
        if f.kind == "time":
            value = format_log_timestamp(value)
        elif f.kind == "list":
            value = list(value)
        elif f.kind == "data":
            value = {k: _json_value(v) for k, v in value.items()}
        record[f.prop] = value
        if f.prop == "MessageInfo":
            latency, latency_type = _latency_cells(ev.event_id, ev.source, ev.message_info, ev.timestamp)
            record["MessageLatency"] = latency or None
            record["MessageLatencyType"] = latency_type
    record.update(ev.annotations())
    for f in _FILE_FIELDS:
        record[f.prop] = getattr(ev, f.attr)
    record["ExtraFields"] = dict(ev.extra)
    record["Origin"] = ev.origin
    return record


def _extra_text(extra: dict[str, str]) -> str:
    return join_list(f"{k}={v}" for k, v in extra.items())


def event_cells(ev: TrackingEvent) -> list[str]:
    """One event as CSV cell values in :data:`COLUMNS` order (lists joined with ``;``,
    EventData as the log's typed text, ``S:Key=Value;I32:N=3``)."""
    cells: list[str] = []
    append = cells.append
    for f in _CMDLET_FIELDS:
        value = getattr(ev, f.attr)
        kind = f.kind
        if kind == "str":
            append(value)
        elif kind == "time":
            append(format_log_timestamp(value))
        elif kind == "list":
            append(join_list(value))
        elif kind == "int":
            append("" if value is None else str(value))
        else:
            append(custom_data_text(value))
        if f.prop == "MessageInfo":
            cells.extend(_latency_cells(ev.event_id, ev.source, ev.message_info, ev.timestamp))
    cells.extend(annotation_values(ev.message_info, ev.source_context, ev.event_id))
    for f in _FILE_FIELDS:
        cells.append(getattr(ev, f.attr))
    cells.append(_extra_text(ev.extra))  # type: ignore[arg-type]
    cells.append(ev.origin)
    return cells


# --------------------------------------------------------------------------- CSV text


def quote_cell(cell: str) -> str:
    """One CSV cell as csv.writer (QUOTE_MINIMAL, ``\\r\\n`` lines) writes it."""
    if '"' in cell or "," in cell or "\n" in cell or "\r" in cell:
        return '"' + cell.replace('"', '""') + '"'
    return cell


def quote_cells(cells: list[str] | tuple[str, ...]) -> list[str] | tuple[str, ...]:
    """The cells quoted where they must be (most rows need no quoting: one join tells)."""
    joined = ",".join(cells)
    if '"' in joined or "\n" in joined or "\r" in joined or joined.count(",") != len(cells) - 1:
        return [quote_cell(c) for c in cells]
    if not joined and len(cells) == 1:
        return ['""']  # csv.writer's one empty cell, so the line is not a blank line
    return cells


def _list_cell(ev: TrackingEvent, attr: str) -> str:
    return quote_cell(join_list(getattr(ev, attr)))


#: MessageInfo value -> _info_parts(value). Bounded: auth codes repeat across events, and
#: so does a latency string across the events of one message that a server logs
#: together (a DELIVER for each recipient); other values pass through.
_info_parts_cache: dict[str, tuple[Any, ...]] = {}


def _info_parts(message_info: str) -> tuple[Any, ...]:
    """What the CSV cells take from one MessageInfo value alone: MessageInfoKind,
    AuthCode, AuthMethod, AuthCategory, AuthDomain, OriginalArrivalTime, LatencySeconds
    and LatencyServer as cells, the arrival time, and MessageLatencyType if the event
    has a MessageLatency."""
    (kind, code, method, category, domain, arrival_text, seconds, server, arrival,
     local) = summarize_message_info(message_info)
    # Of these only the domain and server come from free text (the others are numbers,
    # times or names).
    parts = (kind, code, method, category, quote_cell(domain) if domain else "", arrival_text,
             seconds, quote_cell(server) if server else "", arrival, latency_type(local))
    if len(_info_parts_cache) >= 4096:
        _info_parts_cache.clear()
    _info_parts_cache[message_info] = parts
    return parts


#: MessageLatency text by value (bounded). Latencies are whole milliseconds, mostly a few
#: seconds: the same values come back again and again.
_latency_texts: dict[timedelta, str] = {}
_NO_TIME = timedelta(0)


def _latency_text(delta: timedelta) -> str:
    """format_timespan(max(delta, 0)), remembered."""
    text = _latency_texts[delta] = format_timespan(delta if delta.days >= 0 else _NO_TIME)
    if len(_latency_texts) > 4096:
        _latency_texts.clear()
    return text


@lru_cache(maxsize=256)  # NOTIFYMAPI and SUBMIT of one message share their context
def _submission_cells(source_context: str) -> tuple[str, str]:
    """MessageClass and ClientType as cells."""
    # This cache is the one that counts: skip submission_values' own (same key).
    message_class, client_type = submission_values.__wrapped__(source_context)
    return quote_cell(message_class), quote_cell(client_type)


Formatter = Callable[[TrackingEvent, dict[str, Any], list[str], list[str]], tuple[str, ...]]
_formatters: dict[Any, Formatter] = {}


def _compile_formatter(columns: tuple[str, ...], plain_origin: bool = False) -> Formatter:
    """The CSV cells of an event from a log line with these columns, in COLUMNS order.

    Generated source, like the reader's builder: a cell of the line is copied when its
    text as written is what formatting the field would write (text and EventData always;
    the timestamp in the log's own form; a list without a single quote, which
    join_list(split_list(text)) gives back unchanged); everything else is formatted from
    the event, as :func:`event_cells` does.
    """
    index: dict[str, int] = {}
    for i, column in enumerate(columns):
        index.setdefault(column, i)
    known = {f.column for f in FIELDS if f.column}
    extra = [c for c in columns if c not in known] or len(set(columns)) != len(columns)
    prelude: list[str] = []
    exprs: list[str] = []

    def cell(f: Any) -> str:
        i = index.get(f.column) if f.column else None
        if i is None:
            return "''"  # the column is not in this file: the field has its default
        if f.kind == "str" or f.kind == "data":
            return f"c[{i}]"
        if f.kind == "time":
            # The reader parsed this cell, so it is in the log's form (what _fmt_ts
            # writes) when the separators are in place: the parser took digits between.
            prelude.append(f"    t = c[{i}]\n    if len(t) != 24 or t[23] != 'Z' or t[4:20:3] != '--T::.':\n"
                           "        t = _fmt_ts(d['timestamp'])\n")
            return "t"
        if f.kind == "list":
            name = f"l{i}"
            prelude.append(f"    {name} = c[{i}]\n    if \"'\" in {name}:\n"
                           f"        {name} = _list(ev, {f.attr!r})\n")
            return name
        return f"('' if (n{i} := d[{f.attr!r}]) is None else str(n{i}))"  # int

    def value(column: str) -> str:  # a text field's value, from the row (it may not be stored yet)
        return f"r[{index[column]}]" if column in index else "''"

    # MessageLatency, MessageLatencyType and the annotation columns: what _latency_cells
    # and annotation_values give, from one summary of MessageInfo (_info_parts), inline
    # (a call and a 12-tuple less a row).
    prelude.append(
        f"    mi = {value('message-info')}\n"
        "    p = _parts.get(mi) or _info_parts(mi)\n"
        f"    e = {value('event-id')}\n"
        # (has_cmdlet_latency and cmdlet_latency, inline: on every row of a CSV search.)
        f"    if e in _LATENCY_EVENTS or (e == 'RESUBMIT' and {value('source')} == 'STOREDRIVER'):\n"
        "        lt = p[9]\n"
        "        a = p[8]\n"
        "        if a is None:\n"
        "            lat = ''\n"
        "        else:\n"
        "            delta = d['timestamp'] - a\n"
        "            lat = _latency_texts.get(delta) or _latency_text(delta)\n"
        "    else:\n"
        "        lat, lt = '', 'None'\n"
        "    at = p[5]\n"
        "    if at and len(e) == 5 and e.upper() == 'DEFER':\n"
        "        at = ''  # a retry time, not an arrival\n"
        f"    s = {value('source-context')}\n"
        "    if 'MessageClass:' in s or 'ClientType:' in s:\n"
        "        mc, ct = _submission_cells(s)\n"
        "    else:\n"
        "        mc = ct = ''\n")
    for f in _CMDLET_FIELDS:
        exprs.append(cell(f))
        if f.prop == "MessageInfo":
            exprs += ["lat", "lt"]
    exprs += ["p[0]", "p[1]", "p[2]", "p[3]", "p[4]", "at", "p[6]", "p[7]", "mc", "ct"]
    exprs += [cell(f) for f in _FILE_FIELDS]
    exprs.append("_q(_extra(d['extra']))" if extra else "''")
    prelude.append("    o = d['origin']\n" if plain_origin else
                   "    o = d['origin']\n"
                   "    if '\"' in o or ',' in o or '\\n' in o or '\\r' in o:\n"
                   "        o = _q(o)\n")
    exprs.append("o")
    source = ("def cells(ev, d, r, c):\n" + "".join(prelude)
              + "    return (" + ", ".join(exprs) + ")\n")
    namespace: dict[str, Any] = {
        "_fmt_ts": format_log_timestamp, "_list": _list_cell,
        "_q": quote_cell, "_parts": _info_parts_cache, "_info_parts": _info_parts,
        "_LATENCY_EVENTS": LATENCY_EVENTS, "_latency_texts": _latency_texts,
        "_latency_text": _latency_text, "_submission_cells": _submission_cells,
        "_extra": _extra_text,
    }
    exec(compile(source, f"<msgtrack csv cells, {len(columns)} columns>", "exec"), namespace)
    return namespace["cells"]  # type: ignore[no-any-return]


def _formatter(layout: RowLayout) -> Formatter:
    fmt = _formatters.get(layout)
    if fmt is None:
        if len(_formatters) >= 256:
            _formatters.clear()
        fmt = _formatters[layout] = _compile_formatter(layout.columns, layout.plain_origin)
    return fmt


def csv_cells(ev: TrackingEvent) -> list[str] | tuple[str, ...]:
    """One event as CSV cells in :data:`COLUMNS` order, each quoted as csv.writer would
    quote it; what :func:`event_cells` gives, ready to join with ``,``."""
    source = source_cells(ev)
    if source is None:
        return quote_cells(event_cells(ev))
    layout, row, raw = source
    return _formatter(layout)(ev, ev.__dict__, row, raw)


def csv_rows(events: Iterable[TrackingEvent]) -> Iterator[list[str] | tuple[str, ...]]:
    """:func:`csv_cells` of each event."""
    last_layout: Any = None
    for ev in events:
        # source_cells(), inlined: this loop runs once per row of every CSV search.
        d = ev.__dict__
        raw = d.get("_raw")
        if raw is None:
            yield quote_cells(event_cells(ev))
            continue
        layout = d["_layout"]
        if layout is not last_layout:  # a new file, or a new #Fields: line
            fmt, last_layout = _formatter(layout), layout
        yield fmt(ev, d, d["_row"], raw)


def per_recipient(ev: TrackingEvent) -> Iterator[TrackingEvent]:
    """One event per recipient, each with its own aligned status (recipient-status is positional)."""
    if len(ev.recipients) <= 1:
        yield ev
        return
    statuses = ev.recipient_status
    for i, recipient in enumerate(ev.recipients):
        status = (statuses[i],) if i < len(statuses) else ()
        yield replace(ev, recipients=(recipient,), recipient_status=status)
