"""Remote search against the loopback Exchange peer: pypsrp's real client over real HTTP.

The main correctness test: for the same logs and filters, ``search --server`` yields
exactly the records ``search --log`` yields. Every injected fault is retried or reported,
and no row is lost or duplicated.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from msgtrack.cli import app
from msgtrack.credentials import PASSWORD_ENV
from msgtrack.decode import InfoKind, format_log_timestamp
from msgtrack.events import TrackingEvent
from msgtrack.filters import Query, parse_when
from msgtrack.report import RunReport
from msgtrack.sources.logfile import read_logs
from msgtrack.sources.remote import Connection, Plan, RemoteSearch
from tests.exchange_peer.config import ServerSpec
from tests.exchange_peer.faults import Fault
from tests.exchange_peer.synthetic import make_events

pytest_plugins = ["tests.exchange_peer.fixtures"]

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "logs"
SERVERS = ("EX2016-01", "EX2016-02", "EX2013-01")
WINDOW = ("--start", "2026-11-24T00:00:00Z", "--end", "2026-11-28T00:00:00Z")
runner = CliRunner()


def specs(*names: str, **kw: Any) -> list[ServerSpec]:
    return [ServerSpec(n, logs=EXAMPLES / n, **kw) for n in names]


def cli_args(peer: Any, *servers: str, auth: str | None = None) -> list[str]:
    cfg = peer.config
    auth = auth or cfg.auth
    user = cfg.username if auth == "basic" else f"{cfg.domain}\\{cfg.username}"
    args = ["search", "--connect", peer.host, "--port", str(peer.port), "--auth", auth,
            "--username", user, "--operation-timeout", "2", "--retries", "2"]
    for s in servers:
        args += ["--server", s]
    return args


def invoke(args: list[str], password: str = "Passw0rd!") -> Any:
    return runner.invoke(app, args, env={PASSWORD_ENV: password, "MSGTRACK_CONFIG": "/nonexistent"})


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """What remote and offline must agree on, with the cmdlet's known conversions applied.

    The cmdlet has no OriginalServerIp or LogId property, and it rewrites a timestamp-only
    MessageInfo of SEND/DELIVER/DEFER into local culture text to the second, so the
    milliseconds cannot survive the remote path (tracking-facts §1.3).
    """
    out = {k: v for k, v in record.items() if k not in ("Origin", "OriginalServerIp", "LogId")}
    if out["EventId"] in ("SEND", "DELIVER", "DEFER") and out["MessageInfoKind"] == "Timestamp":
        out["MessageInfo"] = out["MessageInfo"][:19]
        for key in ("OriginalArrivalTime", "MessageLatency"):
            out[key] = None
    return out


def offline_records(*servers: str, extra: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    args = ["search", "-f", "jsonl", *WINDOW, *extra]
    for s in servers:
        args += ["--log", str(EXAMPLES / s)]
    result = invoke(args)
    assert result.exit_code == 0, result.stderr
    return [json.loads(x) for x in result.stdout.splitlines()]


def key(r: dict[str, Any]) -> tuple[str, ...]:
    return (r["Timestamp"], r["ServerHostname"], r["EventId"], r["InternalMessageId"],
            json.dumps(r["Recipients"]), r["MessageId"], r["Source"])


def same_records(remote: list[dict[str, Any]], offline: list[dict[str, Any]],
                 drop: tuple[str, ...] = ()) -> None:
    """``drop``: properties the server's Exchange version does not return."""
    def strip(r: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in comparable(r).items() if k not in drop}

    got = sorted((strip(r) for r in remote), key=key)
    want = sorted((strip(r) for r in offline), key=key)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g == w


# --------------------------------------------------------------------------- remote = offline


