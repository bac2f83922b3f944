"""The one record type for a tracking event, whatever its source.

Attribute names are the snake_case twins of Get-MessageTrackingLog's properties;
:data:`FIELDS` maps each one to the cmdlet property and the MSGTRK column. Sources
build events at the boundary (timestamps to aware UTC, lists to tuples, custom-data
to a mapping); nothing downstream re-parses those strings. Decoded views
(:attr:`TrackingEvent.info`, :attr:`TrackingEvent.submission`) are derived lazily
from the raw strings and cached.

**Events read from a log line** (``sources/logfile.py``) carry that line with them, in
three private instance-dict entries: ``_row`` (the cell values), ``_raw`` (the cells
CSV-quoted as Exchange and csv.writer quote them) and ``_layout`` (the file's column
list, see :class:`RowLayout`). The fields in :data:`DEFERRED` (the lists and EventData)
are then converted from their cell on first access, like the derived views; the text
fields are all stored on the first access of any of them (one step, so code that reads
many fields pays once); and a CSV sink can copy cells that need no formatting straight
from the line (:func:`source_cells`). The timestamp and the integers are converted when
the line is read, since a line where they do not convert is a bad line. Equality,
``repr``, ``dataclasses.replace``/``asdict`` and pickling only ever see the fields:
``replace`` builds a new event through ``__init__``, so an event whose fields changed
never keeps a line it no longer matches, and pickling stores the converted fields, not
the line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, Protocol, TypeVar

from msgtrack import decode

Kind = Literal["str", "list", "int", "time", "data"]


@dataclass(frozen=True)
class Field:
    attr: str  #: Python attribute on TrackingEvent
    prop: str  #: Get-MessageTrackingLog property name (CSV/JSONL column)
    column: str | None  #: MSGTRK*.LOG column in #Fields:, None if the file has none
    kind: Kind = "str"


#: Cmdlet property order (Exchange 2019 output), plus the file-only columns.
FIELDS: tuple[Field, ...] = (
    Field("timestamp", "Timestamp", "date-time", "time"),
    Field("client_ip", "ClientIp", "client-ip"),
    Field("client_hostname", "ClientHostname", "client-hostname"),
    Field("server_ip", "ServerIp", "server-ip"),
    Field("server_hostname", "ServerHostname", "server-hostname"),
    Field("source_context", "SourceContext", "source-context"),
    Field("connector_id", "ConnectorId", "connector-id"),
    Field("source", "Source", "source"),
    Field("event_id", "EventId", "event-id"),
    Field("internal_message_id", "InternalMessageId", "internal-message-id"),
    Field("message_id", "MessageId", "message-id"),
    Field("network_message_id", "NetworkMessageId", "network-message-id"),
    Field("recipients", "Recipients", "recipient-address", "list"),
    Field("recipient_status", "RecipientStatus", "recipient-status", "list"),
    Field("total_bytes", "TotalBytes", "total-bytes", "int"),
    Field("recipient_count", "RecipientCount", "recipient-count", "int"),
    Field("related_recipient_address", "RelatedRecipientAddress", "related-recipient-address"),
    Field("reference", "Reference", "reference", "list"),
    Field("message_subject", "MessageSubject", "message-subject"),
    Field("sender", "Sender", "sender-address"),
    Field("return_path", "ReturnPath", "return-path"),
    Field("directionality", "Directionality", "directionality"),
    Field("tenant_id", "TenantId", "tenant-id"),
    Field("original_client_ip", "OriginalClientIp", "original-client-ip"),
    Field("original_server_ip", "OriginalServerIp", "original-server-ip"),
    Field("message_info", "MessageInfo", "message-info"),
    Field("event_data", "EventData", "custom-data", "data"),
    Field("transport_traffic_type", "TransportTrafficType", "transport-traffic-type"),
    Field("log_id", "LogId", "log-id"),
    Field("schema_version", "SchemaVersion", "schema-version"),
)

FIELD_BY_COLUMN: dict[str, Field] = {f.column: f for f in FIELDS if f.column}
FIELD_BY_PROP: dict[str, Field] = {f.prop: f for f in FIELDS}

#: Events for which the cmdlet computes MessageLatency / MessageLatencyType (tracking-facts §1.3).
LATENCY_EVENTS = frozenset({"DELIVER", "SEND", "SUBMIT"})


def has_cmdlet_latency(event_id: str, source: str) -> bool:
    """Whether the cmdlet computes MessageLatency for this event."""
    return event_id in LATENCY_EVENTS or (event_id == "RESUBMIT" and source == "STOREDRIVER")


def latency_type(local: bool | None) -> str:
    """MessageLatencyType of an event with a MessageLatency, from the latency block's
    ``local`` (LSRV: True, SRV: False, no block: None)."""
    return "None" if local is None else "LocalServer" if local else "EndToEnd"


def cmdlet_latency(event_id: str, source: str, message_info: str,
                   timestamp: datetime) -> tuple[timedelta | None, str]:
    """(MessageLatency, MessageLatencyType) as the cmdlet computes them: the event's time
    minus the original arrival time (never negative), and LocalServer, EndToEnd or None."""
    if not has_cmdlet_latency(event_id, source):
        return None, "None"
    summary = decode.summarize_message_info(message_info)
    kind = latency_type(summary.local)
    if summary.arrival is None:
        return None, kind
    return max(timestamp - summary.arrival, timedelta(0)), kind


class CustomData(dict[str, Any]):
    """EventData decoded from a log's custom-data text; :attr:`text` keeps that text, so
    an output can write EventData exactly as the log did (``S:K=v;I32:N=3``) instead of
    re-encoding the decoded values. It is a plain dict otherwise; changing it in place
    forgets the text."""

    __slots__ = ("text",)

    def __init__(self, data: Iterable[Any] | Mapping[str, Any] = (), text: str | None = None) -> None:
        super().__init__(data)
        self.text = text

    def __reduce__(self) -> tuple[Any, ...]:
        return (CustomData, (dict(self), self.text))

    def __setitem__(self, key: str, value: Any) -> None:
        self.text = None
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.text = None
        super().__delitem__(key)

    def __ior__(self, other: Any) -> CustomData:  # type: ignore[override,misc]
        self.text = None
        return super().__ior__(other)

    def clear(self) -> None:
        self.text = None
        super().clear()

    def pop(self, *args: Any) -> Any:
        self.text = None
        return super().pop(*args)

    def popitem(self) -> tuple[str, Any]:
        self.text = None
        return super().popitem()

    def setdefault(self, *args: Any) -> Any:
        self.text = None
        return super().setdefault(*args)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.text = None
        super().update(*args, **kwargs)


def custom_data_text(data: Mapping[str, Any]) -> str:
    """EventData as the log's typed text: the log's own text when ``data`` was decoded
    from one and is unchanged, else :func:`decode.encode_custom_data` of the values."""
    text = getattr(data, "text", None)
    return text if text is not None else decode.encode_custom_data(data)


_decoded_texts: dict[str, dict[str, Any]] = {}


def custom_data_from_text(text: str) -> dict[str, Any]:
    """The EventData of a log's custom-data cell (a fresh dict for each event)."""
    if not text:
        return {}
    # Many rows repeat the same custom-data text: decode each text once.
    hit = _decoded_texts.get(text)
    if hit is None:
        hit = decode.decode_custom_data(text)
        if len(_decoded_texts) >= 4096:
            _decoded_texts.clear()
        _decoded_texts[text] = hit
    return CustomData(hit, text)


