"""Pure decoders for the strings in message tracking data. No I/O, nothing here raises on
bad input unless its docstring says so: unknown values are kept as they are.

Grammar references are to ``shared/research/tracking-facts.md``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from enum import Enum
from functools import lru_cache
from typing import Literal, NamedTuple

UTC = timezone.utc

# --------------------------------------------------------------------------- timestamps

#: Python 3.11's fromisoformat reads a trailing "Z" as UTC (3.10's does not).
_FROMISO_Z = sys.version_info >= (3, 11)
_fromisoformat = datetime.fromisoformat


def parse_log_timestamp(text: str) -> datetime:
    """``yyyy-MM-ddTHH:mm:ss.fffZ`` (the log's invariant UTC form) -> aware UTC datetime.

    Raises ValueError for anything that is not an ISO 8601 UTC/offset timestamp.
    """
    if len(text) == 24 and text[23] == "Z":
        return parse_log_form(text)
    return _parse_timestamp(text)


def _parse_timestamp(text: str) -> datetime:
    if text.endswith(("Z", "z")):
        # Python 3.10's fromisoformat does not take "Z"; it does take a bare value.
        value = datetime.fromisoformat(text[:-1])
        if value.tzinfo is not None:
            raise ValueError(f"two time zones in {text!r}")
        return value.replace(tzinfo=UTC)
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"timestamp without Z or offset: {text!r}")
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError(f"timestamp out of range in UTC: {text!r}") from exc


#: A timestamp 24 characters long ending in "Z" (the log's own form, or a text the
#: general path below would refuse too) -> aware UTC datetime; raises ValueError. On 3.11
#: one C call, a quarter of the general path: at this length the text always has a time
#: part, where "<text>Z" and "<text>" + UTC read alike.
parse_log_form: Callable[[str], datetime] = _fromisoformat if _FROMISO_Z else _parse_timestamp


def format_log_timestamp(value: datetime) -> str:
    """Aware datetime -> ``yyyy-MM-ddTHH:mm:ss.fffZ`` in UTC (the log's own form)."""
    value = value.astimezone(UTC)
    # Not strftime: glibc's %Y does not zero-pad years below 1000 ("999-01-01…").
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:"
        f"{value.minute:02d}:{value.second:02d}.{value.microsecond // 1000:03d}Z"
    )


_TIMESTAMP_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,7})?Z\Z")


def _timestamp_or_none(text: str) -> datetime | None:
    if not _TIMESTAMP_RE.match(text):
        return None
    try:
        return parse_log_timestamp(text[:26] + "Z" if len(text) > 27 else text)
    except ValueError:  # e.g. month 13
        return None


# --------------------------------------------------------------------------- lists


def split_list(value: str) -> tuple[str, ...]:
    """Split a ``;`` list whose items may be wrapped in single quotes with ``''`` inside.

    ``a;'b;c';'it''s'`` -> ``("a", "b;c", "it's")``. An empty value is an empty tuple.
    """
    if not value:
        return ()
    if "'" not in value:
        return tuple(value.split(";"))
    items: list[str] = []
    i, n = 0, len(value)
    while True:
        if i < n and value[i] == "'":
            buf: list[str] = []
            i += 1
            while i < n:
                ch = value[i]
                if ch == "'":
                    if i + 1 < n and value[i + 1] == "'":
                        buf.append("'")
                        i += 2
                        continue
                    i += 1
                    break
                buf.append(ch)
                i += 1
            # Anything between the closing quote and the next ';' is kept, not lost.
            end = value.find(";", i)
            tail = value[i:] if end < 0 else value[i:end]
            items.append("".join(buf) + tail)
        else:
            end = value.find(";", i)
            items.append(value[i:] if end < 0 else value[i:end])
        if end < 0:
            return tuple(items)
        i = end + 1


