"""Fault injection in the Exchange peer, seen through pypsrp's real client."""

from __future__ import annotations

import time

import pytest
import requests
from pypsrp.exceptions import WinRMTransportError, WSManFaultError
from pypsrp.powershell import PowerShell, PSInvocationState

from tests.exchange_peer import Fault, ServerSpec
from tests.exchange_peer.faults import (
    OPERATION_TIMED_OUT,
    QUOTA_MAX_OPERATIONS,
    QUOTA_MAX_SHELLS,
    SHELL_NOT_FOUND,
    UNSPECIFIED,
)
from tests.exchange_peer.fixtures import open_pool
from tests.exchange_peer.synthetic import make_events

pytest_plugins = ["tests.exchange_peer.fixtures"]

GMTL = "Get-MessageTrackingLog"


def tracking(pool, **params) -> PowerShell:
    ps = PowerShell(pool)
    ps.add_cmdlet(GMTL).add_parameters({"ResultSize": "Unlimited", **params})
    return ps


def stream(ps: PowerShell) -> list:
    """begin/poll until the pipeline ends, as a streaming client does."""
    got: list = []
    ps.begin_invoke()
    while ps.state == PSInvocationState.RUNNING:
        ps.poll_invoke()
        got.extend(ps.output)
        ps.output = []
    return got


# --------------------------------------------------------------------------- WSMan faults


@pytest.mark.exchange_peer(auth="basic", faults=[Fault.shell_quota()])
def test_shell_quota_once_then_a_retry_succeeds(exchange_peer):
    with pytest.raises(WSManFaultError) as err:
        with open_pool(exchange_peer):
            pass
    assert err.value.code == QUOTA_MAX_SHELLS
    assert "maximum number of 5 concurrent shells" in err.value.reason
    with open_pool(exchange_peer) as pool:
        assert tracking(pool).invoke()
    assert exchange_peer.config.faults.faults[0].fired == 1


@pytest.mark.exchange_peer(auth="basic", faults=[Fault.shell_quota(times=None)])
def test_shell_quota_always(exchange_peer):
    for _ in range(2):
        with pytest.raises(WSManFaultError):
            with open_pool(exchange_peer):
                pass


@pytest.mark.exchange_peer(auth="basic", max_shells=1)
def test_max_shells_counts_open_shells(exchange_peer):
    with open_pool(exchange_peer):
        with pytest.raises(WSManFaultError) as err:
            with open_pool(exchange_peer):
                pass
    assert err.value.code == QUOTA_MAX_SHELLS
    with open_pool(exchange_peer):  # the first one was closed
        pass


@pytest.mark.exchange_peer(auth="basic", max_commands_per_shell=2)
def test_commands_per_shell_quota_ignores_terminate(exchange_peer):
    with open_pool(exchange_peer) as pool:
        for _ in range(2):
            with tracking(pool, ResultSize=1) as ps:
                ps.invoke()
        with pytest.raises(WSManFaultError) as err:
            tracking(pool, ResultSize=1).invoke()
    assert err.value.code == QUOTA_MAX_OPERATIONS


@pytest.mark.exchange_peer(auth="basic", shell_idle_timeout=0.3)
def test_an_idle_shell_is_gone(exchange_peer):
    with pytest.raises(WSManFaultError) as err:
        with open_pool(exchange_peer) as pool:
            time.sleep(0.5)
            tracking(pool).invoke()
    assert err.value.code == SHELL_NOT_FOUND
    assert exchange_peer.stats.shells_open == 0


@pytest.mark.exchange_peer(auth="basic", shell_idle_timeout=0.3)
def test_is_alive_sees_the_idle_shell_go(exchange_peer):
    with open_pool(exchange_peer) as pool:
        assert pool.is_alive()
        time.sleep(0.5)
        assert not pool.is_alive()  # pypsrp marks the pool closed: no Delete follows


@pytest.mark.exchange_peer(auth="ntlm", faults=[Fault.shell_not_found("Command")])
def test_shell_not_found_on_demand(exchange_peer):
    with pytest.raises(WSManFaultError) as err:
        with open_pool(exchange_peer) as pool:
            tracking(pool).invoke()
    assert err.value.code == SHELL_NOT_FOUND


@pytest.mark.exchange_peer(auth="ntlm", faults=[Fault.http_500_soap("Command")])
def test_http_500_with_a_soap_fault_is_encrypted_like_any_answer(exchange_peer):
    with open_pool(exchange_peer) as pool:
        with pytest.raises(WSManFaultError) as err:
            tracking(pool).invoke()
        assert err.value.code == UNSPECIFIED
        assert len(tracking(pool).invoke()) == 50  # once: the retry works


