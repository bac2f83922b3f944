"""Small, deterministic tracking data for peer tests: in-memory events and MSGTRK files.

``make_events`` builds TrackingEvents the way a 2016/2019 server logs one message's life
(RECEIVE, SEND with a latency string, DELIVER with a timestamp-only MessageInfo, DEFER,
FAIL), so every cmdlet conversion has something to act on. ``write_log`` writes events as a
real MSGTRK file (tracking-facts §3: BOM, header, CRLF, quoting) for the offline reader.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

from msgtrack import decode
from msgtrack.events import FIELDS, TrackingEvent

UTC = timezone.utc
START = datetime(2026, 11, 27, 8, 0, 0, tzinfo=UTC)

COLUMNS_2016 = tuple(f.column for f in FIELDS if f.column)
COLUMNS_2013 = tuple(c for c in COLUMNS_2016
                     if c not in ("transport-traffic-type", "log-id", "schema-version"))


def _message(i: int, server: str, at: datetime, domain: str) -> Iterator[TrackingEvent]:
    fqdn = f"{server.lower()}.{domain}"
    sender = f"user{i % 7}@{domain}"
    recipients = (f"rcpt{i % 5}@{domain}", f"ext{i % 3}@fabrikam.com")
    common = dict(
        internal_message_id=str(25769803777 + i),
        message_id=f"<{uuid.UUID(int=i + 1)}@{fqdn}>",
        network_message_id=str(uuid.UUID(int=(i + 1) << 64)),
        sender=sender, return_path=sender, directionality="Originating",
        message_subject=f"Report {i}, \u201cdraft\u201d \u2013 caf\u00e9",
        total_bytes=20000 + i, server_hostname=server.upper(),
        transport_traffic_type="Email", schema_version="15.02.1258.012",
        original_client_ip="", origin=server,
    )
    arrival = decode.format_log_timestamp(at)
    yield TrackingEvent(
        timestamp=at, event_id="RECEIVE", source="SMTP", client_ip="10.0.0.15",
        client_hostname=f"mx.{domain}", server_ip="10.0.0.16",
        source_context=f"08DC1F3A2B4C{i % 65536:04X};{arrival};0",
        connector_id=f"{server.upper()}\\Default {server.upper()}",
        recipients=recipients, recipient_status=("", ""), recipient_count=2,
        message_info="04I: ",
        event_data={"FirstForestHop": fqdn, "DeliveryPriority": "Normal", "MsgRecipCount": 2},
        log_id=str(uuid.UUID(int=i * 8 + 1)), **common)
    sent = at + timedelta(milliseconds=701 + i % 1000)
    yield TrackingEvent(
        timestamp=sent, event_id="SEND", source="SMTP", server_ip="10.0.0.16",
        source_context=f"08DC1F3A2B4C{i % 65536:04X};250 2.0.0 OK;ClientSubmitTime:",
        connector_id="Outbound to Internet", recipients=(recipients[1],),
        recipient_status=("250 2.6.0 Queued mail for delivery",), recipient_count=1,
        message_info=f"{arrival};LSRV={fqdn}:TOTAL-HUB={(sent - at).total_seconds():.3f}"
                     "|SMR=0.113|CAT=0.146|QDE=0.070",
        event_data={"E2ELatency": round((sent - at).total_seconds(), 3),
                    "ToEntity": "Internet", "IsProbe": "False"},
        log_id=str(uuid.UUID(int=i * 8 + 2)), **common)
    delivered = at + timedelta(seconds=2, milliseconds=i % 1000)
    yield TrackingEvent(
        timestamp=delivered, event_id="DELIVER", source="STOREDRIVER",
        recipients=(recipients[0],), recipient_status=("",), recipient_count=1,
        message_info=arrival,
        event_data={"MailboxDatabaseGuid": str(uuid.UUID(int=7)),
                    "DeliveryTime": delivered},
        log_id=str(uuid.UUID(int=i * 8 + 3)), **common)
    if i % 10 == 9:
        retry = decode.format_log_timestamp(at + timedelta(minutes=15))
        yield TrackingEvent(
            timestamp=at + timedelta(seconds=3), event_id="DEFER", source="SMTP",
            recipients=(recipients[1],), recipient_count=1,
            recipient_status=("[{LED=451 4.4.0 DNS query failed};{MSG=};{FQDN=};{IP=}]",),
            message_info=retry, reference=(f"<dsn{i}@{fqdn}>",),
            log_id=str(uuid.UUID(int=i * 8 + 4)), **common)
    if i % 25 == 24:
        yield TrackingEvent(
            timestamp=at + timedelta(seconds=4), event_id="FAIL", source="SMTP",
            recipients=(recipients[1],), recipient_count=1,
            recipient_status=("550 5.1.1 RESOLVER.ADR.RecipNotFound; not found",),
            related_recipient_address="postmaster@fabrikam.com",
            message_info="", event_data={},
            log_id=str(uuid.UUID(int=i * 8 + 5)), **common)


def make_events(n: int, server: str = "EX01", *, start: datetime = START,
                step: timedelta = timedelta(seconds=7), domain: str = "contoso.com"
                ) -> list[TrackingEvent]:
    """Exactly ``n`` events in log (time) order, a few per message."""
    out: list[TrackingEvent] = []
    i = 0
    while len(out) < n:
        out.extend(_message(i, server, start + i * step, domain))
        i += 1
    del out[n:]
    out.sort(key=lambda ev: ev.timestamp)
    return out


def _cell(value: str) -> str:
    return value.replace("\r", "\\r").replace("\n", "\\n")


def format_row(ev: TrackingEvent, columns: Iterable[str]) -> list[str]:
    by_column = {f.column: f for f in FIELDS if f.column}
    row = []
    for column in columns:
        f = by_column[column]
        value = getattr(ev, f.attr)
        if f.kind == "time":
            row.append(decode.format_log_timestamp(value))
        elif f.kind == "list":
            row.append(_cell(decode.join_list(value)))
        elif f.kind == "int":
            row.append("" if value is None else str(value))
        elif f.kind == "data":
            row.append(_cell(decode.encode_custom_data(value)))
        else:
            row.append(_cell(value))
    return row


def write_log(path: str | Path, events: Iterable[TrackingEvent], *, version: int = 2019,
              build: str = "15.02.1258.012") -> Path:
    """Write events as one MSGTRK file (UTF-8 with BOM, CRLF, Exchange's CSV quoting)."""
    columns = COLUMNS_2013 if version < 2016 else COLUMNS_2016
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    buf.write("#Software: Microsoft Exchange Server\r\n")
    buf.write(f"#Version: {build}\r\n#Log-type: Message Tracking Log\r\n")
    buf.write(f"#Date: {decode.format_log_timestamp(START)}\r\n")
    buf.write(f"#Fields: {','.join(columns)}\r\n")
    writer = csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    for ev in events:
        writer.writerow(format_row(ev, columns))
    path.write_bytes(b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8"))
    return path