def join_list(items: Iterable[str]) -> str:
    """Inverse of :func:`split_list`, quoting items the way Exchange's writer does.

    ``split_list(join_list(items)) == tuple(items)`` for every list except ``[""]``: one
    empty item is written as an empty field, and an empty field reads back as no items
    (``()``), as Exchange's own reader does (the cmdlet reports a Reference whose only
    element is empty as null). Two or more empty items (``;``) round-trip.
    """
    out = []
    for item in items:
        if ";" in item or "'" in item:
            item = "'" + item.replace("'", "''") + "'"
        out.append(item)
    return ";".join(out)


# --------------------------------------------------------------------------- custom-data

_CUSTOM_ITEM_RE = re.compile(r"([A-Za-z][A-Za-z0-9]*):([^=]*)=(.*)\Z", re.S)


_I32_RE = re.compile(r"\s*[-+]?[0-9]+\s*\Z")


def _typed(tag: str, text: str) -> object:
    # Python's int()/float() also take "1_000" and non-ASCII digits; .NET never writes
    # those, so such text (and an I32 beyond 32 bits) is a bad value and stays text.
    try:
        if tag == "S":
            return text
        if tag == "I32":
            if _I32_RE.match(text):
                number = int(text)
                if -(2**31) <= number < 2**31:
                    return number
        elif tag in ("F", "Dbl"):
            if text.isascii() and "_" not in text:
                return float(text)
        elif tag == "Dt":
            return parse_log_timestamp(text)
    except ValueError:
        pass
    return text  # unknown tag or a value that does not convert: kept as written


def decode_custom_data(value: str) -> dict[str, object]:
    """``S:Key=Value;I32:N=3;Dt:When=…;F:x=1.5;Dbl:y=2`` -> ``{Key: typed value}``.

    Items with an unknown type tag, and values that do not convert (``I32:N=many``), keep
    their text; an item without ``T:K=V`` shape is kept under its whole text with an empty
    value, so nothing is dropped.
    """
    result: dict[str, object] = {}
    for item in split_list(value):
        if not item:
            continue
        m = _CUSTOM_ITEM_RE.match(item)
        if m is None:
            result[item] = ""
            continue
        result[m.group(2)] = _typed(m.group(1), m.group(3))
    return result


def encode_custom_data(data: Mapping[str, object]) -> str:
    """Inverse of :func:`decode_custom_data` (types inferred from the Python values).

    Round-trips str, 32-bit int, float (not NaN) and millisecond-precision aware datetimes,
    with keys free of ``=``. A bool is written as ``S:`` text (``True``); an int beyond 32
    bits is written as ``I32:`` but reads back as text, as Exchange's type has no room for it.
    """
    items = []
    for key, val in data.items():
        if isinstance(val, bool):
            items.append(f"S:{key}={val}")
        elif isinstance(val, int):
            items.append(f"I32:{key}={val}")
        elif isinstance(val, float):
            items.append(f"Dbl:{key}={val!r}")
        elif isinstance(val, datetime):
            items.append(f"Dt:{key}={format_log_timestamp(val)}")
        else:
            items.append(f"S:{key}={val}")
    return join_list(items)


# --------------------------------------------------------------------------- source-context

_CONTEXT_KEY_RE = re.compile(r"([A-Za-z][A-Za-z0-9]*):(.*)\Z", re.S)


def decode_source_context(value: str) -> dict[str, str]:
    """STOREDRIVER ``MDB:…, Mailbox:…, MessageClass:IPM.Note, ClientType:AirSync`` -> dict.

    Returns ``{}`` unless every ``, ``-separated part is a ``Key:value`` pair, so SMTP
    contexts (``08DC…;2026-…Z;0``) are not misread.
    """
    if ":" not in value or ";" in value.split(":", 1)[0]:
        return {}
    result: dict[str, str] = {}
    for part in value.split(", "):
        m = _CONTEXT_KEY_RE.match(part)
        if m is None:
            return {}
        result[m.group(1)] = m.group(2)
    return result


