"""Offline reader for message tracking log files (``MSGTRK*.LOG``, Exchange 2007-2019).

``read_logs(paths, report)`` takes files, directories (walked recursively) and glob
patterns, and yields one :class:`~msgtrack.events.TrackingEvent` per data line, in a
deterministic order (inputs as given, each directory or glob sorted by path).

* **Names.** In a directory or a glob, only ``MSGTRK``/``MSGTRKM``/``MSGTRKMA``/
  ``MSGTRKMD``/``MSGTRKMS`` + 8 or 10 digits + ``-N.LOG`` are read (any case); other
  names are skipped quietly and counted as ``skipped-files``. A file named explicitly is
  read whatever its name. Either way a file must prove to be a tracking log: a
  ``#Fields:`` header with ``date-time`` and ``event-id`` before its first data line,
  and no ``#Log-type:`` other than ``Message Tracking Log``. Otherwise it is reported
  (``bad-file``) and nothing of it is used.
* **Columns** come from each file's own ``#Fields:`` line (21, 26, 27, 30 or any other
  list); a later ``#Fields:`` line switches the schema from that line on. Columns msgtrack
  does not know go to ``event.extra``.
* **Bad lines** (wrong field count, bad timestamp or integer, broken quoting, invalid
  UTF-8) are reported as ``bad-line`` with ``path:line``, counted and skipped. A last
  line without a line terminator is a line still being written: it is skipped without a
  problem and counted as ``partial-lines``.
* **Line breaks.** Exchange writes CR and LF inside a value as the two-character texts
  ``\\r`` and ``\\n`` and does not escape backslashes. Its own log reader (CsvRowBuffer /
  CsvDecoder, 2013 CU23) hands those texts back unchanged, so Get-MessageTrackingLog
  returns them as written. The reader keeps them verbatim too: turning them back would be
  ambiguous (``EX01\\relay`` is a connector name) and would differ from the cmdlet.
* **Memory** stays flat: files are streamed line by line, never read whole.

Counters in ``report.counts``: ``files``, ``lines`` (physical lines read), ``events``,
``skipped-files``, ``partial-lines``, ``blank-lines``.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import io
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from typing import IO, Any, cast

from msgtrack import decode
from msgtrack.events import DEFERRED, FIELD_BY_COLUMN, TEXT_FIELDS, TrackingEvent, custom_data_from_text
from msgtrack.report import RunReport

#: File names Exchange gives tracking logs (tracking-facts §3.1).
LOG_NAME_RE = re.compile(r"MSGTRK(?:MA|MD|MS|M)?(?:\d{8}|\d{10})-\d+\.LOG\Z", re.IGNORECASE)
LOG_TYPE = "Message Tracking Log"
REQUIRED_COLUMNS = ("date-time", "event-id")

# One recipient list can be long (EXPAND of a large group): csv's default limit of
# 128 KiB per field would reject real lines. The line is in memory anyway.
_FIELD_SIZE_LIMIT = 64 * 1024 * 1024
_GLOB_MAGIC = re.compile(r"[*?[]")
# open()'s buffer is the file system's block size (4 KiB here, as on most): a read()
# system call every five lines of a log. 64 KiB makes a 10 MB file 160 calls instead of
# 2,500: iterating the lines of the benchmark's 100k rows took 0.024 s instead of 0.048.
_READ_BUFFER = 64 * 1024
_BOM = b"\xef\xbb\xbf"
# The feeder replaces an unusable line by a one-field line "<_SKIP><reason code>", so the
# csv reader stays in step with the file and the reason travels with the line (even when
# a broken quoted value on an earlier line swallows it).
_SKIP = "\x1amsgtrack-skip:"
_PARTIAL_LINE = _SKIP + "partial\r\n"
_QUOTES_LINE = _SKIP + "quotes\r\n"
_SKIP_REASONS = {"quotes": "broken quoting: odd number of '\"'"}

Builder = Callable[[list[str], "list[str] | None", str], TrackingEvent]


def _debug(message: str, *args: object) -> None:
    # logging is not imported for this: until something imports it to configure it
    # (msgtrack --debug does) there is no handler, and a debug record goes nowhere. Not
    # loading it saves every run part of its start-up.
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger(__name__).debug(message, *args)


def is_log_name(name: str) -> bool:
    """True for ``MSGTRK2026112508-1.LOG``-style names (case-insensitive)."""
    return LOG_NAME_RE.match(name) is not None


def expand_paths(paths: Iterable[str | os.PathLike[str]], report: RunReport) -> Iterator[str]:
    """Files to read, in order: explicit files as given, directories and globs sorted.

    Directories are walked recursively; in them (and in glob matches) only tracking-log
    names count, others are counted as ``skipped-files``. A path that does not exist or
    a glob that matches nothing is reported as ``bad-file``. A file reached twice is
    read once.
    """
    seen: set[str] = set()

    def once(path: str) -> bool:
        key = os.path.realpath(path)
        if key in seen:
            return False
        seen.add(key)
        return True

    def unreadable(exc: OSError) -> None:
        report.problem("bad-file", str(exc.filename), exc.strerror or str(exc))

    def walk(top: str) -> Iterator[str]:
        found = 0
        for dirpath, dirnames, filenames in os.walk(top, onerror=unreadable):
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if not is_log_name(name):
                    report.count("skipped-files")
                    _debug("skipped %s: not a tracking-log name", path)
                elif once(path):
                    found += 1
                    yield path
        if not found:
            report.warn(f"{top}: no message tracking logs (MSGTRK*.LOG) found")

    for item in paths:
        text = os.fspath(item)
        if _GLOB_MAGIC.search(text) and not os.path.exists(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                report.problem("bad-file", text, "no file matches this pattern")
            skipped = 0
            for match in matches:
                if os.path.isdir(match):
                    yield from walk(match)
                elif not is_log_name(os.path.basename(match)):
                    skipped += 1
                elif once(match):
                    yield match
            if skipped:
                report.count("skipped-files", skipped)
                if skipped == len(matches):
                    report.warn(f"{text}: matches no message tracking log names (MSGTRK*.LOG)")
        elif os.path.isdir(text):
            yield from walk(text)
        elif os.path.exists(text):
            if once(text):
                yield text
        else:
            report.problem("bad-file", text, "no such file or directory")


def read_logs(paths: Iterable[str | os.PathLike[str]], report: RunReport) -> Iterator[TrackingEvent]:
    """Events of every tracking log under ``paths`` (files, directories, globs)."""
    for path in expand_paths(paths, report):
        yield from read_log_file(path, report)


def read_log_file(path: str | os.PathLike[str], report: RunReport) -> Iterator[TrackingEvent]:
    """Events of one file, whatever its name; problems go to ``report``."""
    return _FileReader(os.fspath(path), report).events()


# --------------------------------------------------------------------------- schemas


def _direct_fields() -> tuple[tuple[str, str], ...] | None:
    """(attribute, default source) for every TrackingEvent field, if the class is a plain
    dataclass whose __init__ only stores its arguments; None otherwise (then the builder
    calls __init__)."""
    cls: Any = TrackingEvent
    if hasattr(cls, "__post_init__") or hasattr(cls, "__slots__") or not cls.__dataclass_params__.frozen:
        return None
    literals = {(): "()", "": "''", None: "None"}
    out = []
    for fld in dataclasses.fields(cls):
        if not fld.init:
            return None
        if fld.name == "timestamp":
            out.append((fld.name, "None"))
        elif fld.default_factory is dict:
            out.append((fld.name, "{}"))
        elif fld.default is not dataclasses.MISSING and fld.default in literals:
            out.append((fld.name, literals[fld.default]))
        else:
            return None
    return tuple(out)


_DIRECT_FIELDS = _direct_fields()


class Schema:
    """One ``#Fields:`` list, with the row -> TrackingEvent builder compiled for it.

    Also the :class:`~msgtrack.events.RowLayout` of the events it builds.
    """

    def __init__(self, columns: tuple[str, ...], plain_origin: bool = False) -> None:
        self.columns = columns
        self.plain_origin = plain_origin
        self.width = len(columns)
        #: (index, column, kind) of the columns that need converting, for diagnostics.
        self.converted: list[tuple[int, str, str]] = []
        self.extra_columns: list[tuple[int, str]] = []
        #: attribute -> cell index of the fields left for the event to convert on access.
        self.deferred: dict[str, int] = {}
        #: attribute -> cell index of the text fields (all left in the row).
        self.text: dict[str, int] = {}
        self.build: Builder = self._compile()
        self.fill_text: Callable[[dict[str, Any]], None] = self._compile_fill_text()

    def _compile(self) -> Builder:
        # The builder is generated source, as dataclasses and namedtuple do: every
        # field taken straight from its row index, no per-row dict of kwargs and no
        # per-field loop. Only indices and our own attribute names go into the source;
        # column names from the file stay data (_xn).
        direct = _DIRECT_FIELDS is not None
        values: dict[str, str] = {}
        for i, column in enumerate(self.columns):
            fld = FIELD_BY_COLUMN.get(column)
            if fld is None or fld.attr in values or fld.attr in self.deferred or fld.attr in self.text:
                self.extra_columns.append((i, column))
                continue
            cell = f"r[{i}]"
            if direct and fld.attr in DEFERRED:
                # Lists and EventData: converted when (if ever) someone reads them.
                self.deferred[fld.attr] = i
                continue
            if direct and fld.kind == "str":
                self.text[fld.attr] = i  # stored with the others on first access (fill_text)
                continue
            if fld.kind == "str":
                expr = cell
            elif fld.kind == "time":
                expr = f"_ts({cell})"
                if i == 0:  # parse_log_timestamp's dispatch, inlined (one call less)
                    expr = "(_form(t) if len(t) == 24 and t[23] == 'Z' else _ts(t))"
            elif fld.kind == "list":
                expr = f"_split({cell})"
            elif fld.kind == "int":
                expr = f"(_int({cell}) if {cell} else None)"
            else:  # "data"
                expr = f"_data({cell})"
            if fld.kind in ("time", "int"):
                self.converted.append((i, column, fld.kind))
            values[fld.attr] = expr
        if self.extra_columns:
            values["extra"] = self._extra_source()
        namespace: dict[str, Any] = {
            "_TE": TrackingEvent,
            "_new": object.__new__,
            "_set": object.__setattr__,
            "_ts": decode.parse_log_timestamp,
            "_form": decode.parse_log_form,
            "_split": decode.split_list,
            "_data": custom_data_from_text,
            "_int": int,
            "_xn": tuple(c for _, c in self.extra_columns),
            "_layout": self,
        }
        if direct:
            # TrackingEvent's frozen __init__ costs ~5 us an event (one
            # object.__setattr__ per field), more than parsing the CSV line. Filling the
            # instance dict in one go gives an equal event in ~0.8 us; _direct_fields()
            # checks the class still allows it. The line itself goes along (events.py).
            items = [
                f"{attr!r}: {values.get(attr, default)}"
                for attr, default in _DIRECT_FIELDS  # type: ignore[union-attr]
                if attr not in ("origin", "extra") and attr not in self.deferred
                and attr not in TEXT_FIELDS
            ]
            items += ["'origin': origin", "'_row': r", "'_raw': c", "'_layout': _layout"]
            body = (
                "    t = r[0]\n"
                "    e = _new(_TE)\n"
                "    _set(e, '__dict__', {" + ", ".join(items) + "})\n"
                "    return e\n"
            )
        else:
            args = [f"{attr}={expr}" for attr, expr in values.items()]
            body = "    t = r[0]\n    return _TE(" + ", ".join(args + ["origin=origin"]) + ")\n"
        source = "def build(r, c, origin):\n" + body
        exec(compile(source, f"<msgtrack schema {self.width} fields>", "exec"), namespace)
        return namespace["build"]  # type: ignore[no-any-return]

    def _extra_source(self) -> str:
        """The source of an event's ``extra``, from row ``r`` (names in ``_xn``)."""
        if not self.extra_columns:
            return "{}"
        cells = ", ".join(f"r[{i}]" for i, _ in self.extra_columns)
        return f"dict(zip(_xn, ({cells},)))"

    def _compile_fill_text(self) -> Callable[[dict[str, Any]], None]:
        # extra goes with the text fields: a dict less for every event that never uses it.
        items = [f"{attr!r}: " + (f"r[{self.text[attr]}]" if attr in self.text else "''")
                 for attr in TEXT_FIELDS]
        items.append(f"'extra': {self._extra_source()}")
        source = f"def fill_text(d):\n    r = d['_row']\n    d.update({{{', '.join(items)}}})\n"
        namespace: dict[str, Any] = {"_xn": tuple(c for _, c in self.extra_columns)}
        exec(compile(source, f"<msgtrack schema {self.width} fields, text>", "exec"), namespace)
        return namespace["fill_text"]  # type: ignore[no-any-return]

    def diagnose(self, row: list[str]) -> str:
        """Why ``build`` rejected a row of the right width."""
        for i, column, kind in self.converted:
            value = row[i]
            try:
                if kind == "time":
                    decode.parse_log_timestamp(value)
                elif value:
                    int(value)
            except ValueError:
                what = "timestamp" if kind == "time" else "integer"
                return f"bad {what} in {column}: {_short(value)}"
        return "row could not be converted"  # pragma: no cover - defensive


