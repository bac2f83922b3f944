"""Durable day folders: every file fsynced and renamed, the folder swapped in whole.

A day is written into ``.YYYY-MM-DD.tmp-<pid>/``. Each file in it is written as
``name.part``, flushed, fsynced and renamed to ``name``; then the folder itself is
fsynced. :func:`publish` swaps it in:

1. an existing ``YYYY-MM-DD/`` is renamed to ``.YYYY-MM-DD.old-<pid>/``;
2. the new folder is renamed to ``YYYY-MM-DD/``; the output folder is fsynced;
3. the old folder is deleted.

:func:`recover` runs at the start of every run (under the lock) and finishes whatever
a crash interrupted: a leftover ``.tmp-`` folder is deleted (the day had not been
published); an ``.old-`` folder whose day folder is missing is renamed back (the
crash came between steps 1 and 2, so the old day is still the published one);
an ``.old-`` folder next to its day folder is deleted (step 3 was cut short). So at
every instant ``YYYY-MM-DD/`` is the complete old day or the complete new one.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import IO, Any, TextIO

log = logging.getLogger(__name__)

DAY_RE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")
_TEMP_RE = re.compile(r"\A\.(\d{4}-\d{2}-\d{2})\.(tmp|old|prune)-\d+\Z")

#: Test hook: the name of a step at which to die like a killed process (os._exit).
CRASH_ENV = "MSGTRACK_AUDIT_CRASH_AT"


def crashpoint(name: str) -> None:
    """Fault injection for the crash tests: ``MSGTRACK_AUDIT_CRASH_AT=<name>`` kills the
    process here without cleanup, exactly like a power cut for everything not fsynced."""
    if os.environ.get(CRASH_ENV) == name:
        os._exit(86)


def fsync_dir(path: Path) -> None:
    if os.name == "nt":  # pragma: no cover - directories cannot be opened on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DayFolder:
    """The temporary folder one day is written into; its files are durable once closed."""

    def __init__(self, output: Path, day: date) -> None:
        self.output = output
        self.day = day
        self.path = output / f".{day.isoformat()}.tmp-{os.getpid()}"
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        self.digests: dict[str, str] = {}

    @contextlib.contextmanager
    def open_text(self, name: str, *, gz: bool = False,
                  encoding: str = "utf-8") -> Iterator[TextIO]:
        """A text file written as ``name.part`` then renamed; gzip without name or mtime."""
        part = self.path / f"{name}.part"
        raw = open(part, "wb")  # noqa: SIM115 - closed below
        digest = hashlib.sha256()
        try:
            hashing = _HashingWriter(raw, digest)
            inner: Any = (gzip.GzipFile(filename="", mode="wb", fileobj=hashing, mtime=0,
                                        compresslevel=6) if gz else hashing)
            text = io.TextIOWrapper(inner, encoding=encoding, newline="", write_through=False)
            yield text
            text.flush()
            text.detach()
            if gz:
                inner.close()  # writes the trailer; leaves ``hashing`` open
            raw.flush()
            os.fsync(raw.fileno())
        finally:
            raw.close()
        os.replace(part, self.path / name)
        self.digests[name] = digest.hexdigest()

    def write_text(self, name: str, text: str) -> None:
        with self.open_text(name) as fh:
            fh.write(text)

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


class _HashingWriter(io.RawIOBase):
    """Passes bytes to a file and a hash: the digest of exactly what reached the disk."""

    def __init__(self, raw: IO[bytes], digest: Any) -> None:
        self._raw = raw
        self._digest = digest

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._digest.update(view)
        self._raw.write(view)
        return len(view)

    def close(self) -> None:  # the DayFolder closes the real file
        pass


def publish(folder: DayFolder, hook: Callable[[str], None] = crashpoint) -> Path:
    """Swap the finished temporary folder in as ``YYYY-MM-DD/`` (see the module doc)."""
    fsync_dir(folder.path)
    hook("outputs-written")
    final = folder.output / folder.day.isoformat()
    old = folder.output / f".{folder.day.isoformat()}.old-{os.getpid()}"
    if final.exists():
        os.replace(final, old)
        fsync_dir(folder.output)
        hook("old-moved-aside")
    os.replace(folder.path, final)
    fsync_dir(folder.output)
    hook("new-in-place")
    if old.exists():
        shutil.rmtree(old)
    return final


def recover(output: Path) -> list[str]:
    """Finish or undo what an interrupted run left behind; returns what it did."""
    done: list[str] = []
    if not output.is_dir():
        return done
    for entry in sorted(output.iterdir()):
        m = _TEMP_RE.match(entry.name)
        if not m or not entry.is_dir():
            continue
        day, kind = m.group(1), m.group(2)
        final = output / day
        if kind == "old" and not final.exists():
            os.replace(entry, final)
            done.append(f"restored {day} from an interrupted swap")
        else:
            shutil.rmtree(entry, ignore_errors=True)
            done.append(f"removed leftover {entry.name}")
    if done:
        fsync_dir(output)
        for line in done:
            log.info("recover: %s", line)
    return done


def prune(output: Path, before: date) -> list[date]:
    """Delete day folders older than ``before``: renamed away first, so a day folder is
    never half deleted under its own name."""
    pruned = []
    for entry in sorted(output.iterdir()) if output.is_dir() else ():
        if not (entry.is_dir() and DAY_RE.match(entry.name)):
            continue
        day = date.fromisoformat(entry.name)
        if day >= before:
            continue
        doomed = output / f".{entry.name}.prune-{os.getpid()}"
        os.replace(entry, doomed)
        pruned.append(day)
    if pruned:
        fsync_dir(output)
        for day in pruned:
            shutil.rmtree(output / f".{day.isoformat()}.prune-{os.getpid()}",
                          ignore_errors=True)
    return pruned
