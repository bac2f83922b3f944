"""The streaming IIS W3C reader: #Fields per file, ActiveSync only, sides, bad lines."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from msgtrack.eas._fast import builder
from msgtrack.eas.iis import EasRequest, Side, read_iis, side_of
from msgtrack.eas.query import EasQuery, decode_query
from msgtrack.errors import InputError
from msgtrack.report import RunReport

ROOT = Path(__file__).resolve().parents[1]
EX2010 = ROOT / "examples" / "iis" / "ex2010"
EX2016 = ROOT / "examples" / "iis" / "ex2016"
BAD = ROOT / "examples" / "bad-iis"

FIELDS = ("#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip "
          "cs(User-Agent) sc-status sc-substatus sc-win32-status time-taken\r\n")


def read(paths: list[Path], side: Side | str = Side.FRONTEND) -> tuple[list[EasRequest], RunReport]:
    report = RunReport()
    return list(read_iis(paths, report, side=side)), report


def test_exchange_2010_example() -> None:
    requests, report = read([EX2010])
    assert report.complete
    assert report.counts["iis-lines"] == 27 and report.counts["iis-activesync"] == 25
    first = requests[0]
    assert first.method == "OPTIONS" and first.cmd == "" and first.username == ""
    assert first.origin.endswith("u_ex121105.log:7")
    reply = next(r for r in requests if r.cmd == "SmartReply")
    assert (reply.user, reply.account, reply.device_id, reply.device_type) == (
        "alice", "alice", "ApplDNQGKRB3DTD7", "iPhone")
    assert reply.timestamp == datetime(2012, 11, 5, 9, 14, 7, tzinfo=timezone.utc)
    assert (reply.status, reply.port, reply.time_taken, reply.server) == (200, 443, 1250, "10.0.0.5")
    assert reply.protocol_version == "14.1" and reply.query.log.mailbox_server.startswith("EX2010")
    assert reply.ua.ios_version == "5.1" and reply.side is Side.FRONTEND and reply.succeeded
    failed = next(r for r in requests if r.status == 500)
    assert not failed.succeeded and failed.query.log.errors == ("ServerError",)


def test_base64_lines_use_cs_username_when_the_blob_has_no_user() -> None:
    requests, _ = read([EX2010])
    grace = [r for r in requests if r.query.form == "base64"]
    assert [r.cmd for r in grace] == ["Sync", "SmartReply", "SendMail"]
    assert [r.user for r in grace] == ["CONTOSO\\grace", "grace", "CONTOSO\\grace"]
    assert {r.account for r in grace} == {"grace"}
    assert {r.protocol_version for r in grace} == {"14.1"}
    assert grace[1].query.save_in_sent is True


@pytest.mark.parametrize(("side", "count", "ports"), [
    (Side.FRONTEND, 9, {443}), (Side.BACKEND, 9, {444}), (Side.ALL, 18, {443, 444}),
])
def test_exchange_2016_sides(side: Side, count: int, ports: set[int]) -> None:
    requests, report = read([EX2016], side)
    assert len(requests) == count and {r.port for r in requests} == ports
    assert report.complete and not report.warnings
    if side is Side.BACKEND:
        assert {r.protocol_version for r in requests} == {"14.1", "16.0", "16.1"}
        kate = [r for r in requests if r.device_type == "Outlook"]
        assert [r.cmd for r in kate] == ["Sync", "SmartReply"]
        assert all(r.query.form == "base64" for r in kate)


def test_warns_when_every_line_is_on_the_other_side() -> None:
    requests, report = read([EX2016 / "EX16-02"], Side.FRONTEND)
    assert requests == []
    assert report.warnings == ["all 9 ActiveSync lines were on the other side; try --side backend"]


@pytest.mark.parametrize(("stem", "port", "side"), [
    ("/Microsoft-Server-ActiveSync/default.eas", 443, Side.FRONTEND),
    ("/Microsoft-Server-ActiveSync/Proxy/default.eas", 444, Side.BACKEND),
    ("/Microsoft-Server-ActiveSync/Proxy/default.eas", 443, Side.BACKEND),
    ("/microsoft-server-activesync/default.eas", 444, Side.BACKEND),
    ("/Microsoft-Server-ActiveSync", None, Side.FRONTEND),
])
def test_side_of(stem: str, port: int | None, side: Side) -> None:
    assert side_of(stem, port) is side


def test_bad_lines_are_reported_and_the_rest_is_read() -> None:
    requests, report = read([BAD])
    assert [(r.cmd, r.origin.rsplit("/", 1)[-1]) for r in requests] == [
        ("SmartReply", "u_ex121105.log:5"), ("SendMail", "u_ex121105.log:10")]
    assert [(p.kind, p.where.rsplit("/", 1)[-1], p.message) for p in report.problems] == [
        ("bad-file", "not-a-w3c-log.log",
         "line 1: data before any #Fields: line; not an IIS W3C log"),
        ("bad-line", "u_ex121105.log:6", "expected 14 fields, found 13"),
        ("bad-line", "u_ex121105.log:7", "bad date/time '2012-13-05' '09:14:07'"),
        ("bad-line", "u_ex121105.log:8", "sc-status is not a number: 'OK'"),
        ("bad-line", "u_ex121105.log:9",
         "cs-uri-query: base64 query truncated in DeviceId at byte 5"),
    ]
    assert not report.complete


def test_fields_line_may_change_mid_file(tmp_path: Path) -> None:
    path = tmp_path / "u_ex1.log"
    path.write_text(
        "\ufeff#Software: Microsoft Internet Information Services 7.5\r\n" + FIELDS
        + "2012-11-05 09:00:00 10.0.0.5 POST /Microsoft-Server-ActiveSync/default.eas "
          "Cmd=Sync&User=a 443 C\\a 1.2.3.4 Apple-iPhone4C1/902.176 200 0 0 5\r\n"
        + "#Fields: time date cs-uri-stem cs-uri-query s-computername sc-status\r\n"
        + "09:00:01 2012-11-05 /Microsoft-Server-ActiveSync/default.eas Cmd=Ping&User=b CAS1 200\r\n",
        encoding="utf-8")
    requests, report = read([path])
    assert report.complete
    assert [(r.cmd, r.user, r.server) for r in requests] == [("Sync", "a", "10.0.0.5"),
                                                            ("Ping", "b", "CAS1")]
    assert requests[1].timestamp.second == 1 and requests[1].extra == {}


def test_fields_without_the_needed_columns(tmp_path: Path) -> None:
    path = tmp_path / "u_ex2.log"
    path.write_text("#Fields: date cs-uri-stem\r\n2012-11-05 /x\r\n", encoding="utf-8")
    _, report = read([path])
    assert [str(p) for p in report.problems] == [f"{path}: #Fields: lacks time"]


def test_unknown_columns_are_kept_in_extra(tmp_path: Path) -> None:
    path = tmp_path / "u_ex3.log"
    path.write_text("#Fields: date time cs-uri-stem cs-uri-query cs-host sc-bytes\r\n"
                    "2012-11-05 09:00:00 /Microsoft-Server-ActiveSync/default.eas Cmd=Sync "
                    "mail.contoso.com 512\r\n", encoding="utf-8")
    (request,), _ = read([path])
    assert request.extra == {"cs-host": "mail.contoso.com", "sc-bytes": "512"}


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or directory"):
        read_iis([tmp_path / "nope.log"], RunReport())


def test_fast_builder_matches_init() -> None:
    ts = datetime(2012, 11, 5, tzinfo=timezone.utc)
    query = decode_query("User=a&Cmd=Sync&Log=V141")
    built = builder(EasRequest)(timestamp=ts, uri_stem="/x", query=query, status=200, extra={})
    assert built == EasRequest(ts, "/x", query, status=200)
    assert dataclasses.asdict(built) == dataclasses.asdict(EasRequest(ts, "/x", query, status=200))
    assert builder(EasQuery)(form="plain", cmd="Sync", params={}) == EasQuery("plain", "Sync")
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.status = 500  # type: ignore[misc]
    with pytest.raises(TypeError, match="needs query"):
        builder(EasRequest)(timestamp=ts, uri_stem="/x", extra={})


line_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
                    max_size=120)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(line_text, max_size=8))
def test_arbitrary_lines_never_raise(tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "fuzz.log"
    prefix = "2012-11-05 09:00:00 10.0.0.5 POST /Microsoft-Server-ActiveSync/default.eas "
    body = "".join(f"{prefix}{text}\r\n" if i % 2 else f"{text}\r\n"
                   for i, text in enumerate(lines))
    path.write_text(FIELDS + body, encoding="utf-8")
    report = RunReport()
    for request in read_iis([path], report, side=Side.ALL):
        assert request.uri_stem.lower().startswith("/microsoft-server-activesync")