@lru_cache(maxsize=64)
def schema_for(columns: tuple[str, ...], plain_origin: bool = False) -> Schema:
    return Schema(columns, plain_origin)


def _plain_origin(name: str) -> bool:
    """True when ``f"{name}:{lineno}"`` never needs CSV quoting (see RowLayout)."""
    return not any(c in name for c in '",\r\n')


def _short(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


# --------------------------------------------------------------------------- lines


def split_quoted(body: str) -> tuple[list[str], list[str]] | None:
    """(values, cells) of a line holding ``"``, the values as ``csv.reader`` with
    ``strict=True`` reads them; None unless every ``"`` opens or closes a whole quoted
    value (then csv itself reads the line, and reports what is wrong).

    ``body`` is one line without its line end, and holds no CR or LF. The cells are the
    values as the line writes them, which is how csv.writer quotes them (as Exchange
    does: values with ``,`` or ``"``), so a CSV writer can copy them.
    """
    # Split at the quotes first: then every odd piece is (a part of) a quoted value, and
    # the even pieces between are unquoted text that str.split cuts into values. One C
    # call per piece, rather than a search for each quote.
    pieces = body.split('"')
    n = len(pieces)
    if n == 3:
        # One quoted value and no doubled quote: most quoted lines (a subject or a
        # source-context with a comma). The loop below, unrolled.
        head, value, tail = pieces
        if head[-1:] not in ("", ",") or tail[:1] not in ("", ","):
            return None
        values = head.split(",")
        k = len(values) - 1
        values[k] = value
        if tail:
            values += tail[1:].split(",")
        cells = values.copy()
        if "," in value:
            cells[k] = '"' + value + '"'
        return values, cells
    if not n & 1:
        return None  # an odd number of quotes: a value runs on past the line
    values = pieces[0].split(",")
    quoted: list[int] = []
    i = 1
    while i < n:
        if values[-1]:
            return None  # a quote inside an unquoted value
        value = pieces[i]
        i += 1
        while not pieces[i] and i < n - 1:  # a doubled quote inside the value
            value += '"' + pieces[i + 1]
            i += 2
        values[-1] = value
        quoted.append(len(values) - 1)
        after = pieces[i]  # what follows the closing quote: "," and more values, or the end
        if after:
            if after[0] != ",":
                return None  # text after the closing quote
            values += after[1:].split(",")
        i += 1
    cells = values.copy()
    for i in quoted:
        value = values[i]
        if "," in value or '"' in value:
            cells[i] = '"' + value.replace('"', '""') + '"'  # as written: quotes doubled
    return values, cells


def _line_text(raw: bytes) -> str:
    """One line as text for csv; an unusable line becomes a _SKIP line."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A line cut at the end of the file may end inside a character.
        return _PARTIAL_LINE if raw[-1:] != b"\n" else f"{_SKIP}utf8:{exc.start + 1}\r\n"
    # Exchange quotes every value holding '"' and doubles the inner ones, so a sound
    # line has an even number of quotes. An odd one would make csv run on into the
    # next lines and swallow them.
    if line[-1] != "\n" or line.count('"') & 1:
        return _PARTIAL_LINE if line[-1] != "\n" else _QUOTES_LINE
    return line


# A line with a CR inside goes to csv (see _FileReader.events), which refuses a CR in an
# unquoted value; Python 3.10's csv also refuses NUL anywhere.
_NUL_IS_BAD = sys.version_info < (3, 11)


# --------------------------------------------------------------------------- one file


class _StopFile(Exception):
    """The file turned out not to be a tracking log; nothing more of it is read."""


class _FileReader:
    """One file, line by line.

    A line without ``"`` is split on ``,``; a line whose quotes all open or close whole
    values is split by :func:`split_quoted`. Both give what ``csv.reader(strict=True)``
    gives, at a fraction of its cost (it looks at every character in Python's C loop;
    ``str.split`` and ``str.find`` skip to the next separator). Any other line (a CR
    inside, a stray quote, a quoted value that runs on into the next lines) goes to a
    real csv reader, which may then read on into the following lines as it always has.
    """

    def __init__(self, name: str, report: RunReport) -> None:
        self.name = name
        self.report = report
        self.schema: Schema | None = None
        self._pending: list[str] = []
        self._pulled = 0  # lines the csv reader read on from the file
        self._csv: Iterator[list[str]] | None = None

    def _feed(self, fh: IO[bytes]) -> Iterator[str]:
        """The csv reader's input: the line handed over, then the file's next lines."""
        while True:
            while self._pending:
                yield self._pending.pop()
            raw = next(fh, None)
            if raw is None:
                self._csv = None  # this reader is spent
                return
            self._pulled += 1
            yield _line_text(raw)

    def _read_csv(self, fh: IO[bytes], line: str, lineno: int) -> tuple[list[str] | None, int]:
        """csv's reading of ``line`` (+ the lines it runs on into): (row or None, last line)."""
        if self._csv is None:
            if csv.field_size_limit() < _FIELD_SIZE_LIMIT:
                csv.field_size_limit(_FIELD_SIZE_LIMIT)
            self._csv = csv.reader(self._feed(fh), strict=True)
        self._pending.append(line)
        before = self._pulled
        try:
            row = next(self._csv, None)
        except csv.Error as exc:
            last = lineno + self._pulled - before
            self._bad_line(lineno, f"broken quoting: {exc}" + _through(lineno, last))
            return None, last
        last = lineno + self._pulled - before
        if last != lineno:
            self._bad_line(lineno, "broken quoting: a quoted value runs on" + _through(lineno, last))
            return None, last
        return row, last

    def events(self) -> Iterator[TrackingEvent]:
        name, report = self.name, self.report
        try:
            # (A BufferedReader, as with the default buffer; typeshed only says BinaryIO.)
            fh = cast(io.BufferedReader, open(name, "rb", buffering=_READ_BUFFER))  # noqa: SIM115
        except OSError as exc:
            report.problem("bad-file", name, exc.strerror or str(exc))
            return
        with fh:
            report.count("files")
            if fh.read(3) != _BOM:
                fh.seek(0)
            first = fh.peek(1)[:1]
            if first != b"#":
                # Checked before reading lines, so a large binary file is not read whole.
                reason = "empty file" if not first else "no '#' header at the start"
                report.problem("bad-file", name, f"not a message tracking log: {reason}")
                return
            width, build = -1, None
            lineno = 0
            events = 0
            limit = _FIELD_SIZE_LIMIT
            nul_is_bad = _NUL_IS_BAD
            try:
                for raw in fh:
                    lineno += 1
                    try:
                        line = raw.decode()  # UTF-8
                    except UnicodeDecodeError as exc:
                        # A line cut at the end of the file may end inside a character.
                        if raw[-1:] != b"\n":
                            report.count("partial-lines")
                        else:
                            self._bad_line(lineno, f"invalid UTF-8 at byte {exc.start + 1} of the line")
                        continue
                    if line[-1] != "\n":
                        report.count("partial-lines")  # a line still being written
                        continue
                    body = line.rstrip("\r\n")
                    if '"' in body:
                        split = None
                        if "\r" not in body and len(body) < limit and not (nul_is_bad and "\x00" in body):
                            split = split_quoted(body)  # (None for an odd number of quotes)
                        if split is None:
                            # Exchange quotes every value holding '"' and doubles the inner
                            # ones, so a sound line has an even number of quotes.
                            if body.count('"') & 1:
                                self._bad_line(lineno, _SKIP_REASONS["quotes"])
                                continue
                            row, last = self._read_csv(fh, line, lineno)
                            lineno = last
                            if row is None:
                                continue
                            cells = None
                        else:
                            row, cells = split
                    elif "\r" in body or len(body) >= limit or (nul_is_bad and "\x00" in body):
                        row, last = self._read_csv(fh, line, lineno)
                        lineno = last
                        if row is None:
                            continue
                        cells = None
                    elif body:
                        row = cells = body.split(",")
                    else:
                        report.count("blank-lines")
                        continue
                    if len(row) == width:
                        try:
                            event = build(row, cells, f"{name}:{lineno}")  # type: ignore[misc]
                        except (ValueError, OverflowError):
                            if row[0][:1] == "#":  # a directive as wide as the rows
                                if self._directive(",".join(row), lineno):
                                    width, build = self.schema.width, self.schema.build  # type: ignore[union-attr]
                            else:
                                self._bad_line(lineno, self.schema.diagnose(row))  # type: ignore[union-attr]
                            continue
                        events += 1
                        yield event
                    elif self._other_row(row, lineno):
                        width, build = self.schema.width, self.schema.build  # type: ignore[union-attr]
                if self.schema is None:
                    report.problem("bad-file", name, "not a message tracking log: no #Fields: header")
            except _StopFile:
                pass
            finally:
                report.count("lines", lineno)
                report.count("events", events)

    def _bad_line(self, lineno: int, reason: str) -> None:
        self.report.problem("bad-line", f"{self.name}:{lineno}", reason)

    def _other_row(self, row: list[str], lineno: int) -> bool:
        """A row that is not a data line of the current schema. True when the schema changed."""
        if len(row) == 1 and row[0].startswith(_SKIP):
            # A line csv read on into was replaced by a _SKIP line (see _line_text).
            code = row[0][len(_SKIP) :]
            if code == "partial":
                self.report.count("partial-lines")
            elif code.startswith("utf8:"):
                self._bad_line(lineno, f"invalid UTF-8 at byte {code[5:]} of the line")
            else:
                self._bad_line(lineno, _SKIP_REASONS[code])
            return False
        if not row:
            self.report.count("blank-lines")
            return False
        if row[0].startswith("#"):
            return self._directive(",".join(row), lineno)
        if self.schema is None:
            self.report.problem(
                "bad-file",
                self.name,
                f"not a message tracking log: line {lineno} comes before any #Fields: header",
            )
            raise _StopFile
        self._bad_line(lineno, f"expected {self.schema.width} fields, found {len(row)}")
        return False

    def _directive(self, text: str, lineno: int) -> bool:
        key, _, value = text[1:].partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "log-type" and value.casefold() != LOG_TYPE.casefold():
            self.report.problem("bad-file", self.name, f"not a message tracking log: #Log-type: {value}")
            raise _StopFile
        if key != "fields":
            return False
        columns = tuple(c.strip() for c in value.split(","))
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            self.report.problem(
                "bad-file",
                self.name,
                f"not a message tracking log: #Fields: on line {lineno} has no " + " or ".join(missing),
            )
            raise _StopFile
        self.schema = schema_for(columns, _plain_origin(self.name))
        return True


def _through(first: int, last: int) -> str:
    return f" (lines {first}-{last})" if last > first else ""
