"""Streaming reader for IIS W3C logs, keeping ActiveSync requests only.

Columns come from each file's ``#Fields:`` line (IIS rewrites the header when the site
restarts, so a later ``#Fields:`` replaces the earlier one). A line that does not fit is
reported as ``bad-line`` with ``path:line`` and skipped; the rest is still read.

Exchange 2013 and later log every EAS request twice (eas-facts §2.1): on the front-end
site (port 443, ``/Microsoft-Server-ActiveSync/default.eas``) and on the back-end site
(port 444, ``/Microsoft-Server-ActiveSync/Proxy/default.eas``). :class:`Side` picks one
so nothing is counted twice. Exchange 2010 has only the front end.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from functools import cached_property
from pathlib import Path
from types import MappingProxyType

from msgtrack.eas._fast import builder
from msgtrack.eas.query import EasQuery, decode_query
from msgtrack.eas.useragent import UserAgent, decode_user_agent
from msgtrack.errors import InputError
from msgtrack.report import RunReport

log = logging.getLogger(__name__)

EAS_PREFIX = "/microsoft-server-activesync"
BACKEND_PORT = 444

#: W3C columns with an attribute on EasRequest; everything else goes to ``extra``.
_KNOWN = frozenset({
    "date", "time", "s-ip", "cs-method", "cs-uri-stem", "cs-uri-query", "s-port",
    "cs-username", "c-ip", "cs(User-Agent)", "sc-status", "sc-substatus",
    "sc-win32-status", "time-taken", "s-sitename", "s-computername",
})


class Side(str, Enum):
    FRONTEND = "frontend"
    BACKEND = "backend"
    ALL = "all"


def side_of(uri_stem: str, port: int | None) -> Side:
    """Back end when the request came in on port 444 or through ``/Proxy/``."""
    if port == BACKEND_PORT or "/proxy" in uri_stem.lower():
        return Side.BACKEND
    return Side.FRONTEND


@dataclass(frozen=True)
class EasRequest:
    """One ActiveSync request line from an IIS W3C log."""

    timestamp: datetime  #: aware UTC (W3C date/time are UTC)
    uri_stem: str
    query: EasQuery
    method: str = ""
    uri_query: str = ""  #: as logged
    port: int | None = None
    username: str = ""  #: cs-username, ``""`` for ``-``
    client_ip: str = ""
    server_ip: str = ""
    user_agent: str = ""  #: as logged (spaces are ``+``)
    status: int | None = None
    substatus: int | None = None
    win32_status: int | None = None
    time_taken: int | None = None
    site: str = ""  #: s-sitename, when logged
    computer: str = ""  #: s-computername, when logged
    extra: Mapping[str, str] = field(default_factory=dict)
    origin: str = field(default="", compare=False)  #: ``path:line``

    @property
    def cmd(self) -> str:
        return self.query.cmd

    @property
    def device_id(self) -> str:
        return self.query.device_id

    @property
    def device_type(self) -> str:
        return self.query.device_type

    @property
    def user(self) -> str:
        """The account: the query's ``User`` (what the device sent), else cs-username."""
        return self.query.user or self.username

    @property
    def account(self) -> str:
        """The user without a ``DOMAIN\\`` prefix, for grouping and mapping."""
        return self.user.rsplit("\\", 1)[-1]

    @property
    def side(self) -> Side:
        return side_of(self.uri_stem, self.port)

    @property
    def server(self) -> str:
        """The server that logged the line: s-computername when logged, else s-ip."""
        return self.computer or self.server_ip

    @property
    def protocol_version(self) -> str:
        """``14.1`` from the base64 version byte or the ``V`` Log token; ``""`` if unknown."""
        return self.query.protocol_version or self.query.log.protocol_version

    @property
    def succeeded(self) -> bool:
        """HTTP 200 and no ``Error:`` token in the Log data."""
        return self.status == 200 and not self.query.log.errors

    @cached_property
    def ua(self) -> UserAgent:
        return decode_user_agent(self.user_agent)


def iter_log_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files as given, plus every ``*.log`` under a directory, in a stable order."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".log")
        elif path.is_file():
            files.append(path)
        else:
            raise InputError("no such file or directory", path=str(path))
    return files


def read_iis(paths: Iterable[str | os.PathLike[str]], report: RunReport, *,
             side: Side | str = Side.FRONTEND) -> Iterator[EasRequest]:
    """Stream the ActiveSync requests of IIS W3C logs (files or directories).

    Missing paths raise :class:`InputError` at once; bad lines are reported as they are
    reached. ``side`` keeps front-end lines, back-end lines, or ``all``.
    """
    files = iter_log_files(paths)
    return _read_files(files, report, Side(side))


