"""`msgtrack eas devices` and `msgtrack eas blank-replies` (issue #6)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from msgtrack import pipeline
from msgtrack.cli import finish, new_report, open_output
from msgtrack.cli import options as opt
from msgtrack.cli import remote as rem
from msgtrack.eas import devices as dev
from msgtrack.eas import replies as rep
from msgtrack.eas.iis import Side, read_iis
from msgtrack.eas.report import render
from msgtrack.errors import UsageError
from msgtrack.report import RunReport

app = typer.Typer(
    no_args_is_help=True,
    help="ActiveSync reply analysis from IIS logs: which devices use SmartReply/SmartForward "
         "(iOS 5 on Exchange 2010), and which encrypted replies recipients may see blank.",
)

_INPUT = "Inputs"
_MATCH = "Matching"

Iis = Annotated[list[Path], typer.Option(
    "--iis", rich_help_panel=_INPUT,
    help="IIS W3C log file or folder (recursive *.log), e.g. W3SVC1; repeatable.")]
SideOpt = Annotated[Side, typer.Option(
    "--side", rich_help_panel=_INPUT, case_sensitive=False,
    help="Exchange 2013+ logs each request on the front end (443) and the back end (444, "
         "/Proxy/): count one side. Exchange 2010 has only the front end.")]
Exchange2010 = Annotated[list[str] | None, typer.Option(
    "--exchange2010", rich_help_panel=_INPUT,
    help="A server known to run Exchange 2010 (name, FQDN or IP, as in s-ip, "
         "s-computername, Log Mbx: or the tracking server-hostname); repeatable.")]


@app.command("devices")
def devices(
    iis: Iis,
    side: SideOpt = Side.FRONTEND,
    exchange2010: Exchange2010 = None,
    exposed_only: Annotated[bool, typer.Option(
        "--exposed-only", help="Only devices flagged EXPOSED.")] = False,
    fmt: opt.Format = "table", output: opt.Output = None, limit: opt.Limit = 100,
    no_formula_guard: opt.UnsafeCsv = False,
) -> None:
    """Report A: how each device sends replies (SendMail, SmartReply, SmartForward).

    One row per user, device, user agent and EAS version. EXPOSED marks iOS 5.x devices
    that used SmartReply or SmartForward against EAS 14.x or a listed Exchange 2010 server.
    """
    report = new_report()
    summaries = dev.summarize_devices(read_iis(iis, report, side=side),
                                      exchange2010_servers=exchange2010 or ())
    if exposed_only:
        summaries = [s for s in summaries if s.exposed]
    with open_output(output, fmt) as out:
        render(dev.device_rows(summaries), fmt, out, columns=dev.DEVICE_COLUMNS, limit=limit,
               safe_csv=not no_formula_guard)
    _warn(report)
    finish(report)


@app.command("blank-replies")
def blank_replies(
    iis: Iis,
    log: Annotated[list[Path] | None, typer.Option(
        "--log", "-l", rich_help_panel=_INPUT,
        help="MSGTRK*.LOG file or folder (recursive) with the SUBMIT, DELIVER and SEND "
             "events; repeatable.")] = None,
    clixml: Annotated[list[Path] | None, typer.Option(
        "--clixml", rich_help_panel=_INPUT,
        help="Export-Clixml file of Get-MessageTrackingLog output; repeatable.")] = None,
    server: rem.Server = None, all_servers: rem.AllServers = False, connect: rem.Connect = None,
    profile: rem.ProfileName = None, auth: rem.Auth = None, port: rem.Port = None,
    ssl: rem.Ssl = None, ca_bundle: rem.CaBundle = None, insecure: rem.Insecure = False,
    username: rem.Username = None, operation_timeout: rem.OperationTimeout = 20,
    connect_timeout: rem.ConnectTimeout = 30, slice_timeout: rem.SliceTimeout = None,
    slice_hours: rem.SliceHours = 1.0, cap: rem.Cap = 5000, parallel: rem.Parallel = None,
    workers: rem.Workers = None,
    retries: rem.Retries = 3, culture: rem.Culture = None, spn_host: rem.SpnHost = None,
    mailbox_map: Annotated[Path | None, typer.Option(
        "--mailbox-map", rich_help_panel=_MATCH,
        help="Get-Mailbox CSV export with SamAccountName/UserPrincipalName and "
             "PrimarySmtpAddress: maps the IIS user to the sender address.")] = None,
    address_rule: Annotated[str | None, typer.Option(
        "--address-rule", rich_help_panel=_MATCH,
        help="Address template for users not in the map, e.g. '{user}@contoso.com'.")] = None,
    window: Annotated[str, typer.Option(
        "--window", rich_help_panel=_MATCH,
        help="Seconds before and after the IIS request in which a SUBMIT may fall, "
             "e.g. --window=-10,+120.")] = "-10,+120",
    accepted_domain: Annotated[list[str] | None, typer.Option(
        "--accepted-domain", rich_help_panel=_MATCH,
        help="An accepted domain: its recipients are never counted as external; "
             "repeatable.")] = None,
    side: SideOpt = Side.FRONTEND,
    exchange2010: Exchange2010 = None,
    verdict: Annotated[list[rep.Verdict] | None, typer.Option(
        "--verdict", case_sensitive=False,
        help="Only these verdicts (LIKELY_BLANK, POSSIBLE, INFO); repeatable.")] = None,
    fmt: opt.Format = "table", output: opt.Output = None, limit: opt.Limit = 100,
    no_formula_guard: opt.UnsafeCsv = False,
) -> None:
    """Report B: candidate blank encrypted replies (IIS joined with tracking).

    Each successful SmartReply/SmartForward is joined with the user's closest SUBMIT in
    the window, followed to DELIVER/SEND, and given a verdict: LIKELY_BLANK, POSSIBLE or
    INFO, with the IIS and tracking lines as evidence. Nothing in the logs proves a body
    was blank: every row is a candidate.
    """
    remote = rem.settings(
        profile_name=profile, server=server, all_servers=all_servers, connect=connect,
        auth=auth, port=port, ssl=ssl, ca_bundle=ca_bundle, insecure=insecure,
        username=username, operation_timeout=operation_timeout,
        connect_timeout=connect_timeout, slice_timeout=slice_timeout, slice_hours=slice_hours,
        cap=cap, parallel=parallel, retries=retries, culture=culture, spn_host=spn_host,
        workers=workers)
    if not (log or clixml or remote):
        raise UsageError("name the tracking data: --log PATH, --clixml FILE, --server NAME "
                         "or --all-servers")
    mapping = rep.MailboxMap.from_csv(mailbox_map, address_rule) if mailbox_map else \
        rep.MailboxMap(rule=address_rule)
    win, report = rep.Window.parse(window), new_report()
    requests = rep.smart_requests(read_iis(iis, report, side=side))
    query = rep.tracking_query(requests, win)
    events = pipeline.open_events(log or [], clixml or [], remote, query, report,
                                  culture=culture or "en-US") if query else ()
    candidates = rep.find_blank_reply_candidates(
        requests, events, mailbox_map=mapping, window=win,
        exchange2010_servers=exchange2010 or (), accepted_domains=accepted_domain or ())
    wanted = set(verdict or rep.Verdict)
    with open_output(output, fmt) as out:
        render(rep.candidate_rows(c for c in candidates if c.verdict in wanted), fmt, out,
               columns=rep.CANDIDATE_COLUMNS, limit=limit, safe_csv=not no_formula_guard)
    _warn(report)
    finish(report)


def _warn(report: RunReport) -> None:
    for warning in report.warnings:
        typer.echo(f"msgtrack: warning: {warning}", err=True)
