"""Options shared by several commands, declared once (typer ``Annotated`` aliases)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from msgtrack.filters import Query, parse_when

_FILTERS = "Filters"
_OUTPUT = "Output"

Start = Annotated[str | None, typer.Option(
    "--start", "-s", rich_help_panel=_FILTERS,
    help="Inclusive start, ISO 8601. With Z or an offset it is exact; a naive value "
         "means this machine's local time zone.")]
End = Annotated[str | None, typer.Option(
    "--end", "-e", rich_help_panel=_FILTERS,
    help="Exclusive end, ISO 8601 (same time-zone rules as --start).")]
Sender = Annotated[str | None, typer.Option(
    "--sender", rich_help_panel=_FILTERS, help="Sender address (exact, case-insensitive).")]
Recipient = Annotated[list[str] | None, typer.Option(
    "--recipient", "-r", rich_help_panel=_FILTERS,
    help="Recipient address; repeatable, matches if any recipient matches.")]
EventId = Annotated[list[str] | None, typer.Option(
    "--event-id", rich_help_panel=_FILTERS, help="EventId, e.g. RECEIVE; repeatable.")]
Source = Annotated[list[str] | None, typer.Option(
    "--source", rich_help_panel=_FILTERS, help="Source, e.g. SMTP; repeatable.")]
Subject = Annotated[str | None, typer.Option(
    "--subject", rich_help_panel=_FILTERS, help="Case-insensitive substring of MessageSubject.")]
MessageId = Annotated[str | None, typer.Option(
    "--message-id", rich_help_panel=_FILTERS, help="MessageId, with the angle brackets.")]
InternalMessageId = Annotated[str | None, typer.Option(
    "--internal-message-id", rich_help_panel=_FILTERS, help="InternalMessageId (exact).")]
NetworkMessageId = Annotated[str | None, typer.Option(
    "--network-message-id", rich_help_panel=_FILTERS,
    help="NetworkMessageId (Exchange 2013+ logs; cmdlet parameter on 2016+).")]
Reference = Annotated[str | None, typer.Option(
    "--reference", rich_help_panel=_FILTERS, help="Matches if any Reference equals it.")]
AuthMethod = Annotated[list[str] | None, typer.Option(
    "--auth-method", rich_help_panel=_FILTERS,
    help="Decoded auth method (e.g. Login, NTLM) or its hex code (07); repeatable.")]
AuthCategory = Annotated[list[str] | None, typer.Option(
    "--auth-category", rich_help_panel=_FILTERS,
    help="Decoded sender category: Anonymous, Internal, External, Partner, Other (or A/I/E/P/O).")]

Format = Annotated[str, typer.Option(
    "--format", "-f", rich_help_panel=_OUTPUT, help="table, csv or jsonl.")]
Output = Annotated[Path | None, typer.Option(
    "--output", "-o", rich_help_panel=_OUTPUT, help="Write here instead of stdout.")]
Limit = Annotated[int, typer.Option(
    "--limit", rich_help_panel=_OUTPUT, min=1, help="Table only: the most rows to show.")]
PerRecipient = Annotated[bool, typer.Option(
    "--per-recipient", rich_help_panel=_OUTPUT,
    help="One row per recipient, with its own RecipientStatus.")]
UnsafeCsv = Annotated[bool, typer.Option(
    "--no-formula-guard", rich_help_panel=_OUTPUT,
    help="Do not neutralise CSV cells starting with = + - @ (subjects are attacker text).")]


def build_query(*, start: str | None, end: str | None, sender: str | None,
                recipient: list[str] | None, event_id: list[str] | None,
                source: list[str] | None, subject: str | None, message_id: str | None,
                internal_message_id: str | None, network_message_id: str | None,
                reference: str | None, auth_method: list[str] | None,
                auth_category: list[str] | None) -> Query:
    return Query(
        start=parse_when(start) if start else None,
        end=parse_when(end) if end else None,
        sender=sender,
        recipients=tuple(recipient or ()),
        event_ids=tuple(e.upper() for e in event_id or ()),
        sources=tuple(s.upper() for s in source or ()),
        subject=subject,
        message_id=message_id,
        internal_message_id=internal_message_id,
        network_message_id=network_message_id,
        reference=reference,
        auth_methods=tuple(auth_method or ()),
        auth_categories=tuple(auth_category or ()),
    )
