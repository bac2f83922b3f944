"""The fast paths give what the general paths give.

The offline reader splits most lines itself instead of handing them to csv, events read
from a log line convert their lists and EventData on first access and carry the line
along, and the CSV sink copies cells from that line. Each shortcut is checked here
against the general path it stands in for.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import pickle
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msgtrack.events import CustomData, TrackingEvent, custom_data_text, source_cells
from msgtrack.report import RunReport
from msgtrack.sinks import COLUMNS, SinkOptions, neutralise, write, write_rows
from msgtrack.sinks.rows import csv_cells, event_cells, format_timespan, quote_cell, quote_cells
from msgtrack.sources.logfile import read_logs, split_quoted

UTC = timezone.utc
F2016 = (
    "date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,connector-id,"
    "source,event-id,internal-message-id,message-id,network-message-id,recipient-address,"
    "recipient-status,total-bytes,recipient-count,related-recipient-address,reference,"
    "message-subject,sender-address,return-path,message-info,directionality,tenant-id,"
    "original-client-ip,original-server-ip,custom-data,transport-traffic-type,log-id,schema-version"
).split(",")
HEADER = (
    "#Software: Microsoft Exchange Server\r\n#Version: 15.01.2375.007\r\n"
    "#Log-type: Message Tracking Log\r\n#Date: 2026-11-27T08:00:00.000Z\r\n"
    f"#Fields: {','.join(F2016)}\r\n"
)


def csv_line(**values: str) -> str:
    cells = {k.replace("_", "-"): v for k, v in values.items()}
    cells.setdefault("date-time", "2026-11-27T08:00:01.123Z")
    cells.setdefault("event-id", "RECEIVE")
    out = []
    for col in F2016:
        v = cells.get(col, "")
        if "," in v or '"' in v:
            v = '"' + v.replace('"', '""') + '"'
        out.append(v)
    return ",".join(out) + "\r\n"


def read_text(tmp_path: Path, text: str) -> list[TrackingEvent]:
    path = tmp_path / "MSGTRK2026112708-1.LOG"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    report = RunReport()
    events = list(read_logs([path], report))
    assert report.complete, report.problems
    return events


# --------------------------------------------------------------------------- line splitting


def csv_row(body: str) -> list[str] | None:
    try:
        return next(csv.reader([body + "\r\n"], strict=True))
    except csv.Error:
        return None


@settings(max_examples=2000)
@given(st.text(alphabet='ab,"; \'=\x00', max_size=30))
def test_lines_split_as_csv_reads_them(body: str) -> None:
    # The reader's own splitting, for the lines it does not hand to csv (blank ones are
    # counted, lines with a CR go to csv).
    if not body:
        return
    if '"' not in body:
        assert body.split(",") == csv_row(body)
        return
    split = split_quoted(body)
    if split is None:
        return  # csv reads it
    values, cells = split
    assert values == csv_row(body)
    assert cells == [quote_cell(v) for v in values]  # quoted as csv.writer quotes them


@pytest.mark.parametrize("body, values", [
    ('"a,b",c', ["a,b", "c"]),
    ('a,"b ""x"", y",', ["a", 'b "x", y', ""]),
    ('"",""""', ["", '"']),
    (',"x"', ["", "x"]),
])
def test_split_quoted_examples(body: str, values: list[str]) -> None:
    got = split_quoted(body)
    assert got is not None and got[0] == values and got[1] == [quote_cell(v) for v in values]


@pytest.mark.parametrize("body", ['a"b,"c"', '"a"b', '"a', 'a, "b"'])
def test_split_quoted_declines_what_is_not_plain_quoting(body: str) -> None:
    assert split_quoted(body) is None


def test_a_directive_as_wide_as_the_rows_is_a_directive(tmp_path: Path) -> None:
    # Used to be read as a data line and reported as a bad timestamp ('#Fields: date-time').
    text = HEADER + csv_line() + f"#Fields: {','.join(F2016)}\r\n" + csv_line(event_id="SEND")
    assert [ev.event_id for ev in read_text(tmp_path, text)] == ["RECEIVE", "SEND"]


# --------------------------------------------------------------------------- events from a line

LINE = dict(
    source_context="MDB:1, Mailbox:2, MessageClass:IPM.Note, ClientType:OWA",
    recipient_address="a@contoso.com;'o''brien@contoso.com';'x;y@contoso.com'",
    recipient_status="250 OK;550 no", reference="<r1>", total_bytes="1024",
    message_subject='He said "hi", then left', message_info="04I: ",
    custom_data="S:A=x;I32:B=2;Dt:C=2026-11-27T08:00:00.500Z;Dbl:E=2.5",
)


