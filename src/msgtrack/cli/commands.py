"""`msgtrack search` and `msgtrack decode`."""

# No `from __future__ import annotations` here: typer reads these signatures on every
# run, and each annotation left as a string costs a compile() to evaluate (4 ms of a
# search's 0.1 s start-up).

import sys
from pathlib import Path
from typing import Annotated

import typer

from msgtrack import decode as dec
from msgtrack import pipeline, sinks
from msgtrack.cli import app, finish, new_report, open_output
from msgtrack.cli import options as opt
from msgtrack.cli import remote as rem
from msgtrack.cli.progress import remote_progress
from msgtrack.errors import UsageError

_SOURCES = "Sources"


@app.command()
def search(
    log: Annotated[list[Path] | None, typer.Option(
        "--log", "-l", rich_help_panel=_SOURCES,
        help="MSGTRK*.LOG file, folder (recursive) or glob; repeatable.")] = None,
    clixml: Annotated[list[Path] | None, typer.Option(
        "--clixml", rich_help_panel=_SOURCES,
        help="Export-Clixml file of Get-MessageTrackingLog output; repeatable.")] = None,
    server: rem.Server = None, all_servers: rem.AllServers = False, connect: rem.Connect = None,
    profile: rem.ProfileName = None, auth: rem.Auth = None, port: rem.Port = None,
    ssl: rem.Ssl = None, ca_bundle: rem.CaBundle = None, insecure: rem.Insecure = False,
    username: rem.Username = None, operation_timeout: rem.OperationTimeout = 20,
    connect_timeout: rem.ConnectTimeout = 30, slice_timeout: rem.SliceTimeout = None,
    slice_hours: rem.SliceHours = 1.0, cap: rem.Cap = 5000, parallel: rem.Parallel = None,
    workers: rem.Workers = None,
    retries: rem.Retries = 3, culture: rem.Culture = None, spn_host: rem.SpnHost = None,
    start: opt.Start = None, end: opt.End = None, sender: opt.Sender = None,
    recipient: opt.Recipient = None, event_id: opt.EventId = None, source: opt.Source = None,
    subject: opt.Subject = None, message_id: opt.MessageId = None,
    internal_message_id: opt.InternalMessageId = None,
    network_message_id: opt.NetworkMessageId = None, reference: opt.Reference = None,
    auth_method: opt.AuthMethod = None, auth_category: opt.AuthCategory = None,
    fmt: opt.Format = "table", output: opt.Output = None, limit: opt.Limit = 100,
    per_recipient: opt.PerRecipient = False, no_formula_guard: opt.UnsafeCsv = False,
    report_file: Annotated[Path | None, typer.Option(
        "--report", help="Also write the completeness summary here, as JSON.")] = None,
) -> None:
    """Search message tracking events: live servers, MSGTRK logs or Export-Clixml files."""
    query = opt.build_query(
        start=start, end=end, sender=sender, recipient=recipient, event_id=event_id,
        source=source, subject=subject, message_id=message_id,
        internal_message_id=internal_message_id, network_message_id=network_message_id,
        reference=reference, auth_method=auth_method, auth_category=auth_category)
    remote = rem.settings(
        profile_name=profile, server=server, all_servers=all_servers, connect=connect,
        auth=auth, port=port, ssl=ssl, ca_bundle=ca_bundle, insecure=insecure,
        username=username, operation_timeout=operation_timeout,
        connect_timeout=connect_timeout, slice_timeout=slice_timeout, slice_hours=slice_hours,
        cap=cap, parallel=parallel, retries=retries, culture=culture, spn_host=spn_host,
        workers=workers)
    if not (log or clixml or remote):
        raise UsageError("name a source: --log PATH, --clixml FILE, --server NAME or --all-servers")
    report = new_report()
    options = sinks.SinkOptions(per_recipient=per_recipient, safe_csv=not no_formula_guard,
                                limit=limit)
    with remote_progress() as progress, open_output(output, fmt) as out:
        events = pipeline.open_events(log or [], clixml or [], remote, query, report,
                                      culture=culture or "en-US", progress=progress)
        result = sinks.write(events, fmt, out, options)
    _say_cut(result, fmt)
    if remote:
        typer.echo(f"msgtrack: {pipeline.completeness_line(report)}", err=True)
    if report_file:
        pipeline.write_report(report, report_file)
    finish(report)


def _say_cut(result: sinks.SinkResult, fmt: str) -> None:
    if fmt == "table" and result.cut:
        typer.echo(f"msgtrack: showing {result.rows} of {result.total} rows (--limit); "
                   "use --format csv or jsonl for all", err=True)
    elif result.total == 0:
        typer.echo("msgtrack: no matching events", err=True)


@app.command("decode")
def decode_values(
    values: Annotated[list[str], typer.Argument(help="MessageInfo values, e.g. '04I: '.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    event_id: Annotated[str, typer.Option(
        "--event-id", help="The event the value came from (DEFER timestamps are retry times).")
    ] = "",
) -> None:
    """Explain MessageInfo values: auth method and category, arrival time, latency."""
    # MessageClass/ClientType come from SourceContext, not MessageInfo: not shown here.
    rows = [{"Value": v, **dec.annotation_columns(dec.decode_message_info(v), {}, event_id)}
            for v in values]
    for row in rows:
        del row["MessageClass"], row["ClientType"]
    if fmt == "json":
        import json  # here: a search has no use for it (start-up)

        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif fmt == "table":
        sinks.write_rows(rows, "table", sys.stdout)
    else:
        raise UsageError(f"unknown format {fmt!r}; choose table or json")
