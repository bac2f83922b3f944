"""The audit run end to end over real MSGTRK files: days, durability, determinism.

Every test reads what the run wrote (the events CSV of each day folder and the SQLite
state) and checks the promise of the issue: every row of the audited days exactly
once, no day skipped, byte-identical re-runs, and a crash at any step leaving either
the old day or the new one.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from msgtrack.audit import outputs
from msgtrack.audit.config import AuditConfig, load_config
from msgtrack.audit.run import run_audit
from msgtrack.audit.state import run_lock
from msgtrack.errors import ExitCode, LockedError, UsageError
from msgtrack.events import TrackingEvent
from tests.test_audit_helpers import event, smtp, write_config, write_logs

UTC = timezone.utc
FILES = {"events.csv", "findings.csv", "report.md", "report.html", "summary.json"}


def at(day: date, hh: int, mm: int = 0, ss: float = 0.0) -> datetime:
    sec = int(ss)
    return datetime(day.year, day.month, day.day, hh, mm, sec,
                    round((ss - sec) * 1_000_000), tzinfo=UTC)


def day_events(day: date, server: str = "EX01") -> list[TrackingEvent]:
    """A day of traffic including both edges of the UTC day and one finding."""
    return [
        event(at(day, 0, 0, 0.0), server_hostname=server),
        smtp(f"{day}T06:30:00.000Z", "04I: ", server_hostname=server),
        smtp(f"{day}T09:00:00.000Z", "07I: ", ip="10.5.5.60", sender="nagios@contoso.com",
             server_hostname=server),
        event(at(day, 12, 0), "DELIVER", "STOREDRIVER", server_hostname=server,
              message_info=f"{day}T11:59:58.000Z;SRV=EX01.contoso.com:TOTAL-DEL=0.420"),
        event(at(day, 23, 59, 59.999), "SEND", "SMTP", server_hostname=server),
    ]


def rows(folder: Path) -> list[tuple[str, ...]]:
    """(Timestamp, EventId, ServerHostname, LogId) of every events row of a day folder."""
    name = "events.csv.gz" if (folder / "events.csv.gz").exists() else "events.csv"
    data = (folder / name).read_bytes()
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
    return [(r["Timestamp"], r["EventId"], r["ServerHostname"], r["LogId"]) for r in reader]


def key(ev: TrackingEvent) -> tuple[str, ...]:
    return (ev.timestamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ev.timestamp.microsecond // 1000:03d}Z",
            ev.event_id, ev.server_hostname, ev.log_id)


def all_rows(out: Path) -> list[tuple[str, ...]]:
    found = []
    for folder in sorted(p for p in out.iterdir() if outputs.DAY_RE.match(p.name)):
        found += rows(folder)
    return found


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def statuses(out: Path) -> dict[str, str]:
    with sqlite3.connect(out / "audit.sqlite") as db:
        return dict(db.execute("SELECT day, status FROM days ORDER BY day"))


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, list[TrackingEvent]]:
    """Logs for 2026-11-20 .. 2026-11-27 on two servers, and a config (UTC days)."""
    events: list[TrackingEvent] = []
    day = date(2026, 11, 20)
    while day <= date(2026, 11, 27):
        events += day_events(day, "EX01") + day_events(day, "EX02")
        day += timedelta(days=1)
    write_logs(tmp_path / "logs", events)
    return write_config(tmp_path / "audit.toml"), events


def cfg_of(path: Path) -> AuditConfig:
    return load_config(path)


def now(day: date, hh: int = 6) -> datetime:
    return at(day, hh)


def expected(events: list[TrackingEvent], first: date, last: date) -> list[tuple[str, ...]]:
    lo, hi = at(first, 0), at(last + timedelta(days=1), 0)
    return sorted(key(e) for e in events if lo <= e.timestamp < hi)


# --------------------------------------------------------------------------- days


def test_first_run_then_three_missed_nights_are_caught_up(site) -> None:
    path, events = site
    cfg = cfg_of(path)
    first = run_audit(cfg, now=now(date(2026, 11, 24)))
    assert [d.day for d in first.days] == [date(2026, 11, 23)]  # backfill_days = 1
    assert first.exit_code == ExitCode.FINDINGS  # cleartext-login is high
    # Nights of the 25th, 26th and 27th missed; the 28th run catches up, oldest first.
    second = run_audit(cfg, now=now(date(2026, 11, 28)))
    assert [d.day for d in second.days] == [date(2026, 11, 24), date(2026, 11, 25),
                                            date(2026, 11, 26), date(2026, 11, 27)]
    assert all(d.status == "complete" and d.rows == 10 for d in second.days)
    out = cfg.output
    assert sorted(all_rows(out)) == expected(events, date(2026, 11, 23), date(2026, 11, 27))
    assert len(all_rows(out)) == len(set(all_rows(out)))
    assert set(statuses(out).values()) == {"complete"}
    assert run_audit(cfg, now=now(date(2026, 11, 28), 9)).days == []  # nothing to do


def test_rerun_of_a_day_is_byte_identical(site, tmp_path: Path) -> None:
    path, _ = site
    path = write_config(tmp_path / "audit.toml", events_format="csv.gz", backfill_days=3)
    cfg = cfg_of(path)
    run_audit(cfg, now=now(date(2026, 11, 26)))
    folder = cfg.output / "2026-11-24"
    before = snapshot(folder)
    assert set(before) == FILES - {"events.csv"} | {"events.csv.gz"}
    assert before["events.csv.gz"][3:8] == b"\0\0\0\0\0"  # gzip: no file name, mtime 0
    run_audit(cfg, now=now(date(2026, 11, 28)))  # later days recorded meanwhile
    again = run_audit(cfg, day=date(2026, 11, 24), now=now(date(2026, 11, 28)))
    assert [d.day for d in again.days] == [date(2026, 11, 24)]
    assert snapshot(folder) == before
    text = b"".join(before.values())
    assert str(tmp_path).encode() not in text  # no absolute paths inside outputs
    assert b"logs/EX01/MSGTRK2026112400-1.LOG:6" in gzip.decompress(before["events.csv.gz"])


def test_dst_days_in_berlin_cover_exactly_23_and_25_hours(tmp_path: Path) -> None:
    edges = []
    for day, hours in ((date(2026, 3, 29), 23), (date(2026, 10, 25), 25)):
        start = datetime.combine(day, datetime.min.time()).replace(
            tzinfo=__import__("zoneinfo").ZoneInfo("Europe/Berlin")).astimezone(UTC)
        end = start + timedelta(hours=hours)
        ms = timedelta(milliseconds=1)
        edges += [(day, event(start - ms)), (day, event(start)), (day, event(end - ms)),
                  (day, event(end)), (day, event(start + (end - start) / 2))]
    write_logs(tmp_path / "logs", [e for _, e in edges])
    for day, hours in ((date(2026, 3, 29), 23), (date(2026, 10, 25), 25)):
        cfg = cfg_of(write_config(tmp_path / "audit.toml", zone="Europe/Berlin",
                                  backfill_days=3, output=f"out-{day}"))
        result = run_audit(cfg, now=at(day + timedelta(days=2), 6))
        assert [d.day for d in result.days] == [day - timedelta(days=1), day,
                                                day + timedelta(days=1)]
        mine = [e for d, e in edges if d == day]
        start, end = mine[1].timestamp, mine[3].timestamp
        assert end - start == timedelta(hours=hours)
        got = rows(cfg.output / day.isoformat())
        assert sorted(got) == sorted(key(e) for e in mine if start <= e.timestamp < end)
        assert len(got) == 3
        summary = (cfg.output / day.isoformat() / "summary.json").read_text()
        assert f'"hours": {hours}' in summary
        # The edge events land in the neighbouring days, once.
        assert key(mine[0]) in rows(cfg.output / (day - timedelta(days=1)).isoformat())
        assert key(mine[3]) in rows(cfg.output / (day + timedelta(days=1)).isoformat())


def test_copies_of_the_same_logs_count_once(site, tmp_path: Path) -> None:
    path, events = site
    shutil.copytree(tmp_path / "logs", tmp_path / "copy")
    cfg = cfg_of(write_config(tmp_path / "audit.toml", ["logs", "copy"]))
    result = run_audit(cfg, now=now(date(2026, 11, 26)))
    assert (result.days[0].rows, result.days[0].duplicates) == (10, 10)
    assert sorted(all_rows(cfg.output)) == expected(events, date(2026, 11, 25),
                                                    date(2026, 11, 25))


def test_incomplete_day_exits_3_and_is_retried(site, tmp_path: Path) -> None:
    path, events = site
    bad = tmp_path / "logs" / "EX01" / "MSGTRK2026112509-1.LOG"
    good = bad.read_bytes()
    bad.write_bytes(good + b"2026-11-25T09:30:00.000Z,not,enough,fields\r\n")
    os.utime(bad, (at(date(2026, 11, 25), 10).timestamp(),) * 2)
    cfg = cfg_of(path)
    problems = []
    result = run_audit(cfg, now=now(date(2026, 11, 26)), report_problem=problems.append)
    assert result.exit_code == ExitCode.INCOMPLETE
    assert result.days[0].status == "incomplete" and problems[0].kind == "bad-line"
    summary = (cfg.output / "2026-11-25" / "summary.json").read_text()
    assert '"status": "incomplete"' in summary and "MSGTRK2026112509-1.LOG:7" in summary
    assert "logs/EX01/MSGTRK2026112509-1.LOG:7" in (cfg.output / "2026-11-25" / "report.md"
                                                    ).read_text()
    bad.write_bytes(good)  # the share came back / the file was fixed
    retry = run_audit(cfg, now=now(date(2026, 11, 27)))
    assert [(d.day, d.status) for d in retry.days] == [(date(2026, 11, 25), "complete"),
                                                       (date(2026, 11, 26), "complete")]
    assert sorted(all_rows(cfg.output)) == expected(events, date(2026, 11, 25),
                                                    date(2026, 11, 26))


def test_an_empty_or_missing_log_folder_makes_the_day_incomplete(site, tmp_path: Path) -> None:
    (tmp_path / "unmounted").mkdir()
    cfg = cfg_of(write_config(tmp_path / "audit.toml", ["logs", "unmounted", "gone"]))
    result = run_audit(cfg, now=now(date(2026, 11, 26)))
    assert result.exit_code == ExitCode.INCOMPLETE
    summary = (cfg.output / "2026-11-25" / "summary.json").read_text()
    assert '"where": "unmounted"' in summary and "is the share mounted?" in summary
    assert '"kind": "bad-file",\n        "where": "gone"' in summary


def test_retention_prunes_old_day_folders(site, tmp_path: Path) -> None:
    path = write_config(tmp_path / "audit.toml", retention_days=2, backfill_days=2)
    cfg = cfg_of(path)
    run_audit(cfg, now=now(date(2026, 11, 24)))
    result = run_audit(cfg, now=now(date(2026, 11, 27)))
    assert result.pruned == [date(2026, 11, 22), date(2026, 11, 23), date(2026, 11, 24)]
    assert sorted(p.name for p in cfg.output.iterdir() if outputs.DAY_RE.match(p.name)) == [
        "2026-11-25", "2026-11-26"]
    with pytest.raises(UsageError):
        run_audit(cfg, day=date(2026, 11, 20), now=now(date(2026, 11, 27)))
    with pytest.raises(UsageError):
        run_audit(cfg, day=date(2026, 11, 27), now=now(date(2026, 11, 27)))  # not over yet


def test_a_second_run_is_refused_while_the_first_holds_the_lock(site) -> None:
    path, _ = site
    cfg = cfg_of(path)
    with run_lock(cfg.output / "audit.lock"), pytest.raises(LockedError) as info:
        run_audit(cfg, now=now(date(2026, 11, 26)))
    assert str(info.value) == f"another audit run holds {cfg.output / 'audit.lock'}"
    assert not (cfg.output / "2026-11-25").exists()


def test_zone_change_is_refused(site, tmp_path: Path) -> None:
    path, _ = site
    run_audit(cfg_of(path), now=now(date(2026, 11, 26)))
    from msgtrack.errors import ConfigError

    with pytest.raises(ConfigError, match="time zone 'UTC'"):
        run_audit(cfg_of(write_config(path, zone="Europe/Berlin")), now=now(date(2026, 11, 27)))


# --------------------------------------------------------------------------- crashes

_RUN = ("import sys; from datetime import datetime; from msgtrack.audit.config import "
        "load_config; from msgtrack.audit.run import run_audit; from msgtrack.audit.days import "
        "parse_day; day = parse_day(sys.argv[3]) if len(sys.argv) > 3 else None; "
        "run_audit(load_config(sys.argv[1]), day=day, now=datetime.fromisoformat(sys.argv[2]))")


def run_killed(path: Path, when: datetime, crash: str, day: str | None = None) -> int:
    """Run the audit in a child process that dies (os._exit) at ``crash``."""
    env = {**os.environ, outputs.CRASH_ENV: crash}
    argv = [sys.executable, "-c", _RUN, str(path), when.isoformat()] + ([day] if day else [])
    return subprocess.run(argv, env=env, capture_output=True, timeout=60).returncode


@pytest.mark.parametrize("crash", ["outputs-written", "new-in-place", "before-commit"])
def test_crash_on_a_new_day_leaves_no_gap_and_no_duplicate(site, crash: str) -> None:
    path, events = site
    cfg = cfg_of(path)
    run_audit(cfg, now=now(date(2026, 11, 25)))  # 2026-11-24 recorded
    assert run_killed(path, now(date(2026, 11, 27)), crash) == 86
    assert statuses(cfg.output) == {"2026-11-24": "complete"}  # state did not advance
    folder = cfg.output / "2026-11-25"
    assert not folder.exists() or set(os.listdir(folder)) == FILES  # never half a day
    result = run_audit(cfg, now=now(date(2026, 11, 27)))
    assert [d.day for d in result.days] == [date(2026, 11, 25), date(2026, 11, 26)]
    assert sorted(all_rows(cfg.output)) == expected(events, date(2026, 11, 24),
                                                    date(2026, 11, 26))
    assert not [p for p in os.listdir(cfg.output) if p.startswith(".")]


@pytest.mark.parametrize("crash", ["old-moved-aside", "new-in-place", "before-commit"])
def test_crash_while_replacing_a_day_leaves_the_old_or_the_new_one(site, tmp_path: Path,
                                                                   crash: str) -> None:
    path, events = site
    cfg = cfg_of(path)
    run_audit(cfg, now=now(date(2026, 11, 26)))
    folder = cfg.output / "2026-11-25"
    old = snapshot(folder)
    late = event(at(date(2026, 11, 25), 18), server_hostname="EX03")  # a share came back
    write_logs(tmp_path / "logs", [late])
    assert run_killed(path, now(date(2026, 11, 26)), crash, "2026-11-25") == 86
    outputs.recover(cfg.output)
    now_there = snapshot(folder)
    assert now_there == old or key(late) in rows(folder)  # the old day or the new one
    assert set(now_there) == FILES
    assert statuses(cfg.output)["2026-11-25"] == "pending"  # so the next run redoes it
    result = run_audit(cfg, now=now(date(2026, 11, 27)))
    assert date(2026, 11, 25) in [d.day for d in result.days]
    assert sorted(all_rows(cfg.output)) == sorted(
        expected(events, date(2026, 11, 25), date(2026, 11, 26)) + [key(late)])
    assert set(statuses(cfg.output).values()) == {"complete"}


# --------------------------------------------------------------------------- ordering, history


def test_spilled_sort_equals_the_in_memory_sort_and_drops_duplicates(tmp_path: Path) -> None:
    import random
    from dataclasses import replace

    from msgtrack.audit.ordering import OrderStats, ordered_unique, sort_key

    base = [event(at(date(2026, 11, 25), 10, i % 7, 0.5), server_hostname=f"EX0{i % 3}")
            for i in range(50)]
    evs = [replace(e, origin=f"/logs/a.LOG:{i + 1}") for i, e in enumerate(base)]
    copies = [replace(e, origin=f"/copy/a.LOG:{i + 1}") for i, e in enumerate(base[:10])]
    shuffled = evs + copies
    random.Random(7).shuffle(shuffled)
    stats = OrderStats()
    got = list(ordered_unique(shuffled, stats, chunk=8, spill_dir=tmp_path))
    assert (stats.spilled_chunks, stats.duplicates, stats.read) == (7, 10, 60)
    # The same as sorting everything in memory and keeping the first of each dedupe key.
    from msgtrack.audit.ordering import dedupe_key

    seen: set[object] = set()
    want = []
    for e in sorted(shuffled, key=sort_key):
        if (e.timestamp, dedupe_key(e)) not in seen:
            seen.add((e.timestamp, dedupe_key(e)))
            want.append(e.origin)
    assert [e.origin for e in got] == want
    assert sorted(e.log_id for e in got) == sorted(e.log_id for e in base)
    assert list(tmp_path.iterdir()) == []  # spill files removed


def test_volume_spike_uses_the_history_kept_in_sqlite(tmp_path: Path) -> None:
    events = []
    day = date(2026, 11, 10)
    for n in range(8):
        events += [smtp(f"{day + timedelta(days=n)}T09:00:{i:02d}.000Z", "04I: ",
                        sender="intern@contoso.com") for i in range(2)]
    events += [smtp(f"2026-11-18T10:{i // 60:02d}:{i % 60:02d}.000Z", "04I: ",
                    sender="intern@contoso.com") for i in range(60)]
    write_logs(tmp_path / "logs", events)
    cfg = cfg_of(write_config(tmp_path / "audit.toml", backfill_days=8, extra=(
        "\n[rules.volume-spike]\nmin_history_days = 7\nmin_count = 50\n")))
    first = run_audit(cfg, now=now(date(2026, 11, 18)))
    assert [d.findings for d in first.days] == [0] * 8
    spike = run_audit(cfg, now=now(date(2026, 11, 19)))
    text = (cfg.output / "2026-11-18" / "findings.csv").read_text(encoding="utf-8-sig")
    assert spike.days[0].findings == 1 and "volume-spike" in text
    assert "60 messages today; median 2 per day over the last 8 recorded day(s)" in text
