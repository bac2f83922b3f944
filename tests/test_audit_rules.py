"""Every rule fires on crafted events, explains itself, and its allowlist silences it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from msgtrack.audit.config import AuditConfig, parse_config
from msgtrack.audit.days import day_window
from msgtrack.audit.rules import FINDING_COLUMNS, Finding, RuleContext, evaluate, new_facts
from msgtrack.events import TrackingEvent
from tests.test_audit_helpers import airsync_submit, event, smtp

DAY = date(2026, 11, 25)
T = "2026-11-25T10:00:00.000Z"


def config(rule: str = "", **options: Any) -> AuditConfig:
    rules: dict[str, Any] = {rule: options} if rule else {}
    return parse_config(Path("/etc/msgtrack/audit.toml"), {
        "audit": {"accepted_domains": ["contoso.com"]},
        "source": {"logs": ["/logs"]}, "rules": rules})


class FakeHistory:
    def __init__(self, days: int = 0, seen: Iterable[tuple[str, str, str]] = (),
                 senders: dict[str, int] | None = None) -> None:
        self.days = [DAY - timedelta(days=i) for i in range(days, 0, -1)]
        self.seen = set(seen)
        self.senders = senders or {}

    def history_days_before(self, day: date, within: int) -> list[date]:
        return [d for d in self.days if day - timedelta(days=within) <= d < day]

    def seen_before(self, day: date) -> set[tuple[str, str, str]]:
        return self.seen

    def sender_history(self, days: Iterable[date], senders: Iterable[str]
                       ) -> dict[str, dict[date, int]]:
        return {s: {d: self.senders[s] for d in days} for s in senders if s in self.senders}


def run(events: list[TrackingEvent], cfg: AuditConfig | None = None,
        history: FakeHistory | None = None, rule: str | None = None) -> list[Finding]:
    cfg = cfg or config()
    start, end = day_window(DAY, cfg.tz)
    ctx = RuleContext(DAY, start, end, cfg, new_facts(cfg), history=history or FakeHistory())
    findings, _ = evaluate(events, ctx)
    return [f for f in findings if rule is None or f.rule == rule]


def only(findings: list[Finding], rule: str) -> Finding:
    mine = [f for f in findings if f.rule == rule]
    assert len(mine) == 1, findings
    f = mine[0]
    row = f.row()
    assert list(row) == list(FINDING_COLUMNS)
    assert f.why.endswith(".") and f.action and f.evidence and f.severity
    return f


# --------------------------------------------------------------------------- one per rule


def test_anonymous_submission() -> None:
    events = [smtp(T, "00A: ", ip="10.1.2.3", client_hostname="scanner7"),
              smtp(T, "00A: ", ip="10.1.2.3", client_hostname="scanner7"),
              smtp(T, "00A: ", ip="203.0.113.9"),      # Internet: not internal
              smtp(T, "0cA: ", ip="10.0.0.11"),        # relayed Internet mail between servers
              smtp(T, "04I: ", ip="10.1.2.4")]
    f = only(run(events), "anonymous-submission")
    assert (f.client_ip, f.count, f.severity) == ("10.1.2.3", 2, "high")
    assert "HELO scanner7" in f.details and ":" in f.evidence
    for allow in ({"allow_ips": ["10.1.2.0/24"]}, {"allow_connectors": ["Default EX01"]},
                  {"allow_senders": ["@contoso.com"]}):
        assert not run(events, config("anonymous-submission", **allow),
                       rule="anonymous-submission")
    assert not run(events, config("anonymous-submission", enabled=False),
                   rule="anonymous-submission")


def test_cleartext_login() -> None:
    events = [smtp(T, "07I: ", ip="10.5.5.60", sender="nagios@contoso.com"),
              smtp(T, "06I: ", ip="10.5.5.61")]
    f = only(run(events), "cleartext-login")
    assert (f.client_ip, f.sender, f.auth_method) == ("10.5.5.60", "nagios@contoso.com", "Login")
    assert not run(events, config("cleartext-login", allow_ips=["10.5.5.60"]),
                   rule="cleartext-login")
    assert not run(events, config("cleartext-login", allow_senders=["nagios@contoso.com"]),
                   rule="cleartext-login")


def test_legacy_auth_inventory_one_row_per_account_and_ip() -> None:
    events = [smtp(T, "06I: ", ip="10.5.5.33", sender="mfp@contoso.com"),
              smtp(T, "06I: ", ip="10.5.5.33", sender="MFP@contoso.com"),
              smtp(T, "07I: ", ip="10.5.5.60", sender="nagios@contoso.com"),
              smtp(T, "04I: ", ip="10.5.5.34")]
    found = run(events, rule="legacy-auth-inventory")
    assert [(f.sender.casefold(), f.client_ip, f.auth_method, f.count) for f in found] == [
        ("mfp@contoso.com", "10.5.5.33", "TLSAuthLogin", 2),
        ("nagios@contoso.com", "10.5.5.60", "Login", 1)]
    assert all(f.severity == "info" for f in found)
    assert len(run(events, config("legacy-auth-inventory", methods=["Login"]),
                   rule="legacy-auth-inventory")) == 1
    assert not run(events, config("legacy-auth-inventory", allow_ips=["10.5.5.0/24"]),
                   rule="legacy-auth-inventory")


def test_pickup_replay() -> None:
    events = [event(T, "RECEIVE", "PICKUP", message_info="08A: ", server_hostname="EX02"),
              event(T, "RECEIVE", "ADMIN", message_info="12A: ", server_hostname="EX02")]
    found = run(events, rule="pickup-replay")
    assert sorted(f.auth_method for f in found) == ["Pickup", "Replay"]
    assert {f.server for f in found} == {"EX02"}
    assert not run(events, config("pickup-replay", allow_servers=["ex02"]), rule="pickup-replay")


def test_new_submitter_learns_first_then_flags_only_what_is_new() -> None:
    events = [smtp(T, "06I: ", ip="10.7.7.7", connector_id="EX01\\Client Frontend EX01"),
              smtp(T, "04I: ", ip="10.0.0.5")]
    known = {("client_ip", "10.0.0.5", "SecureMapiSubmit"),
             ("connector", "EX01\\Default EX01", "SecureMapiSubmit"),
             ("connector", "EX01\\Client Frontend EX01", "TLSAuthLogin")}
    # Fewer than baseline_days recorded: learning, no findings.
    assert not run(events, history=FakeHistory(days=6, seen=known), rule="new-submitter")
    found = run(events, history=FakeHistory(days=7, seen=known), rule="new-submitter")
    assert [(f.client_ip, f.auth_method) for f in found] == [("10.7.7.7", "TLSAuthLogin")]
    assert found[0].details == ("first time with TLSAuthLogin in 7 recorded day(s): client IP "
                                "10.7.7.7 (1 message(s) today)")
    assert not run(events, config("new-submitter", allow_ips=["10.7.7.7"]),
                   history=FakeHistory(days=7, seen=known), rule="new-submitter")
    # A new connector is its own finding.
    known.discard(("connector", "EX01\\Client Frontend EX01", "TLSAuthLogin"))
    [found] = run(events, history=FakeHistory(days=7, seen=known), rule="new-submitter")
    assert found.details.endswith("client IP 10.7.7.7 (1 message(s) today) and connector "
                                  "EX01\\Client Frontend EX01 (1 message(s) today)")
    assert len(run(events, config("new-submitter", allow_connectors=["Client Frontend EX01"],
                                  allow_ips=["10.7.7.7"]),
                   history=FakeHistory(days=7, seen=known), rule="new-submitter")) == 0
    # Exchange's own hops are not submitters.
    hop = [smtp(T, "0cI: ", ip="10.0.0.11")]
    assert not run(hop, history=FakeHistory(days=7), rule="new-submitter")
    assert run(hop, config("new-submitter", ignore_methods=[]), history=FakeHistory(days=7),
               rule="new-submitter")


def test_volume_spike() -> None:
    sender = "intern@contoso.com"
    events = [smtp(T, "04I: ", sender=sender) for _ in range(60)]
    events += [smtp(T, "04I: ", sender="newsletter@contoso.com") for _ in range(60)]
    history = FakeHistory(days=14, senders={sender: 5, "newsletter@contoso.com": 55})
    f = only(run(events, history=history), "volume-spike")
    assert (f.sender, f.count) == (sender, 60)
    assert "median 5 per day" in f.details and "12.0x" in f.details
    assert not run(events, history=FakeHistory(days=6, senders={sender: 5}),
                   rule="volume-spike")  # learning
    assert not run(events, config("volume-spike", min_count=100), history=history,
                   rule="volume-spike")
    assert not run(events, config("volume-spike", allow_senders=[sender]), history=history,
                   rule="volume-spike")


def test_external_redirect() -> None:
    events = [
        event(T, "RECEIVE", "MAILBOXRULE", sender="ceo@adventure-works.com",
              related_recipient_address="grady@contoso.com",
              recipients=("grady.home@litwareinc.com",)),
        event(T, "REDIRECT", "ROUTING", recipients=("sales@contoso.com",),
              related_recipient_address="sales@partner.example"),
        event(T, "RESOLVE", "ROUTING", recipients=("contact@contoso.com",),
              related_recipient_address="contact@contoso.com"),  # internal: fine
        event(T, "RESOLVE", "ROUTING", recipients=("x@ext.example",),
              related_recipient_address="y@ext.example"),  # external contact: not a mailbox
    ]
    found = run(events, rule="external-redirect")
    assert sorted(f.recipients[0] for f in found) == ["grady.home@litwareinc.com",
                                                      "sales@partner.example"]
    assert all(f.severity == "high" for f in found)
    assert len(run(events, config("external-redirect", allow_domains=["litwareinc.com"]),
                   rule="external-redirect")) == 1
    assert len(run(events, config("external-redirect", allow_mailboxes=["sales@contoso.com"]),
                   rule="external-redirect")) == 1
    assert not run(events, config("external-redirect", allow_recipients=[
        "grady.home@litwareinc.com", "sales@partner.example"]), rule="external-redirect")


@pytest.mark.parametrize("subject", ["RE: budget", "AW: Budget", "Réf.: x", "fwd: y", "SV: z"])
def test_smime_activesync_reply(subject: str) -> None:
    mid = "<r1@contoso.com>"
    events = [
        airsync_submit(T, subject, message_id=mid, sender="joni@contoso.com"),
        event("2026-11-25T10:00:01.000Z", "DELIVER", "STOREDRIVER", message_id=mid,
              recipients=("lynne@contoso.com",), sender="joni@contoso.com"),
        # Not candidates: clear-signed, not AirSync, not a reply, not delivered.
        airsync_submit(T, subject, cls="IPM.Note.SMIME.MultipartSigned", message_id="<a>"),
        airsync_submit(T, subject, client="MOMT", message_id="<b>"),
        airsync_submit(T, "Encrypted: salary", message_id="<c>"),
        event(T, "DELIVER", "STOREDRIVER", message_id="<a>"),
        event(T, "DELIVER", "STOREDRIVER", message_id="<b>"),
        event(T, "DELIVER", "STOREDRIVER", message_id="<c>"),
        airsync_submit(T, subject, message_id="<d>"),
    ]
    f = only(run(events), "smime-activesync-reply")
    assert (f.message_id, f.recipients, f.sender) == (mid, ("lynne@contoso.com",),
                                                      "joni@contoso.com")
    assert "IPM.Note.SMIME" in f.details and "AirSync" in f.details
    assert f.evidence.count("(") == 2  # the SUBMIT and the DELIVER
    assert not run(events, config("smime-activesync-reply", allow_senders=["joni@contoso.com"]),
                   rule="smime-activesync-reply")
    assert not run(events, config("smime-activesync-reply", reply_prefixes=["XX:"]),
                   rule="smime-activesync-reply")


def test_findings_come_out_most_severe_first_and_stable() -> None:
    events = [smtp(T, "06I: ", ip="10.5.5.33"), smtp(T, "07I: ", ip="10.5.5.60"),
              smtp(T, "00A: ", ip="10.1.2.3")]
    first = run(events)
    assert [f.severity for f in first] == sorted((f.severity for f in first),
                                                 key=["high", "medium", "low", "info"].index)
    assert run(list(reversed(events))) == first


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_smime_activesync_reply_joins_iis_logs_when_configured() -> None:
    """With iis_logs, the rule uses msgtrack.eas (issue #6) on the eas examples: ivan's
    and judy's SmartReplies are LIKELY_BLANK (judy's ambiguous: an OWA SUBMIT is near)."""
    from msgtrack.report import RunReport
    from msgtrack.sources.logfile import read_logs

    cfg = config("smime-activesync-reply", iis_logs=[str(EXAMPLES / "iis" / "ex2016")],
                 mailbox_map=str(EXAMPLES / "eas" / "mailboxes.csv"))
    day = date(2017, 3, 14)
    start, end = day_window(day, cfg.tz)
    report = RunReport()
    events = sorted(read_logs([EXAMPLES / "eas" / "ex2016"], report), key=lambda e: e.timestamp)
    ctx = RuleContext(day, start, end, cfg, new_facts(cfg), report=report)
    findings, status = evaluate(events, ctx)
    found = [f for f in findings if f.rule == "smime-activesync-reply"]
    assert report.complete
    assert "joined with" in status["smime-activesync-reply"]
    assert sorted(f.sender for f in found) == ["ivan@contoso.com", "judy.lee@contoso.com"]
    assert all("LIKELY_BLANK" in f.details and "u_ex17031408.log:" in f.evidence
               for f in found)
    assert "match ambiguous" in next(f for f in found if f.sender.startswith("judy")).details
    # Without IIS logs the tracking-only check finds the same two S/MIME AirSync replies.
    plain = [f for f in run_day(events, config(), day) if f.rule == "smime-activesync-reply"]
    assert sorted(f.sender for f in plain) == ["ivan@contoso.com", "judy.lee@contoso.com"]


def run_day(events: list[TrackingEvent], cfg: AuditConfig, day: date) -> list[Finding]:
    start, end = day_window(day, cfg.tz)
    return evaluate(events, RuleContext(day, start, end, cfg, new_facts(cfg)))[0]
