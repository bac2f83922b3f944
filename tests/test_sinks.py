"""Sinks: formula-safe CSV, JSONL shapes, per-recipient alignment, the table's cut notice."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from msgtrack.decode import ANNOTATION_COLUMNS
from msgtrack.events import TrackingEvent
from msgtrack.sinks import COLUMNS, SinkOptions, neutralise, write, write_rows
from msgtrack.sinks.rows import format_timespan

T0 = datetime(2026, 11, 27, 8, 0, 1, 123000, tzinfo=timezone.utc)


def make(**kw: object) -> TrackingEvent:
    base: dict[str, object] = dict(
        timestamp=T0, event_id="RECEIVE", source="SMTP", sender="a@contoso.com",
        recipients=("b@contoso.com", "c;d@contoso.com"), recipient_status=("250 OK", "550 no"),
        message_subject="Hello, \"world\"", message_info="07I: ", server_hostname="EX01",
        event_data={"E2ELatency": 0.701, "Count": 3, "When": T0}, origin="x.LOG:9",
    )
    base.update(kw)
    return TrackingEvent(**base)  # type: ignore[arg-type]


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_header_is_cmdlet_names_then_annotations() -> None:
    out = io.StringIO()
    write([make()], "csv", out)
    header = next(csv.reader(io.StringIO(out.getvalue())))
    assert header[:4] == ["Timestamp", "ClientIp", "ClientHostname", "ServerIp"]
    assert header.index("MessageLatency") == header.index("MessageInfo") + 1
    start = header.index("MessageInfoKind")
    assert tuple(header[start:start + len(ANNOTATION_COLUMNS)]) == ANNOTATION_COLUMNS
    assert tuple(header) == COLUMNS


def test_csv_values_round_trip_through_a_csv_reader() -> None:
    out = io.StringIO()
    write([make()], "csv", out)
    row = csv_rows(out.getvalue())[0]
    assert row["Timestamp"] == "2026-11-27T08:00:01.123Z"
    assert row["MessageSubject"] == 'Hello, "world"'
    assert row["Recipients"] == "b@contoso.com;'c;d@contoso.com'"
    assert row["AuthMethod"] == "Login" and row["AuthCode"] == "07"
    assert row["AuthCategory"] == "Internal"
    assert row["Origin"] == "x.LOG:9"


def test_csv_event_data_is_the_logs_typed_text() -> None:
    # Lossless, and what admins know from the log's custom-data column; JSONL keeps an object.
    out = io.StringIO()
    write([make()], "csv", out)
    assert csv_rows(out.getvalue())[0]["EventData"] == (
        "Dbl:E2ELatency=0.701;I32:Count=3;Dt:When=2026-11-27T08:00:01.123Z")


@pytest.mark.parametrize("evil", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)",
                                  "\tcmd", "\rcmd"])
def test_formula_cells_are_neutralised_by_default(evil: str) -> None:
    out = io.StringIO()
    write([make(message_subject=evil, sender=evil)], "csv", out)
    row = csv_rows(out.getvalue())[0]
    assert row["MessageSubject"] == "'" + evil
    assert row["Sender"] == "'" + evil


def test_formula_guard_can_be_turned_off() -> None:
    out = io.StringIO()
    write([make(message_subject="=1+1")], "csv", out, SinkOptions(safe_csv=False))
    assert csv_rows(out.getvalue())[0]["MessageSubject"] == "=1+1"


@given(st.text())
def test_neutralised_cells_never_start_a_formula(text: str) -> None:
    cell = neutralise(text)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert cell.endswith(text)


def test_jsonl_keeps_lists_and_event_data_and_writes_utc_z() -> None:
    out = io.StringIO()
    write([make()], "jsonl", out)
    record = json.loads(out.getvalue())
    assert record["Recipients"] == ["b@contoso.com", "c;d@contoso.com"]
    assert record["EventData"] == {"E2ELatency": 0.701, "Count": 3,
                                   "When": "2026-11-27T08:00:01.123Z"}
    assert record["Timestamp"].endswith("Z")
    assert record["AuthMethod"] == "Login"
    assert record["TotalBytes"] is None


def test_per_recipient_aligns_each_status() -> None:
    out = io.StringIO()
    result = write([make()], "csv", out, SinkOptions(per_recipient=True))
    rows = csv_rows(out.getvalue())
    assert result.rows == 2
    assert [(r["Recipients"], r["RecipientStatus"]) for r in rows] == [
        ("b@contoso.com", "250 OK"), ("'c;d@contoso.com'", "550 no")]


def test_per_recipient_missing_status_is_empty_not_shifted() -> None:
    out = io.StringIO()
    write([make(recipient_status=("250 OK",))], "jsonl", out, SinkOptions(per_recipient=True))
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["RecipientStatus"] for r in records] == [["250 OK"], []]


def test_table_caps_rows_and_reports_the_cut() -> None:
    out = io.StringIO()
    result = write([make() for _ in range(7)], "table", out, SinkOptions(limit=3))
    assert (result.rows, result.total, result.cut) == (3, 7, 4)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 + 3  # header, rule, rows
    assert "Login (07) · Internal" in out.getvalue()


def test_latency_columns_follow_the_cmdlet() -> None:
    info = "2026-11-27T08:00:00.123Z;SRV=EX01.contoso.com:TOTAL-HUB=1.000|SMR=0.5"
    out = io.StringIO()
    write([make(event_id="DELIVER", source="STOREDRIVER", message_info=info)], "jsonl", out)
    record = json.loads(out.getvalue())
    assert record["MessageLatency"] == "00:00:01.0000000"
    assert record["MessageLatencyType"] == "EndToEnd"
    assert record["LatencySeconds"] == "1.000"
    assert record["OriginalArrivalTime"] == "2026-11-27T08:00:00.123Z"


def test_format_timespan_matches_dotnet() -> None:
    from datetime import timedelta

    assert format_timespan(timedelta(seconds=3.813)) == "00:00:03.8130000"
    assert format_timespan(timedelta(days=1, hours=2)) == "1.02:00:00.0000000"
    assert format_timespan(None) == ""


def test_write_rows_generic_reports() -> None:
    rows = [{"Rule": "x", "When": T0, "Ids": ["1", "2"], "Why": "=bad"}]
    out = io.StringIO()
    write_rows(rows, "csv", out)
    row = csv_rows(out.getvalue())[0]
    assert row == {"Rule": "x", "When": "2026-11-27T08:00:01.123Z", "Ids": "1;2", "Why": "'=bad"}
    out = io.StringIO()
    write_rows(rows, "jsonl", out)
    assert json.loads(out.getvalue())["Ids"] == ["1", "2"]


def test_unknown_format_is_a_usage_error() -> None:
    from msgtrack.errors import UsageError

    with pytest.raises(UsageError):
        write([make()], "xml", io.StringIO())
