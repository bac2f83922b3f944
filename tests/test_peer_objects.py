"""The objects the peer sends: wire shape (checked with psrpcore's deserializer) and the
same values as msgtrack's offline reader for the same log line."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from psrpcore.types import deserialize
from pypsrp.powershell import PowerShell

from msgtrack.report import RunReport
from msgtrack.sources.logfile import read_logs
from tests.exchange_peer import ServerSpec
from tests.exchange_peer.exchange import prerender
from tests.exchange_peer.fixtures import open_pool
from tests.exchange_peer.objects import (
    CULTURES,
    MTE_TYPE,
    ObjectShape,
    clixml_string,
    format_timespan,
    render_tracking_event,
)
from tests.exchange_peer.synthetic import make_events, write_log

pytest_plugins = ["tests.exchange_peer.fixtures"]

UTC = timezone.utc
RUNSPACE = uuid.UUID(int=42)
WHEN = datetime(2026, 11, 27, 15, 4, 5)


def psrp(ev, **shape) -> object:
    """Render one event and read it back with psrpcore, the wire-format reference."""
    xml = render_tracking_event(ev, ObjectShape(**shape), RUNSPACE)
    return deserialize(ET.fromstring(xml), None)


# --------------------------------------------------------------------------- text forms


@pytest.mark.parametrize("culture, text", [
    ("en-US", "11/27/2026 3:04:05 PM"), ("en-GB", "27/11/2026 15:04:05"),
    ("de-DE", "27.11.2026 15:04:05"), ("fr-FR", "27/11/2026 15:04:05")])
def test_culture_formats_and_parses_datetimes(culture, text):
    assert CULTURES[culture].format_datetime(WHEN) == text
    assert CULTURES[culture].parse_datetime(text) == WHEN
    assert CULTURES["en-US"].format_datetime(WHEN.replace(hour=0)) == "11/27/2026 12:04:05 AM"


@pytest.mark.parametrize("delta, text", [
    (timedelta(seconds=0.701), "00:00:00.7010000"), (timedelta(seconds=2), "00:00:02"),
    (timedelta(days=1, hours=2, microseconds=5), "1.02:00:00.0000050"),
    (timedelta(seconds=-1.5), "-00:00:01.5000000")])
def test_timespans_print_as_dotnet_does(delta, text):
    assert format_timespan(delta) == text


@given(st.text())
def test_strings_round_trip_through_psrp_escaping(text):
    doc = f"<S>{clixml_string(text)}</S>"
    assert str(deserialize(ET.fromstring(doc), None)) == text


def test_control_characters_are_x_escaped():
    assert clixml_string("a\x01b_x0041_<") == "a_x0001_b_x005F_x0041_&lt;"
    assert clixml_string("\U0001F600") == "_xD83D__xDE00_"


# --------------------------------------------------------------------------- shape


def test_a_tracking_event_has_exchanges_shape():
    send = next(e for e in make_events(10) if e.event_id == "SEND")
    obj = psrp(send, tz=ZoneInfo("America/New_York"))
    assert obj.PSTypeNames[0] == f"Deserialized.{MTE_TYPE}"  # psrpcore adds the prefix
    assert obj.Timestamp == send.timestamp
    assert obj.Timestamp.utcoffset() == timedelta(hours=-5)
    assert list(obj.Recipients) == list(send.recipients)
    assert obj.Reference is None and obj.RelatedRecipientAddress is None
    assert obj.TotalBytes == send.total_bytes
    assert str(obj.MessageLatency) == "00:00:00.7010000"
    assert obj.MessageLatency.Ticks == 7_010_000
    assert str(obj.MessageLatencyType) == "LocalServer" and int(obj.MessageLatencyType) == 1
    assert [(kv.Key, kv.Value) for kv in obj.EventData] == list(send.event_data.items())
    assert obj.PSComputerName == "ex01.contoso.com" and obj.RunspaceId == RUNSPACE
    assert obj.PSShowComputerName is False
    names = list(obj.PSObject.adapted_properties)
    assert "OriginalServerIp" not in [p.name for p in names]
    assert "LogId" not in [p.name for p in names]


def test_versions_decide_the_properties():
    ev = make_events(1)[0]
    new = {p.name for p in psrp(ev, version=2019).PSObject.adapted_properties}
    old = {p.name for p in psrp(ev, version=2013).PSObject.adapted_properties}
    assert new - old == {"NetworkMessageId", "TransportTrafficType", "SchemaVersion"}


def test_optional_deserialized_names_and_string_event_data():
    send = next(e for e in make_events(10) if e.event_id == "SEND")
    xml = render_tracking_event(send, ObjectShape(deserialized=True, event_data="string",
                                                  culture=CULTURES["de-DE"]), RUNSPACE)
    assert f"<T>Deserialized.{MTE_TYPE}</T>" in xml.decode()
    obj = deserialize(ET.fromstring(xml), None)
    assert list(obj.EventData) == ["[E2ELatency, 0,701]", "[ToEntity, Internet]",
                                   "[IsProbe, False]"]


@pytest.mark.parametrize("culture, text", [
    ("en-US", "11/27/2026 3:00:02 AM"), ("en-GB", "27/11/2026 03:00:02"),
    ("de-DE", "27.11.2026 03:00:02")])
def test_timestamp_only_message_info_is_local_and_cultured(culture, text):
    events = make_events(40)
    arrival = datetime(2026, 11, 27, 8, 0, 2, tzinfo=UTC)
    deliver = next(e for e in events if e.event_id == "DELIVER")
    deliver = type(deliver)(**{**deliver.__dict__, "message_info": "2026-11-27T08:00:02.000Z"})
    receive = type(deliver)(**{**deliver.__dict__, "event_id": "RECEIVE"})
    shape = dict(tz=ZoneInfo("America/New_York"), culture=CULTURES[culture])
    assert str(psrp(deliver, **shape).MessageInfo) == text
    assert str(psrp(receive, **shape).MessageInfo) == "2026-11-27T08:00:02.000Z"  # raw
    assert arrival.astimezone(ZoneInfo("America/New_York")).hour == 3


# --------------------------------------------------------------------------- remote = offline


def _remote_record(obj) -> dict:
    """The values a client reads from one pypsrp object, in TrackingEvent's terms."""
    p = dict(obj.adapted_properties)
    stamp = p.pop("Timestamp")
    p["Timestamp"] = datetime.fromisoformat(stamp[:26] + stamp[27:]).astimezone(UTC)
    latency = p.pop("MessageLatency")
    p["MessageLatency"] = None if latency is None else latency.to_string
    p["MessageLatencyType"] = p["MessageLatencyType"].to_string
    data = {}
    for kv in p.pop("EventData") or []:
        value = kv.adapted_properties["Value"]
        if isinstance(value, str) and value.endswith("Z") and value[:4].isdigit():
            value = datetime.fromisoformat(value[:26] + "+00:00")
        data[kv.adapted_properties["Key"]] = value
    p["EventData"] = data
    for key in ("Recipients", "RecipientStatus", "Reference"):
        p[key] = tuple(p[key] or ())
    return {k: ("" if v is None and k not in ("TotalBytes", "RecipientCount",
                                              "MessageLatency") else v)
            for k, v in p.items()}