@pytest.mark.exchange_peer(auth="basic", faults=[Fault.http_500_text("Command", times=2)])
def test_http_500_without_xml(exchange_peer):
    with open_pool(exchange_peer) as pool:
        for _ in range(2):
            with pytest.raises(WinRMTransportError) as err:
                tracking(pool).invoke()
            assert err.value.code == 500
        assert tracking(pool).invoke()


@pytest.mark.exchange_peer(auth="basic", faults=[Fault.drop_connection("Receive", at=2)])
def test_a_dropped_connection(exchange_peer):
    # Receive 1 opens the pool; Receive 2 is the pipeline's first.
    with open_pool(exchange_peer) as pool:
        with pytest.raises(requests.exceptions.ConnectionError):
            tracking(pool).invoke()


@pytest.mark.exchange_peer(auth="basic", faults=[Fault.delay_request(1.0, "Command")])
def test_a_late_answer_hits_the_client_read_timeout(exchange_peer):
    with open_pool(exchange_peer, read_timeout=0.3, operation_timeout=0.2) as pool:
        with pytest.raises(requests.exceptions.ReadTimeout):
            tracking(pool).invoke()


# --------------------------------------------------------------------------- pipeline faults


@pytest.mark.exchange_peer(auth="basic", max_long_poll=0.2,
                           faults=[Fault.slow(0.05, at=1, times=1)],
                           servers=[ServerSpec("EX01", events=make_events(12))])
def test_a_slow_server_sends_operation_timeouts_that_pypsrp_swallows(exchange_peer):
    with open_pool(exchange_peer) as pool:
        started = time.monotonic()
        got = stream(tracking(pool))
        took = time.monotonic() - started
        assert len(got) == 12 and took >= 12 * 0.05
        fast = stream(tracking(pool))  # times=1: the next search is fast again
    assert len(fast) == 12


@pytest.mark.exchange_peer(auth="basic", max_long_poll=0.1,
                           faults=[Fault.slow(0.3, times=1)],
                           servers=[ServerSpec("EX01", events=make_events(3))])
def test_empty_receives_get_the_operation_timeout_fault(exchange_peer):
    with open_pool(exchange_peer) as pool:
        assert len(stream(tracking(pool))) == 3
    assert exchange_peer.stats.faults[OPERATION_TIMED_OUT] >= 1


@pytest.mark.exchange_peer(auth="basic", faults=[Fault.drop_after(7)],
                           servers=[ServerSpec("EX01", events=make_events(40))])
def test_connection_dropped_after_n_objects(exchange_peer):
    got: list = []
    with open_pool(exchange_peer) as pool:
        ps = tracking(pool)
        ps.begin_invoke()
        with pytest.raises(requests.exceptions.ConnectionError):
            while ps.state == PSInvocationState.RUNNING:
                ps.poll_invoke()
                got.extend(ps.output)
                ps.output = []
    assert len(got) == 7


@pytest.mark.exchange_peer(auth="ntlm",
                           faults=[Fault.error_records(after=3, count=2, message="log busy")])
def test_non_terminating_errors_in_the_middle_of_a_stream(exchange_peer):
    with open_pool(exchange_peer) as pool:
        ps = tracking(pool)
        got = stream(ps)
    assert len(got) == 50
    assert ps.state == PSInvocationState.COMPLETED and not ps.had_errors
    assert [str(e) for e in ps.streams.error] == ["log busy", "log busy"]


@pytest.mark.exchange_peer(auth="basic", faults=[Fault.fail_after(4, server="EX02")],
                           servers=["EX01", "EX02"])
def test_a_pipeline_that_ends_failed(exchange_peer):
    with open_pool(exchange_peer) as pool:
        ok = tracking(pool, Server="EX01")
        ok.invoke()
        bad = tracking(pool, Server="EX02")
        got = stream(bad)
    assert ok.state == PSInvocationState.COMPLETED
    assert len(got) == 4
    assert bad.state == PSInvocationState.FAILED and bad.had_errors
    assert "couldn't be contacted" in str(bad.streams.error[0])
    assert [r.state for r in exchange_peer.stats.commands] == ["Completed", "Failed"]


def test_faults_can_be_added_while_the_peer_runs(exchange_peer_factory):
    peer = exchange_peer_factory(auth="basic")
    with open_pool(peer) as pool:
        assert tracking(pool).invoke()
        peer.config.add_fault(Fault.wsman(QUOTA_MAX_OPERATIONS, "Command"))
        with pytest.raises(WSManFaultError):
            tracking(pool).invoke()