@dataclass(frozen=True)
class SmtpContext:
    session_id: str
    session_start: datetime
    message_number: int


_SMTP_CONTEXT_RE = re.compile(r"([0-9A-Fa-f]{16});([^;]+);(\d+)\Z")


def decode_smtp_context(value: str) -> SmtpContext | None:
    """SMTP RECEIVE source-context ``<session id>;<session start>;<message number>``."""
    m = _SMTP_CONTEXT_RE.match(value.strip())
    if m is None:
        return None
    start = _timestamp_or_none(m.group(2))
    if start is None:
        return None
    return SmtpContext(m.group(1).upper(), start, int(m.group(3)))


# --------------------------------------------------------------------------- MessageInfo


class InfoKind(str, Enum):
    AUTH = "Auth"
    TIMESTAMP = "Timestamp"
    LATENCY = "Latency"
    EMPTY = "Empty"
    OTHER = "Other"

    def __str__(self) -> str:
        return self.value


#: Microsoft.Exchange.SecureMail.MultilevelAuthMechanism (9, 14 and 15 do not exist).
AUTH_METHODS: dict[int, str] = {
    0x00: "None",
    0x01: "SenderId",
    0x02: "MutualTLS",
    0x03: "MapiSubmit",
    0x04: "SecureMapiSubmit",
    0x05: "SecureInternalSubmit",
    0x06: "TLSAuthLogin",
    0x07: "Login",
    0x08: "Pickup",
    0x0A: "NTLM",
    0x0B: "GSSAPI",
    0x0C: "MUTUALGSSAPI",
    0x0D: "Custom",
    0x10: "SecureExternalSubmit",
    0x11: "DirectTrustTLS",
    0x12: "Replay",
}

#: Microsoft.Exchange.SecureMail.SubmitAuthCategory, by first letter.
AUTH_CATEGORIES: dict[str, str] = {
    "A": "Anonymous",
    "I": "Internal",
    "E": "External",
    "P": "Partner",
    "O": "Other",
}


def auth_method_name(value: int) -> str:
    return AUTH_METHODS.get(value, f"Unknown(0x{value:02X})")


def auth_category_name(letter: str) -> str:
    return AUTH_CATEGORIES.get(letter.upper(), f"Unknown({letter})")


@dataclass(frozen=True)
class AuthInfo:
    code: str  #: two upper-case hex digits
    value: int
    method: str
    letter: str  #: the category character as written
    category: str
    domain: str = ""
    trailing: tuple[str, ...] = ()


@dataclass(frozen=True)
class LatencyComponent:
    code: str
    seconds: float | None
    process: str = ""
    agent: str = ""
    pending: bool = False
    incomplete: bool = False
    children: tuple[LatencyComponent, ...] = ()


@dataclass(frozen=True)
class LatencyBlock:
    server: str
    local: bool  #: True for LSRV= (local only), False for SRV= (end-to-end)
    components: tuple[LatencyComponent, ...]
    total: float | None
    process: str
    raw: str = ""


@dataclass(frozen=True)
class Latency:
    arrival: datetime | None
    previous_hops: tuple[LatencyBlock | str, ...]
    this_server: LatencyBlock | None


@dataclass(frozen=True)
class MessageInfo:
    raw: str
    kind: InfoKind
    auth: AuthInfo | None = None
    #: The original arrival time (timestamp-only and latency forms) or DEFER's retry time.
    timestamp: datetime | None = None
    latency: Latency | None = None


_AUTH_RE = re.compile(r"([0-9A-Fa-f]{2})([A-Za-z])(?::(.*)|\s*)\Z", re.S)


