"""The day's numbers (:class:`DayStats`), ``summary.json``, and the human report.

The report is built once as a small document (sections of lines and tables) and
rendered to Markdown and/or HTML, so both always say the same. Nothing in it depends
on the wall clock or on where the run happened: the same day gives the same bytes.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from msgtrack.audit.config import SEVERITIES, SEVERITY_RANK, AuditConfig
from msgtrack.audit.rules import Finding
from msgtrack.decode import format_log_timestamp
from msgtrack.events import TrackingEvent
from msgtrack.report import RunReport

TOP = 10
PERCENTILES = (50, 90, 99)


@dataclass
class DayStats:
    """Counters over one day's events, fed one event at a time."""

    rows: int = 0
    events: Counter[str] = field(default_factory=Counter)
    servers: Counter[str] = field(default_factory=Counter)
    auth_method: Counter[str] = field(default_factory=Counter)
    auth_category: Counter[str] = field(default_factory=Counter)
    connector: Counter[str] = field(default_factory=Counter)
    client_ip: Counter[str] = field(default_factory=Counter)
    senders: Counter[str] = field(default_factory=Counter)
    recipients: Counter[str] = field(default_factory=Counter)
    failed_recipients: Counter[str] = field(default_factory=Counter)
    fail_status: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def feed(self, ev: TrackingEvent) -> None:
        self.rows += 1
        eid = ev.event_id
        self.events[eid] += 1
        self.servers[ev.server_hostname or ev.origin.rpartition(":")[0] or "?"] += 1
        if eid == "RECEIVE":
            auth = ev.info.auth
            if auth is not None:
                self.auth_method[f"{auth.code} {auth.method}"] += 1
                self.auth_category[auth.category] += 1
            if ev.source == "SMTP":
                self.connector[ev.connector_id or "(none)"] += 1
                self.client_ip[ev.client_ip or "(none)"] += 1
            if ev.sender:
                self.senders[ev.sender.casefold()] += 1
        elif eid == "DELIVER":
            for r in ev.recipients:
                self.recipients[r.casefold()] += 1
        elif eid == "FAIL":
            for r in ev.recipients:
                self.failed_recipients[r.casefold()] += 1
            for status in ev.recipient_status[:1] or ("",):
                self.fail_status[_short(status, 80) or "(no status)"] += 1
        if eid in ("DELIVER", "SEND"):
            latency = ev.message_latency
            if latency is not None:
                self.latencies.append(latency.total_seconds())

    def latency(self) -> dict[str, Any]:
        values = sorted(self.latencies)
        if not values:
            return {"count": 0}
        out: dict[str, Any] = {"count": len(values)}
        for p in PERCENTILES:
            out[f"p{p}"] = round(values[max(0, math.ceil(p / 100 * len(values)) - 1)], 3)
        out["max"] = round(values[-1], 3)
        return out


def _short(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def top(counter: Counter[str], n: int = TOP) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def max_severity(findings: Sequence[Finding]) -> str:
    return max((f.severity for f in findings), key=SEVERITY_RANK.__getitem__, default="")


# --------------------------------------------------------------------------- summary


@dataclass
class DayResult:
    """Everything the outputs of one day are made from."""

    day: date
    config: AuditConfig
    start: datetime
    end: datetime
    stats: DayStats
    findings: list[Finding]
    rule_status: Mapping[str, str]
    report: RunReport
    duplicates: int
    source: Mapping[str, Any]
    display: Callable[[str], str] = str

    @property
    def complete(self) -> bool:
        return self.report.complete

    @property
    def status(self) -> str:
        return "complete" if self.complete else "incomplete"


def summary(result: DayResult, outputs: Mapping[str, str]) -> dict[str, Any]:
    s, f = result.stats, result.findings
    by_sev = Counter(x.severity for x in f)
    completeness = result.report.to_dict()
    d = result.display
    completeness["problems"] = [{**p, "where": d(p["where"]), "message": d(p["message"])}
                                for p in completeness["problems"]]
    completeness["warnings"] = [d(w) for w in completeness["warnings"]]
    return {
        "day": result.day.isoformat(),
        "zone": result.config.zone,
        "window": {"start": format_log_timestamp(result.start),
                   "end": format_log_timestamp(result.end),
                   "hours": round((result.end - result.start).total_seconds() / 3600, 3)},
        "status": result.status,
        "source": dict(result.source),
        "rows": s.rows,
        "duplicates_dropped": result.duplicates,
        "findings": {
            "total": len(f),
            "max_severity": max_severity(f),
            "fail_severity": result.config.fail_severity,
            "by_severity": {k: by_sev[k] for k in reversed(SEVERITIES) if by_sev[k]},
            "by_rule": dict(sorted(Counter(x.rule for x in f).items())),
        },
        "rules": dict(result.rule_status),
        "counts": {
            "events": dict(sorted(s.events.items())),
            "servers": dict(sorted(s.servers.items())),
            "auth_method": dict(sorted(s.auth_method.items())),
            "auth_category": dict(sorted(s.auth_category.items())),
            "connector": dict(top(s.connector, 50)),
            "client_ip": dict(top(s.client_ip, 50)),
            "top_senders": dict(top(s.senders)),
            "top_recipients": dict(top(s.recipients)),
            "failures": s.events.get("FAIL", 0),
            "dsn": s.events.get("DSN", 0),
        },
        "latency_seconds": s.latency(),
        "completeness": completeness,
        "outputs": dict(sorted(outputs.items())),
    }


def dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- document


@dataclass
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]