def _expected(ev, tz, culture) -> dict:
    """The offline record, with the cmdlet's conversions applied."""
    info = ev.message_info
    if ev.event_id in ("SEND", "DELIVER", "DEFER") and info.endswith("Z") and len(info) == 24:
        when = datetime.strptime(info, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        info = when.astimezone(tz).strftime(culture)
    latency = ev.message_latency
    return {
        "Timestamp": ev.timestamp, "ClientIp": ev.client_ip, "Sender": ev.sender,
        "ClientHostname": ev.client_hostname, "ServerIp": ev.server_ip,
        "ServerHostname": ev.server_hostname, "SourceContext": ev.source_context,
        "ConnectorId": ev.connector_id, "Source": ev.source, "EventId": ev.event_id,
        "InternalMessageId": ev.internal_message_id, "MessageId": ev.message_id,
        "NetworkMessageId": ev.network_message_id, "Recipients": ev.recipients,
        "RecipientStatus": ev.recipient_status,
        "TotalBytes": ev.total_bytes, "RecipientCount": ev.recipient_count,
        "RelatedRecipientAddress": ev.related_recipient_address, "Reference": ev.reference,
        "MessageSubject": ev.message_subject, "ReturnPath": ev.return_path,
        "Directionality": ev.directionality, "TenantId": ev.tenant_id,
        "OriginalClientIp": ev.original_client_ip, "MessageInfo": info,
        "MessageLatency": None if latency is None else format_timespan(latency),
        "MessageLatencyType": ev.message_latency_type, "EventData": dict(ev.event_data),
        "TransportTrafficType": ev.transport_traffic_type, "SchemaVersion": ev.schema_version,
    }


def test_a_remote_object_carries_the_offline_readers_values(exchange_peer_factory, tmp_path):
    folder = tmp_path / "EX01"
    write_log(folder / "MSGTRK2026112708-1.LOG", make_events(90))
    offline = list(read_logs([folder], RunReport()))
    assert len(offline) == 90
    tz = ZoneInfo("Europe/Berlin")
    peer = exchange_peer_factory(auth="ntlm", servers=[
        ServerSpec("EX01", logs=folder, time_zone="Europe/Berlin", culture="de-DE")])
    with open_pool(peer) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-MessageTrackingLog").add_parameter("ResultSize", "Unlimited")
        remote = ps.invoke()
    assert len(remote) == len(offline)
    for obj, ev in zip(remote, offline, strict=True):
        assert obj.adapted_properties["Timestamp"].endswith("+01:00")
        assert _remote_record(obj) == _expected(ev, tz, "%d.%m.%Y %H:%M:%S"), ev.origin
    kinds = {ev.event_id for ev in offline}
    assert {"RECEIVE", "SEND", "DELIVER", "DEFER", "FAIL"} <= kinds


def test_a_caching_server_sends_the_same_objects_with_each_pools_runspace_id(
        exchange_peer_factory):
    # The benchmark's peers keep rendered objects; only the RunspaceId may differ per pool.
    events = make_events(40)
    plain = ServerSpec("EX01", events=events)
    cached = ServerSpec("EX01", events=events, cache_objects=True)

    def fetch(spec: ServerSpec) -> list[tuple[dict, str]]:
        peer = exchange_peer_factory(auth="ntlm", servers=[spec])
        if spec.cache_objects:
            assert prerender(peer.config) == len(events)
        out = []
        for _ in range(2):  # two pools: two RunspaceIds
            with open_pool(peer) as pool:
                ps = PowerShell(pool)
                ps.add_cmdlet("Get-MessageTrackingLog").add_parameter("ResultSize", "Unlimited")
                objs = ps.invoke()
                runspace = str(pool.id).lower()
            assert {str(o.extended_properties["RunspaceId"]).lower() for o in objs} == {runspace}
            out += [(dict(o.adapted_properties), runspace) for o in objs]
        return out

    plain_objs, cached_objs = fetch(plain), fetch(cached)
    assert len(cached_objs) == 2 * len(events)
    assert [_plain(p) for p, _ in cached_objs] == [_plain(p) for p, _ in plain_objs]
    assert len({r for _, r in cached_objs}) == 2
    assert cached.rendered and not plain.rendered


def _plain(value: object) -> object:
    """pypsrp's objects as comparable values (its complex objects have no equality)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "adapted_properties"):
        return (str(value), _plain(dict(value.adapted_properties)),
                _plain(dict(value.extended_properties)))
    return value
