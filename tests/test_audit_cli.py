"""`msgtrack audit` through the real CLI app (typer CliRunner): exit codes and messages."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from msgtrack.audit.state import run_lock
from msgtrack.cli import app
from tests.test_audit_helpers import event, smtp, write_config, write_logs


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def recent_logs(folder: Path, bad_line: bool = False) -> None:
    """Traffic on each of the last four days (relative to the real clock)."""
    today = datetime.now(timezone.utc).date()
    events = []
    for back in range(1, 5):
        day = today - timedelta(days=back)
        events += [smtp(f"{day}T09:00:00.000Z", "07I: ", ip="10.5.5.60"),
                   event(f"{day}T10:00:00.000Z", "DELIVER", "STOREDRIVER")]
    files = write_logs(folder, events)
    if bad_line:
        with open(files[-1], "ab") as fh:
            fh.write(b"garbage,line\r\n")


def test_init_writes_a_config_that_loads_and_never_overwrites(runner: CliRunner,
                                                              tmp_path: Path) -> None:
    path = tmp_path / "conf" / "audit.toml"
    result = runner.invoke(app, ["audit", "init", "--config", str(path), "--logs", "logs",
                                 "--zone", "Europe/Berlin", "--domain", "contoso.com"])
    assert result.exit_code == 0, result.output
    assert 'zone = "Europe/Berlin"' in path.read_text()
    again = runner.invoke(app, ["audit", "init", "--config", str(path)])
    assert again.exit_code == 2
    assert again.stderr.startswith(f"msgtrack: error: {path} exists")
    bad = runner.invoke(app, ["audit", "init", "--config", str(path), "--force",
                              "--zone", "Nowhere/Town"])
    assert bad.exit_code == 1 and "[audit] zone: unknown time zone" in bad.stderr


def test_run_end_to_end_exit_4_then_nothing_to_do(runner: CliRunner, tmp_path: Path) -> None:
    recent_logs(tmp_path / "logs")
    config = write_config(tmp_path / "audit.toml", backfill_days=3)
    result = runner.invoke(app, ["audit", "run", "--config", str(config)])
    assert result.exit_code == 4, result.output + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all("complete" in line and "finding(s), max high" in line
                                   for line in lines)
    again = runner.invoke(app, ["audit", "run", "--config", str(config)])
    assert again.exit_code == 0
    assert again.stdout.startswith("nothing to do: audited through ")


def test_run_incomplete_exits_3_and_prints_the_problem(runner: CliRunner,
                                                       tmp_path: Path) -> None:
    recent_logs(tmp_path / "logs", bad_line=True)
    config = write_config(tmp_path / "audit.toml", backfill_days=3)
    result = runner.invoke(app, ["audit", "run", "--config", str(config)])
    assert result.exit_code == 3, result.output
    assert "msgtrack: bad-line: " in result.stderr and "incomplete" in result.stdout


def test_run_errors_go_through_the_one_handler(runner: CliRunner, tmp_path: Path) -> None:
    recent_logs(tmp_path / "logs")
    config = write_config(tmp_path / "audit.toml")
    future = (date.today() + timedelta(days=3)).isoformat()
    result = runner.invoke(app, ["audit", "run", "--config", str(config), "--day", future])
    assert result.exit_code == 2 and f"msgtrack: error: {future} is not complete yet" in \
        result.stderr
    with run_lock(tmp_path / "out" / "audit.lock"):
        locked = runner.invoke(app, ["audit", "run", "--config", str(config)])
    assert locked.exit_code == 1
    assert locked.stderr.splitlines()[0] == (
        f"msgtrack: error: another audit run holds {tmp_path / 'out' / 'audit.lock'}")
    missing = runner.invoke(app, ["audit", "run", "--config", str(tmp_path / "nope.toml")])
    assert missing.exit_code == 1 and "hint: create one with 'msgtrack audit init" in \
        missing.stderr


def test_every_audit_command_has_help(runner: CliRunner) -> None:
    for command in ("init", "run", "schedule"):
        result = runner.invoke(app, ["audit", command, "--help"])
        assert result.exit_code == 0 and "--config" in result.stdout
