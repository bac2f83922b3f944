"""Helpers for the audit tests: TrackingEvents -> real MSGTRK files, and audit configs.

The files are what Exchange 2016 writes (tracking-facts §3): BOM, CRLF, the five header
lines, the 30-field schema, CSV quoting. The tests at the bottom check that the reader
gives back exactly the events the helpers wrote, so every audit test starts from real
log files, not from objects that skip the parser.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from msgtrack.decode import encode_custom_data, format_log_timestamp, join_list
from msgtrack.events import FIELD_BY_COLUMN, TrackingEvent
from msgtrack.report import RunReport
from msgtrack.sources.logfile import read_logs

COLUMNS = (
    "date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,"
    "connector-id,source,event-id,internal-message-id,message-id,network-message-id,"
    "recipient-address,recipient-status,total-bytes,recipient-count,related-recipient-address,"
    "reference,message-subject,sender-address,return-path,message-info,directionality,"
    "tenant-id,original-client-ip,original-server-ip,custom-data,transport-traffic-type,"
    "log-id,schema-version").split(",")

SMIME_CONTEXT = ("MDB:03342ab0-bcf8-544a-a206-5eaf44950694, Mailbox:e27461aa-02ce-5d89-bd04-"
                 "850049623fb4, Event:2201050, MessageClass:{cls}, CreationTime:{when}, "
                 "ClientType:{client}, SubmissionAssistant:MailboxTransportSubmissionEmail"
                 "Assistant")

_counter = iter(range(10_000, 10_000_000))


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def event(at: str | datetime, event_id: str = "RECEIVE", source: str = "SMTP",
          **fields: Any) -> TrackingEvent:
    """A TrackingEvent with realistic defaults; ``fields`` override attributes."""
    ts = when(at) if isinstance(at, str) else at
    n = next(_counter)
    values: dict[str, Any] = dict(
        timestamp=ts, server_hostname="EX01", server_ip="10.0.0.10", source=source,
        event_id=event_id, internal_message_id=str(n), message_id=f"<m{n}@contoso.com>",
        network_message_id=f"00000000-0000-0000-0000-{n:012d}",
        recipients=("bob@contoso.com",), recipient_count=1, total_bytes=1000,
        sender="alice@contoso.com", return_path="alice@contoso.com",
        message_subject="hello", directionality="Originating",
        transport_traffic_type="Email", log_id=f"11111111-0000-0000-0000-{n:012d}",
        schema_version="15.01.2375.007")
    if event_id == "RECEIVE" and source == "SMTP":
        values.update(client_ip="10.0.0.5", client_hostname="app01.contoso.com",
                      connector_id="EX01\\Default EX01", message_info="04I: ",
                      source_context=f"08DC1F3A2B4C5D6E;{format_log_timestamp(ts)};0",
                      recipient_status=("250 2.1.5 Recipient OK",))
    values.update(fields)
    return TrackingEvent(**values)


def smtp(at: str, info: str, ip: str = "10.0.0.5", **fields: Any) -> TrackingEvent:
    return event(at, "RECEIVE", "SMTP", message_info=info, client_ip=ip, **fields)


def airsync_submit(at: str, subject: str, cls: str = "IPM.Note.SMIME", client: str = "AirSync",
                   **fields: Any) -> TrackingEvent:
    ts = when(at)
    ctx = SMIME_CONTEXT.format(cls=cls, when=format_log_timestamp(ts), client=client)
    return event(ts, "SUBMIT", "STOREDRIVER", source_context=ctx, message_subject=subject,
                 internal_message_id="0", **fields)


def cells(ev: TrackingEvent) -> list[str]:
    out = []
    for column in COLUMNS:
        f = FIELD_BY_COLUMN[column]
        value = getattr(ev, f.attr)
        if f.kind == "time":
            out.append(format_log_timestamp(value))
        elif f.kind == "list":
            out.append(join_list(value))
        elif f.kind == "int":
            out.append("" if value is None else str(value))
        elif f.kind == "data":
            out.append(encode_custom_data(value))
        else:
            out.append(value)
    return out


def log_text(events: Iterable[TrackingEvent], created: datetime) -> str:
    buf = io.StringIO()
    buf.write("#Software: Microsoft Exchange Server\r\n#Version: 15.01.2375.007\r\n"
              "#Log-type: Message Tracking Log\r\n"
              f"#Date: {format_log_timestamp(created)}\r\n#Fields: {','.join(COLUMNS)}\r\n")
    writer = csv.writer(buf, lineterminator="\r\n")
    for ev in events:
        writer.writerow(cells(ev))
    return buf.getvalue()


def write_logs(folder: Path, events: Iterable[TrackingEvent]) -> list[Path]:
    """One MSGTRK file per server and UTC hour, as Exchange names them; mtime realistic."""
    by_file: dict[Path, list[TrackingEvent]] = {}
    for ev in sorted(events, key=lambda e: e.timestamp):
        server = ev.server_hostname or "EX01"
        name = f"MSGTRK{ev.timestamp:%Y%m%d%H}-1.LOG"
        by_file.setdefault(folder / server / name, []).append(ev)
    for path, evs in by_file.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        created = evs[0].timestamp.replace(minute=0, second=0, microsecond=0)
        path.write_bytes(("\ufeff" + log_text(evs, created)).encode("utf-8"))
        last = (evs[-1].timestamp + timedelta(seconds=1)).timestamp()
        os.utime(path, (last, last))
    return sorted(by_file)


def write_config(path: Path, logs: list[str] | str = "logs", *, zone: str = "UTC",
                 extra: str = "", **audit: Any) -> Path:
    """A small audit config: ``audit`` keys go in [audit]; ``extra`` is appended TOML."""
    settings = {"zone": zone, "output": "out", "backfill_days": 1,
                "accepted_domains": ["contoso.com"], "events_format": "csv", **audit}
    lines = ["[audit]"]
    for key, value in settings.items():
        lines.append(f"{key} = {_toml(value)}")
    lines += ["", "[source]", f"logs = {_toml([logs] if isinstance(logs, str) else logs)}", ""]
    path.write_text("\n".join(lines) + extra + "\n", encoding="utf-8")
    return path


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


# --------------------------------------------------------------------------- self-checks


def test_written_logs_read_back_as_the_same_events(tmp_path: Path) -> None:
    events = [smtp("2026-11-25T08:00:00.001Z", "07I: ", message_subject="a, \"quoted\" subject"),
              airsync_submit("2026-11-25T08:30:00.000Z", "RE: hi"),
              event("2026-11-25T09:15:00.000Z", "DELIVER", "STOREDRIVER",
                    recipients=("o'brien@contoso.com", "x;y@contoso.com"),
                    event_data={"DeliveryPriority": "Normal"})]
    files = write_logs(tmp_path, events)
    assert [p.name for p in files] == ["MSGTRK2026112508-1.LOG", "MSGTRK2026112509-1.LOG"]
    report = RunReport()
    back = list(read_logs([tmp_path], report))
    assert report.complete
    assert back == events  # origin is not compared
    assert back[1].submission["ClientType"] == "AirSync"
    assert back[0].info.auth is not None and back[0].info.auth.method == "Login"
