"""The CLIXML the peer sends: MessageTrackingEvent and TransportService objects.

Shapes follow tracking-facts §4 and remoting-facts §4: real .NET type names on the wire
(optionally ``Deserialized.``-prefixed), Timestamp as a DateTime in the server's local time
with its offset, string arrays, Nil for null, MessageLatency as Exchange's EnhancedTimeSpan,
MessageLatencyType as an enum (ToString + I32), EventData as a KeyValuePair array, and the
note properties remoting adds.

The objects are written as CLIXML text here rather than built as psrpcore PSObjects:
psrpcore's generic serializer manages about 1,100 objects/s, which would make the peer the
bottleneck of every client benchmark. ``tests/test_peer_objects.py`` checks this output
against psrpcore's deserializer, which is the reference for the wire format.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from xml.sax.saxutils import escape as _xml_escape

from msgtrack.events import FIELD_BY_PROP, TrackingEvent

MTE_TYPE = "Microsoft.Exchange.Management.TransportLogSearchTasks.MessageTrackingEvent"
LATENCY_TYPE_TYPE = "Microsoft.Exchange.Management.TransportLogSearchTasks.MessageLatencyType"
TIMESPAN_TYPE = "Microsoft.Exchange.Data.EnhancedTimeSpan"
TRANSPORT_SERVICE_TYPE = "Microsoft.Exchange.Data.Directory.SystemConfiguration.TransportServer"
_KVP = ("System.Collections.Generic.KeyValuePair`2[[System.String, mscorlib, Version=4.0.0.0, "
        "Culture=neutral, PublicKeyToken=b77a5c561934e089],[System.Object, mscorlib, "
        "Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089]]")

LATENCY_TYPES = {"None": 0, "LocalServer": 1, "EndToEnd": 2}

#: Cmdlet properties in Exchange 2019's order (tracking-facts §4), with the first version
#: that has them. OriginalServerIp and LogId are file-only columns and never sent.
PROPERTIES: tuple[tuple[str, int], ...] = (
    ("Timestamp", 2007), ("ClientIp", 2007), ("ClientHostname", 2007), ("ServerIp", 2007),
    ("ServerHostname", 2007), ("SourceContext", 2007), ("ConnectorId", 2007), ("Source", 2007),
    ("EventId", 2007), ("InternalMessageId", 2007), ("MessageId", 2007),
    ("NetworkMessageId", 2016), ("Recipients", 2007), ("RecipientStatus", 2007),
    ("TotalBytes", 2007), ("RecipientCount", 2007), ("RelatedRecipientAddress", 2007),
    ("Reference", 2007), ("MessageSubject", 2007), ("Sender", 2007), ("ReturnPath", 2007),
    ("Directionality", 2010), ("TenantId", 2010), ("OriginalClientIp", 2010),
    ("MessageInfo", 2007), ("MessageLatency", 2010), ("MessageLatencyType", 2010),
    ("EventData", 2010), ("TransportTrafficType", 2016), ("SchemaVersion", 2016),
)


# --------------------------------------------------------------------------- cultures


@dataclass(frozen=True)
class Culture:
    """The little of .NET's CultureInfo the cmdlet's text output depends on."""

    name: str
    short_date: str  #: .NET pattern, e.g. "M/d/yyyy"
    long_time: str  #: .NET pattern, e.g. "h:mm:ss tt"
    decimal_sep: str = "."

    def format_datetime(self, value: datetime) -> str:
        """``DateTime.ToString()``: short date + long time, in this culture."""
        return f"{_format_pattern(self.short_date, value)} {_format_pattern(self.long_time, value)}"

    def format_number(self, value: float) -> str:
        text = repr(value) if not value.is_integer() else str(int(value))
        return text.replace(".", self.decimal_sep)

    def parse_datetime(self, text: str) -> datetime | None:
        """A date (and optional time) typed in this culture's short-date order; naive."""
        m = self._date_re.match(text.strip())
        if not m:
            return None
        parts = m.groupdict()
        hour = int(parts["h"] or 0)
        ampm = (parts["tt"] or "").upper()
        if ampm == "PM" and hour < 12:
            hour += 12
        elif ampm == "AM" and hour == 12:
            hour = 0
        try:
            return datetime(int(parts["y"]), int(parts["mo"]), int(parts["d"]), hour,
                            int(parts["mi"] or 0), int(parts["s"] or 0))
        except ValueError:
            return None

    @property
    def _date_re(self) -> re.Pattern[str]:
        sep = re.escape(re.sub(r"[dMy]", "", self.short_date)[0])
        first, second = ("mo", "d") if self.short_date.lower().startswith("m") else ("d", "mo")
        return re.compile(
            rf"(?P<{first}>\d{{1,2}}){sep}(?P<{second}>\d{{1,2}}){sep}(?P<y>\d{{4}})"
            r"(?:\s+(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?\s*(?P<tt>[AaPp][Mm])?)?\Z"
        )