@pytest.mark.parametrize("workers", ["thread", "process"])
@pytest.mark.exchange_peer(servers=specs(*SERVERS))
def test_remote_equals_offline_for_the_same_logs(exchange_peer: Any, workers: str) -> None:
    result = invoke(cli_args(exchange_peer, *SERVERS)
                    + ["-f", "jsonl", *WINDOW, "--workers", workers])
    assert result.exit_code == 0, result.stderr
    remote = [json.loads(x) for x in result.stdout.splitlines()]
    assert remote, "the peer returned nothing"
    same_records(remote, offline_records(*SERVERS))
    assert {r["Origin"] for r in remote} == set(SERVERS)
    assert "servers 3 tried, 3 succeeded, 0 failed" in result.stderr
    assert exchange_peer.stats.scripts == 0  # no-language endpoint: cmdlets only


def test_objects_split_over_many_fragments_arrive_whole(exchange_peer_factory: Any) -> None:
    # 600-byte fragments: every event spans several, so the fast fragmenter reassembles
    # every object (a Receive that ends mid-object is covered in test_clixml).
    peer = exchange_peer_factory(servers=specs("EX2016-01"), fragment_size=600)
    result = invoke(cli_args(peer, "EX2016-01") + ["-f", "jsonl", *WINDOW])
    assert result.exit_code == 0, result.stderr
    same_records([json.loads(x) for x in result.stdout.splitlines()],
                 offline_records("EX2016-01"))


@pytest.mark.parametrize("filters", [
    ("--sender", "patti.fernandez@contoso.com"),
    ("--event-id", "DELIVER"),
    ("--event-id", "RECEIVE", "--event-id", "SEND"),  # several: client side
    ("--recipient", "lee.gu@contoso.com", "--recipient", "johanna.lorenz@contoso.com"),
    ("--subject", "invoice"),
    ("--auth-method", "Login"),  # decoded: client side only
    ("--auth-category", "Anonymous", "--source", "SMTP"),
])
def test_filters_mean_the_same_remotely(exchange_peer_factory: Any, filters: tuple[str, ...]
                                        ) -> None:
    peer = exchange_peer_factory(servers=specs("EX2016-01", "EX2016-02"))
    result = invoke(cli_args(peer, "EX2016-01", "EX2016-02") + ["-f", "jsonl", *WINDOW, *filters])
    assert result.exit_code == 0, result.stderr
    remote = [json.loads(x) for x in result.stdout.splitlines()]
    same_records(remote, offline_records("EX2016-01", "EX2016-02", extra=filters))


@pytest.mark.exchange_peer(servers=specs(*SERVERS))
def test_all_servers_discovers_transport_servers(exchange_peer: Any) -> None:
    result = invoke(cli_args(exchange_peer) + ["--all-servers", "-f", "jsonl", *WINDOW])
    assert result.exit_code == 0, result.stderr
    remote = [json.loads(x) for x in result.stdout.splitlines()]
    same_records(remote, offline_records(*SERVERS))
    assert exchange_peer.stats.calls_of("Get-TransportService")


@pytest.mark.exchange_peer(servers=specs("EX2016-01"))
def test_start_and_end_go_as_utc_datetimes(exchange_peer: Any) -> None:
    result = invoke(cli_args(exchange_peer, "EX2016-01")
                    + ["-f", "jsonl", "--start", "2026-11-27T09:30:00+01:00",
                       "--end", "2026-11-27T10:30:00+01:00"])
    assert result.exit_code == 0, result.stderr
    calls = exchange_peer.stats.calls_of("Get-MessageTrackingLog")
    assert len(calls) == 1  # one one-hour slice
    start, end = calls[0].named["Start"], calls[0].named["End"]
    assert isinstance(start, datetime) and start.utcoffset() == timedelta(0)
    assert (start, end) == (datetime(2026, 11, 27, 8, 30, tzinfo=timezone.utc),
                            datetime(2026, 11, 27, 9, 30, tzinfo=timezone.utc))
    assert calls[0].named["ResultSize"] == 5000


EX2013 = [ServerSpec("EX2013-01", logs=EXAMPLES / "EX2013-01", version=2013)]


