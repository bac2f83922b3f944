"""Report A (devices) and report B (candidate blank replies) as library calls."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from msgtrack.eas import (
    MailboxMap,
    Side,
    Verdict,
    Window,
    find_blank_reply_candidates,
    read_iis,
    summarize_devices,
)
from msgtrack.eas.iis import EasRequest
from msgtrack.eas.query import decode_query
from msgtrack.errors import InputError, UsageError
from msgtrack.events import TrackingEvent
from msgtrack.pipeline import read_offline
from msgtrack.report import RunReport

ROOT = Path(__file__).resolve().parents[1]
IIS = ROOT / "examples" / "iis"
EAS = ROOT / "examples" / "eas"
MAP = MailboxMap.from_csv(EAS / "mailboxes.csv")
UTC = timezone.utc


def candidates(version: str, side: Side = Side.FRONTEND, **kwargs):  # type: ignore[no-untyped-def]
    report = RunReport()
    found = list(find_blank_reply_candidates(
        read_iis([IIS / version], report, side=side), read_offline([EAS / version], [], report),
        **{"mailbox_map": MAP, **kwargs}))
    assert report.complete, report.problems
    return {(c.request.account, c.request.timestamp.strftime("%H:%M")): c for c in found}


# ----------------------------------------------------------------------------- report A


def test_devices_2010() -> None:
    summaries = summarize_devices(read_iis([IIS / "ex2010"], RunReport()))
    rows = {s.user: s.row() for s in summaries}
    assert [s.user for s in summaries if s.exposed] == ["alice", "carol", "dave", "henry", "mike"]
    alice = rows["alice"]
    # The OPTIONS line has no protocol version; it is folded into the 14.1 row.
    assert (alice["Hits"], alice["SendMail"], alice["SmartReply"], alice["SmartRatio"]) == (
        8, 1, 2, 0.67)
    assert (alice["FirstSeen"], alice["LastSeen"]) == ("2012-11-05T09:00:02Z", "2012-11-05T09:55:40Z")
    assert alice["Device"] == "iPhone 4S" and alice["iOSBuild"] == "9B176"
    assert rows["henry"]["Errors"] == 2  # HTTP 500, and a 200 with Error:PingCollisionDetected
    assert rows["mike"]["iOSVersion"] == "5.x" and rows["mike"]["Flag"] == "EXPOSED"
    assert rows["erin"]["Flag"] == "" and rows["erin"]["iOSVersion"] == "6.0"
    assert rows["grace"]["Reason"] == "context: Windows Phone client uses SmartReply/SmartForward"
    assert rows["frank"]["Reason"] == "context: Android client uses SmartReply/SmartForward"


def test_devices_2016_need_the_back_end_for_the_protocol_version() -> None:
    front = summarize_devices(read_iis([IIS / "ex2016"], RunReport()))
    back = summarize_devices(read_iis([IIS / "ex2016"], RunReport(), side=Side.BACKEND))
    assert not any(s.exposed for s in front)
    assert {s.user: s.protocol_version for s in front}["ivan"] == ""
    assert [s.user for s in back if s.exposed] == ["ivan", "judy"]
    # Listing the server as Exchange 2010 is enough even without a protocol version.
    listed = summarize_devices(read_iis([IIS / "ex2016"], RunReport()),
                               exchange2010_servers=["10.0.1.11"])
    assert [s.user for s in listed if s.exposed] == ["ivan", "judy"]
    assert "Exchange 2010 server 10.0.1.11" in listed[0].reason


def request(when: datetime, cmd: str, query: str = "", **kwargs: object) -> EasRequest:
    return EasRequest(when, "/Microsoft-Server-ActiveSync/default.eas",
                      decode_query(f"User=zoe&DeviceId=D1&DeviceType=iPhone&Cmd={cmd}{query}"),
                      user_agent="Apple-iPhone4C1/902.176", status=200, **kwargs)  # type: ignore[arg-type]


def test_devices_split_by_protocol_version() -> None:
    t0 = datetime(2012, 11, 5, 9, tzinfo=UTC)
    rows = summarize_devices([
        request(t0, "Sync", "&Log=V121"), request(t0, "SendMail", "&Log=V121"),
        request(t0, "SmartReply", "&Log=V141"), request(t0, "Ping"),
    ])
    assert [(s.protocol_version, s.hits, s.exposed) for s in rows] == [
        ("14.1", 1, True), ("", 1, False), ("12.1", 2, False)]


# ----------------------------------------------------------------------------- report B


def test_blank_replies_2010() -> None:
    found = candidates("ex2010")
    verdicts = {key: (c.verdict, c.match, c.score) for key, c in found.items()}
    assert verdicts == {
        ("alice", "09:14"): (Verdict.LIKELY_BLANK, "unique", 8),
        ("alice", "09:41"): (Verdict.INFO, "unique", 5),
        ("henry", "10:02"): (Verdict.POSSIBLE, "unique", 4),
        ("carol", "10:30"): (Verdict.INFO, "unique", 8),
        ("dave", "11:05"): (Verdict.INFO, "unique", 6),
        ("erin", "11:30"): (Verdict.INFO, "unique", 3),
        ("frank", "12:01"): (Verdict.INFO, "none", 0),
        ("grace", "12:30"): (Verdict.INFO, "unique", 3),
        ("mike", "13:10"): (Verdict.INFO, "none", 0),
    }
    alice = found["alice", "09:14"]
    assert alice.address == "alice.wong@contoso.com" and alice.delta_seconds == 2.114
    assert alice.internal == ("bob@contoso.com", "erin@contoso.com") and alice.external == ()
    assert alice.exchange2010.startswith("inferred")
    row = alice.row()
    assert row["IisLine"].endswith("examples/iis/ex2010/W3SVC1/u_ex121105.log:10")
    assert row["SubmitLine"].endswith("EX2010-MBX1/MSGTRKM20121105-1.LOG:6")
    assert [p.rsplit("/", 2)[-2:] for p in row["DeliverLines"]] == [
        ["EX2010-HUB1", "MSGTRK20121105-1.LOG:7"]]
    assert row["Note"].startswith("candidate blank reply:")
    assert "candidate" in found["henry", "10:02"].note
    carol = found["carol", "10:30"]
    assert carol.external == ("j.smith@fabrikam.com",) and carol.internal == ()
    assert carol.note.endswith("1 external recipient(s) probably readable")
    assert "clear-signed" in found["dave", "11:05"].note


def test_blank_replies_2016_ambiguous_and_intra_org_send() -> None:
    found = candidates("ex2016", Side.BACKEND)
    assert {k: c.verdict for k, c in found.items()} == {
        ("ivan", "08:15"): Verdict.LIKELY_BLANK, ("judy", "09:02"): Verdict.LIKELY_BLANK,
        ("nina", "09:29"): Verdict.INFO, ("kate", "10:01"): Verdict.INFO,
    }
    ivan = found["ivan", "08:15"]
    # The intra-organization SEND to the mailbox server is not an external recipient.
    assert ivan.internal == ("bob@contoso.com",) and ivan.external == ("partner@fabrikam.com",)
    assert len(ivan.sends) == 1 and ivan.exchange2010 == ""
    judy = found["judy", "09:02"]
    assert judy.match == "ambiguous" and len(judy.others) == 1
    assert judy.submit is not None and judy.submit.submission["ClientType"] == "AirSync"
    assert judy.others[0].submission["ClientType"] == "OWA"
    assert judy.row()["OtherSubmitLines"][0].endswith("MSGTRKMS2017031408-1.LOG:8")
    # A narrower window leaves the OWA message out.
    narrow = candidates("ex2016", Side.BACKEND, window=Window.parse("-10,+30"))
    assert narrow["judy", "09:02"].match == "unique"


def test_front_end_only_still_scores_but_knows_no_protocol_version() -> None:
    found = candidates("ex2016")
    assert found["ivan", "08:15"].verdict is Verdict.LIKELY_BLANK
    assert found["ivan", "08:15"].row()["ProtocolVersion"] == ""


def test_side_filter_and_listed_2010_servers() -> None:
    # All lines in, the library keeps one side: no double counting.
    report = RunReport()
    both = list(find_blank_reply_candidates(
        read_iis([IIS / "ex2016"], report, side=Side.ALL), read_offline([EAS / "ex2016"], [], report),
        mailbox_map=MAP, side=Side.BACKEND, exchange2010_servers=["EX16-02"]))
    assert len(both) == 4
    assert both[0].exchange2010 == "listed: EX16-02.contoso.com (IIS)"


def test_accepted_domains_are_never_external() -> None:
    found = candidates("ex2016", Side.BACKEND, accepted_domains=["fabrikam.com"])
    assert found["ivan", "08:15"].external == ()


def test_unmapped_user_and_rule() -> None:
    found = candidates("ex2010", mailbox_map=MailboxMap(rule="{user}@contoso.com"))
    # alice's primary address is alice.wong@: the rule alone finds no SUBMIT.
    assert found["alice", "09:14"].match == "none"
    assert found["henry", "10:02"].verdict is Verdict.POSSIBLE
    found = candidates("ex2010", mailbox_map=MailboxMap())
    assert {c.match for c in found.values()} == {"unmapped"}
    assert "no mailbox address for user 'alice'" in found["alice", "09:14"].note


def test_failed_requests_are_not_joined() -> None:
    t0 = datetime(2012, 11, 5, 9, tzinfo=UTC)
    assert request(t0, "SmartReply").succeeded
    bad = [request(t0, "SmartReply", "&Log=V141_Error:ServerError"),
           EasRequest(t0, "/x", decode_query("User=zoe&Cmd=SmartReply"), status=500)]
    assert list(find_blank_reply_candidates(bad, [], mailbox_map=MAP)) == []


def submit(when: datetime, sender: str, context: str, origin: str) -> TrackingEvent:
    return TrackingEvent(when, source="STOREDRIVER", event_id="SUBMIT", sender=sender,
                         source_context=context, message_id=f"<{origin}@x>", origin=origin)


def test_window_bounds_and_closest_wins() -> None:
    t0 = datetime(2012, 11, 5, 9, tzinfo=UTC)
    reply = [request(t0, "SmartReply")]
    ctx = "MDB:x, Mailbox:y, Event:1, MessageClass:IPM.Note.SMIME, ClientType:AirSync"
    events = [submit(t0 - timedelta(seconds=11), "zoe@contoso.com", ctx, "early"),
              submit(t0 - timedelta(seconds=10), "zoe@contoso.com", ctx, "edge-before"),
              submit(t0 + timedelta(seconds=9), "zoe@contoso.com", ctx, "after"),
              submit(t0 + timedelta(seconds=121), "zoe@contoso.com", ctx, "late"),
              submit(t0, "someone@contoso.com", ctx, "other-sender")]
    rule = MailboxMap(rule="{user}@contoso.com")
    (c,) = find_blank_reply_candidates(reply, events, mailbox_map=rule)
    assert c.match == "ambiguous" and c.submit is not None and c.submit.origin == "after"
    assert [e.origin for e in c.others] == ["edge-before"]
    assert c.verdict is Verdict.INFO and c.note.startswith("not a candidate: no internal DELIVER")


@pytest.mark.parametrize(("text", "before", "after"), [
    ("-10,+120", 10, 120), ("-10s,+120s", 10, 120), ("10,120", 10, 120), ("-0,60", 0, 60),
    ("-2.5, +30", 2.5, 30),
])
def test_window_parse(text: str, before: float, after: float) -> None:
    window = Window.parse(text)
    assert (window.before.total_seconds(), window.after.total_seconds()) == (before, after)


@pytest.mark.parametrize("text", ["", "10", "a,b", "-10,+120,5", "-10,-5"])
def test_window_parse_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        Window.parse(text)


def test_mailbox_map(tmp_path: Path) -> None:
    assert MAP.lookup("alice") == ("alice.wong@contoso.com", "mailboxes.csv SamAccountName")
    assert MAP.lookup("CONTOSO\\Alice") == ("alice.wong@contoso.com", "mailboxes.csv SamAccountName")
    assert MAP.lookup("judy@contoso.com") == ("judy.lee@contoso.com", "mailboxes.csv UserPrincipalName")
    assert MAP.lookup("nobody") is None
    assert MAP.lookup("nobody@contoso.com") == ("nobody@contoso.com", "User is an address")
    bad = tmp_path / "m.csv"
    bad.write_text("SamAccountName,Mail\r\nbob,bob@contoso.com\r\n", encoding="utf-8")
    with pytest.raises(InputError, match="no PrimarySmtpAddress column"):
        MailboxMap.from_csv(bad)
    with pytest.raises(InputError, match="m2.csv"):
        MailboxMap.from_csv(tmp_path / "m2.csv")
    with pytest.raises(UsageError, match="has no {user}"):
        MailboxMap(rule="someone@contoso.com")


def test_tracking_query_spans_the_requests() -> None:
    from msgtrack.eas.replies import smart_requests, tracking_query

    requests = smart_requests(read_iis([IIS / "ex2010"], RunReport()))
    assert [r.account for r in requests] == [
        "alice", "alice", "henry", "carol", "dave", "erin", "frank", "grace", "mike"]
    query = tracking_query(requests, Window.parse("-10,+120"))
    assert query is not None
    assert query.start == datetime(2012, 11, 5, 9, 13, 57, tzinfo=UTC)
    assert query.end == datetime(2012, 11, 5, 14, 12, 5, tzinfo=UTC)  # + 120 s + 1 h
    assert query.event_ids == ("SUBMIT", "DELIVER", "SEND")
    assert tracking_query([], Window()) is None


def test_no_requests_never_reads_tracking() -> None:
    def explode():  # type: ignore[no-untyped-def]
        raise AssertionError("tracking data was read")
        yield

    assert list(find_blank_reply_candidates([], explode(), mailbox_map=MAP)) == []


def test_mailbox_map_in_utf16(tmp_path: Path) -> None:
    path = tmp_path / "utf16.csv"
    text = (EAS / "mailboxes.csv").read_text(encoding="ascii").replace("alice.wong", "alïce.wong")
    path.write_text(text, encoding="utf-16")
    assert MailboxMap.from_csv(path).lookup("alice") == ("alïce.wong@contoso.com",
                                                         "utf16.csv SamAccountName")