def _read_files(files: list[Path], report: RunReport, side: Side) -> Iterator[EasRequest]:
    other_side = 0
    kept = 0
    for path in files:
        for item in _read_file(path, report, side):
            if item is None:
                other_side += 1
            else:
                kept += 1
                yield item
    if other_side:
        report.count("iis-other-side", other_side)
    if kept == 0 and other_side and side is not Side.ALL:
        report.warn(f"all {other_side} ActiveSync lines were on the other side; "
                    f"try --side {'backend' if side is Side.FRONTEND else 'frontend'}")


def _int(text: str, column: str) -> int | None:
    if text == "-":
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{column} is not a number: {text!r}") from None


_new_request = builder(EasRequest)
_NO_EXTRA: Mapping[str, str] = MappingProxyType({})


class _Layout:
    """Column positions from one ``#Fields:`` line; builds requests from split lines."""

    def __init__(self, names: list[str]) -> None:
        self.width = len(names)
        pos = {n: i for i, n in enumerate(names)}
        self.missing = sorted({"date", "time", "cs-uri-stem"} - pos.keys())
        get = pos.get
        self.date, self.time, self.stem = get("date", 0), get("time", 0), get("cs-uri-stem", 0)
        text = (("method", "cs-method"), ("uri_query", "cs-uri-query"),
                ("username", "cs-username"), ("client_ip", "c-ip"), ("server_ip", "s-ip"),
                ("user_agent", "cs(User-Agent)"), ("site", "s-sitename"),
                ("computer", "s-computername"))
        numbers = (("port", "s-port"), ("status", "sc-status"), ("substatus", "sc-substatus"),
                   ("win32_status", "sc-win32-status"), ("time_taken", "time-taken"))
        #: (attribute, position) for the text columns this file has
        self.text = tuple((attr, pos[col]) for attr, col in text if col in pos)
        #: (attribute, column, position) for the number columns this file has
        self.numbers = tuple((attr, col, pos[col]) for attr, col in numbers if col in pos)
        self.extra = tuple((n, i) for n, i in pos.items() if n not in _KNOWN)
        self._dates: dict[str, tuple[int, int, int]] = {}
        self._last: tuple[str, str, datetime] | None = None

    def timestamp(self, date: str, clock: str) -> datetime:
        last = self._last
        if last is not None and last[0] == clock and last[1] == date:
            return last[2]  # busy logs repeat the same second many times
        ymd = self._dates.get(date)
        try:
            if ymd is None:
                if len(date) != 10 or date[4] != "-" or date[7] != "-":
                    raise ValueError
                ymd = self._dates[date] = (int(date[:4]), int(date[5:7]), int(date[8:10]))
            if len(clock) < 8 or clock[2] != ":" or clock[5] != ":":
                raise ValueError
            value = datetime(*ymd, int(clock[:2]), int(clock[3:5]), int(clock[6:8]),
                             tzinfo=timezone.utc)
        except ValueError:
            raise ValueError(f"bad date/time {date!r} {clock!r}") from None
        self._last = (clock, date, value)
        return value

    def build(self, parts: list[str], origin: str) -> EasRequest:
        values: dict[str, object] = {}
        for attr, i in self.text:
            value = parts[i]
            if value != "-":
                values[attr] = value
        for attr, column, i in self.numbers:
            values[attr] = _int(parts[i], column)
        try:
            query = decode_query(values.get("uri_query", ""))  # type: ignore[arg-type]
        except ValueError as exc:
            raise ValueError(f"cs-uri-query: {exc}") from None
        extra = {n: parts[i] for n, i in self.extra} if self.extra else _NO_EXTRA
        return _new_request(timestamp=self.timestamp(parts[self.date], parts[self.time]),
                            uri_stem=parts[self.stem], query=query, extra=extra, origin=origin,
                            **values)


def _read_file(path: Path, report: RunReport, side: Side) -> Iterator[EasRequest | None]:
    """Yield requests, and None for each EAS line dropped by ``side`` (for the count)."""
    name = str(path)
    lines = eas = 0
    layout: _Layout | None = None
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if line[:1] == "#":
                if line.startswith("#Fields:"):
                    layout = _Layout(line[8:].split())
                    if layout.missing:
                        report.problem("bad-file", name,
                                       f"#Fields: lacks {', '.join(layout.missing)}")
                        return
                continue
            line = line.rstrip("\r\n")
            if not line:
                continue
            lines += 1
            if layout is None:
                report.problem("bad-file", name, f"line {lineno}: data before any #Fields: line; "
                               "not an IIS W3C log")
                return
            parts = line.split(" ")
            if len(parts) != layout.width:
                report.problem("bad-line", f"{name}:{lineno}",
                               f"expected {layout.width} fields, found {len(parts)}")
                continue
            if parts[layout.stem][:28].lower() != EAS_PREFIX:
                continue
            eas += 1
            try:
                request = layout.build(parts, f"{name}:{lineno}")
            except ValueError as exc:
                report.problem("bad-line", f"{name}:{lineno}", str(exc))
                continue
            if side is not Side.ALL and request.side is not side:
                yield None
                continue
            yield request
    report.count("iis-lines", lines)
    report.count("iis-activesync", eas)
