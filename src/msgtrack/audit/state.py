"""The checkpoint and history in one SQLite file, and the run lock.

What is stored (``audit.sqlite`` in the output folder):

* ``meta``: the time zone days are cut in, and ``first_day`` (the first audited day;
  every day from it to yesterday is either recorded or still to run).
* ``days``: one row per audited day: status (``complete``, ``incomplete``, or
  ``pending`` while its outputs are being replaced), rows, findings, the SHA-256 of
  each output, whether the notification went out.
* ``seen``: per day, which (client IP | connector, auth method) pairs submitted, for
  the new-submitter rule.
* ``senders``: per day, how many messages each sender sent, for volume-spike.

A day's row and its history rows change together in one transaction
(:meth:`AuditState.record_day`), and only after the day's outputs are on disk. SQLite
runs with ``synchronous=FULL`` so a committed transaction survives a power cut.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

from msgtrack.errors import ConfigError, LockedError

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS days (
    day TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    start_utc TEXT NOT NULL,
    end_utc TEXT NOT NULL,
    rows INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    findings INTEGER NOT NULL DEFAULT 0,
    max_severity TEXT NOT NULL DEFAULT '',
    problems INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    outputs TEXT NOT NULL DEFAULT '{}',
    notify INTEGER NOT NULL DEFAULT 0,
    notified INTEGER NOT NULL DEFAULT 0,
    recorded_utc TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS seen (
    day TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL, method TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (day, kind, value, method)
);
CREATE TABLE IF NOT EXISTS senders (
    day TEXT NOT NULL, sender TEXT NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (day, sender)
);
"""


@dataclass(frozen=True)
class DayRecord:
    day: date
    status: str  #: complete | incomplete | pending
    start_utc: str
    end_utc: str
    rows: int = 0
    duplicates: int = 0
    findings: int = 0
    max_severity: str = ""
    problems: int = 0
    attempts: int = 0
    outputs: Mapping[str, str] | None = None
    notify: bool = False
    notified: bool = False