@pytest.mark.exchange_peer(servers=EX2013)
def test_parameter_missing_on_2013_falls_back_to_the_client(exchange_peer: Any) -> None:
    result = invoke(cli_args(exchange_peer, "EX2013-01")
                    + ["-f", "jsonl", *WINDOW, "--source", "STOREDRIVER"])
    assert result.exit_code == 0, result.stderr
    remote = [json.loads(x) for x in result.stdout.splitlines()]
    # Exchange 2013's cmdlet has no NetworkMessageId property (tracking-facts §4).
    same_records(remote, offline_records("EX2013-01", extra=("--source", "STOREDRIVER")),
                 drop=("NetworkMessageId", "TransportTrafficType", "SchemaVersion"))
    assert remote and all(r["Source"] == "STOREDRIVER" for r in remote)
    assert "-Source" not in str(exchange_peer.stats.calls_of("Get-MessageTrackingLog")[-1].named)


@pytest.mark.exchange_peer(servers=EX2013)
def test_network_message_id_on_2013_is_a_clear_error(exchange_peer: Any) -> None:
    result = invoke(cli_args(exchange_peer, "EX2013-01")
                    + ["-f", "jsonl", *WINDOW, "--network-message-id", "abc"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith(
        "msgtrack: error: EX2013-01: no -NetworkMessageId parameter: Exchange 2013 and older")
    assert "--message-id" in result.stderr


@pytest.mark.exchange_peer(servers=specs("EX2016-01"))
def test_invalid_event_id_is_a_usage_error(exchange_peer: Any) -> None:
    result = invoke(cli_args(exchange_peer, "EX2016-01") + [*WINDOW, "--event-id", "NOPE"])
    assert result.exit_code == 2
    assert "not a valid event ID" in result.stderr


# --------------------------------------------------------------------------- never truncated


def dense_events(n: int, server: str) -> list[TrackingEvent]:
    """n events inside one hour, so one slice must be split to stay under the cap."""
    base = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)
    events = make_events(n, server)
    return [replace(ev, timestamp=base + timedelta(seconds=i * 3)) for i, ev in enumerate(events)]


def test_a_capped_slice_is_split_until_complete(exchange_peer_factory: Any, tmp_path: Path) -> None:
    events = dense_events(120, "EX01")
    peer = exchange_peer_factory(servers=[ServerSpec("EX01", events=events)])
    report_file = tmp_path / "report.json"
    result = invoke(cli_args(peer, "EX01") + ["-f", "jsonl", "--cap", "25", "--start",
                                              "2026-11-27T10:00Z", "--end", "2026-11-27T11:00Z",
                                              "--report", str(report_file)])
    assert result.exit_code == 0, result.stderr
    stamps = [json.loads(x)["Timestamp"] for x in result.stdout.splitlines()]
    assert sorted(stamps) == sorted(format_log_timestamp(e.timestamp) for e in events)
    report = json.loads(report_file.read_text())
    assert report["complete"] is True
    assert report["counts"]["slices-split"] >= 3
    assert all(c.named["ResultSize"] == 25 for c in peer.stats.calls_of("Get-MessageTrackingLog"))


def test_slices_widen_over_quiet_hours_and_narrow_over_busy_ones(exchange_peer_factory: Any
                                                                  ) -> None:
    # Three quiet days around one busy hour: the slices must cover the window exactly once,
    # stay under the cap, and take far fewer commands than 72 one-hour slices.
    quiet = [replace(ev, timestamp=datetime(2026, 11, 25, tzinfo=timezone.utc)
                     + timedelta(hours=7 * i)) for i, ev in enumerate(make_events(10, "EX01"))]
    busy = dense_events(120, "EX01")  # 2026-11-27 10:00-10:06
    events = sorted(quiet + busy, key=lambda e: e.timestamp)
    peer = exchange_peer_factory(servers=[ServerSpec("EX01", events=events)])
    conn = Connection(auth="ntlm", username="CONTOSO\\tester", password="Passw0rd!",
                      port=peer.port, operation_timeout=2)
    plan = Plan(servers=("EX01",), connect=peer.host, cap=25)
    query = Query(start=parse_when("2026-11-25T00:00Z"), end=parse_when("2026-11-28T00:00Z"))
    report = RunReport()
    got = list(RemoteSearch(conn, plan, query, report).events())
    assert report.complete, report.problems
    assert sorted(e.timestamp for e in got) == [e.timestamp for e in events]
    calls = peer.stats.calls_of("Get-MessageTrackingLog")
    windows = [(c.named["Start"], c.named["End"]) for c in calls]
    widths = [end - start for start, end in windows]
    assert max(widths) == timedelta(days=1)  # widened up to the limit over quiet time
    assert min(widths) < timedelta(minutes=10)  # narrowed over the busy hour
    # Fixed one-hour slices would take 72 commands, plus the splits of the busy hour.
    assert len(calls) < 60, "\n".join(f"{s.isoformat()} {(e - s).total_seconds()}" for s, e in windows)
    # Each query either starts where the last complete one ended, or retries the same
    # start narrower after hitting the cap: the window is tiled, nothing searched twice.
    assert windows[0][0] == query.start and windows[-1][1] == query.end
    for (s1, e1), (s2, e2) in itertools.pairwise(windows):
        assert s2 == e1 or (s2 == s1 and e2 < e1), ((s1, e1), (s2, e2))
    assert 1 <= report.counts["slices-split"] <= 12, report.counts


# --------------------------------------------------------------------------- faults

RETRIED_FAULTS = {
    "shell-quota-on-create": lambda: Fault.shell_quota("Create"),
    "shell-not-found-on-receive": lambda: Fault.shell_not_found("Receive", at=2),
    "http-500-soap-on-command": lambda: Fault.http_500_soap("Command"),
    "http-500-text-on-receive": lambda: Fault.http_500_text("Receive", at=2),
    "connection-dropped": lambda: Fault.drop_connection("Receive", at=2),
    "dropped-after-n-objects": lambda: Fault.drop_after(7),
    "error-records-mid-stream": lambda: Fault.error_records(after=5),
    "pipeline-fails": lambda: Fault.fail_after(5),
}


@pytest.mark.parametrize("name, workers", [(name, "thread") for name in sorted(RETRIED_FAULTS)]
                         + [("connection-dropped", "process"), ("pipeline-fails", "process")])
def test_transient_fault_is_retried_without_loss_or_duplicates(
        exchange_peer_factory: Any, tmp_path: Path, name: str, workers: str) -> None:
    events = dense_events(60, "EX01")  # one slice, so a mid-stream fault hits real rows
    peer = exchange_peer_factory(servers=[ServerSpec("EX01", events=events)],
                                 faults=[RETRIED_FAULTS[name]()])
    report_file = tmp_path / "r.json"
    result = invoke(cli_args(peer, "EX01") + ["-f", "jsonl", "--start", "2026-11-27T10:00Z",
                                              "--end", "2026-11-27T11:00Z",
                                              "--report", str(report_file),
                                              "--workers", workers])
    assert result.exit_code == 0, result.stderr
    got = [(r["Timestamp"], r["InternalMessageId"], r["MessageId"])
           for r in map(json.loads, result.stdout.splitlines())]
    want = [(format_log_timestamp(e.timestamp), e.internal_message_id, e.message_id)
            for e in events]
    assert sorted(got) == sorted(want)  # nothing lost, nothing twice
    assert json.loads(report_file.read_text())["counts"]["retries"] >= 1


@pytest.mark.parametrize("workers", ["thread", "process"])
def test_a_slice_that_keeps_failing_is_reported_and_other_servers_finish(
        exchange_peer_factory: Any, workers: str) -> None:
    always = Fault.fail_after(0, times=None, server="EX2016-02")
    peer = exchange_peer_factory(servers=specs("EX2016-01", "EX2016-02"), faults=[always])
    result = invoke(cli_args(peer, "EX2016-01", "EX2016-02")
                    + ["-f", "jsonl", "--start", "2026-11-27T09:00Z", "--end", "2026-11-27T11:00Z",
                       "--workers", workers])
    assert result.exit_code == 3
    remote = [json.loads(x) for x in result.stdout.splitlines()]
    same_records(remote, [r for r in offline_records("EX2016-01")
                          if "2026-11-27T09" <= r["Timestamp"] < "2026-11-27T11"])
    failed = [x for x in result.stderr.splitlines() if x.startswith("msgtrack: slice: EX2016-02 [")]
    assert len(failed) == 2, result.stderr  # both one-hour slices, each named
    assert "failed after 2 retries" in failed[0]
    assert "servers 2 tried, 1 succeeded, 1 failed" in result.stderr
    assert "INCOMPLETE" in result.stderr


def test_pools_are_recycled_before_the_per_shell_command_limit(exchange_peer_factory: Any) -> None:
    peer = exchange_peer_factory(servers=specs("EX2016-01"), max_commands_per_shell=4)
    conn = Connection(auth="ntlm", username="CONTOSO\\tester", password="Passw0rd!",
                      port=peer.port, operation_timeout=2)
    # Fixed one-hour slices (max_slice = slice): 72 commands, so pools must be recycled.
    plan = Plan(servers=("EX2016-01",), connect=peer.host, recycle_after=3, retries=0,
                max_slice=timedelta(hours=1))
    query = Query(start=parse_when("2026-11-25T00:00Z"), end=parse_when("2026-11-28T00:00Z"))
    report = RunReport()
    events = list(RemoteSearch(conn, plan, query, report).events())
    assert report.complete, report.problems
    assert report.counts["slices"] == 72 and report.counts["retries"] == 0
    assert peer.stats.shells_created >= 72 // 3
    assert len(events) == len(list(read_logs([EXAMPLES / "EX2016-01"], RunReport())))


def test_first_rows_stream_before_the_slowest_server_finishes(exchange_peer_factory: Any) -> None:
    fast = dense_events(20, "FAST")
    slow = dense_events(30, "SLOW")
    peer = exchange_peer_factory(servers=[ServerSpec("FAST", events=fast),
                                          ServerSpec("SLOW", events=slow)],
                                 faults=[Fault.slow(0.05, server="SLOW")])
    conn = Connection(auth="ntlm", username="CONTOSO\\tester", password="Passw0rd!",
                      port=peer.port, operation_timeout=1)
    plan = Plan(servers=("FAST", "SLOW"), connect=peer.host, parallel=2)
    query = Query(start=parse_when("2026-11-27T10:00Z"), end=parse_when("2026-11-27T11:00Z"))
    began = time.monotonic()
    arrivals = [(time.monotonic() - began, ev.origin)
                for ev in RemoteSearch(conn, plan, query, RunReport()).events()]
    first_fast = min(t for t, origin in arrivals if origin == "FAST")
    last = max(t for t, _ in arrivals)
    assert len(arrivals) == 50
    assert first_fast < last - 0.8, arrivals


# --------------------------------------------------------------------------- errors and secrets


@pytest.mark.exchange_peer(servers=specs("EX2016-01"))
def test_wrong_password_is_one_line_with_a_hint(exchange_peer: Any) -> None:
    result = invoke(cli_args(exchange_peer, "EX2016-01") + list(WINDOW), password="wrong-pass")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert any(x.startswith("msgtrack: error: 127.0.0.1: authentication failed") for x in lines)
    assert any(x.startswith("msgtrack: hint: check the username and password") for x in lines)
    assert "Traceback" not in result.stderr


@pytest.mark.exchange_peer(servers=specs("EX2016-01"), auth="basic", tls=True)
def test_untrusted_ca_is_refused_and_a_trusted_ca_works(exchange_peer: Any) -> None:
    base = cli_args(exchange_peer, "EX2016-01") + ["--ssl", "-f", "jsonl", *WINDOW]
    refused = invoke(base)
    assert refused.exit_code == 1
    assert "TLS certificate not trusted" in refused.stderr
    assert "msgtrack: hint: pass --ca-bundle" in refused.stderr
    trusted = invoke(base + ["--ca-bundle", exchange_peer.config.tls.ca_pem])
    assert trusted.exit_code == 0, trusted.stderr
    same_records([json.loads(x) for x in trusted.stdout.splitlines()], offline_records("EX2016-01"))
    insecure = invoke(base + ["--insecure"])
    assert insecure.exit_code == 0
    assert "msgtrack: warning: --insecure" in insecure.stderr


@pytest.mark.exchange_peer(servers=specs("EX2016-01"))
def test_wrong_endpoint_and_configuration_get_endpoint_errors(exchange_peer: Any) -> None:
    from msgtrack.errors import EndpointNotFound

    query = Query(start=parse_when("2026-11-27T10:00Z"), end=parse_when("2026-11-27T11:00Z"))
    for conn in (Connection(auth="ntlm", username="CONTOSO\\tester", password="Passw0rd!",
                            port=exchange_peer.port, path="wsman"),
                 Connection(auth="ntlm", username="CONTOSO\\tester", password="Passw0rd!",
                            port=exchange_peer.port, configuration="Microsoft.PowerShell")):
        plan = Plan(servers=("EX2016-01",), connect=exchange_peer.host)
        with pytest.raises(EndpointNotFound) as info:
            list(RemoteSearch(conn, plan, query, RunReport()).events())
        assert info.value.hint and "/PowerShell" in info.value.hint


@pytest.mark.parametrize("auth, workers", [("ntlm", "thread"), ("basic", "thread"),
                                           ("ntlm", "process")])
def test_password_never_shows_in_debug_output_tracebacks_or_report(
        exchange_peer_factory: Any, tmp_path: Path, auth: str, workers: str) -> None:
    import base64

    secret = "S3cr3t-Pa55!"
    peer = exchange_peer_factory(servers=specs("EX2016-01"), auth=auth, password=secret,
                                 tls=auth == "basic")
    report_file = tmp_path / "report.json"
    tls = ["--ssl", "--ca-bundle", peer.config.tls.ca_pem] if auth == "basic" else []
    args = ["--debug", *cli_args(peer, "EX2016-01", auth=auth), *tls, "-f", "csv",
            "--start", "2026-11-27T10:00Z", "--end", "2026-11-27T12:00Z",
            "--report", str(report_file), "-o", str(tmp_path / "out.csv"), "--workers", workers]
    ok = invoke(args, password=secret)
    failed = invoke(args, password=secret + "x")  # an auth failure, with a --debug traceback
    assert ok.exit_code == 0 and failed.exit_code == 1
    assert "Traceback" in failed.stderr
    user = peer.config.username if auth == "basic" else f"{peer.config.domain}\\{peer.config.username}"
    basic = base64.b64encode(f"{user}:{secret}".encode()).decode()
    for text in (ok.stdout, ok.stderr, failed.stdout, failed.stderr, report_file.read_text(),
                 (tmp_path / "out.csv").read_text(encoding="utf-8-sig")):
        assert secret not in text and basic not in text
    assert "DEBUG" in ok.stderr  # the debug log was really on
    assert "DEBUG pypsrp" in ok.stderr  # including the workers' (forwarded from processes)


def test_kind_of_timestamp_info_survives_the_remote_path(exchange_peer_factory: Any) -> None:
    """Culture-rewritten MessageInfo comes back as a UTC timestamp, for every culture."""
    for culture, zone in (("en-US", "America/New_York"), ("de-DE", "Europe/Berlin"),
                          ("en-GB", "Europe/London")):
        peer = exchange_peer_factory(servers=specs("EX2010-HUB1", culture=culture, time_zone=zone))
        result = invoke(cli_args(peer, "EX2010-HUB1")
                        + ["-f", "jsonl", *WINDOW, "--culture", culture])
        assert result.exit_code == 0, result.stderr
        remote = [json.loads(x) for x in result.stdout.splitlines()]
        same_records(remote, offline_records("EX2010-HUB1"))
        rewritten = [r for r in remote if r["EventId"] in ("SEND", "DELIVER")
                     and r["MessageInfoKind"] == InfoKind.TIMESTAMP.value]
        assert len(rewritten) == 9
        assert all(r["MessageInfo"].endswith(".000Z") for r in rewritten)


# --------------------------------------------------------------------------- Kerberos (real KDC)


def kerberos_args(peer: Any, kdc: Any, *extra: str) -> list[str]:
    return ["search", "--connect", peer.host, "--port", str(peer.port), "--auth", "kerberos",
            "--spn-host", kdc.service_host, "--server", "EX01", "-f", "jsonl",
            "--operation-timeout", "2", *extra]


def test_kerberos_end_to_end_with_a_password(kerberos_kdc: Any, exchange_peer_factory: Any
                                             ) -> None:
    from tests.exchange_peer.fixtures import kdc_peer_options

    peer = exchange_peer_factory(**kdc_peer_options(kerberos_kdc))
    result = runner.invoke(app, kerberos_args(peer, kerberos_kdc, "-u", kerberos_kdc.principal),
                           env={PASSWORD_ENV: kerberos_kdc.password})
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 50
    assert set(peer.stats.encryption_protocols) == {"application/HTTP-Kerberos-session-encrypted"}


@pytest.mark.parametrize("workers", ["thread", "process"])
def test_kerberos_unattended_with_a_client_keytab(kerberos_kdc: Any, exchange_peer_factory: Any,
                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  workers: str) -> None:
    """The README's nightly set-up: KRB5_CLIENT_KTNAME + a private KRB5CCNAME, no password.

    With worker processes the variables must reach them although they were set after this
    test process's forkserver started (it keeps the environment of its start)."""
    import os
    import subprocess

    from tests.exchange_peer import kdc as mit
    from tests.exchange_peer.fixtures import kdc_peer_options

    keytab = tmp_path / "svc-tracking.keytab"
    kadmin = mit._tool("kadmin.local") or "kadmin.local"
    for query in ("addprinc -randkey svc-tracking", f"ktadd -k {keytab} svc-tracking"):
        subprocess.run([kadmin, "-r", kerberos_kdc.realm, "-q", query], check=True,
                       capture_output=True, env={**os.environ}, timeout=30)
    if workers == "process":  # the forkserver starts now, before the variables are set
        from multiprocessing import forkserver

        from msgtrack.sources.remote import _process_context
        _process_context()
        forkserver.ensure_running()
    monkeypatch.setenv("KRB5_CLIENT_KTNAME", str(keytab))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'krb5cc'}")
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    peer = exchange_peer_factory(**kdc_peer_options(kerberos_kdc))
    principal = f"svc-tracking@{kerberos_kdc.realm}"
    result = runner.invoke(app, kerberos_args(peer, kerberos_kdc, "-u", principal)
                           + ["--workers", workers])
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 50


