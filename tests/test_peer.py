"""The loopback Exchange peer, driven by pypsrp's real client (issue #3)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import pytest
import requests
from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError
from pypsrp.powershell import PowerShell, PSInvocationState, RunspacePool
from pypsrp.wsman import WSMan

from tests.exchange_peer import Fault, ServerSpec
from tests.exchange_peer.exchange import MORE_RESULTS, NO_LANGUAGE
from tests.exchange_peer.fixtures import open_pool
from tests.exchange_peer.synthetic import START, make_events

pytest_plugins = ["tests.exchange_peer.fixtures"]

UTC = timezone.utc


def dt(text: str) -> ET.Element:
    """pypsrp 0.9.1 cannot serialize datetime; a ready <DT> element passes through."""
    el = ET.Element("DT")
    el.text = text
    return el


def invoke(pool: RunspacePool, cmdlet: str, **params: object) -> PowerShell:
    ps = PowerShell(pool)
    ps.add_cmdlet(cmdlet).add_parameters(params)
    ps.invoke()
    return ps


def prop(obj: object, name: str) -> object:
    return obj.adapted_properties[name]  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- authentication


@pytest.mark.parametrize("options", [
    pytest.param({"auth": "ntlm"}, id="ntlm-http-encrypted"),
    pytest.param({"auth": "negotiate"}, id="negotiate-http-encrypted"),
    pytest.param({"auth": "basic", "tls": True}, id="basic-https"),
    pytest.param({"auth": "ntlm", "tls": True}, id="ntlm-https"),
])
def test_every_auth_mode_opens_a_pool_and_runs_a_cmdlet(exchange_peer_factory, options):
    peer = exchange_peer_factory(**options)
    with open_pool(peer) as pool:
        ps = invoke(pool, "Get-TransportService")
    assert [prop(o, "Name") for o in ps.output] == ["EX01"]
    encrypted = options["auth"] != "basic" and not options.get("tls")
    assert (peer.stats.encrypted_requests > 0) == encrypted
    assert peer.stats.shells_open == 0  # pool.close() sent Delete


def test_ntlm_client_against_a_negotiate_server(exchange_peer_factory):
    peer = exchange_peer_factory(auth="negotiate")
    with open_pool(peer, auth="ntlm") as pool:
        assert invoke(pool, "Get-TransportService").output


@pytest.mark.parametrize("options", [
    {"auth": "ntlm"}, {"auth": "negotiate"}, {"auth": "basic", "tls": True}],
    ids=["ntlm", "negotiate", "basic-https"])
def test_a_wrong_password_gets_401(exchange_peer_factory, options):
    peer = exchange_peer_factory(**options)
    with pytest.raises(AuthenticationError):
        with open_pool(peer, password="wrong"):
            pass
    assert peer.stats.auth_failures >= 1
    assert peer.stats.shells_created == 0


def test_an_untrusted_certificate_fails_validation(exchange_peer_factory):
    peer = exchange_peer_factory(auth="basic", tls=True)
    with pytest.raises(requests.exceptions.SSLError):
        with open_pool(peer, cert_validation=True):  # system CAs only, not the test CA
            pass
    with open_pool(peer) as pool:  # the test CA: trusted
        assert invoke(pool, "Get-TransportService").output


# --------------------------------------------------------------------------- endpoint


@pytest.mark.exchange_peer(auth="basic")
def test_only_the_powershell_path_exists(exchange_peer):
    with pytest.raises(WinRMTransportError) as err:
        with open_pool(exchange_peer, path="wsman"):
            pass
    assert err.value.code == 404


@pytest.mark.exchange_peer(auth="basic")
def test_the_default_configuration_is_not_found(exchange_peer):
    with WSMan(**exchange_peer.wsman_kwargs()) as conn:
        with pytest.raises(WSManFaultError) as err:
            RunspacePool(conn).open()  # Microsoft.PowerShell
    assert err.value.code == 2150858811


# --------------------------------------------------------------------------- runspace


@pytest.mark.exchange_peer(auth="basic")
def test_scripts_are_refused_in_no_language_mode(exchange_peer):
    with open_pool(exchange_peer) as pool:
        ps = PowerShell(pool)
        ps.add_script("Get-MessageTrackingLog -ResultSize 1")
        ps.invoke()
        assert ps.state == PSInvocationState.FAILED and ps.had_errors
        assert str(ps.streams.error[0]) == NO_LANGUAGE
        assert invoke(pool, "Get-TransportService").output  # the pool is still fine
    assert exchange_peer.stats.scripts == 1


@pytest.mark.exchange_peer(auth="basic")
def test_an_unknown_cmdlet_is_command_not_found(exchange_peer):
    with open_pool(exchange_peer) as pool:
        ps = invoke(pool, "Get-Mailbox")
    assert ps.state == PSInvocationState.FAILED
    assert ps.streams.error[0].fq_error == "CommandNotFoundException"
    assert "'Get-Mailbox' is not recognized" in str(ps.streams.error[0])


@pytest.mark.exchange_peer(auth="basic", servers=["EX01", "EX02"])
def test_transport_services_pipe_into_the_tracking_log(exchange_peer):
    with open_pool(exchange_peer) as pool:
        services = invoke(pool, "Get-TransportService").output
        assert [(prop(s, "Name"), prop(s, "Identity")) for s in services] == [
            ("EX01", "EX01"), ("EX02", "EX02")]
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-TransportService").add_cmdlet("Get-MessageTrackingLog")
        ps.add_parameter("ResultSize", "Unlimited")
        out = ps.invoke()
    assert ps.state == PSInvocationState.COMPLETED
    assert len(out) == 100
    assert {prop(o, "ServerHostname") for o in out} == {"EX01", "EX02"}
    assert {o.extended_properties["PSComputerName"] for o in out} == {"ex01.contoso.com"}


@pytest.mark.exchange_peer(auth="basic")
def test_an_unknown_server_is_a_terminating_error(exchange_peer):
    with open_pool(exchange_peer) as pool:
        ps = invoke(pool, "Get-MessageTrackingLog", Server="EX99")
    assert ps.state == PSInvocationState.FAILED
    assert "object 'EX99' couldn't be found" in str(ps.streams.error[0])


# --------------------------------------------------------------------------- ResultSize


@pytest.mark.exchange_peer(auth="basic", servers=[ServerSpec("EX01", events=make_events(1001))])
def test_result_size_defaults_to_1000_with_a_warning(exchange_peer):
    with open_pool(exchange_peer) as pool:
        ps = invoke(pool, "Get-MessageTrackingLog")
    assert len(ps.output) == 1000
    assert [w.message for w in ps.streams.warning] == [MORE_RESULTS]
    assert ps.state == PSInvocationState.COMPLETED and not ps.had_errors


@pytest.mark.parametrize("size, expected, warned", [
    (5, 5, True), ("5", 5, True), (30, 30, False), (31, 30, False), ("Unlimited", 30, False),
    ("unlimited", 30, False)])
@pytest.mark.exchange_peer(auth="basic", servers=[ServerSpec("EX01", events=make_events(30))])
def test_result_size_takes_int_or_unlimited(exchange_peer, size, expected, warned):
    with open_pool(exchange_peer) as pool:
        ps = invoke(pool, "Get-MessageTrackingLog", ResultSize=size)
    assert len(ps.output) == expected
    assert bool(ps.streams.warning) == warned


@pytest.mark.exchange_peer(auth="basic")
def test_a_bad_result_size_fails_binding(exchange_peer):
    with open_pool(exchange_peer) as pool:
        ps = invoke(pool, "Get-MessageTrackingLog", ResultSize="lots")
    assert ps.state == PSInvocationState.FAILED
    assert "Cannot bind parameter 'ResultSize'" in str(ps.streams.error[0])


# --------------------------------------------------------------------------- parameters


@pytest.mark.exchange_peer(auth="basic")
def test_an_invalid_event_id_is_refused_as_exchange_does(exchange_peer):
    with open_pool(exchange_peer) as pool:
        bad = invoke(pool, "Get-MessageTrackingLog", EventId="SENT")
        good = invoke(pool, "Get-MessageTrackingLog", EventId="deliver")  # any case
    assert bad.state == PSInvocationState.FAILED
    assert str(bad.streams.error[0]) == 'Event ID "SENT" is not a valid event ID.'
    assert good.output and {prop(o, "EventId") for o in good.output} == {"DELIVER"}


@pytest.mark.exchange_peer(auth="basic", servers=[
    ServerSpec("EX13", events=make_events(20, "EX13"), version=2013),
    ServerSpec("EX19", events=make_events(20, "EX19"), version=2019)])
def test_2016_parameters_are_unknown_to_a_2013_server(exchange_peer):
    ev = make_events(20, "EX19")[0]
    with open_pool(exchange_peer) as pool:
        old = invoke(pool, "Get-MessageTrackingLog", Server="EX13",
                     NetworkMessageId=ev.network_message_id)
        new = invoke(pool, "Get-MessageTrackingLog", Server="EX19",
                     NetworkMessageId=ev.network_message_id, Source="SMTP")
        old_source = invoke(pool, "Get-MessageTrackingLog", Server="EX13", Source="SMTP")
    assert old.state == PSInvocationState.FAILED
    assert str(old.streams.error[0]) == (
        "A parameter cannot be found that matches parameter name 'NetworkMessageId'.")
    assert "'Source'" in str(old_source.streams.error[0])
    assert new.state == PSInvocationState.COMPLETED
    assert {prop(o, "NetworkMessageId") for o in new.output} == {ev.network_message_id}
    assert {prop(o, "Source") for o in new.output} == {"SMTP"}


@pytest.mark.exchange_peer(auth="basic")
def test_unknown_and_abbreviated_parameter_names(exchange_peer):
    with open_pool(exchange_peer) as pool:
        unknown = invoke(pool, "Get-MessageTrackingLog", Bogus=1)
        short = invoke(pool, "Get-MessageTrackingLog", resultsi=2)  # unique prefix
        ambiguous = invoke(pool, "Get-MessageTrackingLog", Re="x")  # Recipients/Reference/...
    assert "matches parameter name 'Bogus'" in str(unknown.streams.error[0])
    assert len(short.output) == 2
    assert "is ambiguous" in str(ambiguous.streams.error[0])


@pytest.mark.exchange_peer(auth="basic")
def test_filters_follow_the_cmdlet(exchange_peer):
    events = exchange_peer.config.servers[0].events
    target = events[4]
    with open_pool(exchange_peer) as pool:
        by_sender = invoke(pool, "Get-MessageTrackingLog", Sender=target.sender.upper())
        by_rcpt = invoke(pool, "Get-MessageTrackingLog",
                         Recipients=["nobody@x", target.recipients[0].upper()])
        by_subject = invoke(pool, "Get-MessageTrackingLog", MessageSubject="REPORT 1,")
        by_id = invoke(pool, "Get-MessageTrackingLog", MessageId=target.message_id)
        by_internal = invoke(pool, "Get-MessageTrackingLog",
                             InternalMessageId=target.internal_message_id, EventId="SEND")
    assert len(by_sender.output) == sum(e.sender == target.sender for e in events)
    assert len(by_rcpt.output) == sum(target.recipients[0] in e.recipients for e in events)
    assert len(by_subject.output) == sum("Report 1," in e.message_subject for e in events)
    assert len(by_id.output) == sum(e.message_id == target.message_id for e in events)
    assert [prop(o, "EventId") for o in by_internal.output] == ["SEND"]


@pytest.mark.exchange_peer(auth="basic", servers=[
    ServerSpec("EX01", events=make_events(30), time_zone="America/New_York")])
def test_start_and_end_follow_the_server_clock(exchange_peer):
    events = exchange_peer.config.servers[0].events
    first = events[0].timestamp  # 2026-11-27 08:00:00Z = 03:00 in New York
    cut = first + timedelta(seconds=21)
    expected = [e for e in events if first <= e.timestamp < cut]
    with open_pool(exchange_peer) as pool:
        as_dt = invoke(pool, "Get-MessageTrackingLog", Start=dt("2026-11-27T08:00:00.0000000Z"),
                       End=dt("2026-11-27T08:00:21.0000000Z"))
        naive = invoke(pool, "Get-MessageTrackingLog", Start="2026-11-27T03:00:00",
                       End="2026-11-27T03:00:21")
        culture = invoke(pool, "Get-MessageTrackingLog", Start="11/27/2026 3:00:00 AM",
                         End="11/27/2026 3:00:21 AM")
        offset = invoke(pool, "Get-MessageTrackingLog", Start="2026-11-27T09:00:00+01:00",
                        End="2026-11-27T09:00:21+01:00")
        backwards = invoke(pool, "Get-MessageTrackingLog", Start="2026-11-28", End="2026-11-27")
        bad = invoke(pool, "Get-MessageTrackingLog", Start="yesterday")
    for ps in (as_dt, naive, culture, offset):
        assert len(ps.output) == len(expected)  # End is exclusive
    assert ps.output[0].adapted_properties["Timestamp"].startswith("2026-11-27T03:00:00")
    assert backwards.state == PSInvocationState.FAILED
    assert "Cannot convert value \"yesterday\"" in str(bad.streams.error[0])
    start = exchange_peer.stats.calls_of("Get-MessageTrackingLog")[0].named["Start"]
    assert isinstance(start, datetime) and start.utcoffset() == timedelta(0)


@pytest.mark.parametrize("now, expected", [
    (START - timedelta(days=1, seconds=1), 0),  # the events are in the future
    (START - timedelta(days=1) + timedelta(seconds=2), 2),  # End = now + 1 day, exclusive
    (START + timedelta(days=400), 10)])
def test_the_default_end_is_now_plus_one_day(exchange_peer_factory, now, expected):
    peer = exchange_peer_factory(auth="basic", clock=lambda: now,
                                 servers=[ServerSpec("EX01", events=make_events(10))])
    with open_pool(peer) as pool:
        assert len(invoke(pool, "Get-MessageTrackingLog").output) == expected


# --------------------------------------------------------------------------- pipelines


@pytest.mark.exchange_peer(auth="basic", servers=[ServerSpec("EX01", events=make_events(150))])
def test_two_pipelines_run_at_once_in_one_pool(exchange_peer):
    with open_pool(exchange_peer, max_runspaces=2) as pool:
        a, b = PowerShell(pool), PowerShell(pool)
        for ps in (a, b):
            ps.add_cmdlet("Get-MessageTrackingLog").add_parameter("ResultSize", "Unlimited")
            ps.begin_invoke()
        counts = [0, 0]
        while any(ps.state == PSInvocationState.RUNNING for ps in (a, b)):
            for i, ps in enumerate((a, b)):
                if ps.state == PSInvocationState.RUNNING:
                    ps.poll_invoke()
                    counts[i] += len(ps.output)
                    ps.output = []
        a.close()
        b.close()
    assert counts == [150, 150]
    assert [r.state for r in exchange_peer.stats.commands] == ["Completed", "Completed"]


@pytest.mark.exchange_peer(auth="basic", servers=[ServerSpec("EX01", events=make_events(500))],
                           faults=[Fault.slow(0.01)])
def test_stop_ends_a_running_pipeline_and_the_pool_stays_usable(exchange_peer):
    with open_pool(exchange_peer) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-MessageTrackingLog").add_parameter("ResultSize", "Unlimited")
        ps.begin_invoke()
        got = 0
        while not got:
            ps.poll_invoke()
            got = len(ps.output)
        ps.stop()
        assert ps.state == PSInvocationState.STOPPED
        ps.close()
        after = invoke(pool, "Get-TransportService")
        assert after.state == PSInvocationState.COMPLETED
    assert 0 < got < 500
    assert exchange_peer.stats.commands[0].state == "Stopped"
    assert exchange_peer.stats.requests["Signal"] >= 2  # ctrl_c, then Terminate


@pytest.mark.exchange_peer(auth="basic")
def test_the_peer_records_what_the_client_sent(exchange_peer):
    with open_pool(exchange_peer) as pool:
        invoke(pool, "Get-MessageTrackingLog", Server="EX01", ResultSize="Unlimited",
               Start=dt("2026-11-27T00:00:00.0000000Z"), Recipients=["a@x", "b@y"])
    (record,) = exchange_peer.stats.commands
    (call,) = record.calls
    assert record.names == ["Get-MessageTrackingLog"] and not call.is_script
    assert call.named["Server"] == "EX01" and call.named["ResultSize"] == "Unlimited"
    assert call.named["Start"] == datetime(2026, 11, 27, tzinfo=UTC)
    assert list(call.named["Recipients"]) == ["a@x", "b@y"]
    assert exchange_peer.stats.requests["Create"] == 1
    assert exchange_peer.stats.requests["Delete"] == 1
