"""Ready-to-install schedules for ``msgtrack audit run``: cron, systemd, Task Scheduler.

All three run the audit once a night at ``--at`` (the machine's local time). The audit
itself catches up missed nights and holds its own lock, so a late or repeated start is
harmless; the schedulers only add what they are good at:

* **cron**: ``flock -n`` (on the config file) so a slow run is not started twice, and
  the environment file sourced by ``sh`` (cron has no EnvironmentFile); the ticket cache
  is a private file in the output folder (umask 077).
* **systemd**: a oneshot service and a timer with ``Persistent=true`` (a night missed
  while the machine was off runs at the next boot). The service reads the environment
  file, points MIT Kerberos at the keytab (``KRB5_CLIENT_KTNAME``: GSSAPI gets tickets
  by itself) and keeps its ticket cache private in its runtime directory
  (``KRB5CCNAME``), removed when the run ends. Exit 4 (findings) counts as success, so
  ``systemctl --failed`` shows only errors (1) and incomplete days (3).
* **Task Scheduler**: a daily calendar trigger with StartWhenAvailable (the same catch-up
  as Persistent=true) and IgnoreNew for overlapping starts.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import time
from pathlib import Path

from msgtrack.errors import UsageError

SERVICE = "msgtrack-audit.service"
TIMER = "msgtrack-audit.timer"
TASK_NS = "http://schemas.microsoft.com/windows/2004/02/mit/task"


def parse_at(text: str) -> time:
    try:
        value = time.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--at {text!r}: not a time", hint="use HH:MM, e.g. --at 02:30") from None
    return value.replace(second=0, microsecond=0)


def default_exe() -> str:
    """The msgtrack command of this installation (absolute when it can be found)."""
    found = shutil.which("msgtrack")
    if found:
        return os.path.abspath(found)
    beside = Path(sys.executable).parent / ("msgtrack.exe" if os.name == "nt" else "msgtrack")
    return str(beside) if beside.exists() else "msgtrack"


@dataclass(frozen=True)
class Schedule:
    config: Path  #: absolute path of the audit config
    output: Path  #: the audit's output folder (for the cron lock and ticket cache)
    at: time = time(2, 30)
    exe: str = "msgtrack"
    env_file: Path | None = None
    keytab: str | None = None
    principal: str | None = None
    run_as: str = "CONTOSO\\svc-msgtrack"  #: Task Scheduler account

    @property
    def env(self) -> Path:
        return self.env_file or self.config.parent / "audit.env"

    @property
    def keytab_path(self) -> str:
        return self.keytab or str(self.config.parent / "msgtrack.keytab")

    def argv(self) -> list[str]:
        return [self.exe, "audit", "run", "--config", str(self.config)]


# --------------------------------------------------------------------------- env file


def env_file_text(s: Schedule) -> str:
    return (
        "# Environment of the msgtrack nightly audit (keep it mode 0600).\n"
        "# Read by the systemd service (EnvironmentFile=) and the cron line. Secrets live\n"
        "# here or in the keyring, never in the audit config.\n"
        f"KRB5_CLIENT_KTNAME={s.keytab_path}\n"
        "# Only for --auth ntlm/basic profiles; Kerberos with a keytab needs no password:\n"
        "# MSGTRACK_PASSWORD=\n"
        "# For [notify] with a username:\n"
        "# MSGTRACK_SMTP_PASSWORD=\n")


# --------------------------------------------------------------------------- cron


def cron_text(s: Schedule) -> str:
    """Comment lines and one crontab line (5 time fields + the command)."""
    # flock on the config itself: it always exists and the job can read it (the output
    # folder may not exist before the first run).
    lock = s.config
    ccache = s.output / "krb5cc"
    flock = shutil.which("flock") or "/usr/bin/flock"
    inner = "; ".join([
        "umask 077",
        f"export KRB5CCNAME={shlex.quote('FILE:' + str(ccache))}",
        f"export KRB5_CLIENT_KTNAME={shlex.quote(s.keytab_path)}",
        f"set -a; . {shlex.quote(str(s.env))}; set +a",
        "exec " + " ".join(shlex.quote(a) for a in s.argv()),
    ])
    command = f"{flock} -n {shlex.quote(str(lock))} /bin/sh -c {shlex.quote(inner)}"
    # In a crontab line an unescaped % ends the command.
    command = command.replace("%", "\\%")
    return (
        f"# msgtrack nightly audit at {s.at:%H:%M} (machine local time); install with\n"
        "# 'crontab -e'. Exit codes: 0 clean, 4 findings, 3 incomplete (retried next night),\n"
        f"# 1 error. Environment (keytab, passwords): {s.env}\n"
        f"{s.at.minute} {s.at.hour} * * * {command}\n")


# --------------------------------------------------------------------------- systemd


def _unit_word(value: str) -> str:
    """One word of an Exec line or an Environment= assignment, quoted for systemd."""
    value = value.replace("%", "%%")
    if not value or any(c in value for c in ' \t"\'\\;$'):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def systemd_units(s: Schedule) -> dict[str, str]:
    exec_start = " ".join(_unit_word(a) for a in s.argv())
    lines = [
        "[Unit]",
        "Description=msgtrack nightly message tracking audit",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        # A path, not a word: systemd takes it as written (no quotes), only % is special.
        f"EnvironmentFile=-{str(s.env).replace('%', '%%')}",
        "# MIT Kerberos gets the tickets from the keytab by itself; the ticket cache stays",
        "# private in the runtime directory, which is removed when the run ends.",
        f"Environment={_unit_word('KRB5_CLIENT_KTNAME=' + s.keytab_path)}",
        "Environment=KRB5CCNAME=FILE:%t/msgtrack-audit/krb5cc",
        "RuntimeDirectory=msgtrack-audit",
        "RuntimeDirectoryMode=0700",
        "UMask=0077",
    ]
    if s.principal:
        kinit = shutil.which("kinit") or "/usr/bin/kinit"
        lines.append("ExecStartPre=" + " ".join(_unit_word(a) for a in (
            kinit, "-k", "-t", s.keytab_path, s.principal)))
    lines += [
        f"ExecStart={exec_start}",
        "# 4 = findings: the report says so; only errors (1) and incomplete days (3) fail.",
        "SuccessExitStatus=4",
        "TimeoutStartSec=6h",
        "NoNewPrivileges=yes",
        "",
    ]
    timer = [
        "[Unit]",
        "Description=Run the msgtrack audit every night",
        "",
        "[Timer]",
        f"OnCalendar=*-*-* {s.at:%H:%M}:00",
        "# A night missed while the machine was off runs at the next start.",
        "Persistent=true",
        "AccuracySec=1min",
        f"Unit={SERVICE}",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ]
    return {SERVICE: "\n".join(lines), TIMER: "\n".join(timer)}


def systemd_user_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "systemd" / "user"


def install_systemd_user(s: Schedule) -> list[Path]:
    """Write the units into the user's systemd folder (and the env file if missing)."""
    folder = systemd_user_dir()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in systemd_units(s).items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    if not s.env.exists():
        s.env.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(s.env, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(env_file_text(s))
        written.append(s.env)
    return written


# --------------------------------------------------------------------------- Task Scheduler


def _win_quote(arg: str) -> str:
    if arg and not any(c in arg for c in ' \t"'):
        return arg
    return '"' + arg.replace('"', '\\"') + '"'


def task_xml(s: Schedule) -> str:
    """A Task Scheduler 1.2 definition; import with Register-ScheduledTask -Xml."""
    ET.register_namespace("", TASK_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{TASK_NS}}}{tag}", attrs)
        if text is not None:
            el.text = text
        return el

    task = ET.Element(f"{{{TASK_NS}}}Task", {"version": "1.2"})
    reg = sub(task, "RegistrationInfo")
    sub(reg, "Description", "msgtrack nightly message tracking audit. Exit codes: 0 clean, "
                            "4 findings, 3 incomplete (retried next night), 1 error.")
    sub(reg, "URI", "\\msgtrack-audit")
    trigger = sub(sub(task, "Triggers"), "CalendarTrigger")
    sub(trigger, "StartBoundary", f"2026-01-01T{s.at:%H:%M}:00")
    sub(trigger, "Enabled", "true")
    sub(sub(trigger, "ScheduleByDay"), "DaysInterval", "1")
    principal = sub(sub(task, "Principals"), "Principal", id="Author")
    sub(principal, "UserId", s.run_as)
    # Password logon: the task runs whether the user is logged on or not and has the
    # account's Kerberos credentials for WinRM (SSPI), so no keytab on Windows.
    sub(principal, "LogonType", "Password")
    sub(principal, "RunLevel", "LeastPrivilege")
    settings = sub(task, "Settings")
    for tag, text in (("MultipleInstancesPolicy", "IgnoreNew"),
                      ("DisallowStartIfOnBatteries", "false"),
                      ("StopIfGoingOnBatteries", "false"),
                      ("StartWhenAvailable", "true"),
                      ("RunOnlyIfNetworkAvailable", "true"),
                      ("ExecutionTimeLimit", "PT6H"),
                      ("Enabled", "true")):
        sub(settings, tag, text)
    action = sub(sub(task, "Actions", Context="Author"), "Exec")
    argv = s.argv()
    sub(action, "Command", argv[0])
    sub(action, "Arguments", " ".join(_win_quote(a) for a in argv[1:]))
    sub(action, "WorkingDirectory", str(s.config.parent))
    ET.indent(task, space="  ")
    return '<?xml version="1.0"?>\n' + ET.tostring(task, encoding="unicode") + "\n"