def _format_pattern(pattern: str, value: datetime) -> str:
    # Only the tokens the three supported cultures use.
    tokens = {
        "yyyy": f"{value.year:04d}", "MM": f"{value.month:02d}", "M": str(value.month),
        "dd": f"{value.day:02d}", "d": str(value.day), "HH": f"{value.hour:02d}",
        "H": str(value.hour), "hh": f"{(value.hour % 12) or 12:02d}",
        "h": str((value.hour % 12) or 12), "mm": f"{value.minute:02d}",
        "ss": f"{value.second:02d}", "tt": "AM" if value.hour < 12 else "PM",
    }
    return re.sub(r"yyyy|MM|M|dd|d|HH|H|hh|h|mm|ss|tt", lambda m: tokens[m.group(0)], pattern)


CULTURES: dict[str, Culture] = {
    "en-US": Culture("en-US", "M/d/yyyy", "h:mm:ss tt"),
    "en-GB": Culture("en-GB", "dd/MM/yyyy", "HH:mm:ss"),
    "de-DE": Culture("de-DE", "dd.MM.yyyy", "HH:mm:ss", decimal_sep=","),
    "fr-FR": Culture("fr-FR", "dd/MM/yyyy", "HH:mm:ss", decimal_sep=","),
}


# --------------------------------------------------------------------------- .NET text forms


def format_dotnet_datetime(value: datetime) -> str:
    """.NET's round-trip form: 7 fraction digits, ``Z`` for UTC, else the offset."""
    base = value.strftime("%Y-%m-%dT%H:%M:%S") + f".{value.microsecond:06d}0"
    offset = value.utcoffset()
    if offset is None:
        return base
    if value.tzinfo is timezone.utc:
        return base + "Z"
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return base + f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def format_timespan(value: timedelta) -> str:
    """``TimeSpan.ToString()`` ("c"): ``[-][d.]hh:mm:ss[.fffffff]``."""
    ticks = _ticks(value)
    sign = "-" if ticks < 0 else ""
    ticks = abs(ticks)
    seconds, fraction = divmod(ticks, 10_000_000)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    text = f"{sign}{f'{days}.' if days else ''}{hours:02d}:{minutes:02d}:{seconds:02d}"
    return text + (f".{fraction:07d}" if fraction else "")


def _ticks(value: timedelta) -> int:
    return (value.days * 86400 + value.seconds) * 10_000_000 + value.microseconds * 10


_ESCAPE_X = re.compile("(?i)_(x)")
_NEEDS_ESCAPE = re.compile("[\u0000-\u001f\u007f-\u009f\ud800-\udfff\U00010000-\U0010ffff]")


def _escape_char(m: re.Match[str]) -> str:
    units = m.group(0).encode("utf-16-be", "surrogatepass")
    return "".join(f"_x{units[i]:02X}{units[i + 1]:02X}_" for i in range(0, len(units), 2))


def clixml_string(value: str) -> str:
    """MS-PSRP string escaping (``_xHHHH_``) followed by XML escaping."""
    if "_" in value:
        value = _ESCAPE_X.sub(r"_x005F_\1", value)
    value = _NEEDS_ESCAPE.sub(_escape_char, value)
    return _xml_escape(value)


# --------------------------------------------------------------------------- the writer


@dataclass(frozen=True)
class ObjectShape:
    """How one server's cmdlet renders objects (per-server settings of the peer)."""

    version: int = 2019
    tz: tzinfo = timezone.utc
    culture: Culture = CULTURES["en-US"]
    #: PSComputerName: the host the client connected to.
    computer_name: str = "ex01.contoso.com"
    #: Prefix every type name with ``Deserialized.`` (what a PowerShell client shows).
    deserialized: bool = False
    #: ``"object"``: KeyValuePair objects with Key/Value; ``"string"``: ``"[Key, Value]"``.
    event_data: str = "object"

    def local(self, value: datetime) -> datetime:
        return value.astimezone(self.tz)