def twin(ev: TrackingEvent) -> TrackingEvent:
    """The same event built through __init__ (as a remote source builds it)."""
    return TrackingEvent(**{f.name: getattr(ev, f.name) for f in dataclasses.fields(ev)})


def test_a_line_event_equals_its_constructor_twin(tmp_path: Path) -> None:
    (ev,) = read_text(tmp_path, HEADER + csv_line(**LINE))
    assert not {"recipients", "event_data", "sender"} & vars(ev).keys()  # not stored yet
    assert ev.sender == "" and "message_subject" in vars(ev)  # one text field stores all
    assert ev.recipients == ("a@contoso.com", "o'brien@contoso.com", "x;y@contoso.com")
    assert ev.event_data == {"A": "x", "B": 2, "C": datetime(2026, 11, 27, 8, 0, 0, 500000, tzinfo=UTC),
                             "E": 2.5}
    assert isinstance(ev.event_data, dict)
    assert ev == twin(ev) and repr(ev) == repr(twin(ev))
    layout, values, cells = source_cells(ev)  # type: ignore[misc]
    assert layout.columns == tuple(F2016)
    assert cells[18] == '"He said ""hi"", then left"'  # as written
    assert values[18] == 'He said "hi", then left'
    assert "sender" not in vars(ev) or "client_ip" in vars(ev)  # text fields: all or none


def test_replace_pickle_and_copy_keep_fields_and_drop_the_line(tmp_path: Path) -> None:
    (ev,) = read_text(tmp_path, HEADER + csv_line(**LINE))
    moved = dataclasses.replace(ev, origin="elsewhere")
    split = dataclasses.replace(ev, recipients=("a@contoso.com",))
    assert source_cells(moved) is None and source_cells(split) is None
    assert moved == ev and split.recipients == ("a@contoso.com",)
    for clone in (pickle.loads(pickle.dumps(ev)), copy.copy(ev), copy.deepcopy(ev)):
        assert clone == ev and clone.origin == ev.origin
        assert source_cells(clone) is None
        assert not any(k.startswith("_") for k in vars(clone))


def test_event_data_remembers_the_log_text_until_changed(tmp_path: Path) -> None:
    (ev,) = read_text(tmp_path, HEADER + csv_line(**LINE))
    assert custom_data_text(ev.event_data) == LINE["custom_data"]
    split = dataclasses.replace(ev, recipients=("a@contoso.com",))
    assert custom_data_text(split.event_data) == LINE["custom_data"]
    clone = pickle.loads(pickle.dumps(ev))
    assert custom_data_text(clone.event_data) == LINE["custom_data"]
    data = CustomData({"A": "x"}, "S:A=x")
    data["B"] = 2
    assert custom_data_text(data) == "S:A=x;I32:B=2"
    assert custom_data_text({"A": "x", "N": 3}) == "S:A=x;I32:N=3"


def test_events_of_one_text_do_not_share_event_data(tmp_path: Path) -> None:
    a, b = read_text(tmp_path, HEADER + csv_line(**LINE) + csv_line(**LINE))
    assert a.event_data == b.event_data and a.event_data is not b.event_data


# --------------------------------------------------------------------------- CSV sink


def generic_cells(ev: TrackingEvent) -> list[str]:
    """The general path's cells for the same event (no line behind it)."""
    return list(quote_cells(event_cells(twin(ev))))


def test_csv_cells_from_the_line_equal_the_general_path(tmp_path: Path) -> None:
    lines = [
        csv_line(**LINE),
        csv_line(**{**LINE, "event_id": "DELIVER", "source": "STOREDRIVER",
                    "message_info": "2026-11-27T08:00:00.100Z;SRV=EX01.contoso.com:TOTAL-HUB=0.5|SMR=1"}),
        csv_line(event_id="DEFER", message_info="2026-11-27T09:00:00.000Z", reference="a;'b'"),
        csv_line(date_time="2026-11-27T08:00:01Z", total_bytes="007", recipient_count="+3",
                 message_subject="=1+1", sender="-x", client_hostname='"q"'),
        csv_line(message_info="02P:fabrikam,com: ", source_context="MessageClass:IPM,Note, ClientType:\"x\""),
        csv_line(event_id="SUBMIT", message_info="LSRV=a,b:TOTAL-SUB=1.25", recipient_address="a@b"),
        # MessageLatency of an arrival after the event (none: 00:00:00) and days before it.
        csv_line(**{**LINE, "event_id": "SEND", "message_info":
                    "2026-11-27T09:00:00.000Z;SRV=EX01.contoso.com:TOTAL-HUB=0.5"}),
        csv_line(**{**LINE, "event_id": "SEND", "message_info":
                    "2026-11-24T07:00:00.250Z;SRV=EX01.contoso.com:TOTAL-HUB=0.5"}),
        # Timestamps the reader takes that are not in the log's own form, 24 long or not.
        csv_line(date_time="2026-11-27 08:00:01.000Z"),
        csv_line(date_time="2026-11-27T08:00:01.5000Z"),
        csv_line(date_time="2026-11-27T09:00:01.000+01:00"),
    ]
    for ev in read_text(tmp_path, HEADER + "".join(lines)):
        assert source_cells(ev) is not None
        assert list(csv_cells(ev)) == generic_cells(ev), ev.origin