@dataclass
class Section:
    title: str
    lines: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


def _counter_table(title: str, counter: Counter[str], total_label: str = "Events") -> Table:
    return Table((title, total_label), [(k, v) for k, v in top(counter)])


def document(result: DayResult, outputs: Sequence[str]) -> tuple[str, list[Section]]:
    s, f, cfg = result.stats, result.findings, result.config
    hours = (result.end - result.start).total_seconds() / 3600
    title = f"msgtrack audit: {result.day.isoformat()} ({cfg.zone})"
    by_sev = Counter(x.severity for x in f)
    sev_text = ", ".join(f"{by_sev[k]} {k}" for k in reversed(SEVERITIES) if by_sev[k])
    head = Section("Summary", [
        f"Window: {format_log_timestamp(result.start)} to {format_log_timestamp(result.end)} "
        f"({hours:g} hours).",
        f"Status: **{result.status.upper()}**"
        + ("" if result.complete else " (this day will be retried)") + ".",
        f"Rows: {s.rows} ({result.duplicates} duplicate rows dropped).",
        f"Findings: {len(f)}" + (f" ({sev_text})" if f else "") + "; "
        f"exit code 4 at {cfg.fail_severity} or above.",
        "Files: " + ", ".join(outputs) + ".",
    ])
    sections = [head]

    fs = Section(f"Findings ({len(f)})")
    if f:
        fs.tables.append(Table(
            ("Severity", "Rule", "Time (UTC)", "Count", "Key", "Details"),
            [(x.severity, x.rule, format_log_timestamp(x.time), x.count, _key(x), x.details)
             for x in f]))
        whys = {x.rule: (x.why, x.action) for x in f}
        for rule, (why, action) in sorted(whys.items()):
            fs.lines.append(f"*{rule}*: {why} **What to do:** {action}")
        fs.lines.append("Evidence for every finding (file:line or server and ids) is in "
                        "findings.csv.")
    else:
        fs.lines.append("No findings.")
    fs.tables.append(Table(("Rule", "State"), sorted(result.rule_status.items())))
    sections.append(fs)

    sections.append(Section("Submissions", [
        "RECEIVE events by decoded MessageInfo auth code, category, Receive connector and "
        "client IP (SMTP)."], [
        _counter_table("Auth method", s.auth_method),
        _counter_table("Auth category", s.auth_category),
        _counter_table("Connector", s.connector),
        _counter_table("Client IP", s.client_ip),
    ]))
    sections.append(Section("Top senders and recipients", [], [
        _counter_table("Sender (RECEIVE)", s.senders),
        _counter_table("Recipient (DELIVER)", s.recipients),
    ]))
    fail = Section("Failures and NDRs", [
        f"FAIL events: {s.events.get('FAIL', 0)}; DSN events (NDRs and other delivery "
        f"status notifications): {s.events.get('DSN', 0)}; DEFER events: "
        f"{s.events.get('DEFER', 0)}."])
    if s.failed_recipients:
        fail.tables.append(_counter_table("Failed recipient", s.failed_recipients))
        fail.tables.append(_counter_table("Status", s.fail_status))
    sections.append(fail)
    lat = s.latency()
    latency = Section("Latency", [
        "MessageLatency of DELIVER and SEND events (event time minus original arrival), "
        "in seconds."])
    if lat["count"]:
        latency.tables.append(Table(("Events", *(f"p{p}" for p in PERCENTILES), "max"),
                                    [(lat["count"], *(f"{lat[f'p{p}']:.3f}" for p in
                                                      PERCENTILES), f"{lat['max']:.3f}")]))
    else:
        latency.lines.append("No latency data.")
    sections.append(latency)
    sections.append(Section("Events", [], [
        _counter_table("EventId", s.events), _counter_table("ServerHostname", s.servers)]))
    sections.append(_completeness(result))
    return title, sections


