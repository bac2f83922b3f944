"""`msgtrack search` and `msgtrack decode`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from msgtrack import decode as dec
from msgtrack import pipeline, sinks
from msgtrack.cli import app, finish, new_report, open_output
from msgtrack.cli import options as opt
from msgtrack.errors import UsageError

_SOURCES = "Sources"


@app.command()
def search(
    log: Annotated[Optional[list[Path]], typer.Option(
        "--log", "-l", rich_help_panel=_SOURCES,
        help="MSGTRK*.LOG file, folder (recursive) or glob; repeatable.")] = None,
    clixml: Annotated[Optional[list[Path]], typer.Option(
        "--clixml", rich_help_panel=_SOURCES,
        help="Export-Clixml file of Get-MessageTrackingLog output; repeatable.")] = None,
    culture: Annotated[str, typer.Option(
        "--culture", rich_help_panel=_SOURCES,
        help="Culture the server used to print timestamp-only MessageInfo (en-US, en-GB, de-DE, …).")
    ] = "en-US",
    start: opt.Start = None, end: opt.End = None, sender: opt.Sender = None,
    recipient: opt.Recipient = None, event_id: opt.EventId = None, source: opt.Source = None,
    subject: opt.Subject = None, message_id: opt.MessageId = None,
    internal_message_id: opt.InternalMessageId = None,
    network_message_id: opt.NetworkMessageId = None, reference: opt.Reference = None,
    auth_method: opt.AuthMethod = None, auth_category: opt.AuthCategory = None,
    fmt: opt.Format = "table", output: opt.Output = None, limit: opt.Limit = 100,
    per_recipient: opt.PerRecipient = False, no_formula_guard: opt.UnsafeCsv = False,
) -> None:
    """Search message tracking events and print a table, CSV or JSON Lines."""
    query = opt.build_query(
        start=start, end=end, sender=sender, recipient=recipient, event_id=event_id,
        source=source, subject=subject, message_id=message_id,
        internal_message_id=internal_message_id, network_message_id=network_message_id,
        reference=reference, auth_method=auth_method, auth_category=auth_category)
    if not (log or clixml):
        raise UsageError("name at least one source: --log PATH or --clixml FILE")
    report = new_report()
    events = pipeline.search(pipeline.read_offline(log or [], clixml or [], report,
                                                   culture=culture), query)
    options = sinks.SinkOptions(per_recipient=per_recipient, safe_csv=not no_formula_guard,
                                limit=limit)
    with open_output(output, fmt) as out:
        result = sinks.write(events, fmt, out, options)
    _say_cut(result, fmt)
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
        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif fmt == "table":
        sinks.write_rows(rows, "table", sys.stdout)
    else:
        raise UsageError(f"unknown format {fmt!r}; choose table or json")
