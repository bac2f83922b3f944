"""Events -> flat rows with the cmdlet's column names plus the annotation columns.

Output code never knows where an event came from; it only sees TrackingEvents.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from msgtrack.decode import ANNOTATION_COLUMNS, format_log_timestamp, join_list
from msgtrack.events import FIELDS, TrackingEvent

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


def format_timespan(value: timedelta | None) -> str:
    """.NET TimeSpan text (``[d.]hh:mm:ss.fffffff``), as the cmdlet's MessageLatency prints."""
    if value is None:
        return ""
    total_us = value.days * 86_400_000_000 + value.seconds * 1_000_000 + value.microseconds
    days, rem = divmod(total_us, 86_400_000_000)
    hours, rem = divmod(rem, 3_600_000_000)
    minutes, rem = divmod(rem, 60_000_000)
    seconds, micro = divmod(rem, 1_000_000)
    text = f"{hours:02d}:{minutes:02d}:{seconds:02d}.{micro:06d}0"
    return f"{days}.{text}" if days else text


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
            record["MessageLatency"] = format_timespan(ev.message_latency) or None
            record["MessageLatencyType"] = ev.message_latency_type
    record.update(ev.annotations())
    for f in _FILE_FIELDS:
        record[f.prop] = getattr(ev, f.attr)
    record["ExtraFields"] = dict(ev.extra)
    record["Origin"] = ev.origin
    return record


def _data_text(data: Any) -> str:
    return join_list(f"{k}={_json_value(v)}" for k, v in data.items())


def event_cells(ev: TrackingEvent) -> list[str]:
    """One event as CSV cells in :data:`COLUMNS` order (lists joined with ``;``)."""
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
            append(_data_text(value))
        if f.prop == "MessageInfo":
            append(format_timespan(ev.message_latency))
            append(ev.message_latency_type)
    cells.extend(ev.annotations().values())
    for f in _FILE_FIELDS:
        cells.append(getattr(ev, f.attr))
    cells.append(join_list(f"{k}={v}" for k, v in ev.extra.items()))
    cells.append(ev.origin)
    return cells


def per_recipient(ev: TrackingEvent) -> Iterator[TrackingEvent]:
    """One event per recipient, each with its own aligned status (recipient-status is positional)."""
    if len(ev.recipients) <= 1:
        yield ev
        return
    from dataclasses import replace

    statuses = ev.recipient_status
    for i, recipient in enumerate(ev.recipients):
        status = (statuses[i],) if i < len(statuses) else ()
        yield replace(ev, recipients=(recipient,), recipient_status=status)