#: Fields a source may leave as their cell's text (see the module docstring), with the
#: function that converts the text on first access.
DEFERRED: dict[str, Callable[[str], Any]] = {
    "recipients": decode.split_list,
    "recipient_status": decode.split_list,
    "reference": decode.split_list,
    "event_data": custom_data_from_text,
}


#: Text fields a source may leave in its row (see the module docstring).
TEXT_FIELDS: tuple[str, ...] = tuple(f.attr for f in FIELDS if f.kind == "str")


class RowLayout(Protocol):
    """What an event read from a log line knows about the line's columns."""

    #: The file's ``#Fields:`` columns, in order.
    columns: tuple[str, ...]
    #: attribute -> index in ``_row`` of the :data:`DEFERRED` fields left unconverted.
    deferred: Mapping[str, int]
    #: True when the events' ``origin`` never needs CSV quoting (``path:line`` of a path
    #: without ``"``, ``,``, CR or LF), so writers need not look at each one.
    plain_origin: bool

    def fill_text(self, d: dict[str, Any]) -> None:
        """Store every :data:`TEXT_FIELDS` field of the event whose instance dict is
        ``d`` (from ``d["_row"]``, or ``""`` where the file has no such column), and
        ``extra``."""


def source_cells(ev: TrackingEvent) -> tuple[RowLayout, list[str], list[str]] | None:
    """The layout, the cell values and the cells as written (CSV-quoted where csv.writer
    would quote them) of the log line ``ev`` was read from; None for events built any
    other way."""
    d = ev.__dict__
    raw = d.get("_raw")
    return None if raw is None else (d["_layout"], d["_row"], raw)


_T = TypeVar("_T")