class AuditState:
    """The checkpoint database. Use as a context manager; one instance per run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.db = sqlite3.connect(path, isolation_level=None, timeout=5)
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{path}: checkpoint database unusable: {exc}") from None
        version = self.meta("schema")
        if version is None:
            self.set_meta("schema", SCHEMA_VERSION)
        elif version != SCHEMA_VERSION:
            raise ConfigError(f"{path}: checkpoint schema {version}, this msgtrack reads "
                              f"{SCHEMA_VERSION}")

    def __enter__(self) -> AuditState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- meta ----------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def check_zone(self, zone: str) -> None:
        """Refuse to cut days in another zone than the recorded ones (gaps/overlaps)."""
        known = self.meta("zone")
        if known is None:
            self.set_meta("zone", zone)
        elif known != zone and self.statuses():
            raise ConfigError(
                f"{self.path}: days so far were cut in time zone {known!r}, the config now "
                f"says {zone!r}; the windows would overlap or leave a gap",
                hint="set the zone back, or point 'output' at a new folder")
        else:
            self.set_meta("zone", zone)

    @property
    def first_day(self) -> date | None:
        value = self.meta("first_day")
        return date.fromisoformat(value) if value else None

    # -- days ----------------------------------------------------------------------

    def statuses(self) -> dict[date, str]:
        return {date.fromisoformat(d): s for d, s in
                self.db.execute("SELECT day, status FROM days ORDER BY day")}

    def record(self, day: date) -> DayRecord | None:
        row = self.db.execute(
            "SELECT day, status, start_utc, end_utc, rows, duplicates, findings, max_severity,"
            " problems, attempts, outputs, notify, notified FROM days WHERE day = ?",
            (day.isoformat(),)).fetchone()
        if row is None:
            return None
        return DayRecord(date.fromisoformat(row[0]), row[1], row[2], row[3], row[4], row[5],
                         row[6], row[7], row[8], row[9], json.loads(row[10]), bool(row[11]),
                         bool(row[12]))

    def mark_pending(self, day: date) -> None:
        """Before a recorded day's folder is replaced: a crash from here re-runs it."""
        with self.transaction() as db:
            db.execute("UPDATE days SET status = 'pending' WHERE day = ?", (day.isoformat(),))

    def record_day(self, record: DayRecord, *, seen: Mapping[tuple[str, str, str], int],
                   senders: Mapping[str, int], first_day: date | None = None) -> None:
        """The day's row and history, replacing any earlier run of it, in one transaction."""
        d = record.day.isoformat()
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self.transaction() as db:
            previous = db.execute("SELECT attempts FROM days WHERE day = ?", (d,)).fetchone()
            attempts = (previous[0] if previous else 0) + 1
            db.execute("DELETE FROM seen WHERE day = ?", (d,))
            db.execute("DELETE FROM senders WHERE day = ?", (d,))
            db.executemany("INSERT INTO seen (day, kind, value, method, count) "
                           "VALUES (?, ?, ?, ?, ?)",
                           ((d, k, v, m, n) for (k, v, m), n in sorted(seen.items())))
            db.executemany("INSERT INTO senders (day, sender, count) VALUES (?, ?, ?)",
                           ((d, s, n) for s, n in sorted(senders.items())))
            db.execute(
                "INSERT OR REPLACE INTO days (day, status, start_utc, end_utc, rows, duplicates,"
                " findings, max_severity, problems, attempts, outputs, notify, notified,"
                " recorded_utc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                (d, record.status, record.start_utc, record.end_utc, record.rows,
                 record.duplicates, record.findings, record.max_severity, record.problems,
                 attempts, json.dumps(dict(record.outputs or {}), sort_keys=True),
                 int(record.notify), now))
            if first_day is not None and self.first_day is None:
                self.set_meta("first_day", first_day.isoformat())

    def mark_notified(self, day: date) -> None:
        with self.transaction() as db:
            db.execute("UPDATE days SET notified = 1 WHERE day = ?", (day.isoformat(),))

    def unnotified(self) -> list[date]:
        return [date.fromisoformat(r[0]) for r in self.db.execute(
            "SELECT day FROM days WHERE notify = 1 AND notified = 0 AND status != 'pending' "
            "ORDER BY day")]

    def prune_history(self, before: date) -> None:
        """Forget days (and their history) older than ``before``; move first_day up."""
        b = before.isoformat()
        with self.transaction() as db:
            for table in ("days", "seen", "senders"):
                db.execute(f"DELETE FROM {table} WHERE day < ?", (b,))  # noqa: S608
            first = self.first_day
            if first is not None and first < before:
                self.set_meta("first_day", b)

    # -- history -------------------------------------------------------------------

    def history_days_before(self, day: date, within: int) -> list[date]:
        """Recorded days in ``[day - within, day)`` (any status but pending)."""
        lo = (day - timedelta(days=within)).isoformat()
        return [date.fromisoformat(r[0]) for r in self.db.execute(
            "SELECT day FROM days WHERE day >= ? AND day < ? AND status != 'pending' "
            "ORDER BY day", (lo, day.isoformat()))]

    def seen_before(self, day: date) -> set[tuple[str, str, str]]:
        """Every (kind, value, method) recorded on a day before ``day``."""
        return {(k, v, m) for k, v, m in self.db.execute(
            "SELECT DISTINCT kind, value, method FROM seen WHERE day < ?", (day.isoformat(),))}

    def sender_history(self, days: Iterable[date], senders: Iterable[str]
                       ) -> dict[str, dict[date, int]]:
        wanted = set(senders)
        keys = [d.isoformat() for d in days]
        out: dict[str, dict[date, int]] = {}
        if not keys or not wanted:
            return out
        marks = ",".join("?" * len(keys))
        for d, sender, count in self.db.execute(
                f"SELECT day, sender, count FROM senders WHERE day IN ({marks})",  # noqa: S608
                keys):
            if sender in wanted:
                out.setdefault(sender, {})[date.fromisoformat(d)] = count
        return out


# --------------------------------------------------------------------------- lock


@contextlib.contextmanager
def run_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive, non-blocking lock on ``path`` for the whole run.

    The kernel drops the lock when the process dies, so a crashed run never blocks the
    next one; a second run while the first is alive fails at once with LockedError.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle: IO[Any] = open(path, "a+")  # noqa: SIM115 - closed in finally
    try:
        try:
            _lock(handle)
        except OSError:
            raise LockedError(f"another audit run holds {path}",
                              hint="wait for it to finish; the lock goes when it exits") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()


def _lock(handle: IO[Any]) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined,unused-ignore]
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
