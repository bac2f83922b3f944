"""Offline reader: golden outputs for every sample log, schemas, bad input, names, streaming.

Golden files live in tests/data/golden/logfile/ (one JSON per sample .LOG). After a
deliberate change, regenerate them with ``MSGTRACK_REGEN_GOLDEN=1 pytest tests/test_logfile.py``
and review the diff; CI never regenerates.
"""

from __future__ import annotations

import json
import os
import tracemalloc
from collections.abc import Iterator
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from msgtrack.events import TrackingEvent
from msgtrack.report import RunReport
from msgtrack.sources import logfile
from msgtrack.sources.logfile import expand_paths, is_log_name, read_log_file, read_logs

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
GOLDEN = REPO / "tests" / "data" / "golden" / "logfile"
REGEN = os.environ.get("MSGTRACK_REGEN_GOLDEN") == "1" and not os.environ.get("CI")

UTC = timezone.utc
BOM = b"\xef\xbb\xbf"
F2007 = (
    "date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,connector-id,"
    "source,event-id,internal-message-id,message-id,recipient-address,recipient-status,"
    "total-bytes,recipient-count,related-recipient-address,reference,message-subject,"
    "sender-address,return-path,message-info"
).split(",")
F2010 = F2007 + "directionality,tenant-id,original-client-ip,original-server-ip,custom-data".split(",")
F2013 = F2010[:11] + ["network-message-id"] + F2010[11:]
F2016 = F2013 + ["transport-traffic-type", "log-id", "schema-version"]
SCHEMAS = {21: F2007, 26: F2010, 27: F2013, 30: F2016}


# --------------------------------------------------------------------------- helpers


def header(columns: list[str], log_type: str = "Message Tracking Log") -> str:
    return (
        "#Software: Microsoft Exchange Server\r\n#Version: 15.01.2375.007\r\n"
        f"#Log-type: {log_type}\r\n#Date: 2026-11-27T08:00:00.000Z\r\n"
        f"#Fields: {','.join(columns)}\r\n"
    )


def line(columns: list[str], **values: str) -> str:
    """A CSV line for ``columns``; keyword names use '_' for '-'."""
    cells = {k.replace("_", "-"): v for k, v in values.items()}
    cells.setdefault("date-time", "2026-11-27T08:00:01.123Z")
    cells.setdefault("event-id", "RECEIVE")
    out = []
    for col in columns:
        v = cells.get(col, "")
        if "," in v or '"' in v:
            v = '"' + v.replace('"', '""') + '"'
        out.append(v)
    return ",".join(out) + "\r\n"


def write_log(path: Path, text: str | bytes, bom: bool = True) -> Path:
    data = text.encode("utf-8") if isinstance(text, str) else text
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((BOM if bom else b"") + data)
    return path


def read(paths: list[Any]) -> tuple[list[TrackingEvent], RunReport]:
    report = RunReport()
    return list(read_logs(paths, report)), report


