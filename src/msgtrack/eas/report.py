"""Report rows -> the project's sinks (table, CSV, JSON Lines).

CSV and JSON Lines carry every column. The table, which people read in a terminal,
shows the columns that decide a row; the evidence stays in CSV/JSONL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from msgtrack.eas.devices import DEVICE_COLUMNS
from msgtrack.eas.replies import CANDIDATE_COLUMNS
from msgtrack.sinks import SinkResult, write_rows

DEVICE_TABLE_COLUMNS: tuple[str, ...] = (
    "Flag", "User", "DeviceId", "UserAgent", "iOSVersion", "ProtocolVersion", "SendMail",
    "SmartReply", "SmartForward", "SmartRatio", "Errors", "LastSeen",
)
CANDIDATE_TABLE_COLUMNS: tuple[str, ...] = (
    "Verdict", "Score", "Match", "RequestTime", "User", "Command", "iOSVersion",
    "DeltaSeconds", "MessageClass", "InternalRecipients", "ExternalRecipients", "IisLine",
)

_TABLE_FOR = {DEVICE_COLUMNS: DEVICE_TABLE_COLUMNS, CANDIDATE_COLUMNS: CANDIDATE_TABLE_COLUMNS}


def render(rows: Iterable[dict[str, Any]], fmt: str, out: TextIO, *, columns: Sequence[str],
           limit: int = 100, safe_csv: bool = True) -> SinkResult:
    """Write report rows; a known report's table view shows its short column list."""
    if fmt == "table":
        columns = _TABLE_FOR.get(tuple(columns), columns)
    return write_rows(rows, fmt, out, safe_csv=safe_csv, limit=limit, columns=columns)
