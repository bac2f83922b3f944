"""Report B: candidate blank encrypted replies (IIS joined with tracking; eas-facts §5).

For each successful SmartReply or SmartForward request R, find the SUBMIT events of the
same user's mailbox within ``[R - before, R + after]`` (default -10 s/+120 s). The
closest SUBMIT wins; two or more in the window make the match ``ambiguous``. The match
is scored, its message id is followed to DELIVER (internal recipients) and SEND
(external recipients), and a verdict is given:

- ``LIKELY_BLANK``: an encrypted class (``IPM.Note.SMIME``, not ``.MultipartSigned``),
  score >= 6 and at least one internal DELIVER;
- ``POSSIBLE``: no MessageClass in the log (Exchange 2010 may not log it), an iOS 5.x
  device, Exchange 2010, and an internal DELIVER;
- ``INFO``: everything else, with the reason.

Nothing in these logs proves a body was blank: every finding is a *candidate*.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Any

from msgtrack.eas.devices import ServerSet, format_time, request_exchange2010
from msgtrack.eas.iis import EasRequest, Side
from msgtrack.errors import InputError, UsageError
from msgtrack.events import TrackingEvent
from msgtrack.filters import Query

SMART_COMMANDS = frozenset({"SmartReply", "SmartForward"})

#: Reply and forward subject prefixes in common Outlook languages (eas-facts §3).
#: A supporting signal only, never proof.
REPLY_PREFIXES: tuple[str, ...] = (
    "RE:", "AW:", "SV:", "VS:", "R:", "RIF:", "Réf.:", "REF:", "ANTW:", "RES:",
    "FW:", "FWD:", "WG:", "TR:", "VB:", "RV:", "I:", "ENC:", "VL:", "FS:",
)

#: How long after a SUBMIT its DELIVER and SEND events are looked for (queues, retries).
FOLLOW = timedelta(hours=1)

SMIME_CLASS = "ipm.note.smime"
CLEAR_SIGNED_CLASS = "ipm.note.smime.multipartsigned"

#: Column order of report B.
CANDIDATE_COLUMNS: tuple[str, ...] = (
    "Verdict", "Score", "Match", "RequestTime", "User", "Address", "Command", "DeviceId",
    "DeviceType", "UserAgent", "iOSVersion", "ProtocolVersion", "SubmitTime", "DeltaSeconds",
    "MessageClass", "ClientType", "Subject", "MessageId", "InternalRecipients",
    "ExternalRecipients", "Exchange2010", "ScoreReasons", "IisLine", "SubmitLine",
    "DeliverLines", "SendLines", "OtherSubmitLines", "JoinKeys", "Note",
)


class Verdict(str, Enum):
    LIKELY_BLANK = "LIKELY_BLANK"
    POSSIBLE = "POSSIBLE"
    INFO = "INFO"


@dataclass(frozen=True)
class Window:
    """How far a SUBMIT may lie before or after the IIS request."""

    before: timedelta = timedelta(seconds=10)
    after: timedelta = timedelta(seconds=120)

    def __post_init__(self) -> None:
        if self.before < timedelta(0) or self.after < timedelta(0):
            raise UsageError("the window's bounds must not be negative distances")

    @classmethod
    def parse(cls, text: str) -> Window:
        """``-10,+120`` (seconds; ``s`` suffixes allowed) -> Window(10 s, 120 s)."""
        parts = [p.strip().lower().removesuffix("s") for p in text.split(",")]
        try:
            if len(parts) != 2:
                raise ValueError
            before, after = float(parts[0]), float(parts[1])
        except ValueError:
            raise UsageError(f"not a window: {text!r}",
                             hint="use BEFORE,AFTER in seconds, e.g. --window=-10,+120") from None
        return cls(timedelta(seconds=abs(before)), timedelta(seconds=after))

    def __str__(self) -> str:
        return f"-{self.before.total_seconds():g}s/+{self.after.total_seconds():g}s"


class MailboxMap:
    """IIS user -> primary SMTP address, from a ``Get-Mailbox`` CSV and/or a rule.

    The CSV needs ``PrimarySmtpAddress`` plus any of ``SamAccountName``,
    ``UserPrincipalName``, ``Alias``. The rule is a template such as
    ``{user}@contoso.com``, where ``{user}`` is the account without ``DOMAIN\\``.
    """

    KEY_COLUMNS = ("SamAccountName", "UserPrincipalName", "Alias", "PrimarySmtpAddress")

    def __init__(self, entries: Mapping[str, tuple[str, str]] | None = None,
                 rule: str | None = None) -> None:
        self._entries = {k.casefold(): v for k, v in (entries or {}).items()}
        if rule is not None and "{user}" not in rule:
            raise UsageError(f"address rule {rule!r} has no {{user}}",
                             hint="e.g. --address-rule '{user}@contoso.com'")
        self.rule = rule

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str], rule: str | None = None) -> MailboxMap:
        name = os.fspath(path)
        try:
            with open(name, "rb") as raw:
                # Export-Csv -Encoding Unicode writes UTF-16 with a BOM; the rest is UTF-8/ASCII.
                bom = raw.read(2)
            encoding = "utf-16" if bom in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
            with open(name, encoding=encoding, newline="") as fh:
                # Windows PowerShell's Export-Csv starts with a "#TYPE ..." line.
                entries = cls._read_rows(csv.DictReader(
                    line for line in fh if not line.startswith("#TYPE")), name)
        except OSError as exc:
            raise InputError(exc.strerror or str(exc), path=name) from None
        return cls(entries, rule)

    @classmethod
    def _read_rows(cls, reader: csv.DictReader[str], name: str) -> dict[str, tuple[str, str]]:
        columns = {c.casefold(): c for c in reader.fieldnames or ()}
        address_col = columns.get("primarysmtpaddress")
        if address_col is None:
            raise InputError("mailbox map has no PrimarySmtpAddress column", path=name,
                             hint="export it with Get-Mailbox -ResultSize Unlimited | Select "
                                  "SamAccountName,UserPrincipalName,PrimarySmtpAddress | "
                                  "Export-Csv -NoTypeInformation")
        entries: dict[str, tuple[str, str]] = {}
        base = os.path.basename(name)
        for row in reader:
            address = (row.get(address_col) or "").strip()
            if not address:
                continue
            for key in cls.KEY_COLUMNS:
                col = columns.get(key.casefold())
                value = (row.get(col) or "").strip() if col else ""
                if value:
                    entries.setdefault(value, (address, f"{base} {key}"))
        return entries

    def lookup(self, user: str) -> tuple[str, str] | None:
        """(address, how it was found) for an IIS user (``alice``, ``DOM\\alice``, a UPN)."""
        account = user.rsplit("\\", 1)[-1]
        for key in (user, account):
            found = self._entries.get(key.casefold())
            if found is not None:
                return found
        if self.rule is not None and account:
            return self.rule.replace("{user}", account.split("@")[0]), f"rule {self.rule}"
        if "@" in account:
            return account, "User is an address"
        return None


@dataclass(frozen=True)
class Candidate:
    """One SmartReply/SmartForward request and what the tracking logs say about it."""

    request: EasRequest
    verdict: Verdict
    match: str  #: ``unique``, ``ambiguous``, ``none`` (no SUBMIT in the window), ``unmapped``
    address: str = ""  #: the sender address the user maps to
    mapping: str = ""  #: how the address was found
    submit: TrackingEvent | None = None  #: the closest SUBMIT
    others: tuple[TrackingEvent, ...] = ()  #: other SUBMITs in the window (ambiguous)
    delivers: tuple[TrackingEvent, ...] = ()
    sends: tuple[TrackingEvent, ...] = ()
    internal: tuple[str, ...] = ()  #: recipients with a DELIVER
    external: tuple[str, ...] = ()  #: recipients sent out through a Send connector
    score: int = 0
    reasons: tuple[str, ...] = ()
    exchange2010: str = ""  #: why the server counts as Exchange 2010, or ``""``
    window: Window = Window()
    note: str = ""

    @property
    def delta_seconds(self) -> float | None:
        """SUBMIT time minus request time (positive: the SUBMIT came after)."""
        if self.submit is None:
            return None
        return (self.submit.timestamp - self.request.timestamp).total_seconds()

    def row(self) -> dict[str, Any]:
        r, s = self.request, self.submit
        submission = s.submission if s is not None else {}
        keys = f"User={r.user!r}"
        if self.address:
            keys += f" -> {self.address} ({self.mapping})"
        if s is not None:
            keys += f"; SUBMIT sender {s.sender} at {self.delta_seconds:+g}s"
        keys += f"; window {self.window}"
        return {
            "Verdict": self.verdict.value,
            "Score": self.score,
            "Match": self.match,
            "RequestTime": format_time(r.timestamp),
            "User": r.user,
            "Address": self.address,
            "Command": r.cmd,
            "DeviceId": r.device_id,
            "DeviceType": r.device_type,
            "UserAgent": r.user_agent,
            "iOSVersion": r.ua.ios_version,
            "ProtocolVersion": r.protocol_version,
            "SubmitTime": format_time(s.timestamp) if s is not None else None,
            "DeltaSeconds": self.delta_seconds,
            "MessageClass": submission.get("MessageClass", ""),
            "ClientType": submission.get("ClientType", ""),
            "Subject": s.message_subject if s is not None else "",
            "MessageId": s.message_id if s is not None else "",
            "InternalRecipients": list(self.internal),
            "ExternalRecipients": list(self.external),
            "Exchange2010": self.exchange2010,
            "ScoreReasons": list(self.reasons),
            "IisLine": r.origin,
            "SubmitLine": s.origin if s is not None else "",
            "DeliverLines": [e.origin for e in self.delivers],
            "SendLines": [e.origin for e in self.sends],
            "OtherSubmitLines": [e.origin for e in self.others],
            "JoinKeys": keys,
            "Note": self.note,
        }


def candidate_rows(candidates: Iterable[Candidate]) -> Iterator[dict[str, Any]]:
    """Report B rows (ordered dicts, :data:`CANDIDATE_COLUMNS`)."""
    for candidate in candidates:
        yield candidate.row()


def _is_intra_org(ev: TrackingEvent) -> bool:
    return "intra-organization" in ev.connector_id.casefold()


def _domain(address: str) -> str:
    return address.rpartition("@")[2].casefold()


def _subject_prefix(subject: str, prefixes: Sequence[str]) -> str:
    folded = subject.lstrip().casefold()
    for prefix in prefixes:
        if folded.startswith(prefix.casefold()):
            return prefix
    return ""


def _tracking_2010(ev: TrackingEvent, servers: ServerSet) -> str:
    listed = servers.match(ev.server_hostname, ev.server_ip)
    if listed:
        return f"listed: {listed} (tracking)"
    # 2013 added network-message-id and 2016 schema-version (tracking-facts §3.3).
    if not ev.network_message_id and not ev.schema_version:
        return "inferred: tracking log has the 2010 schema (no network-message-id)"
    return ""


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for value in values:
        seen.setdefault(value.casefold(), value)
    return tuple(seen.values())


def smart_requests(iis_events: Iterable[EasRequest], side: Side | str = Side.ALL
                   ) -> list[EasRequest]:
    """The successful SmartReply/SmartForward requests (on ``side``), in time order."""
    side = Side(side)
    return sorted(
        (r for r in iis_events
         if r.cmd in SMART_COMMANDS and r.succeeded and (side is Side.ALL or r.side is side)),
        key=lambda r: (r.timestamp, r.origin),
    )


def tracking_query(requests: Sequence[EasRequest], window: Window = Window(),
                   follow: timedelta = FOLLOW) -> Query | None:
    """The tracking events report B needs for ``requests``: SUBMIT, DELIVER and SEND from
    the first request's window start to the last one's window end plus ``follow`` (for
    late deliveries). None when there is nothing to join."""
    if not requests:
        return None
    start = min(r.timestamp for r in requests) - window.before
    end = max(r.timestamp for r in requests) + window.after + follow
    return Query(start=start, end=end, event_ids=("SUBMIT", "DELIVER", "SEND"))


def find_blank_reply_candidates(
    iis_events: Iterable[EasRequest],
    tracking_events: Iterable[TrackingEvent],
    *,
    mailbox_map: MailboxMap,
    window: Window = Window(),
    side: Side | str = Side.ALL,
    exchange2010_servers: Collection[str] = (),
    accepted_domains: Collection[str] = (),
    reply_prefixes: Sequence[str] = REPLY_PREFIXES,
) -> Iterator[Candidate]:
    """Join successful SmartReply/SmartForward requests with tracking SUBMITs.

    ``iis_events`` is read to the end first (only the smart requests are kept), then
    ``tracking_events`` is streamed once, keeping only the events whose sender is one of
    those users. Candidates come out in request-time order, one per request.
    ``side`` drops requests from the other IIS side (``all`` keeps every request).
    """
    servers = ServerSet(exchange2010_servers)
    accepted = frozenset(d.casefold().lstrip("@") for d in accepted_domains)

    requests = smart_requests(iis_events, side)
    if not requests:
        return  # never start reading (or querying servers for) tracking data in vain
    mapped = {id(r): mailbox_map.lookup(r.user) for r in requests}
    senders = {m[0].casefold() for m in mapped.values() if m is not None}

    submits: dict[str, list[TrackingEvent]] = defaultdict(list)
    followers: dict[str, list[TrackingEvent]] = defaultdict(list)
    for ev in tracking_events:
        if ev.sender.casefold() not in senders:
            continue
        if ev.event_id == "SUBMIT":
            submits[ev.sender.casefold()].append(ev)
        elif ev.event_id in ("DELIVER", "SEND") and ev.message_id:
            followers[ev.message_id.casefold()].append(ev)

    for r in requests:
        found = mapped[id(r)]
        if found is None:
            yield Candidate(r, Verdict.INFO, "unmapped", window=window,
                            note=f"no mailbox address for user {r.user!r}: add it to the "
                                 "mailbox map or pass an address rule")
            continue
        address, how = found
        lo, hi = r.timestamp - window.before, r.timestamp + window.after
        in_window = sorted(
            (e for e in submits.get(address.casefold(), ()) if lo <= e.timestamp <= hi),
            key=lambda e: (abs(e.timestamp - r.timestamp), e.timestamp, e.origin),
        )
        if not in_window:
            yield Candidate(r, Verdict.INFO, "none", address, how, window=window,
                            note=f"no SUBMIT from {address} within {window} of the request")
            continue
        yield _assess(r, address, how, in_window, followers, servers, accepted,
                      reply_prefixes, window)


def _assess(r: EasRequest, address: str, how: str, in_window: list[TrackingEvent],
            followers: Mapping[str, list[TrackingEvent]], servers: ServerSet,
            accepted: frozenset[str], prefixes: Sequence[str], window: Window) -> Candidate:
    submit, others = in_window[0], tuple(in_window[1:])
    submission = submit.submission
    message_class = submission.get("MessageClass", "")
    folded_class = message_class.casefold()
    encrypted = folded_class.startswith(SMIME_CLASS) and folded_class != CLEAR_SIGNED_CLASS
    score, reasons = 0, []
    if encrypted:
        score += 3
        reasons.append(f"MessageClass {message_class}, encrypted or opaque-signed (+3)")
    elif folded_class == CLEAR_SIGNED_CLASS:
        score += 1
        reasons.append(f"MessageClass {message_class}, clear-signed (+1)")
    if submission.get("ClientType", "").casefold() == "airsync":
        score += 1
        reasons.append("ClientType AirSync (+1)")
    prefix = _subject_prefix(submit.message_subject, prefixes)
    if prefix:
        score += 1
        reasons.append(f"subject starts with {prefix!r} (+1)")
    ios5 = r.ua.is_ios5
    if ios5:
        score += 2
        reasons.append(f"iOS {r.ua.ios_version}, {r.user_agent} (+2)")
    listed = request_exchange2010(r, servers)
    exchange2010 = f"listed: {listed} (IIS)" if listed else _tracking_2010(submit, servers)
    if exchange2010:
        score += 1
        reasons.append(f"Exchange 2010, {exchange2010} (+1)")

    events = followers.get(submit.message_id.casefold(), []) if submit.message_id else []
    delivers = tuple(e for e in events if e.event_id == "DELIVER")
    internal = _unique(rcpt for e in delivers for rcpt in e.recipients)
    delivered = {a.casefold() for a in internal}
    sends = tuple(e for e in events if e.event_id == "SEND" and not _is_intra_org(e))
    external = _unique(
        rcpt for e in sends for rcpt in e.recipients
        if rcpt.casefold() not in delivered and _domain(rcpt) not in accepted
    )

    if encrypted and score >= 6 and internal:
        verdict = Verdict.LIKELY_BLANK
        note = (f"candidate blank reply: encrypted {r.cmd} from iOS {r.ua.ios_version} "
                f"delivered to {len(internal)} internal recipient(s), who may see an empty "
                "body; nothing in the logs proves it. Confirm by opening a recipient's copy "
                "or with Get-ActiveSyncDeviceStatistics -GetMailboxLog")
    elif not message_class and ios5 and exchange2010 and internal:
        verdict = Verdict.POSSIBLE
        note = ("possible candidate: the tracking log has no MessageClass (Exchange 2010 may "
                f"not log it), so encryption is unknown; {r.cmd} from iOS "
                f"{r.ua.ios_version} delivered to {len(internal)} internal recipient(s)")
    else:
        verdict = Verdict.INFO
        note = _info_note(r, message_class, encrypted, ios5, score, internal, bool(exchange2010))
    if external:
        note += f"; {len(external)} external recipient(s) probably readable"
    if others:
        note += (f"; ambiguous: {len(in_window)} SUBMITs within {window}, "
                 "the closest was chosen")
    return Candidate(
        r, verdict, "ambiguous" if others else "unique", address, how, submit, others,
        delivers, sends, internal, external, score, tuple(reasons), exchange2010, window, note,
    )


def _info_note(r: EasRequest, message_class: str, encrypted: bool, ios5: bool, score: int,
               internal: tuple[str, ...], exchange2010: bool) -> str:
    if not internal:
        return "not a candidate: no internal DELIVER for this message id"
    if message_class.casefold() == CLEAR_SIGNED_CLASS:
        return ("not a candidate: clear-signed (IPM.Note.SMIME.MultipartSigned); the body is "
                "probably readable, the signature may break")
    if message_class and not encrypted:
        return f"not a candidate: {message_class} is not encrypted"
    if encrypted:
        return f"not a candidate: encrypted, but the score {score} is below 6"
    missing = [what for what, ok in (("iOS 5.x", ios5), ("Exchange 2010", exchange2010)) if not ok]
    return (f"not a candidate: no MessageClass in the log and not {' or '.join(missing)}"
            if missing else "not a candidate")