def _decode_auth(value: str) -> AuthInfo | None:
    m = _AUTH_RE.match(value)
    if m is None:
        return None
    code, letter, rest = m.group(1).upper(), m.group(2), m.group(3) or ""
    number = int(code, 16)
    method = auth_method_name(number)
    domain = ""
    # Parts after the code are written "part:" + " " (tracking-facts §1.1); a domain
    # follows the colon directly, and only MutualTLS fills it.
    if method == "MutualTLS" and rest[:1] not in ("", " ", ":"):
        domain, _, rest = rest.partition(":")
        domain = domain.strip()
    trailing = tuple(p.strip() for p in rest.split(":") if p.strip())
    return AuthInfo(code, number, method, letter, auth_category_name(letter), domain, trailing)


#: One record: its code, then optionally "=" with a number and any unreadable text up
#: to the next separator (so "SMR=abc" or a header-folding space costs nothing else).
_RECORD_RE = re.compile(r"([^=|()]*)(?:(=)\s*(-?[0-9]+(?:\.[0-9]+)?)?[^|()]*)?")
_SKIP_RE = re.compile(r"[^|()]*")
#: Real trees are a few levels deep; this bound keeps hostile input off the C stack.
_MAX_DEPTH = 64


@lru_cache(maxsize=1024)  # codes come from a small vocabulary
def _split_code(code: str) -> tuple[str, str, str, bool, bool]:
    """``TOTAL-HUB`` / ``MTSS-PEN`` / ``CATSM-Malware Agent`` / ``X-SMSDR`` ->
    (code, process, agent, pending, incomplete)."""
    pending = incomplete = False
    if code.endswith("-PEN"):
        pending, code = True, code[:-4]
    elif code.endswith("-INC"):
        incomplete, code = True, code[:-4]
    dash = code.find("-", 2 if code.startswith("X-") else 0)
    if dash < 0:
        return code, "", "", pending, incomplete
    base, suffix = code[:dash], code[dash + 1 :]
    if base == "TOTAL":
        return base, suffix, "", pending, incomplete
    return base, "", suffix, pending, incomplete


def _parse_components(text: str, pos: int, depth: int = 0) -> tuple[tuple[LatencyComponent, ...], int]:
    """Recursive descent over ``CODE=sec|CODE=sec(CHILD=sec|…)|…``.

    Returns at the ``)`` that closes this level (depth > 0) or at the end. Lenient, so one
    bad record does not cost the others: a value that is not a number leaves ``seconds``
    None, text up to the next separator is skipped (e.g. header-folding spaces), a missing
    ``)`` closes at the end, a stray ``)`` at the top is ignored. Only nesting deeper than
    ``_MAX_DEPTH`` raises ValueError.
    """
    out: list[LatencyComponent] = []
    n = len(text)
    while pos < n:
        m = _RECORD_RE.match(text, pos)
        raw_code, equals, number = m.groups()  # type: ignore[union-attr]  # always matches
        pos = m.end()  # type: ignore[union-attr]
        seconds = float(number) if number is not None else None
        children: tuple[LatencyComponent, ...] = ()
        if pos < n and text[pos] == "(":
            if depth >= _MAX_DEPTH:
                raise ValueError("latency tree nested too deeply")
            children, pos = _parse_components(text, pos + 1, depth + 1)
            if pos < n:  # the closing ")"
                pos += 1
                if pos < n and text[pos] not in "|()":
                    pos = _SKIP_RE.match(text, pos).end()  # type: ignore[union-attr]
        code = raw_code.strip()
        if code or seconds is not None or children:
            base, process, agent, pending, incomplete = _split_code(code)
            # A bare name (no "=value") is a pending component of the flat format (2013's
            # LatencyTracker writes them after ";" or right after the server).
            if equals is None and not children and depth == 0:
                pending = True
            out.append(LatencyComponent(base, seconds, process, agent, pending, incomplete, children))
        if pos >= n:
            break
        if text[pos] == ")":
            if depth:
                return tuple(out), pos
            pos += 1  # stray ")" at the top level
        elif text[pos] == "|":
            pos += 1
        # "(" right after a closed group ("A(B)(C)") is read as a nameless component.
    return tuple(out), pos


