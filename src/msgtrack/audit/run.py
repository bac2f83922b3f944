"""The audit run: every day that needs it, one at a time, each published durably.

For one day: open the day's events (log folders or remote servers, through
:func:`msgtrack.pipeline.open_events`), put them in a stable order without duplicates,
stream them to the annotated CSV while the rules and counters watch, then write
``findings.csv``, the report and ``summary.json`` into a temporary folder, swap it in
(:mod:`msgtrack.audit.outputs`) and only then record the day and its history in one
SQLite transaction (:mod:`msgtrack.audit.state`). A crash before the commit leaves the
day unrecorded (or ``pending``), so the next run does it again and writes the same
bytes; a crash after it leaves nothing to redo.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msgtrack.audit import outputs
from msgtrack.audit.config import SEVERITY_RANK, AuditConfig
from msgtrack.audit.days import day_window, days_to_run, latest_complete_day
from msgtrack.audit.notify import NotifyError, send_report
from msgtrack.audit.ordering import OrderStats, ordered_unique
from msgtrack.audit.report import (
    DayResult,
    DayStats,
    document,
    dumps,
    max_severity,
    render_html,
    render_markdown,
    summary,
)
from msgtrack.audit.rules import FINDING_COLUMNS, RuleContext, build_rules, finish_rules, new_facts
from msgtrack.audit.state import AuditState, DayRecord, run_lock
from msgtrack.errors import ExitCode, UsageError
from msgtrack.events import TrackingEvent
from msgtrack.filters import Query
from msgtrack.pipeline import open_events
from msgtrack.report import Problem, RunReport
from msgtrack.sinks import SinkOptions, write, write_rows

if TYPE_CHECKING:
    from msgtrack.sources.remote import Connection, Plan

log = logging.getLogger(__name__)

STATE_NAME = "audit.sqlite"
LOCK_NAME = "audit.lock"
_NAME_TIME = re.compile(r"MSGTRK(?:MA|MD|MS|M)?(\d{8})(\d{2})?-\d+\.LOG\Z", re.IGNORECASE)
#: How far a log file's name (its creation hour) or last write may lie outside a window
#: and the file still be read: Exchange writes a line a little after its event.
FILE_MARGIN = timedelta(hours=1)


@dataclass(frozen=True)
class DayOutcome:
    day: date
    status: str  #: complete | incomplete
    rows: int
    duplicates: int
    findings: int
    max_severity: str
    failing: int  #: findings at or above fail_severity
    folder: Path
    problems: int


@dataclass
class AuditOutcome:
    days: list[DayOutcome]
    latest: date  #: the latest complete day at the time of the run
    pruned: list[date] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    notified: list[date] = field(default_factory=list)
    notify_errors: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        """3 if a day is incomplete (it is retried), else 4 if findings, else 0."""
        if any(d.status != "complete" for d in self.days):
            return ExitCode.INCOMPLETE
        if any(d.failing for d in self.days):
            return ExitCode.FINDINGS
        return ExitCode.OK


def run_audit(config: AuditConfig, *, day: date | None = None, now: datetime | None = None,
              report_problem: Callable[[Problem], None] | None = None,
              on_day: Callable[[DayOutcome], None] | None = None) -> AuditOutcome:
    """Audit every day that needs it (or just ``day``); see the module doc."""
    now = now or datetime.now(timezone.utc)
    tz = config.tz
    latest = latest_complete_day(now, tz, config.settle)
    config.output.mkdir(parents=True, exist_ok=True)
    with run_lock(config.output / LOCK_NAME):
        recovered = outputs.recover(config.output)
        with AuditState(config.output / STATE_NAME) as state:
            state.check_zone(config.zone)
            first_day = state.first_day or latest - timedelta(days=config.backfill_days - 1)
            if day is not None:
                _check_day(config, day, latest)
                todo = [day]
            else:
                todo = days_to_run(state.statuses(), first_day=first_day, latest=latest,
                                   max_retry_days=config.max_retry_days)
            runner = _Runner(config, state, report_problem,
                             first_day=None if day is not None else first_day)
            result = AuditOutcome([], latest, recovered=recovered)
            for d in todo:
                outcome = runner.run_day(d)
                result.days.append(outcome)
                if on_day is not None:
                    on_day(outcome)
            result.pruned = outputs.prune(config.output,
                                          latest - timedelta(days=config.retention_days - 1))
            state.prune_history(latest - timedelta(days=config.history_days - 1))
            if config.notify.enabled:
                _notify(config, state, result)
    return result


def _check_day(config: AuditConfig, day: date, latest: date) -> None:
    if day > latest:
        end = day_window(day, config.tz)[1]
        raise UsageError(
            f"{day} is not complete yet: it ends at {end:%Y-%m-%dT%H:%M}Z, and is audited "
            f"{int(config.settle.total_seconds() // 60)} minutes after that")
    oldest = latest - timedelta(days=config.retention_days - 1)
    if day < oldest:
        raise UsageError(f"{day} is older than retention_days ({config.retention_days}); "
                         f"the oldest day kept is {oldest}")


def _notify(config: AuditConfig, state: AuditState, result: AuditOutcome) -> None:
    for day in state.unnotified():
        rec = state.record(day)
        folder = config.output / day.isoformat()
        if rec is None or not folder.is_dir():
            state.mark_notified(day)  # pruned meanwhile: nothing left to send
            continue
        subject = (f"[msgtrack audit] {day}: {rec.findings} finding(s)"
                   + (f", max {rec.max_severity}" if rec.max_severity else "")
                   + ("" if rec.status == "complete" else ", INCOMPLETE"))
        try:
            send_report(config.notify, folder, day.isoformat(), subject)
        except NotifyError as exc:
            result.notify_errors.append(f"{day}: {exc}")
            log.warning("notification for %s failed (retried next run): %s", day, exc)
            break  # the same server will refuse the next day too
        state.mark_notified(day)
        result.notified.append(day)


# --------------------------------------------------------------------------- one day


class _Runner:
    def __init__(self, config: AuditConfig, state: AuditState,
                 report_problem: Callable[[Problem], None] | None,
                 first_day: date | None) -> None:
        self.config = config
        self.state = state
        self.report_problem = report_problem
        self.first_day = first_day
        self._remote: tuple[Connection, Plan] | None = None
        # Relative log folders appear in outputs as written in the config, so outputs do
        # not depend on where the config lives.
        self._display = [(f.path, f.display) for f in config.source.logs
                         if not os.path.isabs(f.display)]

    # -- sources -------------------------------------------------------------------

    def display(self, text: str) -> str:
        for resolved, shown in self._display:
            if text.startswith(resolved) and text[len(resolved):len(resolved) + 1] in (
                    "", os.sep, "/", ":"):
                return shown + text[len(resolved):]
        return text

    def _shown(self, ev: TrackingEvent) -> TrackingEvent:
        shown = self.display(ev.origin)
        return ev if shown == ev.origin else dataclasses.replace(ev, origin=shown)

    def events(self, start: datetime, end: datetime, report: RunReport
               ) -> Iterator[TrackingEvent]:
        query = Query(start=start, end=end)
        if self.config.source.logs:
            files = log_files(self.config, start, end, report, self.display)
            events = open_events(files, [], None, query, report)
            yield from (map(self._shown, events) if self._display else events)
        else:
            if self._remote is None:
                self._remote = remote_source(self.config)
            yield from open_events([], [], self._remote, query, report)

    def source_info(self) -> dict[str, Any]:
        src = self.config.source
        if src.logs:
            return {"kind": "logs", "folders": [f.display for f in src.logs]}
        return {"kind": "remote", "profile": src.profile or "",
                "servers": list(src.servers), "all_servers": src.all_servers}

    # -- the day -------------------------------------------------------------------

    def run_day(self, day: date) -> DayOutcome:
        cfg = self.config
        start, end = day_window(day, cfg.tz)
        report = RunReport(on_problem=self.report_problem)
        folder = outputs.DayFolder(cfg.output, day)
        facts = new_facts(cfg)
        stats = DayStats()
        ctx = RuleContext(day, start, end, cfg, facts, history=self.state, report=report)
        rules = build_rules(ctx)
        order = OrderStats()
        try:
            ordered = ordered_unique(self.events(start, end, report), order,
                                     spill_dir=folder.path)

            def watched() -> Iterator[TrackingEvent]:
                for ev in ordered:
                    stats.feed(ev)
                    facts.feed(ev)
                    for rule in rules:
                        rule.feed(ev)
                    yield ev

            gz = cfg.events_format == "csv.gz"
            events_name = "events.csv.gz" if gz else "events.csv"
            # utf-8-sig: Excel reads non-ASCII subjects right; formula-safe cells.
            with folder.open_text(events_name, gz=gz, encoding="utf-8-sig") as fh:
                write(watched(), "csv", fh, SinkOptions())
            findings, rule_status = finish_rules(rules, ctx)
            with folder.open_text("findings.csv", encoding="utf-8-sig") as fh:
                write_rows((f.row() for f in findings), "csv", fh, columns=FINDING_COLUMNS)
            result = DayResult(day, cfg, start, end, stats, findings, rule_status, report,
                               order.duplicates, self.source_info(), self.display)
            names = [events_name, "findings.csv",
                     *(f"report.{f}" for f in cfg.report_formats), "summary.json"]
            title, sections = document(result, names)
            if "md" in cfg.report_formats:
                folder.write_text("report.md", render_markdown(title, sections))
            if "html" in cfg.report_formats:
                folder.write_text("report.html", render_html(title, sections))
            folder.write_text("summary.json", dumps(summary(result, dict(folder.digests))))
        except BaseException:
            folder.discard()
            raise

        if self.state.record(day) is not None:
            self.state.mark_pending(day)
        final = outputs.publish(folder)
        outputs.crashpoint("before-commit")

        fail_rank = SEVERITY_RANK[cfg.fail_severity]
        failing = sum(1 for f in findings if f.rank >= fail_rank)
        top = max_severity(findings)
        notify_rank = SEVERITY_RANK[cfg.notify.min_severity]
        needs_mail = cfg.notify.enabled and (
            any(f.rank >= notify_rank for f in findings)
            or (cfg.notify.on_incomplete and not result.complete))
        problems = sum(report.problem_counts.values())
        self.state.record_day(
            DayRecord(day, result.status, start.isoformat(), end.isoformat(), stats.rows,
                      order.duplicates, len(findings), top, problems,
                      outputs=dict(folder.digests), notify=needs_mail),
            seen=dict(facts.seen), senders=facts.sender_counts, first_day=self.first_day)
        outputs.crashpoint("committed")
        return DayOutcome(day, result.status, stats.rows, order.duplicates, len(findings),
                          top, failing, final, problems)


# --------------------------------------------------------------------------- sources


def _name_time(name: str) -> datetime | None:
    m = _NAME_TIME.match(name)
    if not m:
        return None
    try:
        day = datetime.strptime(m.group(1), "%Y%m%d").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return day + timedelta(hours=int(m.group(2) or 0))


def log_files(config: AuditConfig, start: datetime, end: datetime, report: RunReport,
              display: Callable[[str], str] = lambda s: s) -> list[str]:
    """The log files that can hold events of ``[start, end)``, and a coverage check.

    A file whose name says it was created after the window (plus a margin), or that was
    last written before it, cannot hold the window's events and is not read. A folder
    whose oldest log starts after the window start may have lost those hours to Exchange's
    log retention (or they were never copied): that is a warning in the report.
    """
    from msgtrack.sources.logfile import expand_paths

    chosen: list[str] = []
    oldest: dict[str, datetime] = {}
    found: list[str] = []
    for source in config.source.logs:
        files = list(expand_paths([source.path], report))
        if not files and os.path.exists(source.path):
            # An empty folder is most often a share that is not mounted: never "clean".
            report.problem("source", source.display, "no message tracking logs "
                           "(MSGTRK*.LOG) here: is the share mounted?")
        found += files
    for path in found:
        name = os.path.basename(path)
        created = _name_time(name)
        folder = os.path.dirname(path)
        if created is not None:
            oldest[folder] = min(created, oldest.get(folder, created))
            if created >= end + FILE_MARGIN:
                report.count("files-outside-window")
                continue
        try:
            mtime = datetime.fromtimestamp(os.stat(path).st_mtime, timezone.utc)
        except OSError:
            mtime = None
        # A last write before the file's own creation hour means the copy did not keep
        # the time: then the mtime says nothing and the file is read.
        if (mtime is not None and mtime < start - FILE_MARGIN
                and (created is None or mtime >= created)):
            report.count("files-outside-window")
            continue
        chosen.append(path)
    for folder, first in sorted(oldest.items()):
        if first > start:
            # A warning, not a problem: a retry cannot bring deleted logs back, and a
            # server that started logging later has nothing to add.
            report.warn(f"{display(folder)}: the oldest log here starts "
                        f"{first:%Y-%m-%dT%H:%M}Z, after the window start "
                        f"{start:%Y-%m-%dT%H:%M}Z; if the server ran before then, those hours "
                        "were deleted (log retention) or not copied")
    return chosen


def remote_source(config: AuditConfig) -> tuple[Connection, Plan]:
    """(Connection, Plan) from the profile, by the same rules as ``search --profile``,
    never prompting: a nightly job has no terminal."""
    from msgtrack.config import load_profile
    from msgtrack.credentials import get_password
    from msgtrack.sources.remote import Connection, Plan

    src = config.source
    profile = load_profile(src.profile)
    auth = (profile.auth or "kerberos").lower()
    conn = Connection(
        auth=auth, port=profile.port, ssl=bool(profile.ssl), ca_bundle=profile.ca_bundle,
        insecure=bool(profile.insecure), username=profile.username,
        password=get_password(profile.username, auth, interactive=False),
        connection_timeout=src.connect_timeout, operation_timeout=src.operation_timeout,
        culture=profile.culture or "en-US", spn_host=profile.spn_host)
    if conn.insecure:
        log.warning("profile %s: insecure = true: the server certificate is NOT validated",
                    profile.name)
    plan = Plan(
        servers=tuple(src.servers or profile.servers),
        all_servers=src.all_servers or (not src.servers and profile.all_servers),
        connect=profile.connect, slice=timedelta(hours=src.slice_hours), cap=src.cap,
        parallel=src.parallel or profile.parallel or 4, retries=src.retries,
        workers=profile.workers or "auto")
    return conn, plan


__all__: Sequence[str] = ("AuditOutcome", "DayOutcome", "log_files", "remote_source",
                          "run_audit")