class _Doc:
    """One CLIXML document: RefIds and TN reuse are per document, as on the wire."""

    def __init__(self, shape: ObjectShape) -> None:
        self.parts: list[str] = []
        self.refs = 0
        self.type_refs: dict[tuple[str, ...], int] = {}
        self.prefix = "Deserialized." if shape.deserialized else ""

    def open_obj(self, name: str | None, types: tuple[str, ...]) -> None:
        n = f' N="{name}"' if name else ""
        self.parts.append(f'<Obj{n} RefId="{self.refs}">')
        self.refs += 1
        ref = self.type_refs.get(types)
        if ref is not None:
            self.parts.append(f'<TNRef RefId="{ref}" />')
            return
        ref = self.type_refs[types] = len(self.type_refs)
        names = "".join(f"<T>{self.prefix}{_xml_escape(t)}</T>" for t in types)
        self.parts.append(f'<TN RefId="{ref}">{names}</TN>')

    def value(self, name: str | None, value: object) -> None:
        n = f' N="{name}"' if name else ""
        if value is None:
            self.parts.append(f"<Nil{n} />")
        elif isinstance(value, bool):
            self.parts.append(f"<B{n}>{'true' if value else 'false'}</B>")
        elif isinstance(value, int):
            small = -(2**31) <= value < 2**31 and not isinstance(value, _I64)
            tag = "I32" if small else "I64"
            self.parts.append(f"<{tag}{n}>{value}</{tag}>")
        elif isinstance(value, float):
            text = repr(value) if math.isfinite(value) else str(value)
            self.parts.append(f"<Db{n}>{text}</Db>")
        elif isinstance(value, datetime):
            self.parts.append(f"<DT{n}>{format_dotnet_datetime(value)}</DT>")
        elif isinstance(value, uuid.UUID):
            self.parts.append(f"<G{n}>{value}</G>")
        else:
            self.parts.append(f"<S{n}>{clixml_string(str(value))}</S>")

    def text(self, name: str, value: str) -> None:
        # Exchange returns null for an empty log field.
        self.value(name, value or None)

    def strings(self, name: str, values: tuple[str, ...]) -> None:
        if not values:
            self.parts.append(f'<Nil N="{name}" />')
            return
        self.open_obj(name, ("System.String[]", "System.Array", "System.Object"))
        items = "".join(f"<S>{clixml_string(v)}</S>" for v in values)
        self.parts.append(f"<LST>{items}</LST></Obj>")

    def note_properties(self, runspace_id: uuid.UUID, computer_name: str) -> None:
        self.parts.append("<MS>")
        self.value("PSComputerName", computer_name)
        self.value("RunspaceId", runspace_id)
        self.value("PSShowComputerName", False)
        self.parts.append("</MS>")

    def to_bytes(self) -> bytes:
        return "".join(self.parts).encode("utf-8")


_TIMESTAMP_ONLY = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
_REWRITTEN_INFO_EVENTS = frozenset({"SEND", "DELIVER", "DEFER"})