class _Cached(Generic[_T]):
    """functools.cached_property without its lock (3.11 takes it on every first access):
    computed once, stored in the instance dict, which wins over this descriptor after."""

    def __init__(self, fn: Callable[[Any], _T]) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> _T:
        if obj is None:
            return self  # type: ignore[return-value]
        value = obj.__dict__[self.name] = self.fn(obj)
        return value


class _FromCell:
    """A :data:`DEFERRED` field of an event read from a log line: converted from its cell
    on first access, then stored in the instance dict (which wins over this descriptor).
    Events built through ``__init__`` hold every field in their dict already."""

    __slots__ = ("name", "convert")

    def __init__(self, name: str, convert: Callable[[str], Any]) -> None:
        self.name = name
        self.convert = convert

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        d = obj.__dict__
        try:
            text = d["_row"][d["_layout"].deferred[self.name]]
        except KeyError:
            raise AttributeError(self.name) from None
        value = d[self.name] = self.convert(text)
        return value


class _TextFromCells:
    """A text field of an event read from a log line: the first access to any of them
    stores them all in the instance dict (which then wins over this descriptor)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        d = obj.__dict__
        try:
            layout = d["_layout"]
        except KeyError:
            raise AttributeError(self.name) from None
        layout.fill_text(d)
        return d[self.name]


@dataclass(frozen=True)
class TrackingEvent:
    """One message tracking event. Empty text is ``""``, empty lists are ``()``."""

    timestamp: datetime  #: aware, UTC
    client_ip: str = ""
    client_hostname: str = ""
    server_ip: str = ""
    server_hostname: str = ""
    source_context: str = ""
    connector_id: str = ""
    source: str = ""
    event_id: str = ""
    internal_message_id: str = ""
    message_id: str = ""
    network_message_id: str = ""
    recipients: tuple[str, ...] = ()
    recipient_status: tuple[str, ...] = ()
    total_bytes: int | None = None
    recipient_count: int | None = None
    related_recipient_address: str = ""
    reference: tuple[str, ...] = ()
    message_subject: str = ""
    sender: str = ""
    return_path: str = ""
    directionality: str = ""
    tenant_id: str = ""
    original_client_ip: str = ""
    original_server_ip: str = ""
    message_info: str = ""
    event_data: Mapping[str, Any] = field(default_factory=dict)
    transport_traffic_type: str = ""
    log_id: str = ""
    schema_version: str = ""
    #: Columns or properties msgtrack does not know, kept verbatim (name -> text).
    extra: Mapping[str, str] = field(default_factory=dict)
    #: Where the event came from: ``path:line`` for files, the server name for remote.
    origin: str = field(default="", compare=False)

    # Derived views. _Cached stores into __dict__ directly, so it works on a frozen
    # dataclass, and each raw string is decoded at most once per event.
    @_Cached
    def info(self) -> decode.MessageInfo:
        """The decoded MessageInfo (auth code, timestamp or latency)."""
        return decode.decode_message_info(self.message_info)

    @_Cached
    def submission(self) -> Mapping[str, str]:
        """STOREDRIVER source-context as key/value pairs (MessageClass, ClientType, ...)."""
        return decode.decode_source_context(self.source_context)

    def __getstate__(self) -> dict[str, Any]:
        d = self.__dict__
        if "_layout" not in d:
            return d
        # Read from a log line: the fields only (the line's layout holds compiled code).
        return {name: getattr(self, name) for name in _FIELD_NAMES}

    @property
    def message_latency_type(self) -> str:
        """``LocalServer``, ``EndToEnd`` or ``None``, computed as the cmdlet does."""
        return cmdlet_latency(self.event_id, self.source, self.message_info, self.timestamp)[1]

    @property
    def message_latency(self) -> timedelta | None:
        """Event time minus original arrival time (never negative), as the cmdlet does."""
        return cmdlet_latency(self.event_id, self.source, self.message_info, self.timestamp)[0]

    def annotations(self) -> dict[str, str]:
        """The annotation columns every sink writes after the cmdlet's properties
        (:func:`decode.annotation_columns` of :attr:`info` and :attr:`submission`)."""
        return dict(zip(decode.ANNOTATION_COLUMNS, decode.annotation_values(
            self.message_info, self.source_context, self.event_id), strict=True))


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(TrackingEvent))
# Installed after @dataclass has read the defaults (a class attribute there is a default).
for _name, _convert in DEFERRED.items():
    setattr(TrackingEvent, _name, _FromCell(_name, _convert))
for _name in (*TEXT_FIELDS, "extra"):  # fill_text stores extra with the text fields
    setattr(TrackingEvent, _name, _TextFromCells(_name))
del _name, _convert
