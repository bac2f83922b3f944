"""`msgtrack audit init|run|schedule`: thin commands over :mod:`msgtrack.audit`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from msgtrack.audit import config as audit_config
from msgtrack.audit import schedule as sched
from msgtrack.audit.days import parse_day
from msgtrack.audit.run import DayOutcome, run_audit
from msgtrack.cli import problem_printer
from msgtrack.errors import UsageError

app = typer.Typer(
    no_args_is_help=True,
    help="Nightly audits: checkpointed daily runs with findings, reports and exit codes "
         "(0 clean, 4 findings, 3 incomplete, 1 error).")

ConfigPath = Annotated[Path | None, typer.Option(
    "--config", "-c", envvar=audit_config.CONFIG_ENV,
    help="The audit config (default: <user config dir>/msgtrack/audit.toml).")]


@app.command()
def init(
    config: ConfigPath = None,
    logs: Annotated[list[str] | None, typer.Option(
        "--logs", help="Log folder to audit (a share or a copy); repeatable.")] = None,
    profile: Annotated[str | None, typer.Option(
        "--profile", help="Remote profile to audit instead of log folders.")] = None,
    zone: Annotated[str, typer.Option(help="IANA time zone that defines a day.")] = "UTC",
    output: Annotated[str, typer.Option(help="Output folder (relative to the config).")]
    = "audit-out",
    domain: Annotated[list[str] | None, typer.Option(
        "--domain", help="Accepted domain (internal mail); repeatable.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented audit config to edit."""
    path = config or audit_config.default_config_path()
    if path.exists() and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite it")
    text = audit_config.render_template(config_name=str(path), zone=zone, output=output,
                                        logs=logs, profile=profile, accepted_domains=domain)
    audit_config.check_text(path, text)  # never write a file that does not load
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {path}; edit it, then run: msgtrack audit run --config {path}")


@app.command()
def run(
    config: ConfigPath = None,
    day: Annotated[str | None, typer.Option(
        "--day", help="Re-run one day (YYYY-MM-DD) instead of the days that are due.")] = None,
) -> None:
    """Audit every complete day after the checkpoint (or one --day); exit 0/4/3/1."""
    cfg = audit_config.load_config(config)
    outcome = run_audit(cfg, day=parse_day(day) if day else None,
                        report_problem=problem_printer, on_day=_print_day)
    if not outcome.days:
        typer.echo(f"nothing to do: audited through {outcome.latest}")
    for line in outcome.notify_errors:
        typer.echo(f"msgtrack: warning: notification failed (retried next run): {line}",
                   err=True)
    raise typer.Exit(outcome.exit_code)


def _print_day(d: DayOutcome) -> None:
    findings = f"{d.findings} finding(s)" + (f", max {d.max_severity}" if d.findings else "")
    typer.echo(f"{d.day}  {d.status:<10}  {d.rows} rows  {findings}  -> {d.folder}")


@app.command()
def schedule(
    config: ConfigPath = None,
    cron: Annotated[bool, typer.Option("--cron", help="Print a crontab line.")] = False,
    systemd: Annotated[bool, typer.Option("--systemd", help="Print a service and timer.")]
    = False,
    task_scheduler: Annotated[bool, typer.Option(
        "--task-scheduler", help="Print a Task Scheduler XML.")] = False,
    at: Annotated[str, typer.Option(help="Time of day, machine local time (HH:MM).")]
    = "02:30",
    keytab: Annotated[str | None, typer.Option(
        help="Kerberos keytab (default: msgtrack.keytab next to the config).")] = None,
    principal: Annotated[str | None, typer.Option(
        help="With --systemd: run 'kinit -k -t KEYTAB PRINCIPAL' before each run.")] = None,
    env_file: Annotated[Path | None, typer.Option(
        help="Environment file (default: audit.env next to the config).")] = None,
    exe: Annotated[str | None, typer.Option(help="The msgtrack command to run.")] = None,
    run_as: Annotated[str, typer.Option(help="Task Scheduler account.")]
    = "CONTOSO\\svc-msgtrack",
    install: Annotated[bool, typer.Option(
        "--install", help="With --systemd: write the user units (~/.config/systemd/user).")]
    = False,
) -> None:
    """Print ready-to-install units that run 'audit run' nightly."""
    if [cron, systemd, task_scheduler].count(True) != 1:
        raise UsageError("choose one of --cron, --systemd, --task-scheduler")
    if install and not systemd:
        raise UsageError("--install writes systemd user units; use it with --systemd")
    cfg = audit_config.load_config(config)
    s = sched.Schedule(
        config=Path(os.path.abspath(cfg.path)), output=Path(os.path.abspath(cfg.output)),
        at=sched.parse_at(at), exe=exe or sched.default_exe(),
        env_file=Path(os.path.abspath(env_file)) if env_file else None,
        keytab=keytab, principal=principal, run_as=run_as)
    if cron:
        typer.echo(sched.cron_text(s), nl=False)
    elif task_scheduler:
        typer.echo(sched.task_xml(s), nl=False)
    elif install:
        for path in sched.install_systemd_user(s):
            typer.echo(f"wrote {path}")
        typer.echo("next: systemctl --user daemon-reload && systemctl --user enable --now "
                   f"{sched.TIMER}; loginctl enable-linger {os.environ.get('USER', 'USER')}")
    else:
        for name, text in sched.systemd_units(s).items():
            typer.echo(f"# ---- {name}\n{text}", nl=False)
        typer.echo(f"# ---- {s.env} (mode 0600)\n{sched.env_file_text(s)}", nl=False)


__all__ = ["app"]