def test_kerberos_without_a_ticket_is_one_line_with_a_hint(kerberos_kdc: Any,
                                                           exchange_peer_factory: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.exchange_peer.fixtures import kdc_peer_options

    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    monkeypatch.delenv("KRB5_CLIENT_KTNAME", raising=False)
    peer = exchange_peer_factory(**kdc_peer_options(kerberos_kdc))
    result = runner.invoke(app, kerberos_args(peer, kerberos_kdc, "-u", kerberos_kdc.principal))
    assert result.exit_code == 1
    assert "msgtrack: error: 127.0.0.1: Kerberos/SPNEGO failed" in result.stderr
    assert "msgtrack: hint: no usable Kerberos ticket: run 'kinit user@REALM'" in result.stderr


def test_a_slow_slice_times_out_is_stopped_and_reported(exchange_peer_factory: Any) -> None:
    events = dense_events(40, "EX01")
    peer = exchange_peer_factory(servers=[ServerSpec("EX01", events=events)],
                                 faults=[Fault.slow(0.2)])
    began = time.monotonic()
    result = invoke(cli_args(peer, "EX01") + ["-f", "jsonl", "--start", "2026-11-27T10:00Z",
                                              "--end", "2026-11-27T11:00Z", "--retries", "1",
                                              "--slice-timeout", "1.5", "--operation-timeout", "1"])
    assert result.exit_code == 3
    assert result.stdout == ""  # a partial slice is never emitted
    assert "msgtrack: slice: EX01 [2026-11-27T10:00:00Z, 2026-11-27T11:00:00Z): failed after " \
           "1 retries: slice timed out after 1.5 s" in result.stderr
    assert time.monotonic() - began < 20
    assert peer.stats.requests["Signal"] >= 2  # ctrl_c sent for each attempt



def _worker_processes() -> list[int]:
    """Live children of this process's multiprocessing forkserver (the worker processes)."""
    import os

    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parents[int(stat.parent.name)] = int(fields[1])
        except OSError:
            continue
    servers = [pid for pid, ppid in parents.items() if ppid == os.getpid()
               and b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    return [pid for pid, ppid in parents.items() if ppid in servers]


def test_a_killed_worker_process_is_reported_and_the_others_finish(
        exchange_peer_factory: Any) -> None:
    import os
    import signal
    import threading

    # One worker process does FAST, then SLOW; it is killed (as the OOM killer would)
    # while SLOW's answer trickles in. FAST's rows must arrive and the run must end as
    # incomplete, naming SLOW, instead of hanging on a worker that will never report.
    fast, slow = dense_events(20, "FAST"), dense_events(40, "SLOW")
    peer = exchange_peer_factory(servers=[ServerSpec("FAST", events=fast),
                                          ServerSpec("SLOW", events=slow)],
                                 faults=[Fault.slow(0.25, server="SLOW")])
    box: list[Any] = []
    run = threading.Thread(target=lambda: box.append(invoke(
        cli_args(peer, "FAST", "SLOW") + ["-f", "jsonl", "--start", "2026-11-27T10:00Z",
                                          "--end", "2026-11-27T11:00Z", "--workers", "process",
                                          "--parallel", "1", "--retries", "0"])))
    run.start()
    deadline = time.monotonic() + 30
    while not any(c.named.get("Server") == "SLOW"
                  for c in peer.stats.calls_of("Get-MessageTrackingLog")):
        assert time.monotonic() < deadline and run.is_alive(), "SLOW was never queried"
        time.sleep(0.05)
    workers = _worker_processes()
    assert len(workers) == 1, workers
    os.kill(workers[0], signal.SIGKILL)
    run.join(timeout=30)
    assert not run.is_alive(), "the search hung on a dead worker"
    result = box[0]
    assert result.exit_code == 3, result.stderr
    stamps = sorted(json.loads(x)["Timestamp"] for x in result.stdout.splitlines())
    assert stamps == sorted(format_log_timestamp(e.timestamp) for e in fast)
    assert "msgtrack: server: SLOW: worker process failed" in result.stderr
    assert "servers 2 tried, 1 succeeded, 1 failed" in result.stderr


@pytest.mark.parametrize("workers, parallel, servers, processes", [
    ("auto", 4, 2, False), ("auto", 4, 3, True), ("auto", 2, 5, False),
    ("thread", 8, 8, False), ("process", 4, 1, True)])
def test_auto_workers_are_processes_from_three_servers_at_once(
        workers: str, parallel: int, servers: int, processes: bool) -> None:
    from msgtrack.sources.remote import _Workers

    with _Workers(Plan(workers=workers, parallel=parallel), servers) as pool:
        assert pool.processes is processes


def test_an_unknown_workers_kind_is_a_usage_error() -> None:
    result = invoke(["search", "--server", "EX01", "--workers", "fibers"])
    assert result.exit_code == 2
    assert "--workers fibers: choose auto, thread or process" in result.stderr


def test_a_worker_process_sends_an_unpicklable_exception_as_text() -> None:
    import pickle
    import queue

    from msgtrack.errors import RemoteError
    from msgtrack.sources.remote import _Msg, _PicklingInbox

    class OddError(Exception):  # pickling calls OddError("boom"), which needs two arguments
        def __init__(self, text: str, code: int) -> None:
            super().__init__(text)
            self.code = code

    inbox: queue.Queue[_Msg] = queue.Queue()
    _PicklingInbox(inbox).put(_Msg("done", "EX01", OddError("boom", 7)))
    _PicklingInbox(inbox).put(_Msg("done", "EX02", RemoteError("kept", server="EX02")))
    odd, kept = (pickle.loads(pickle.dumps(inbox.get())) for _ in range(2))
    assert isinstance(odd.payload, RemoteError) and str(odd.payload) == "EX01: OddError: boom"
    assert isinstance(kept.payload, RemoteError) and str(kept.payload) == "EX02: kept"