def cmdlet_message_info(ev: TrackingEvent, shape: ObjectShape) -> str:
    """MessageInfo as the cmdlet returns it (tracking-facts §1.3).

    For SEND, DELIVER and DEFER a value that is exactly one log timestamp becomes the
    server's local time in its culture (``DateTime.ToString()``); anything else is raw.
    """
    info = ev.message_info
    if ev.event_id.upper() in _REWRITTEN_INFO_EVENTS and _TIMESTAMP_ONLY.match(info):
        when = datetime.strptime(info, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        return shape.culture.format_datetime(shape.local(when))
    return info


def _event_data_value_text(value: object, shape: ObjectShape) -> str:
    if isinstance(value, datetime):
        return shape.culture.format_datetime(value)
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return shape.culture.format_number(value)
    return str(value)


def _event_data(doc: _Doc, data: Mapping[str, object], shape: ObjectShape) -> None:
    if not data:
        doc.parts.append('<Nil N="EventData" />')
        return
    doc.open_obj("EventData", (_KVP + "[]", "System.Array", "System.Object"))
    doc.parts.append("<LST>")
    for key, value in data.items():
        text = f"[{key}, {_event_data_value_text(value, shape)}]"
        if shape.event_data == "string":
            doc.value(None, text)
            continue
        doc.open_obj(None, (_KVP, "System.ValueType", "System.Object"))
        doc.parts.append(f"<ToString>{clixml_string(text)}</ToString><Props>")
        doc.value("Key", key)
        doc.value("Value", value)
        doc.parts.append("</Props></Obj>")
    doc.parts.append("</LST></Obj>")


def _latency(doc: _Doc, value: timedelta | None) -> None:
    if value is None:
        doc.parts.append('<Nil N="MessageLatency" />')
        return
    ticks = _ticks(value)
    doc.open_obj("MessageLatency", (TIMESPAN_TYPE, "System.ValueType", "System.Object"))
    doc.parts.append(f"<ToString>{format_timespan(value)}</ToString><Props>")
    total_seconds = ticks / 10_000_000
    whole = int(total_seconds)
    doc.value("Days", whole // 86400)
    doc.value("Hours", whole // 3600 % 24)
    doc.value("Minutes", whole // 60 % 60)
    doc.value("Seconds", whole % 60)
    doc.value("Milliseconds", ticks // 10_000 % 1000)
    doc.value("Ticks", _I64(ticks))
    doc.value("TotalSeconds", float(total_seconds))
    doc.value("TotalMilliseconds", float(ticks / 10_000))
    doc.parts.append("</Props></Obj>")


class _I64(int):
    """An int that must be written as I64 even when small (TimeSpan.Ticks is Int64)."""


def _latency_type(doc: _Doc, name: str) -> None:
    doc.open_obj("MessageLatencyType",
                 (LATENCY_TYPE_TYPE, "System.Enum", "System.ValueType", "System.Object"))
    doc.parts.append(f"<ToString>{name}</ToString><I32>{LATENCY_TYPES[name]}</I32></Obj>")


def render_tracking_event(ev: TrackingEvent, shape: ObjectShape, runspace_id: uuid.UUID) -> bytes:
    """One MessageTrackingEvent as a CLIXML ``<Obj>`` document (UTF-8 bytes)."""
    doc = _Doc(shape)
    doc.open_obj(None, (MTE_TYPE, "System.Object"))
    doc.parts.append(f"<ToString>{MTE_TYPE}</ToString><Props>")
    version = shape.version
    for prop, since in PROPERTIES:
        if version < since:
            continue
        if prop == "Timestamp":
            doc.value(prop, shape.local(ev.timestamp))
        elif prop in ("Recipients", "RecipientStatus", "Reference"):
            doc.strings(prop, getattr(ev, _ATTR[prop]))
        elif prop in ("TotalBytes", "RecipientCount"):
            doc.value(prop, getattr(ev, _ATTR[prop]))
        elif prop == "MessageInfo":
            doc.text(prop, cmdlet_message_info(ev, shape))
        elif prop == "MessageLatency":
            _latency(doc, ev.message_latency)
        elif prop == "MessageLatencyType":
            _latency_type(doc, ev.message_latency_type)
        elif prop == "EventData":
            _event_data(doc, ev.event_data, shape)
        else:
            doc.text(prop, getattr(ev, _ATTR[prop]))
    doc.parts.append("</Props>")
    doc.note_properties(runspace_id, shape.computer_name)
    doc.parts.append("</Obj>")
    return doc.to_bytes()


def render_transport_service(name: str, fqdn: str, version: int, log_path: str,
                             shape: ObjectShape, runspace_id: uuid.UUID) -> bytes:
    """A Get-TransportService result with the properties clients use."""
    doc = _Doc(shape)
    doc.open_obj(None, (TRANSPORT_SERVICE_TYPE,
                        "Microsoft.Exchange.Data.Directory.ADConfigurationObject",
                        "Microsoft.Exchange.Data.Directory.ADObject",
                        "Microsoft.Exchange.Data.ConfigurableObject", "System.Object"))
    doc.parts.append(f"<ToString>{clixml_string(name)}</ToString><Props>")
    doc.value("Name", name)
    doc.value("Identity", name)
    doc.value("Fqdn", fqdn)
    doc.value("AdminDisplayVersion", _ADMIN_VERSIONS.get(version, f"Version {version}"))
    doc.value("MessageTrackingLogEnabled", True)
    doc.value("MessageTrackingLogPath", log_path)
    doc.parts.append("</Props>")
    doc.note_properties(runspace_id, shape.computer_name)
    doc.parts.append("</Obj>")
    return doc.to_bytes()


_ADMIN_VERSIONS = {
    2013: "Version 15.0 (Build 1497.2)",
    2016: "Version 15.1 (Build 2507.6)",
    2019: "Version 15.2 (Build 1258.12)",
}

_ATTR: dict[str, str] = {prop: FIELD_BY_PROP[prop].attr for prop, _ in PROPERTIES
                         if prop in FIELD_BY_PROP}
