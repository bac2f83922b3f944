"""Streaming through the peer, and the standalone runner."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pypsrp.powershell import PowerShell, PSInvocationState
from pypsrp.serializer import Serializer

from tests.exchange_peer import ServerSpec
from tests.exchange_peer.fixtures import open_pool
from tests.exchange_peer.objects import MTE_TYPE
from tests.exchange_peer.synthetic import make_events

pytest_plugins = ["tests.exchange_peer.fixtures"]

ROOT = Path(__file__).resolve().parents[1]


class _RawTrackingEvents(Serializer):
    """Hands MessageTrackingEvent CLIXML back as text.

    pypsrp's generic deserializer manages a few hundred such objects per second here,
    which would make this test about pypsrp's speed (remoting-facts §4.3), not the peer's
    streaming. Everything else (warnings, errors, states) is deserialized as usual.
    """

    def deserialize(self, element, metadata=None, clear=True):  # type: ignore[override]
        if isinstance(element, str) and MTE_TYPE in element[:200]:
            return element
        return super().deserialize(element, metadata, clear)


def test_streaming_10k_objects_keeps_receives_bounded(exchange_peer_factory):
    events = make_events(10_000)
    peer = exchange_peer_factory(auth="ntlm", servers=[ServerSpec("EX01", events=events)],
                                 outbox_limit=300_000)
    got = 0
    first = last = None
    with open_pool(peer) as pool:
        pool._serializer = pool._fragmenter.serializer = _RawTrackingEvents()  # private API
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-MessageTrackingLog").add_parameter("ResultSize", "Unlimited")
        ps.begin_invoke()
        while ps.state == PSInvocationState.RUNNING:
            ps.poll_invoke()
            batch, ps.output = ps.output, []
            if batch:
                first = first or batch[0]
                last = batch[-1]
            got += len(batch)
        ps.close()
    assert ps.state == PSInvocationState.COMPLETED and not ps.streams.warning
    assert got == 10_000
    # Many Receives, each inside pypsrp's 512000-byte envelope once encrypted.
    assert peer.stats.requests["Receive"] > 20
    assert peer.stats.largest_response < 512_000
    for text, ev in ((first, events[0]), (last, events[-1])):
        obj = ET.fromstring(text)
        assert obj.find("Props/S[@N='MessageId']").text == ev.message_id


def _start_runner(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """Start ``python -m tests.exchange_peer``; returns once it is ready (all its stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.exchange_peer", *args], cwd=ROOT,
                            env=env, stderr=subprocess.PIPE, text=True)
    lines = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        lines.append(line)
        if not line or "Ctrl+C stops it" in line:
            break
    return proc, "".join(lines)


def test_the_standalone_runner_serves_logs_until_stopped(tmp_path):
    from tests.exchange_peer.synthetic import write_log

    for name in ("EX01", "EX02"):
        write_log(tmp_path / "logs" / name / "MSGTRK2026112708-1.LOG", make_events(5, name))
    env = {**os.environ, "MSGTRACK_PEER_PASSWORD": "S3cret!"}
    proc, text = _start_runner(["--logs", str(tmp_path / "logs"), "--port", "0", "--auth",
                                "basic", "--now", "2026-11-28T00:00:00Z"], env)
    try:
        m = re.search(r"http://127\.0\.0\.1:(\d+)/PowerShell", text)
        assert m, text
        port = int(m.group(1))
        assert "S3cret!" not in text
        assert "EX01" in text and "EX02" in text

        class _Peer:  # just enough for open_pool
            host = "127.0.0.1"

            def wsman_kwargs(self, **kw):
                return {"server": "127.0.0.1", "port": port, "path": "PowerShell",
                        "ssl": False, "auth": "basic", "username": "tester",
                        "password": "S3cret!", "encryption": "never", **kw}

        with open_pool(_Peer()) as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet("Get-TransportService").add_cmdlet("Get-MessageTrackingLog")
            out = ps.invoke()
        assert len(out) == 10
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def test_the_standalone_runner_generates_a_password_it_never_takes_from_argv():
    env = {k: v for k, v in os.environ.items() if k != "MSGTRACK_PEER_PASSWORD"}
    proc, text = _start_runner(["--synthetic", "3", "--port", "0"], env)
    try:
        assert "generated password" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    with pytest.raises(SystemExit):
        from tests.exchange_peer.__main__ import parse_args

        parse_args(["--synthetic", "3", "--password", "x"])


def test_the_peer_serves_the_bundled_examples(exchange_peer_factory):
    from msgtrack.report import RunReport
    from msgtrack.sources.logfile import read_logs
    from tests.exchange_peer.config import servers_from_folder

    folder = ROOT / "examples" / "logs"
    if not folder.is_dir():
        pytest.skip("examples/logs is not there yet")
    servers = servers_from_folder(folder)
    offline = sum(1 for _ in read_logs([folder], RunReport()))
    peer = exchange_peer_factory(auth="basic", servers=servers,
                                 clock=lambda: datetime(9998, 1, 1, tzinfo=timezone.utc))
    got = 0
    with open_pool(peer) as pool:
        pool._serializer = pool._fragmenter.serializer = _RawTrackingEvents()  # private API
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-TransportService").add_cmdlet("Get-MessageTrackingLog")
        ps.add_parameter("ResultSize", "Unlimited")
        ps.begin_invoke()
        while ps.state == PSInvocationState.RUNNING:
            ps.poll_invoke()
            got += len(ps.output)
            ps.output = []
    assert ps.state == PSInvocationState.COMPLETED
    assert got == offline > 0