_BLOCK_RE = re.compile(r"(L?SRV)=([^:]*):(.*)\Z", re.S)
#: The flat format's pending tail after ";": bare component names joined by "|".
_PENDING_TAIL_RE = re.compile(r"[^=:;()]+\Z")


def _parse_block(text: str) -> LatencyBlock | None:
    m = _BLOCK_RE.match(text.strip())
    if m is None:
        return None
    try:
        components, _ = _parse_components(m.group(3), 0)  # reads to the end at depth 0
    except ValueError:  # nested too deeply: keep the server, drop the records
        components = ()
    total = next((c for c in components if c.code == "TOTAL"), None)
    return LatencyBlock(
        server=m.group(2).strip(),
        local=m.group(1) == "LSRV",
        components=components,
        total=total.seconds if total else None,
        process=total.process if total else "",
        raw=text,
    )


def _with_pending(block: LatencyBlock, tail: str) -> LatencyBlock:
    """``…|SMR=0.500`` + ``;QDE|SMSC``: the names after ``;`` are the block's pending parts."""
    pending, _ = _parse_components(tail, 0)
    return replace(block, components=block.components + pending, raw=f"{block.raw};{tail}")


def _decode_latency(value: str) -> Latency | None:
    """The latency string's parts, or None when no ``SRV=``/``LSRV=`` block reads."""
    parts = value.split(";")
    arrival = _timestamp_or_none(parts[0].strip())
    if arrival is not None:
        parts = parts[1:]
    blocks: list[LatencyBlock | str] = []
    for part in parts:
        if not part.strip():
            continue
        block = _parse_block(part)
        if block is None and blocks and _PENDING_TAIL_RE.match(part):
            last = blocks[-1]
            if isinstance(last, LatencyBlock):
                blocks[-1] = _with_pending(last, part)
                continue
        blocks.append(block if block is not None else part)
    if not any(isinstance(b, LatencyBlock) for b in blocks):
        return None
    this_server = blocks[-1] if isinstance(blocks[-1], LatencyBlock) else None
    previous = tuple(blocks[:-1]) if this_server is not None else tuple(blocks)
    return Latency(arrival, previous, this_server)


@lru_cache(maxsize=4096)
def decode_message_info(value: str) -> MessageInfo:
    """Decode any MessageInfo value. Never raises; what it cannot read is kept as Other."""
    text = value.strip()
    if not text:
        return MessageInfo(value, InfoKind.EMPTY)
    auth = _decode_auth(text)
    if auth is not None:
        return MessageInfo(value, InfoKind.AUTH, auth=auth)
    stamp = _timestamp_or_none(text)
    if stamp is not None:
        return MessageInfo(value, InfoKind.TIMESTAMP, timestamp=stamp)
    if "SRV=" in text:
        try:
            latency = _decode_latency(text)
        except (ValueError, RecursionError):  # safety net; the parser itself is lenient
            return MessageInfo(value, InfoKind.OTHER)
        if latency is not None:
            return MessageInfo(value, InfoKind.LATENCY, timestamp=latency.arrival, latency=latency)
    return MessageInfo(value, InfoKind.OTHER)


# --------------------------------------------------------------------------- annotations

ANNOTATION_COLUMNS: tuple[str, ...] = (
    "MessageInfoKind",
    "AuthCode",
    "AuthMethod",
    "AuthCategory",
    "AuthDomain",
    "OriginalArrivalTime",
    "LatencySeconds",
    "LatencyServer",
    "MessageClass",
    "ClientType",
)


