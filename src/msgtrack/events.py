"""The one record type for a tracking event, whatever its source.

Attribute names are the snake_case twins of Get-MessageTrackingLog's properties;
:data:`FIELDS` maps each one to the cmdlet property and the MSGTRK column. Sources
build events at the boundary (timestamps to aware UTC, lists to tuples, custom-data
to a mapping); nothing downstream re-parses those strings. Decoded views
(:attr:`TrackingEvent.info`, :attr:`TrackingEvent.submission`) are derived lazily
from the raw strings and cached.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Literal

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
_LATENCY_EVENTS = frozenset({"DELIVER", "SEND", "SUBMIT"})


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

    # Derived views. cached_property stores into __dict__ directly, so it works on a
    # frozen dataclass, and each raw string is decoded at most once per event.
    @cached_property
    def info(self) -> decode.MessageInfo:
        """The decoded MessageInfo (auth code, timestamp or latency)."""
        return decode.decode_message_info(self.message_info)

    @cached_property
    def submission(self) -> Mapping[str, str]:
        """STOREDRIVER source-context as key/value pairs (MessageClass, ClientType, ...)."""
        return decode.decode_source_context(self.source_context)

    @property
    def message_latency_type(self) -> str:
        """``LocalServer``, ``EndToEnd`` or ``None``, computed as the cmdlet does."""
        if not self._has_cmdlet_latency():
            return "None"
        latency = self.info.latency
        if latency is None or latency.this_server is None:
            return "None"
        return "LocalServer" if latency.this_server.local else "EndToEnd"

    @property
    def message_latency(self) -> timedelta | None:
        """Event time minus original arrival time (never negative), as the cmdlet does."""
        if not self._has_cmdlet_latency():
            return None
        arrival = self.info.timestamp
        if arrival is None:
            return None
        return max(self.timestamp - arrival, timedelta(0))

    def _has_cmdlet_latency(self) -> bool:
        return self.event_id in _LATENCY_EVENTS or (
            self.event_id == "RESUBMIT" and self.source == "STOREDRIVER"
        )

    def annotations(self) -> dict[str, str]:
        """The annotation columns every sink writes after the cmdlet's properties."""
        return decode.annotation_columns(self.info, self.submission, self.event_id)