def _key(f: Finding) -> str:
    parts = [("server", f.server if f.rule == "pickup-replay" else ""),
             ("client", f.client_ip), ("connector", f.connector), ("auth", f.auth_method),
             ("sender", f.sender), ("to", ", ".join(f.recipients[:3]))]
    return "; ".join(f"{k} {v}" for k, v in parts if v)


def _completeness(result: DayResult) -> Section:
    r, d = result.report, result.display
    c = r.counts
    src = result.source
    lines = []
    if src.get("kind") == "logs":
        lines.append("Source: log folders " + ", ".join(src.get("folders", [])) + ".")
        lines.append(f"Files read: {c.get('files', 0)}; files outside the window skipped: "
                     f"{c.get('files-outside-window', 0)}; other files skipped: "
                     f"{c.get('skipped-files', 0)}; lines: {c.get('lines', 0)}; partial last "
                     f"lines: {c.get('partial-lines', 0)}.")
    else:
        lines.append("Source: remote servers " + ", ".join(src.get("servers", []) or ["(all)"])
                     + (f" (profile {src['profile']})" if src.get("profile") else "") + ".")
        lines.append(
            f"Servers tried: {c.get('servers-tried', 0)}, succeeded: "
            f"{c.get('servers-succeeded', 0)}; slices: {c.get('slices', 0)} done, "
            f"{r.problem_counts.get('slice', 0)} failed, {c.get('slices-split', 0)} split at "
            f"the cap; retries: {c.get('retries', 0)}.")
    lines.append(f"Rows read: {c.get('events', 0)}; rows in the window kept: "
                 f"{result.stats.rows}; duplicates dropped: {result.duplicates}.")
    if r.complete:
        lines.append("Nothing failed: the day is complete.")
    else:
        lines.append("INCOMPLETE: " + ", ".join(
            f"{n} {k}" for k, n in sorted(r.problem_counts.items())) + ".")
    section = Section("Completeness", lines)
    if r.problems:
        shown = r.problems[:20]
        section.tables.append(Table(("Problem", "Where", "Message"),
                                    [(p.kind, d(p.where), d(p.message)) for p in shown]))
        total = sum(r.problem_counts.values())
        if total > len(shown):
            section.lines.append(f"{total - len(shown)} more problem(s) in summary.json.")
    for w in r.warnings:
        section.lines.append(f"Warning: {d(w)}")
    return section


# --------------------------------------------------------------------------- rendering


def _md_cell(value: Any) -> str:
    text = " ".join(str(value).split())
    return text.replace("\\", "\\\\").replace("|", "\\|") or " "


def render_markdown(title: str, sections: Iterable[Section]) -> str:
    out = [f"# {title}", ""]
    for sec in sections:
        out += [f"## {sec.title}", ""]
        for line in sec.lines:
            out += [line, ""]
        for t in sec.tables:
            if not t.rows:
                continue
            out.append("| " + " | ".join(_md_cell(h) for h in t.headers) + " |")
            out.append("|" + "|".join("---" for _ in t.headers) + "|")
            for row in t.rows:
                out.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


_CSS = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}"
        "table{border-collapse:collapse;margin:.5em 0 1em}"
        "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}"
        "th{background:#f2f2f2}")


_BOLD = re.compile(r"\*\*(.+?)\*\*")
_RULE = re.compile(r"\A\*([a-z-]+)\*")


def _inline(text: str) -> str:
    """The two bits of Markdown our own lines use: **bold** and a leading *rule-name*."""
    escaped = html.escape(text)
    escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
    return _RULE.sub(r"<em>\1</em>", escaped)


def render_html(title: str, sections: Iterable[Section]) -> str:
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{html.escape(title)}</title>", f"<style>{_CSS}</style>", "</head>",
           "<body>", f"<h1>{html.escape(title)}</h1>"]
    for sec in sections:
        out.append(f"<h2>{html.escape(sec.title)}</h2>")
        for line in sec.lines:
            out.append(f"<p>{_inline(line)}</p>")
        for t in sec.tables:
            if not t.rows:
                continue
            out.append("<table>")
            out.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>"
                                         for h in t.headers) + "</tr>")
            for row in t.rows:
                out.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>"
                                             for c in row) + "</tr>")
            out.append("</table>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