def annotation_columns(
    info: MessageInfo, submission: Mapping[str, str], event_id: str = ""
) -> dict[str, str]:
    """The annotation columns for one event, as text (empty where not applicable).

    DEFER's timestamp is a retry time, not an arrival time, so it is not reported as
    OriginalArrivalTime (it stays readable in MessageInfo itself).
    """
    auth = info.auth
    block = info.latency.this_server if info.latency else None
    arrival = info.timestamp if event_id.upper() != "DEFER" else None
    return {
        "MessageInfoKind": info.kind.value,
        "AuthCode": auth.code if auth else "",
        "AuthMethod": auth.method if auth else "",
        "AuthCategory": auth.category if auth else "",
        "AuthDomain": auth.domain if auth else "",
        "OriginalArrivalTime": format_log_timestamp(arrival) if arrival else "",
        "LatencySeconds": f"{block.total:.3f}" if block and block.total is not None else "",
        "LatencyServer": block.server if block else "",
        "MessageClass": submission.get("MessageClass", ""),
        "ClientType": submission.get("ClientType", ""),
    }


# --------------------------------------------------------------------------- fast paths
# The CSV sink and TrackingEvent.annotations() need only a few facts per event, and most
# MessageInfo values are unique (latency strings and timestamps carry times), so building
# the whole MessageInfo tree for each costs more than reading the log line. These give
# the same answers as the full decoders from a regex or two; whatever they are not sure
# of goes to the full decoders. Tests check them against the full decoders.


class InfoSummary(NamedTuple):
    """What the annotation columns and MessageLatency need from a MessageInfo value."""

    kind: str  #: MessageInfoKind
    auth_code: str
    auth_method: str
    auth_category: str
    auth_domain: str
    arrival_text: str  #: info.timestamp as OriginalArrivalTime text (even for DEFER), or ""
    latency_seconds: str  #: this server's TOTAL, "%.3f", or ""
    latency_server: str
    arrival: datetime | None  #: info.timestamp
    local: bool | None  #: this server's block is LSRV= (True) / SRV= (False); None without one


#: The last ";" part of a latency string, when it is this server's block in the form
#: Exchange 2013+ writes: SRV=/LSRV=server:TOTAL[-process]=seconds, then "|", "(" or the
#: end. Seconds in the "%.3f" form are group 4 (they need no formatting), others group 5.
_LAST_BLOCK_RE = re.compile(
    r"(L?)SRV=([^:]*):TOTAL(?:-[^=|()]*)?="
    r"(?:(-?(?:0|[1-9][0-9]{0,8})\.[0-9]{3})|(-?[0-9]+(?:\.[0-9]+)?))(?:[|(]|\Z)"
)
_LOG_TIMESTAMP_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\Z")
_summaries: dict[str, InfoSummary] = {}
#: Arrival times seen in latency strings: every event of a message repeats its own.
_arrivals: dict[str, datetime | None] = {}
_tuple_new = tuple.__new__


def _log_form_time(text: str) -> datetime | None | Literal[False]:
    """The datetime of ``text`` in the log's form (``yyyy-MM-ddTHH:mm:ss.fffZ``), None if
    it is in that form but not a time (month 13), False if it is not in that form."""
    # The separators in place, then the parser: it takes only ASCII digits between them,
    # so a text it reads is in the form. The regex (a tenth of a microsecond more, for
    # every arrival time read) only settles the texts the parser refuses.
    if len(text) != 24 or text[23] != "Z" or text[4:20:3] != "--T::.":
        return False
    try:
        return parse_log_form(text)
    except ValueError:
        return None if _LOG_TIMESTAMP_RE.match(text) else False


