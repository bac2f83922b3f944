"""The audit against the loopback Exchange peer (issue #3) over WinRM, as in production.

The peer serves the example logs of EX2016-01 and EX2016-02 through
Get-MessageTrackingLog; the audit reaches it through a connection profile (NTLM, the
password from MSGTRACK_PASSWORD). The same days audited from the log folders must give
the same rows and the same findings: only the evidence differs (a server name and ids
instead of file:line).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from pathlib import Path

import pytest

from msgtrack.audit.config import load_config
from msgtrack.audit.run import run_audit
from tests.test_audit_helpers import write_config

peer_fixtures = pytest.importorskip(
    "tests.exchange_peer.fixtures", reason="the loopback Exchange peer is not in this tree")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "logs"
SERVERS = ("EX2016-01", "EX2016-02")
NOW = datetime(2026, 11, 28, 6, tzinfo=timezone.utc)


def day_rows(out: Path, day: str) -> list[tuple[str, ...]]:
    text = (out / day / "events.csv").read_text(encoding="utf-8-sig")
    return sorted((r["Timestamp"], r["EventId"], r["InternalMessageId"], r["Recipients"])
                  for r in csv.DictReader(io.StringIO(text)))


def findings(out: Path, day: str) -> list[dict[str, str]]:
    text = (out / day / "findings.csv").read_text(encoding="utf-8-sig")
    return [{k: v for k, v in r.items() if k != "Evidence"}
            for r in csv.DictReader(io.StringIO(text))]


def test_audit_of_remote_servers_matches_the_log_folders(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.exchange_peer import ServerSpec
    from tests.exchange_peer.server import ExchangePeer

    specs = [ServerSpec(name, logs=EXAMPLES / name, version=2016) for name in SERVERS]
    peer = ExchangePeer(peer_fixtures.build_config(tmp_path_factory.mktemp("peer"),
                                                   servers=specs)).start()
    try:
        profiles = tmp_path / "msgtrack.toml"
        profiles.write_text(
            f'[profiles.peer]\nconnect = "{peer.host}"\nport = {peer.port}\n'
            f'auth = "{peer.config.auth}"\nusername = "{peer.config.username}"\n'
            f'servers = {list(SERVERS)!r}\n'.replace("'", '"'))
        monkeypatch.setenv("MSGTRACK_CONFIG", str(profiles))
        monkeypatch.setenv("MSGTRACK_PASSWORD", peer.config.password)
        remote_cfg = tmp_path / "remote.toml"
        remote_cfg.write_text(
            '[audit]\noutput = "remote-out"\nbackfill_days = 3\nevents_format = "csv"\n'
            'accepted_domains = ["contoso.com"]\n'
            '[source]\nprofile = "peer"\nslice_hours = 24.0\n')
        remote = run_audit(load_config(remote_cfg), now=NOW)
    finally:
        peer.close()
    local = run_audit(load_config(write_config(
        tmp_path / "local.toml", [str(EXAMPLES / s) for s in SERVERS], backfill_days=3,
        output="local-out")), now=NOW)

    assert [(d.day, d.status) for d in remote.days] == [(d.day, d.status) for d in local.days]
    assert sum(d.rows for d in remote.days) == sum(d.rows for d in local.days) > 0
    for d in local.days:
        day = d.day.isoformat()
        assert day_rows(tmp_path / "remote-out", day) == day_rows(tmp_path / "local-out", day)
        assert findings(tmp_path / "remote-out", day) == findings(tmp_path / "local-out", day)
    summary = (tmp_path / "remote-out" / "2026-11-27" / "summary.json").read_text()
    assert '"servers-succeeded": 2' in summary and '"kind": "remote"' in summary
    evidence = (tmp_path / "remote-out" / "2026-11-27" / "findings.csv").read_text()
    # Evidence names the server the row was searched on (-Server) and the ids.
    assert any(f"{name} (RECEIVE SMTP InternalMessageId=" in evidence for name in SERVERS)
    assert ".LOG:" not in evidence