def problems(report: RunReport) -> list[tuple[str, str, str]]:
    return [(p.kind, p.where, p.message) for p in report.problems]


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return "datetime:" + value.isoformat()
    if isinstance(value, tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def event_dict(ev: TrackingEvent) -> dict[str, Any]:
    """The event's fields that are set (line number first); defaults are left out."""
    out: dict[str, Any] = {"line": int(ev.origin.rsplit(":", 1)[1])}
    for f in fields(ev):
        value = getattr(ev, f.name)
        if f.name != "origin" and value not in ("", (), None, {}):
            out[f.name] = jsonable(value)
    return out


def golden_text(got: dict[str, Any]) -> str:
    """JSON with one event per line, so a golden diff shows which events changed."""
    dump = lambda v: json.dumps(v, ensure_ascii=False)  # noqa: E731
    events = ",\n".join("  " + dump(ev) for ev in got["events"])
    return (f'{{\n "counts": {dump(got["counts"])},\n "problems": {dump(got["problems"])},\n'
            f' "events": [\n{events}\n ]\n}}\n')


# --------------------------------------------------------------------------- golden files

SAMPLES = sorted(p.relative_to(EXAMPLES) for p in EXAMPLES.glob("*/**/*") if p.is_file()
                 and p.parts[len(EXAMPLES.parts)] in ("logs", "bad"))


@pytest.mark.parametrize("sample", SAMPLES, ids=str)
def test_sample_matches_golden(sample: Path) -> None:
    path = EXAMPLES / sample
    report = RunReport()
    events = [event_dict(ev) for ev in read_log_file(path, report)]
    rel = lambda where: where.replace(str(path), "FILE")  # noqa: E731
    got = {
        "events": events,
        "problems": [[p.kind, rel(p.where), p.message] for p in report.problems],
        "counts": dict(sorted(report.counts.items())),
    }
    golden = GOLDEN / sample.with_suffix(sample.suffix + ".json")
    if REGEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(golden_text(got), encoding="utf-8")
    assert golden.exists(), f"no golden file {golden}; run with MSGTRACK_REGEN_GOLDEN=1"
    assert got == json.loads(golden.read_text(encoding="utf-8"))


def test_examples_read_clean_in_sorted_order() -> None:
    events, report = read([EXAMPLES / "logs"])
    assert report.complete, problems(report)
    assert len(events) == report.counts["events"] == 150
    assert report.counts["files"] == 21
    assert report.counts["skipped-files"] == 0
    files = [ev.origin.rsplit(":", 1)[0] for ev in events]
    assert files == sorted(files)  # files in path order, each file's lines in order
    assert all(ev.timestamp.tzinfo is UTC for ev in events)


def test_examples_cover_every_auth_code_and_form() -> None:
    events, _ = read([EXAMPLES / "logs"])
    codes = {ev.info.auth.code for ev in events if ev.info.auth}
    assert codes >= {"00", "01", "02", "03", "04", "05", "06", "07", "08", "0A", "0B", "0C", "0D",
                     "10", "11", "12", "0E"}
    assert {ev.info.kind.value for ev in events} == {"Auth", "Timestamp", "Latency", "Empty", "Other"}
    partner = [ev.info.auth for ev in events if ev.info.auth and ev.info.auth.domain]
    assert [(a.method, a.category, a.domain) for a in partner] == [
        ("MutualTLS", "Partner", "fabrikam.com")
    ]
    classes = {ev.submission.get("ClientType") for ev in events if ev.event_id == "SUBMIT"}
    assert {"AirSync", "MOMT", "OWA", "WebServices"} <= classes


def test_two_character_line_break_escapes_are_kept_verbatim() -> None:
    events, _ = read([EXAMPLES / "logs" / "EX2016-02"])
    subjects = {ev.message_subject for ev in events if ev.sender == "nagios@contoso.com"}
    assert subjects == {"** PROBLEM Service Alert: EX2016-02/Queue length is CRITICAL **"
                        "\\r\\nInfo: 412 messages in Submission"}


def test_bad_examples_report_each_line_with_file_and_line() -> None:
    events, report = read([EXAMPLES / "bad"])
    log = str(EXAMPLES / "bad" / "EX2016-03" / "MSGTRK2026112711-1.LOG")
    iis = str(EXAMPLES / "bad" / "EX2016-03" / "MSGTRK2026112712-1.LOG")
    assert [ev.origin for ev in events] == [f"{log}:6", f"{log}:12", f"{log}:15"]
    assert problems(report) == [
        ("bad-line", f"{log}:7", "expected 30 fields, found 27"),
        ("bad-line", f"{log}:8", "bad timestamp in date-time: '27.11.2026 11:00:03'"),
        ("bad-line", f"{log}:9", "bad integer in total-bytes: '12 KB'"),
        ("bad-line", f"{log}:10", "broken quoting: odd number of '\"'"),
        ("bad-line", f"{log}:11", "broken quoting: ',' expected after '\"'"),
        ("bad-line", f"{log}:13", "invalid UTF-8 at byte 265 of the line"),
        ("bad-line", f"{log}:14", "expected 30 fields, found 31"),
        ("bad-file", iis, "not a message tracking log: #Fields: on line 4 has no date-time or event-id"),
    ]
    assert report.counts["partial-lines"] == 1
    assert report.counts["skipped-files"] == 1
    assert not report.complete


# --------------------------------------------------------------------------- schemas


@pytest.mark.parametrize("width", [21, 26, 27, 30])
def test_each_schema_maps_its_own_columns(tmp_path: Path, width: int) -> None:
    cols = SCHEMAS[width]
    text = header(cols) + line(
        cols, client_ip="10.0.0.1", event_id="DELIVER", message_id="<a@b>", network_message_id="nm-1",
        recipient_address="a@contoso.com;'o''brien@contoso.com';'x;y@contoso.com'",
        recipient_status="To;Cc;Bcc", total_bytes="1024", recipient_count="3",
        reference="<r1>;<r2>", message_subject='He said "hi", then left', message_info="04I: ",
        directionality="Originating",
        custom_data="S:A=x;I32:B=2;Dt:C=2026-11-27T08:00:00.500Z;F:D=1.5;Dbl:E=2",
        log_id="0c1d", schema_version="15.01.2375.007",
    )
    path = write_log(tmp_path / "MSGTRK2026112708-1.LOG", text)
    (ev,), report = read([path])
    assert report.complete
    assert ev.timestamp == datetime(2026, 11, 27, 8, 0, 1, 123000, tzinfo=UTC)
    assert (ev.client_ip, ev.event_id, ev.message_id) == ("10.0.0.1", "DELIVER", "<a@b>")
    assert ev.recipients == ("a@contoso.com", "o'brien@contoso.com", "x;y@contoso.com")
    assert ev.recipient_status == ("To", "Cc", "Bcc")
    assert (ev.total_bytes, ev.recipient_count) == (1024, 3)
    assert ev.reference == ("<r1>", "<r2>")
    assert ev.message_subject == 'He said "hi", then left'
    assert ev.info.auth is not None and ev.info.auth.method == "SecureMapiSubmit"
    assert ev.origin == f"{path}:6"
    assert ev.extra == {}
    assert ev.network_message_id == ("nm-1" if width >= 27 else "")
    if width >= 26:
        assert ev.directionality == "Originating"
        assert ev.event_data == {"A": "x", "B": 2, "C": datetime(2026, 11, 27, 8, 0, 0, 500000, tzinfo=UTC),
                                 "D": 1.5, "E": 2.0}
    else:
        assert ev.directionality == "" and ev.event_data == {}
    assert (ev.log_id, ev.schema_version) == (("0c1d", "15.01.2375.007") if width == 30 else ("", ""))


def test_empty_ints_are_none_and_empty_lists_are_empty_tuples(tmp_path: Path) -> None:
    path = write_log(tmp_path / "x.LOG", header(F2016) + line(F2016))
    (ev,), _ = read([path])
    assert (ev.total_bytes, ev.recipient_count) == (None, None)
    assert (ev.recipients, ev.recipient_status, ev.reference) == ((), (), ())
    assert ev.event_data == {} and ev.extra == {}


def test_unknown_and_repeated_columns_go_to_extra(tmp_path: Path) -> None:
    cols = ["date-time", "x-future", "event-id", "source", "source"]
    path = write_log(tmp_path / "x.LOG", header(cols) + "2026-11-27T08:00:01.000Z,42,SEND,SMTP,DUP\r\n")
    (ev,), report = read([path])
    assert report.complete
    assert (ev.event_id, ev.source) == ("SEND", "SMTP")
    assert ev.extra == {"x-future": "42", "source": "DUP"}


def test_a_later_fields_line_switches_the_schema(tmp_path: Path) -> None:
    text = (
        header(F2010) + line(F2010, event_id="RECEIVE", custom_data="S:K=v")
        + "#Fields: " + ",".join(F2016) + "\r\n"
        + line(F2016, event_id="SEND", network_message_id="nm", log_id="L")
        + line(F2010, event_id="DELIVER")  # old width after the switch: a bad line
    )
    path = write_log(tmp_path / "x.LOG", text)
    events, report = read([path])
    assert [(ev.event_id, ev.network_message_id, ev.log_id) for ev in events] == [
        ("RECEIVE", "", ""), ("SEND", "nm", "L")]
    assert events[0].event_data == {"K": "v"}
    assert problems(report) == [("bad-line", f"{path}:9", "expected 30 fields, found 26")]


def test_directives_in_the_middle_are_skipped(tmp_path: Path) -> None:
    text = header(F2016) + line(F2016) + "#Date: 2026-11-27T09:00:00.000Z\r\n" + line(F2016)
    events, report = read([write_log(tmp_path / "x.LOG", text)])
    assert len(events) == 2 and report.complete


def test_direct_build_equals_the_constructor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled builder fills the instance dict; it must give what __init__ gives."""
    assert logfile._DIRECT_FIELDS is not None, "TrackingEvent changed shape: builder fell back"
    text = header(F2016 + ["x-new"]) + line(
        F2016 + ["x-new"], recipient_address="a@b;c@d", total_bytes="7", custom_data="I32:N=1",
        message_info="2026-11-27T08:00:00.100Z;SRV=EX01.contoso.com:TOTAL-HUB=0.5", x_new="n")
    path = write_log(tmp_path / "x.LOG", text)
    (fast,), _ = read([path])
    monkeypatch.setattr(logfile, "_DIRECT_FIELDS", None)
    logfile.schema_for.cache_clear()
    try:
        (slow,), _ = read([path])
    finally:
        logfile.schema_for.cache_clear()
    assert fast == slow
    assert vars(fast).keys() >= {f.name for f in fields(TrackingEvent)}
    assert fast.info == slow.info and fast.info.latency is not None
    assert fast.event_data is not slow.event_data


def test_custom_data_dicts_are_not_shared(tmp_path: Path) -> None:
    text = header(F2010) + line(F2010, custom_data="S:A=1") + line(F2010, custom_data="S:A=1")
    (a, b), _ = read([write_log(tmp_path / "x.LOG", text)])
    assert a.event_data == b.event_data and a.event_data is not b.event_data


def test_a_huge_field_is_read(tmp_path: Path) -> None:
    rcpts = ";".join(f"user{i:05d}@contoso.com" for i in range(20000))  # ~440 KB: an EXPAND
    text = header(F2016) + line(F2016, event_id="EXPAND", recipient_address=rcpts)
    (ev,), report = read([write_log(tmp_path / "x.LOG", text)])
    assert report.complete and len(ev.recipients) == 20000


# --------------------------------------------------------------------------- encodings, line ends


@pytest.mark.parametrize("bom", [True, False])
@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_bom_and_line_ends(tmp_path: Path, bom: bool, newline: str) -> None:
    text = (header(F2016) + line(F2016, message_subject="Grüße, 😀")).replace("\r\n", newline)
    (ev,), report = read([write_log(tmp_path / "x.LOG", text, bom=bom)])
    assert report.complete
    assert ev.message_subject == "Grüße, 😀" and ev.schema_version == ""


def test_partial_last_line_is_counted_not_reported(tmp_path: Path) -> None:
    text = header(F2016) + line(F2016) + line(F2016, event_id="SEND")[:-2]
    events, report = read([write_log(tmp_path / "x.LOG", text)])
    assert [ev.event_id for ev in events] == ["RECEIVE"]
    assert report.complete
    assert report.counts["partial-lines"] == 1 and report.counts["lines"] == 7


def test_partial_last_line_cut_inside_a_utf8_character(tmp_path: Path) -> None:
    data = (header(F2016) + line(F2016)).encode() + line(F2016, message_subject="Grüße").encode()[:-6]
    events, report = read([write_log(tmp_path / "x.LOG", data)])
    assert len(events) == 1 and report.complete and report.counts["partial-lines"] == 1


def test_blank_lines_are_counted(tmp_path: Path) -> None:
    events, report = read([write_log(tmp_path / "x.LOG", header(F2016) + "\r\n" + line(F2016))])
    assert len(events) == 1 and report.complete and report.counts["blank-lines"] == 1


def test_quoted_value_running_into_later_lines_is_one_bad_range(tmp_path: Path) -> None:
    # Line 6 has an even number of quotes, yet its second opens a value that line 8 closes;
    # line 7 (odd) is swallowed with its reason, and line 10's own reason still holds.
    text = (header(F2010) + 'x"y,"open\r\n' + 'a",b\r\n' + 'q",r"\r\n'
            + line(F2010, event_id="SEND") + 'z"\r\n' + line(F2010, event_id="DELIVER"))
    path = write_log(tmp_path / "x.LOG", text)
    events, report = read([path])
    assert [ev.event_id for ev in events] == ["SEND", "DELIVER"]
    assert problems(report) == [
        ("bad-line", f"{path}:6", "broken quoting: a quoted value runs on (lines 6-8)"),
        ("bad-line", f"{path}:10", "broken quoting: odd number of '\"'"),
    ]


def test_odd_quotes_do_not_swallow_the_next_lines(tmp_path: Path) -> None:
    text = header(F2010) + line(F2010) + 'a,"b\r\n"c\r\n' + line(F2010, event_id="SEND")
    path = write_log(tmp_path / "x.LOG", text)
    events, report = read([path])
    assert [ev.event_id for ev in events] == ["RECEIVE", "SEND"]
    assert [p[:2] for p in problems(report)] == [("bad-line", f"{path}:7"), ("bad-line", f"{path}:8")]


def test_a_quoted_value_open_at_the_end_of_the_file(tmp_path: Path) -> None:
    path = write_log(tmp_path / "x.LOG", header(F2010) + line(F2010) + 'x"y,"open\r\n' + "more\r\n")
    events, report = read([path])
    assert len(events) == 1
    assert problems(report) == [
        ("bad-line", f"{path}:7", "broken quoting: unexpected end of data (lines 7-8)")]


def test_nul_bytes_are_a_bad_line_not_a_crash(tmp_path: Path) -> None:
    text = header(F2010) + line(F2010, message_subject="a\x00b") + line(F2010)
    events, report = read([write_log(tmp_path / "x.LOG", text)])
    assert len(events) + report.problem_counts["bad-line"] == 2


# --------------------------------------------------------------------------- not a tracking log


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a message tracking log: empty file"),
        (BOM, "not a message tracking log: empty file"),
        (b"PK\x03\x04" + bytes(range(256)) * 400, "not a message tracking log: no '#' header at the start"),
        (b"Copied from EX01 on Monday\r\n", "not a message tracking log: no '#' header at the start"),
        (header(F2016, log_type="SMTP Receive Protocol Log").encode() + line(F2016).encode(),
         "not a message tracking log: #Log-type: SMTP Receive Protocol Log"),
        (b"#Software: Microsoft Exchange Server\r\n2026-11-27T08:00:01.000Z,RECEIVE\r\n",
         "not a message tracking log: line 2 comes before any #Fields: header"),
        (b"#Software: Microsoft Exchange Server\r\n#Version: 15.01.2375.007\r\n",
         "not a message tracking log: no #Fields: header"),
        (b"#Fields: date-time,client-ip,source\r\n2026-11-27T08:00:01.000Z,1.2.3.4,SMTP\r\n",
         "not a message tracking log: #Fields: on line 1 has no event-id"),
    ],
    ids=["empty", "bom-only", "zip", "text", "other-log-type", "data-first", "no-fields", "fields-wrong"],
)
def test_not_a_tracking_log_is_reported(tmp_path: Path, content: bytes, message: str) -> None:
    path = write_log(tmp_path / "MSGTRK2026112708-1.LOG", content, bom=False)
    events, report = read([path])
    assert events == []
    assert problems(report) == [("bad-file", str(path), message)]
    assert report.counts["files"] == 1


def test_explicit_file_is_read_whatever_its_name(tmp_path: Path) -> None:
    path = write_log(tmp_path / "copy of tracking.txt", header(F2016) + line(F2016))
    events, report = read([path])
    assert len(events) == 1 and report.complete


def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "MSGTRK2026112708-1.LOG"
    path.mkdir()  # a directory where a file is expected: open() fails
    report = RunReport()
    assert list(read_log_file(path, report)) == []
    assert [p.kind for p in report.problems] == ["bad-file"]


# --------------------------------------------------------------------------- names, dirs, globs


@pytest.mark.parametrize("name", [
    "MSGTRK20261127-1.LOG", "MSGTRK2026112708-1.LOG", "MSGTRKM20121105-12.LOG",
    "MSGTRKMA2026112708-1.LOG", "MSGTRKMD2026112708-3.LOG", "MSGTRKMS2022091915-1.LOG",
    "msgtrk2026112708-1.log", "MsgTrkMs2026112708-1.Log",
])
def test_tracking_log_names(name: str) -> None:
    assert is_log_name(name)


@pytest.mark.parametrize("name", [
    "MSGTRK202611270-1.LOG", "MSGTRK2026112708.LOG", "MSGTRKX2026112708-1.LOG", "MSGTRK2026112708-1.LOG.bak",
    "MSGTRK2026112708-1.txt", "RECV2026112708-1.LOG", "u_ex261127.log", "MSGTRK2026112708-.LOG",
    "xMSGTRK2026112708-1.LOG", "MSGTRK20261127081-1.LOG",
])
def test_not_tracking_log_names(name: str) -> None:
    assert not is_log_name(name)


def make_tree(root: Path) -> None:
    ok = header(F2016) + line(F2016)
    write_log(root / "EX01" / "MSGTRK2026112708-1.LOG", ok)
    write_log(root / "EX01" / "MSGTRKMS2026112708-1.LOG", ok)
    write_log(root / "EX01" / "notes.txt", "hello")
    write_log(root / "EX02" / "deep" / "MSGTRKMD2026112709-2.log", ok)
    write_log(root / "EX02" / "RECV2026112708-1.LOG", ok)


def test_directories_are_walked_sorted_and_filtered(tmp_path: Path) -> None:
    make_tree(tmp_path)
    report = RunReport()
    got = [Path(p).relative_to(tmp_path).as_posix() for p in expand_paths([tmp_path], report)]
    assert got == ["EX01/MSGTRK2026112708-1.LOG", "EX01/MSGTRKMS2026112708-1.LOG",
                   "EX02/deep/MSGTRKMD2026112709-2.log"]
    assert report.counts["skipped-files"] == 2 and report.complete


def test_globs_expand_sorted_and_filter_names(tmp_path: Path) -> None:
    make_tree(tmp_path)
    report = RunReport()
    got = [Path(p).relative_to(tmp_path).as_posix()
           for p in expand_paths([str(tmp_path / "EX0*" / "*")], report)]
    # EX02/deep is a directory match: walked.
    assert got == ["EX01/MSGTRK2026112708-1.LOG", "EX01/MSGTRKMS2026112708-1.LOG",
                   "EX02/deep/MSGTRKMD2026112709-2.log"]
    assert report.counts["skipped-files"] == 2
    got = [Path(p).name for p in expand_paths([str(tmp_path / "**" / "MSGTRKMD*")], RunReport())]
    assert got == ["MSGTRKMD2026112709-2.log"]


def test_a_glob_of_other_names_warns(tmp_path: Path) -> None:
    make_tree(tmp_path)
    report = RunReport()
    pattern = str(tmp_path / "EX01" / "*.txt")
    assert list(expand_paths([pattern], report)) == []
    assert report.complete and report.counts["skipped-files"] == 1
    assert report.warnings == [f"{pattern}: matches no message tracking log names (MSGTRK*.LOG)"]


def test_an_unreadable_directory_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path)
    locked = tmp_path / "EX02"
    real_walk = os.walk

    def walk(top: str, onerror: Any = None) -> Iterator[tuple[str, list[str], list[str]]]:
        for dirpath, dirnames, filenames in real_walk(top, onerror=onerror):
            if Path(dirpath) == locked:  # as os.walk does when listing a directory fails
                onerror(PermissionError(13, "Permission denied", str(locked)))
                dirnames[:] = []
                continue
            yield dirpath, dirnames, filenames

    monkeypatch.setattr(logfile.os, "walk", walk)
    events, report = read([tmp_path])
    assert len(events) == 2
    assert problems(report) == [("bad-file", str(locked), "Permission denied")]


def test_inputs_keep_their_order_and_files_are_read_once(tmp_path: Path) -> None:
    make_tree(tmp_path)
    second = tmp_path / "EX02"
    first = tmp_path / "EX01" / "MSGTRKMS2026112708-1.LOG"
    got = [Path(p).name for p in expand_paths([second, first, tmp_path], RunReport())]
    assert got == ["MSGTRKMD2026112709-2.log", "MSGTRKMS2026112708-1.LOG", "MSGTRK2026112708-1.LOG"]


def test_missing_paths_and_empty_globs_are_reported(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    report = RunReport()
    missing, pattern = str(tmp_path / "nope"), str(tmp_path / "MSGTRK*.LOG")
    assert list(expand_paths([missing, pattern, tmp_path / "empty"], report)) == []
    assert problems(report) == [("bad-file", missing, "no such file or directory"),
                                ("bad-file", pattern, "no file matches this pattern")]
    assert report.warnings == [f"{tmp_path / 'empty'}: no message tracking logs (MSGTRK*.LOG) found"]


# --------------------------------------------------------------------------- robustness, streaming


GOOD_LINES = [line(F2016, event_id=e, message_subject=s, total_bytes=b) for e, s, b in (
    ("RECEIVE", 'a "quoted", subject', "10"), ("SEND", "plain", ""), ("DELIVER", "x;y", "3"))]

junk_line = st.binary(max_size=200).filter(lambda b: b"\n" not in b or b.endswith(b"\n"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.lists(st.tuples(st.integers(0, 3), junk_line), max_size=6), cut=st.booleans())
def test_junk_lines_never_crash_the_reader(tmp_path: Path, junk: list[tuple[int, bytes]], cut: bool) -> None:
    lines = [g.encode() for g in GOOD_LINES]
    good = {g: i for i, g in enumerate(lines)}
    for pos, data in sorted(junk, key=lambda j: -j[0]):
        lines.insert(pos, data if data.endswith(b"\n") else data + b"\r\n")
    body = b"".join(lines)
    if cut:
        body = body[:-1]
    path = write_log(tmp_path / "MSGTRK2026112708-1.LOG", header(F2016).encode() + body)
    report = RunReport()
    events = list(read_log_file(path, report))  # must not raise
    assert {p.kind for p in report.problems} <= {"bad-line", "bad-file"}
    # Whatever is yielded is one of the good lines, read correctly.
    expected = {g.decode().split(",")[8] for g in good}
    assert {ev.event_id for ev in events} <= expected
    assert len(events) <= len(GOOD_LINES)
    # Junk without any quote or directive cannot hide a good line.
    if all(b'"' not in d and not d.lstrip(b"\xef\xbb\xbf").startswith(b"#") for _, d in junk) and not cut:
        assert len(events) == len(GOOD_LINES)


def generated_lines(n: int) -> Iterator[bytes]:
    rows = [line(F2016, event_id=e, total_bytes=str(i), recipient_address="a@contoso.com;b@contoso.com",
                 custom_data=f"S:E2ELatency=0.{i};S:AccountForest=contoso.com",
                 message_info=f"2026-11-27T08:00:00.{i:03d}Z;SRV=EX01.contoso.com:TOTAL-HUB=0.{i}").encode()
            for i, e in enumerate(("RECEIVE", "SEND", "DELIVER", "AGENTINFO", "EXPAND"))]
    for i in range(n):
        yield rows[i % len(rows)]


def test_memory_stays_flat_while_streaming(tmp_path: Path) -> None:
    rows = 120_000
    path = tmp_path / "MSGTRK2026112708-1.LOG"
    with open(path, "wb") as fh:
        fh.write(BOM + header(F2016).encode())
        fh.writelines(generated_lines(rows))
    assert path.stat().st_size > 20_000_000
    report = RunReport()
    tracemalloc.start()
    try:
        count = 0
        for _ in read_logs([path], report):
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == rows and report.complete
    assert peak < 2_000_000, f"peak {peak} bytes"


def test_counters_are_kept_when_the_consumer_stops_early(tmp_path: Path) -> None:
    path = write_log(tmp_path / "x.LOG", header(F2016) + line(F2016) * 5)
    report = RunReport()
    it = read_logs([path], report)
    next(it)
    it.close()  # type: ignore[attr-defined]
    assert report.counts["files"] == 1 and report.counts["events"] == 1