@pytest.mark.parametrize("name", ["plain", 'with,comma', 'with"quote', "with\nnewline", "with\rcr"])
def test_the_origin_cell_is_quoted_only_for_names_that_need_it(tmp_path: Path, name: str) -> None:
    # The check is made once per file (the layout's plain_origin), not once per row.
    folder = tmp_path / name
    folder.mkdir()
    path = folder / "MSGTRK2026112708-1.LOG"
    path.write_bytes((HEADER + csv_line(**LINE) + csv_line(message_subject="a,b")).encode())
    report = RunReport()
    events = list(read_logs([path], report))
    assert report.complete and len(events) == 2
    for ev in events:
        layout = source_cells(ev)[0]  # type: ignore[index]
        assert layout.plain_origin is (name == "plain")
        assert list(csv_cells(ev)) == generic_cells(ev)
    out = io.StringIO()
    write(events, "csv", out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert [r["Origin"] for r in rows] == [f"{path}:6", f"{path}:7"]  # after the 5 header lines


def test_csv_output_is_what_csv_writer_writes(tmp_path: Path) -> None:
    text = HEADER + csv_line(**LINE) + csv_line(message_subject="@SUM(A1), or not", sender="+1")
    events = read_text(tmp_path, text)
    for safe in (True, False):
        out = io.StringIO()
        write(events, "csv", out, SinkOptions(safe_csv=safe))
        expected = io.StringIO()
        writer = csv.writer(expected, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for ev in events:
            cells = event_cells(twin(ev))
            writer.writerow([neutralise(c) for c in cells] if safe else cells)
        assert out.getvalue() == expected.getvalue()
    row = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["EventData"] == LINE["custom_data"]  # the log's own typed text


@settings(max_examples=500)
@given(st.lists(st.text(alphabet='a,"=+-@\t\r\n \'', max_size=6), min_size=1, max_size=5))
def test_quoted_cells_and_the_guard_match_csv_writer(cells: list[str]) -> None:
    for safe in (True, False):
        out = io.StringIO()
        names = [f"c{i}" for i in range(len(cells))]
        write_rows([dict(zip(names, cells, strict=True))], "csv", out, safe_csv=safe, columns=names)
        expected = io.StringIO()
        writer = csv.writer(expected, lineterminator="\r\n")
        writer.writerow(names)
        writer.writerow([neutralise(c) for c in cells] if safe else cells)
        assert out.getvalue() == expected.getvalue()


def test_csv_cells_for_other_column_lists(tmp_path: Path) -> None:
    # Unknown and repeated columns (ExtraFields), missing ones (defaults), another order.
    cols = ["event-id", "date-time", "x-future", "source", "source", "message-info",
            "recipient-address", "custom-data"]
    text = HEADER.replace(",".join(F2016), ",".join(cols)) + (
        'DELIVER,2026-11-27T08:00:01.123Z,"a,b",STOREDRIVER,DUP,'
        "2026-11-27T08:00:00.000Z;LSRV=EX01:TOTAL=1.5,'x;y'@c;d@e,S:K=v\r\n"
        "RECEIVE,2026-11-27T08:00:02.000Z,=2,SMTP,,04I: ,,\r\n"
    )
    events = read_text(tmp_path, text)
    assert [ev.extra for ev in events] == [{"x-future": "a,b", "source": "DUP"},
                                           {"x-future": "=2", "source": ""}]
    for ev in events:
        assert list(csv_cells(ev)) == generic_cells(ev), ev.origin
    out = io.StringIO()
    write(events, "csv", out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows[1]["ExtraFields"] == "x-future==2;source="
    assert rows[0]["MessageLatency"] == "00:00:01.1230000"
    assert rows[0]["Recipients"] == "'x;y@c';d@e"  # as join_list writes the list


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)))
def test_timespan_shortcut_is_the_general_format(value: timedelta) -> None:
    total_us = value // timedelta(microseconds=1)
    days, rem = divmod(total_us, 86_400_000_000)
    hours, rem = divmod(rem, 3_600_000_000)
    minutes, rem = divmod(rem, 60_000_000)
    seconds, micro = divmod(rem, 1_000_000)
    text = f"{hours:02d}:{minutes:02d}:{seconds:02d}.{micro:06d}0"
    assert format_timespan(value) == (f"{days}.{text}" if days else text)