def summarize_message_info(value: str) -> InfoSummary:
    """:class:`InfoSummary` of ``decode_message_info(value)``, mostly without building it."""
    hit = _summaries.get(value)
    if hit is not None:
        return hit
    parts = value.split(";")
    last = parts[-1]
    m = _LAST_BLOCK_RE.match(last)
    # Nesting deeper than _MAX_DEPTH empties the block's components in the full parser.
    if m is not None and last.count("(") < _MAX_DEPTH:
        # This server's block is the last part. Only the first part matters besides: the
        # arrival time, or a hop block. Parts in between never change these columns.
        stamp = ""
        arrival = None
        if len(parts) > 1:
            head = parts[0]
            found = _arrivals.get(head, False)
            if found is False:
                found = _log_form_time(head)
                if found is not False:
                    if len(_arrivals) >= 4096:
                        _arrivals.clear()
                    _arrivals[head] = found
            if found is False:
                if not head.startswith(("SRV=", "LSRV=")):
                    m = None  # an arrival in another form, or other text: the full decoder
            elif found is not None:  # (None: a timestamp that does not read is a hop)
                arrival = found
                stamp = head
        if m is not None:
            local, server, seconds, other = m.groups()
            return _tuple_new(InfoSummary, (
                "Latency", "", "", "", "", stamp,
                seconds if seconds is not None else f"{float(other):.3f}",
                server.strip(), arrival, local == "L"))
    if len(value) == 24:
        stamped = _log_form_time(value)
        if stamped:
            return _tuple_new(InfoSummary, (
                "Timestamp", "", "", "", "", value, "", "", stamped, None))
    info = decode_message_info(value)
    auth = info.auth
    block = info.latency.this_server if info.latency is not None else None
    arrival = info.timestamp
    summary = InfoSummary(
        info.kind.value,
        auth.code if auth else "",
        auth.method if auth else "",
        auth.category if auth else "",
        auth.domain if auth else "",
        format_log_timestamp(arrival) if arrival else "",
        f"{block.total:.3f}" if block and block.total is not None else "",
        block.server if block else "",
        arrival,
        block.local if block else None,
    )
    if info.kind is not InfoKind.LATENCY and info.kind is not InfoKind.TIMESTAMP:
        # Auth codes, empty and other text repeat; times and latencies rarely do.
        if len(_summaries) >= 4096:
            _summaries.clear()
        _summaries[value] = summary
    return summary


_CONTEXT_HEAD_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*:")
#: A ", " that does not start a "Key:" part (", " never overlaps itself, nor a key).
_CONTEXT_BAD_PART_RE = re.compile(r", (?![A-Za-z][A-Za-z0-9]*:)")


def _context_value(value: str, key: str) -> str:
    # The last "Key:" part wins, as in the dict decode_source_context builds. Every ", "
    # starts a part, so the last ", Key:" is the last part with that key.
    i = value.rfind(f", {key}:")
    if i >= 0:
        start = i + len(key) + 3
    elif value.startswith(f"{key}:"):
        start = len(key) + 1
    else:
        return ""
    end = value.find(", ", start)
    return value[start:] if end < 0 else value[start:end]


@lru_cache(maxsize=256)  # NOTIFYMAPI and SUBMIT of one message share their context
def submission_values(value: str) -> tuple[str, str]:
    """(MessageClass, ClientType) of ``decode_source_context(value)``, without the dict."""
    if "MessageClass:" not in value and "ClientType:" not in value:
        return ("", "")
    # decode_source_context's rule: every ", " part must start with "Key:".
    if _CONTEXT_HEAD_RE.match(value) is None or _CONTEXT_BAD_PART_RE.search(value) is not None:
        return ("", "")
    return (_context_value(value, "MessageClass"), _context_value(value, "ClientType"))


def annotation_values(message_info: str, source_context: str, event_id: str = "") -> tuple[str, ...]:
    """``annotation_columns(decode_message_info(message_info),
    decode_source_context(source_context), event_id)``'s values, in ANNOTATION_COLUMNS
    order, computed the fast way."""
    s = summarize_message_info(message_info)
    arrival = "" if event_id.upper() == "DEFER" else s.arrival_text
    message_class, client_type = submission_values(source_context)
    return (s.kind, s.auth_code, s.auth_method, s.auth_category, s.auth_domain, arrival,
            s.latency_seconds, s.latency_server, message_class, client_type)
