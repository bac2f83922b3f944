"""The generated schedules: a parsable crontab line, valid systemd units, Task Scheduler XML.

How each is validated:

* cron: a small parser checks five time fields (each a valid cron field) and a command,
  and the command is run through ``sh -n`` (syntax) and ``shlex`` (quoting).
* systemd: always a structural parse (configparser: sections, keys, absolute paths,
  ``Persistent=true``, the Kerberos variables); in addition ``systemd-analyze verify``
  (system and ``--user`` mode) when it is installed (Debian package ``systemd``).
* Task Scheduler: parsed with defusedxml; the required elements and values are checked.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import defusedxml.ElementTree as DET
import pytest
from typer.testing import CliRunner

from msgtrack.audit import schedule as sched
from msgtrack.cli import app
from tests.test_audit_helpers import write_config

_CRON_FIELD = re.compile(r"\A(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*\Z")
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def exe() -> str:
    """An executable that exists, so systemd-analyze can check ExecStart."""
    path = Path(sys.executable).parent / "msgtrack"
    return str(path if path.exists() else Path(sys.executable))


@pytest.fixture
def schedule(tmp_path: Path) -> sched.Schedule:
    folder = tmp_path / "conf dir"
    folder.mkdir()
    config = write_config(folder / "audit.toml")
    return sched.Schedule(config=config, output=folder / "out", at=sched.parse_at("02:30"),
                          exe=exe(), keytab=str(folder / "svc 100%.keytab"))


def parse_cron(text: str) -> tuple[list[str], str]:
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert len(lines) == 1, text
    parts = lines[0].split(None, 5)
    assert len(parts) == 6, lines[0]
    fields, command = parts[:5], parts[5]
    for field, (lo, hi) in zip(fields, _RANGES, strict=True):
        assert _CRON_FIELD.match(field), field
        for number in re.findall(r"\d+", field.split("/")[0]):
            assert lo <= int(number) <= hi, field
    return fields, command


def test_cron_line(schedule: sched.Schedule) -> None:
    fields, command = parse_cron(sched.cron_text(schedule))
    assert fields == ["30", "2", "*", "*", "*"]
    # cron turns an unescaped % into a newline: the keytab's % must arrive escaped.
    assert "100\\%" in command and re.search(r"(?<!\\)%", command) is None
    argv = shlex.split(command.replace("\\%", "%"))
    assert argv[0].endswith("flock") and argv[1] == "-n"
    assert argv[2] == str(schedule.config)
    assert argv[3:5] == ["/bin/sh", "-c"]
    script = argv[5]
    assert f"exec {shlex.quote(exe())} audit run --config " in script
    assert f". {shlex.quote(str(schedule.env))}" in script and "set -a" in script
    assert "KRB5CCNAME=" in script and "KRB5_CLIENT_KTNAME=" in script
    subprocess.run(["sh", "-n", "-c", script], check=True)


def _units(schedule: sched.Schedule, folder: Path) -> dict[str, Path]:
    paths = {}
    for name, text in sched.systemd_units(schedule).items():
        paths[name] = folder / name
        paths[name].write_text(text)
    return paths


def test_systemd_units_structure(schedule: sched.Schedule, tmp_path: Path) -> None:
    units = _units(schedule, tmp_path)
    service = configparser.ConfigParser(strict=False, interpolation=None)
    service.optionxform = str  # type: ignore[assignment,method-assign]
    service.read(units[sched.SERVICE])
    assert set(service.sections()) == {"Unit", "Service"}
    svc = service["Service"]
    assert svc["Type"] == "oneshot"
    assert svc["EnvironmentFile"] == f"-{schedule.env}"
    text = units[sched.SERVICE].read_text()
    assert 'Environment="KRB5_CLIENT_KTNAME=' in text and "100%%.keytab" in text
    assert "Environment=KRB5CCNAME=FILE:%t/msgtrack-audit/krb5cc" in text
    assert svc["RuntimeDirectory"] == "msgtrack-audit" and svc["RuntimeDirectoryMode"] == "0700"
    assert shlex.split(svc["ExecStart"])[0] == exe() and os.path.isabs(exe())
    assert shlex.split(svc["ExecStart"])[1:4] == ["audit", "run", "--config"]
    assert svc["SuccessExitStatus"] == "4"
    timer = configparser.ConfigParser(interpolation=None)
    timer.optionxform = str  # type: ignore[assignment,method-assign]
    timer.read(units[sched.TIMER])
    assert timer["Timer"]["OnCalendar"] == "*-*-* 02:30:00"
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"
    with_kinit = sched.systemd_units(sched.Schedule(**{**schedule.__dict__,
                                                       "principal": "svc@CONTOSO.COM"}))
    assert re.search(r"^ExecStartPre=\S*kinit -k -t \".*keytab\" svc@CONTOSO.COM$",
                     with_kinit[sched.SERVICE], re.M)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze not installed (apt-get install systemd); the "
                           "structural test above still checks the units")
@pytest.mark.parametrize("mode", ["system", "user"])
def test_systemd_analyze_verify_accepts_the_units(schedule: sched.Schedule, tmp_path: Path,
                                                  mode: str) -> None:
    units = _units(schedule, tmp_path)
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    argv = ["systemd-analyze"] + (["--user"] if mode == "user" else []) + [
        "verify", *map(str, units.values())]
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "SYSTEMD_LOG_COLOR": "0"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    ours = [ln for ln in done.stderr.splitlines() if "msgtrack-audit" in ln]
    assert done.returncode == 0 and not ours, done.stderr


def test_task_scheduler_xml(schedule: sched.Schedule) -> None:
    text = sched.task_xml(schedule)
    root = DET.fromstring(text.encode())
    ns = {"t": sched.TASK_NS}
    assert root.tag == f"{{{sched.TASK_NS}}}Task" and root.get("version") == "1.2"
    for path in ("t:RegistrationInfo/t:Description", "t:Triggers/t:CalendarTrigger",
                 "t:Principals/t:Principal/t:UserId", "t:Settings", "t:Actions/t:Exec"):
        assert root.find(path, ns) is not None, path
    trigger = root.find("t:Triggers/t:CalendarTrigger", ns)
    assert trigger.findtext("t:StartBoundary", namespaces=ns).endswith("T02:30:00")
    assert trigger.findtext("t:ScheduleByDay/t:DaysInterval", namespaces=ns) == "1"
    settings = root.find("t:Settings", ns)
    assert settings.findtext("t:StartWhenAvailable", namespaces=ns) == "true"
    assert settings.findtext("t:MultipleInstancesPolicy", namespaces=ns) == "IgnoreNew"
    action = root.find("t:Actions/t:Exec", ns)
    assert action.findtext("t:Command", namespaces=ns) == exe()
    # The config path has a space: it must reach the program as one argument.
    assert action.findtext("t:Arguments", namespaces=ns) == (
        f'audit run --config "{schedule.config}"')


def test_cli_schedule_and_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path / "audit.toml")
    runner = CliRunner()
    cron = runner.invoke(app, ["audit", "schedule", "--cron", "--at", "03:15", "--config",
                               str(config)])
    assert cron.exit_code == 0 and parse_cron(cron.stdout)[0][:2] == ["15", "3"]
    both = runner.invoke(app, ["audit", "schedule", "--cron", "--systemd", "--config",
                               str(config)])
    assert both.exit_code == 2 and "choose one of" in both.stderr
    bad = runner.invoke(app, ["audit", "schedule", "--cron", "--at", "25:00", "--config",
                              str(config)])
    assert bad.exit_code == 2
    printed = runner.invoke(app, ["audit", "schedule", "--systemd", "--config", str(config)])
    assert "# ---- msgtrack-audit.timer" in printed.stdout and not (tmp_path / "xdg").exists()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    installed = runner.invoke(app, ["audit", "schedule", "--systemd", "--install",
                                    "--config", str(config), "--exe", exe()])
    assert installed.exit_code == 0, installed.output
    user_dir = tmp_path / "xdg" / "systemd" / "user"
    assert sorted(p.name for p in user_dir.iterdir()) == [sched.SERVICE, sched.TIMER]
    env = tmp_path / "audit.env"
    assert env.stat().st_mode & 0o777 == 0o600 and "KRB5_CLIENT_KTNAME=" in env.read_text()
    assert "systemctl --user daemon-reload" in installed.stdout
