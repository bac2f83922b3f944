"""Rules: events in, findings out. Each finding says what, where, why it matters and
what to do.

Every rule sees each of the day's events once (:meth:`Rule.feed`, in time order) and
returns its findings at the end (:meth:`Rule.finish`). Findings are grouped by the
rule's key (for example client IP and connector), so 500 messages from one scanner are
one row with ``Count`` 500, its first and last time, and the first events as evidence.
Two rules compare the day with history from earlier runs (:class:`History`): they
only learn until enough days are recorded, so a first run does not flag everything.
"""

from __future__ import annotations

import ipaddress
import logging
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any, ClassVar, Protocol

from msgtrack.audit.config import SEVERITY_RANK, AuditConfig, Network, RuleSettings
from msgtrack.decode import format_log_timestamp
from msgtrack.events import TrackingEvent
from msgtrack.report import RunReport

log = logging.getLogger(__name__)

FINDING_COLUMNS: tuple[str, ...] = (
    "Rule", "Severity", "Time", "LastTime", "Count", "Server", "ClientIp", "Connector",
    "AuthMethod", "Sender", "Recipients", "MessageId", "Details", "Evidence", "Why", "Action",
)

#: How many events are cited as evidence per finding (the rest are counted).
EVIDENCE_MAX = 3

SMIME_CLASS = "ipm.note.smime"
CLEAR_SIGNED_CLASS = "ipm.note.smime.multipartsigned"


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    time: datetime  #: the first event
    last_time: datetime
    count: int
    server: str = ""
    client_ip: str = ""
    connector: str = ""
    auth_method: str = ""
    sender: str = ""
    recipients: tuple[str, ...] = ()
    message_id: str = ""
    details: str = ""
    evidence: str = ""
    why: str = ""
    action: str = ""

    def row(self) -> dict[str, Any]:
        return {
            "Rule": self.rule, "Severity": self.severity,
            "Time": format_log_timestamp(self.time),
            "LastTime": format_log_timestamp(self.last_time), "Count": self.count,
            "Server": self.server, "ClientIp": self.client_ip, "Connector": self.connector,
            "AuthMethod": self.auth_method, "Sender": self.sender,
            "Recipients": ";".join(self.recipients), "MessageId": self.message_id,
            "Details": self.details, "Evidence": self.evidence, "Why": self.why,
            "Action": self.action,
        }

    @property
    def rank(self) -> int:
        return SEVERITY_RANK[self.severity]


def evidence_of(ev: TrackingEvent) -> str:
    """Which event: its origin (``path:line`` or server) and the ids to find it again."""
    ids = f"{ev.event_id} {ev.source}".strip()
    if ev.internal_message_id:
        ids += f" InternalMessageId={ev.internal_message_id}"
    if ev.message_id:
        ids += f" MessageId={ev.message_id}"
    where = ev.origin or ev.server_hostname
    return f"{where} ({ids} at {format_log_timestamp(ev.timestamp)})"


# --------------------------------------------------------------------------- matching


@lru_cache(maxsize=65536)
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None


def in_networks(ip_text: str, networks: Iterable[Network]) -> bool:
    ip = _ip(ip_text) if ip_text else None
    return ip is not None and any(ip.version == n.version and ip in n for n in networks)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].casefold().strip().rstrip(">")


def address_allowed(address: str, allowed: frozenset[str]) -> bool:
    """``user@dom`` matches itself, ``@dom`` (or ``*@dom``) a whole domain."""
    if not allowed or not address:
        return False
    a = address.casefold()
    d = domain_of(a)
    return a in allowed or f"@{d}" in allowed or f"*@{d}" in allowed


def connector_allowed(connector: str, allowed: Sequence[str]) -> bool:
    c = connector.casefold()
    name = c.rpartition("\\")[2]
    return any(a.casefold() in (c, name) for a in allowed)


# --------------------------------------------------------------------------- history


class History(Protocol):
    """What the rules may ask about earlier days (the checkpoint database)."""

    def history_days_before(self, day: date, within: int) -> list[date]: ...

    def seen_before(self, day: date) -> set[tuple[str, str, str]]: ...

    def sender_history(self, days: Iterable[date], senders: Iterable[str]
                       ) -> dict[str, dict[date, int]]: ...


class NoHistory:
    def history_days_before(self, day: date, within: int) -> list[date]:
        return []

    def seen_before(self, day: date) -> set[tuple[str, str, str]]:
        return set()

    def sender_history(self, days: Iterable[date], senders: Iterable[str]
                       ) -> dict[str, dict[date, int]]:
        return {}


@dataclass
class DayFacts:
    """What today adds to the history: submitters seen, messages per sender."""

    internal_ranges: tuple[Network, ...]
    accepted_domains: frozenset[str]
    all_client_ips: bool = False
    internal_senders_only: bool = True
    seen: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    seen_first: dict[tuple[str, str, str], TrackingEvent] = field(default_factory=dict)
    seen_last: dict[tuple[str, str, str], datetime] = field(default_factory=dict)
    _messages: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    sender_first: dict[str, TrackingEvent] = field(default_factory=dict)

    def feed(self, ev: TrackingEvent) -> None:
        if ev.event_id != "RECEIVE":
            return
        if ev.source == "SMTP":
            auth = ev.info.auth
            if auth is not None:
                if ev.client_ip and (self.all_client_ips
                                     or in_networks(ev.client_ip, self.internal_ranges)):
                    self._see(("client_ip", ev.client_ip, auth.method), ev)
                if ev.connector_id:
                    self._see(("connector", ev.connector_id, auth.method), ev)
        sender = ev.sender.casefold()
        if sender and sender != "<>" and (
                not self.internal_senders_only or not self.accepted_domains
                or domain_of(sender) in self.accepted_domains):
            self._messages[sender].add(ev.message_id or ev.internal_message_id)
            self.sender_first.setdefault(sender, ev)

    def _see(self, key: tuple[str, str, str], ev: TrackingEvent) -> None:
        self.seen[key] += 1
        self.seen_first.setdefault(key, ev)
        self.seen_last[key] = ev.timestamp

    @property
    def sender_counts(self) -> dict[str, int]:
        return {s: len(ids) for s, ids in self._messages.items()}


@dataclass
class RuleContext:
    day: date
    start: datetime
    end: datetime
    config: AuditConfig
    facts: DayFacts
    history: History = field(default_factory=NoHistory)
    report: RunReport = field(default_factory=RunReport)

    def external(self, address: str) -> bool:
        d = domain_of(address)
        return bool(d) and d not in self.config.accepted_domains


# --------------------------------------------------------------------------- grouping


@dataclass
class _Group:
    first: TrackingEvent
    last: datetime
    count: int = 0
    evidence: list[str] = field(default_factory=list)
    values: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, ev: TrackingEvent, **values: str) -> None:
        self.count += 1
        self.last = ev.timestamp
        if len(self.evidence) < EVIDENCE_MAX:
            self.evidence.append(evidence_of(ev))
        for name, value in values.items():
            if value:
                self.values[name][value] += 1

    def evidence_text(self) -> str:
        extra = self.count - len(self.evidence)
        return "; ".join(self.evidence) + (f"; +{extra} more" if extra > 0 else "")

    def most(self, name: str) -> str:
        counter = self.values.get(name)
        if not counter:
            return ""
        return min(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0]

    def top(self, name: str, n: int = 3) -> str:
        counter = self.values.get(name)
        if not counter:
            return ""
        items = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
        text = ", ".join(f"{k} ({v})" for k, v in items[:n])
        return text + (f", +{len(items) - n} more" if len(items) > n else "")


class Rule:
    """Base: a rule groups matching events by a key and makes one finding per group."""

    name: ClassVar[str]
    why: ClassVar[str]
    action: ClassVar[str]

    def __init__(self, settings: RuleSettings, ctx: RuleContext) -> None:
        self.settings = settings
        self.ctx = ctx
        self.groups: dict[tuple[str, ...], _Group] = {}
        #: One line for the report, e.g. "learning: 3 of 7 baseline days".
        self.status = "on"

    def feed(self, ev: TrackingEvent) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def finish(self) -> list[Finding]:
        return [self.finding(key, g) for key, g in self.groups.items()]

    def group(self, key: tuple[str, ...], ev: TrackingEvent, **values: str) -> None:
        g = self.groups.get(key)
        if g is None:
            g = self.groups[key] = _Group(ev, ev.timestamp)
        g.add(ev, **values)

    def finding(self, key: tuple[str, ...], g: _Group) -> Finding:  # pragma: no cover
        raise NotImplementedError

    def make(self, g: _Group, **fields: Any) -> Finding:
        fields.setdefault("server", g.first.server_hostname)
        return Finding(rule=self.name, severity=self.settings.severity, time=g.first.timestamp,
                       last_time=g.last, count=g.count, evidence=g.evidence_text(),
                       why=self.why, action=self.action, **fields)


def _smtp_auth(ev: TrackingEvent) -> Any:
    if ev.event_id != "RECEIVE":
        return None
    return ev.info.auth


class AnonymousSubmission(Rule):
    name = "anonymous-submission"
    why = ("An internal host sent mail over SMTP without authenticating: an application or "
           "device relaying anonymously, or an open relay anyone on the network can abuse.")
    action = ("Find the host and its owner; move it to authenticated submission or a "
              "dedicated relay connector limited to its IP, then allowlist it here.")

    def feed(self, ev: TrackingEvent) -> None:
        auth = _smtp_auth(ev)
        # Method None only: 0cA/0bA is Internet mail relayed between Exchange servers,
        # which carries the Anonymous letter of its first hop (tracking-facts §2).
        if auth is None or ev.source != "SMTP" or auth.value != 0 or auth.letter.upper() != "A":
            return
        s = self.settings
        if not in_networks(ev.client_ip, self.ctx.config.internal_ranges):
            return
        if (in_networks(ev.client_ip, s["allow_ips"])
                or connector_allowed(ev.connector_id, s["allow_connectors"])
                or address_allowed(ev.sender, s["allow_senders"])):
            return
        self.group((ev.client_ip, ev.connector_id), ev, sender=ev.sender,
                   host=ev.client_hostname)

    def finding(self, key: tuple[str, ...], g: _Group) -> Finding:
        ip, connector = key
        host = g.most("host")
        return self.make(g, client_ip=ip, connector=connector, auth_method="None (Anonymous)",
                         sender=g.first.sender,
                         details=f"{g.count} anonymous message(s) from {ip}"
                                 + (f" (HELO {host})" if host else "")
                                 + f"; senders: {g.top('sender')}")


class CleartextLogin(Rule):
    name = "cleartext-login"
    why = ("AUTH LOGIN without TLS (auth code 07) sent the account's password across the "
           "network in clear text, readable by anyone on the path.")
    action = ("Require TLS on the Receive connector (RequireTLS) and configure the client "
              "for STARTTLS; change the exposed account's password.")

    def feed(self, ev: TrackingEvent) -> None:
        auth = _smtp_auth(ev)
        if auth is None or auth.value != 0x07:
            return
        s = self.settings
        if in_networks(ev.client_ip, s["allow_ips"]) or address_allowed(ev.sender,
                                                                         s["allow_senders"]):
            return
        self.group((ev.client_ip, ev.sender.casefold()), ev, connector=ev.connector_id)

    def finding(self, key: tuple[str, ...], g: _Group) -> Finding:
        return self.make(g, client_ip=key[0], sender=g.first.sender, auth_method="Login",
                         connector=g.most("connector"),
                         details=f"{g.count} message(s) submitted with AUTH LOGIN without TLS")


class LegacyAuthInventory(Rule):
    name = "legacy-auth-inventory"
    why = ("Basic authentication (AUTH LOGIN) is the submission path Microsoft is retiring "
           "and the one password spraying targets; this is the list to migrate.")
    action = ("Move the account to modern authentication (OAuth SMTP AUTH) or to an "
              "IP-restricted relay; allowlist what must stay.")

    def __init__(self, settings: RuleSettings, ctx: RuleContext) -> None:
        super().__init__(settings, ctx)
        self.methods = {m.casefold() for m in settings["methods"]}

    def feed(self, ev: TrackingEvent) -> None:
        auth = _smtp_auth(ev)
        if auth is None or (auth.method.casefold() not in self.methods
                            and auth.code.casefold() not in self.methods):
            return
        s = self.settings
        if in_networks(ev.client_ip, s["allow_ips"]) or address_allowed(ev.sender,
                                                                         s["allow_senders"]):
            return
        # The tracking log has no AUTH user name; the MAIL FROM sender is the account
        # the client submitted as (Exchange checks send-as on authenticated sessions).
        self.group((ev.sender.casefold(), ev.client_ip, auth.method), ev,
                   connector=ev.connector_id, host=ev.client_hostname)

    def finding(self, key: tuple[str, ...], g: _Group) -> Finding:
        sender, ip, method = key
        return self.make(g, client_ip=ip, sender=g.first.sender, auth_method=method,
                         connector=g.most("connector"),
                         details=f"{g.count} submission(s) as {g.first.sender or '(no sender)'}"
                                 f" from {ip} with {method}; connectors: {g.top('connector')}")


class PickupReplay(Rule):
    name = "pickup-replay"
    why = ("Files dropped into a server's Pickup or Replay directory become mail with no "
           "authentication at all, from whoever can write to that folder.")
    action = ("Find the process writing the files; restrict the directory's permissions, "
              "or allowlist the server if the application is known.")

    _METHODS: ClassVar[dict[int, str]] = {0x08: "Pickup", 0x12: "Replay"}

    def feed(self, ev: TrackingEvent) -> None:
        auth = _smtp_auth(ev)
        method = self._METHODS.get(auth.value) if auth is not None else None
        if method is None and ev.event_id == "RECEIVE" and ev.source == "PICKUP":
            method = "Pickup"
        if method is None:
            return
        s = self.settings
        server = ev.server_hostname
        if any(server.casefold() == a.casefold() for a in s["allow_servers"]) \
                or address_allowed(ev.sender, s["allow_senders"]):
            return
        self.group((server, method, ev.sender.casefold()), ev)

    def finding(self, key: tuple[str, ...], g: _Group) -> Finding:
        server, method, _ = key
        return self.make(g, server=server, sender=g.first.sender, auth_method=method,
                         details=f"{g.count} message(s) from the {method} directory on "
                                 f"{server or '(unknown server)'}")


class NewSubmitter(Rule):
    name = "new-submitter"
    why = ("A client IP or Receive connector submitting with an auth method never seen in "
           "the history: a new application, a changed configuration, or an intruder.")
    action = ("Confirm who owns the client and why it started sending this way; allowlist "
              "it if expected.")

    def feed(self, ev: TrackingEvent) -> None:
        pass  # DayFacts collects what this rule needs, for the history too

    def finish(self) -> list[Finding]:
        s, ctx = self.settings, self.ctx
        need = s["baseline_days"]
        earlier = ctx.history.history_days_before(ctx.day, ctx.config.history_days)
        if len(earlier) < need:
            self.status = (f"learning: {len(earlier)} of {need} baseline days recorded, "
                           "no findings until then")
            return []
        known = ctx.history.seen_before(ctx.day)
        ignored = {m.casefold() for m in s["ignore_methods"]}
        # A client IP and its connector that are both new on the same first message are
        # one finding, not two.
        fresh: dict[tuple[str, str, str], list[tuple[str, str, int]]] = defaultdict(list)
        for key, count in ctx.facts.seen.items():
            kind, value, method = key
            if key in known or method.casefold() in ignored:
                continue
            if kind == "client_ip" and in_networks(value, s["allow_ips"]):
                continue
            if kind == "connector" and connector_allowed(value, s["allow_connectors"]):
                continue
            first = ctx.facts.seen_first[key]
            fresh[(first.origin, format_log_timestamp(first.timestamp), method)].append(
                (kind, value, count))
        out = []
        for (_, _, method), parts in fresh.items():
            parts.sort()
            first = ctx.facts.seen_first[(parts[0][0], parts[0][1], method)]
            last = max(ctx.facts.seen_last[(k, v, method)] for k, v, _ in parts)
            what = " and ".join(
                f"{'client IP' if k == 'client_ip' else 'connector'} {v} ({n} message(s) "
                "today)" for k, v, n in parts)
            out.append(Finding(
                rule=self.name, severity=s.severity, time=first.timestamp, last_time=last,
                count=max(n for _, _, n in parts), server=first.server_hostname,
                client_ip=first.client_ip, connector=first.connector_id, auth_method=method,
                sender=first.sender,
                details=f"first time with {method} in {len(earlier)} recorded day(s): {what}",
                evidence=evidence_of(first), why=self.why, action=self.action))
        self.status = f"on: compared with {len(earlier)} recorded day(s)"
        return out


class VolumeSpike(Rule):
    name = "volume-spike"
    why = ("A sender suddenly sending many times their usual volume: a compromised "
           "account spamming, a mail loop, or data leaving in bulk.")
    action = ("Check the sender's recent messages and sign-ins; block or reset the account "
              "if it is not a known campaign, then allowlist known bulk senders.")

    def feed(self, ev: TrackingEvent) -> None:
        pass  # DayFacts counts messages per sender

    def finish(self) -> list[Finding]:
        s, ctx = self.settings, self.ctx
        days = ctx.history.history_days_before(ctx.day, s["trailing_days"])
        if len(days) < s["min_history_days"]:
            self.status = (f"learning: {len(days)} of {s['min_history_days']} history days "
                           "recorded, no findings until then")
            return []
        counts = {k: v for k, v in ctx.facts.sender_counts.items() if v >= s["min_count"]
                  and not address_allowed(k, s["allow_senders"])}
        history = ctx.history.sender_history(days, counts)
        out = []
        for sender, count in counts.items():
            past = history.get(sender, {})
            median = statistics.median([past.get(d, 0) for d in days])
            if count <= s["factor"] * median:
                continue
            first = ctx.facts.sender_first[sender]
            ratio = f"{count / median:.1f}x" if median else "no messages before"
            out.append(Finding(
                rule=self.name, severity=s.severity, time=first.timestamp,
                last_time=first.timestamp, count=count, server=first.server_hostname,
                client_ip=first.client_ip, sender=first.sender,
                details=f"{count} messages today; median {median:g} per day over the last "
                        f"{len(days)} recorded day(s) ({ratio}; threshold {s['factor']:g}x, "
                        f"at least {s['min_count']})",
                evidence=evidence_of(first) + " (first message today)",
                why=self.why, action=self.action))
        self.status = f"on: compared with {len(days)} recorded day(s)"
        return out


class ExternalRedirect(Rule):
    name = "external-redirect"
    why = ("Mail for an internal mailbox was forwarded or redirected outside your accepted "
           "domains: the way data quietly leaves through inbox rules and forwarding.")
    action = ("Check the mailbox's inbox rules (Get-InboxRule) and forwarding settings "
              "(ForwardingSmtpAddress); remove what the owner did not set up, then allowlist "
              "approved forwarding.")

    def __init__(self, settings: RuleSettings, ctx: RuleContext) -> None:
        super().__init__(settings, ctx)
        self.active = bool(ctx.config.accepted_domains)
        if not self.active:
            self.status = "off: set accepted_domains to tell internal from external"

    def feed(self, ev: TrackingEvent) -> None:
        ctx = self.ctx
        if not self.active:
            return
        if ev.source == "MAILBOXRULE":
            mailboxes = [a for a in (ev.related_recipient_address, ev.sender) if a]
            targets = list(ev.recipients)
        elif ev.event_id in ("REDIRECT", "RESOLVE"):
            addresses = [*ev.recipients, ev.related_recipient_address]
            mailboxes = [a for a in addresses if a and not ctx.external(a)]
            targets = [a for a in addresses if a]
            if not mailboxes:
                return  # external to external: a mail contact, not a mailbox forwarding
        else:
            return
        s = self.settings
        mailbox = next((m for m in mailboxes if not ctx.external(m)), mailboxes[0] if
                       mailboxes else "")
        if address_allowed(mailbox, s["allow_mailboxes"]):
            return
        for target in targets:
            if not ctx.external(target):
                continue
            if domain_of(target) in s["allow_domains"] or address_allowed(
                    target, s["allow_recipients"]):
                continue
            self.group((mailbox.casefold(), target.casefold()), ev, how=ev.source
                       if ev.source == "MAILBOXRULE" else ev.event_id)

    def finding(self, key: tuple[str, ...], g: _Group) -> Finding:
        mailbox, target = key
        return self.make(g, sender=g.first.sender, recipients=(target,),
                         message_id=g.first.message_id,
                         details=f"mail for {mailbox or '(unknown mailbox)'} went to {target} "
                                 f"via {g.top('how')}; {g.count} event(s)")


class SmimeActiveSyncReply(Rule):
    name = "smime-activesync-reply"
    why = ("An encrypted S/MIME reply or forward sent from an ActiveSync device reached "
           "internal recipients: such replies (iOS 5 SmartReply on Exchange 2010) can "
           "arrive with an empty body.")
    action = ("Ask a recipient whether the body was blank; update the device, or have the "
              "user reply from Outlook; the device's mailbox log shows SmartReply use.")

    def __init__(self, settings: RuleSettings, ctx: RuleContext) -> None:
        super().__init__(settings, ctx)
        self.prefixes = tuple(p.casefold() for p in settings["reply_prefixes"])
        self.candidates: dict[str, TrackingEvent] = {}
        self.delivers: dict[str, list[TrackingEvent]] = defaultdict(list)
        self.status = "on: tracking logs only (no IIS logs configured)"
        #: With IIS logs (issue #6): the join, prepared before the events stream by.
        self.iis: IisJoin | None = IisJoin.open(self) if settings["iis_logs"] else None

    def _prefix(self, subject: str) -> str:
        folded = subject.lstrip().casefold()
        return next((p for p in self.prefixes if folded.startswith(p)), "")

    def feed(self, ev: TrackingEvent) -> None:
        if self.iis is not None:
            self.iis.feed(ev)
        mid = ev.message_id.casefold()
        if ev.event_id == "SUBMIT" and ev.source == "STOREDRIVER":
            sub = ev.submission
            if sub.get("ClientType", "").casefold() != "airsync":
                return
            cls = sub.get("MessageClass", "").casefold()
            if (cls.startswith(SMIME_CLASS) and cls != CLEAR_SIGNED_CLASS and mid
                    and self._prefix(ev.message_subject)
                    and not address_allowed(ev.sender, self.settings["allow_senders"])):
                self.candidates.setdefault(mid, ev)
        elif ev.event_id == "DELIVER" and mid in self.candidates:
            self.delivers[mid].append(ev)

    def finish(self) -> list[Finding]:
        if self.iis is not None:
            return self.iis.findings()
        out = []
        for mid, submit in self.candidates.items():
            delivers = self.delivers.get(mid, [])
            internal = sorted({r for d in delivers for r in d.recipients
                               if not (self.ctx.config.accepted_domains
                                       and self.ctx.external(r))}, key=str.casefold)
            if not internal:
                continue
            sub = submit.submission
            evidence = "; ".join([evidence_of(submit)] + [evidence_of(d) for d in
                                                          delivers[:EVIDENCE_MAX]])
            out.append(Finding(
                rule=self.name, severity=self.settings.severity, time=submit.timestamp,
                last_time=max(d.timestamp for d in delivers), count=len(internal),
                server=submit.server_hostname, sender=submit.sender,
                recipients=tuple(internal), message_id=submit.message_id,
                details=(
                    f"MessageClass {sub.get('MessageClass', '')}, ClientType "
                    f"{sub.get('ClientType', '')}, subject starts with "
                    f"{self._prefix(submit.message_subject).upper()!r}; delivered to "
                    f"{len(internal)} internal recipient(s); candidate only: the logs "
                    "cannot show whether the body was blank"),
                evidence=evidence, why=self.why, action=self.action))
        return out


class IisJoin:
    """The IIS hook of smime-activesync-reply: the day's SmartReply/SmartForward requests
    joined with tracking by :func:`msgtrack.eas.find_blank_reply_candidates` (issue #6).

    The IIS logs are read first, so only the tracking events of the users who sent a
    smart reply are kept while the day streams by (SUBMIT, DELIVER, SEND).
    """

    def __init__(self, rule: SmimeActiveSyncReply, requests: list[Any], mailbox_map: Any,
                 window: Any, senders: set[str]) -> None:
        self.rule = rule
        self.requests = requests
        self.mailbox_map = mailbox_map
        self.window = window
        self.senders = senders
        self.tracking: list[TrackingEvent] = []

    @classmethod
    def open(cls, rule: SmimeActiveSyncReply) -> IisJoin | None:
        """None (and the rule falls back to tracking only) when the join cannot run."""
        from msgtrack.eas import MailboxMap, Window, read_iis
        from msgtrack.eas.replies import SMART_COMMANDS
        from msgtrack.errors import MsgtrackError

        s, ctx = rule.settings, rule.ctx
        try:
            window = Window.parse(s["window"])
            rule_text = s["address_rule"] or None
            mailbox_map = (MailboxMap.from_csv(s["mailbox_map"], rule_text)
                           if s["mailbox_map"] else MailboxMap(rule=rule_text))
            lo, hi = ctx.start - window.after, ctx.end + window.before
            # Front-end lines only: a 2013+ back end logs every request a second time.
            requests = [r for r in read_iis(s["iis_logs"], ctx.report)
                        if lo <= r.timestamp < hi and r.cmd in SMART_COMMANDS and r.succeeded]
        except MsgtrackError as exc:
            ctx.report.problem("rule", rule.name, f"IIS logs unusable: {exc}")
            rule.status = "on: IIS logs unusable, tracking logs only"
            return None
        senders = set()
        for r in requests:
            found = mailbox_map.lookup(r.user)
            if found is not None:
                senders.add(found[0].casefold())
        rule.status = (f"on: joined with {len(requests)} SmartReply/SmartForward request(s) "
                       "from IIS logs")
        return cls(rule, requests, mailbox_map, window, senders)

    def feed(self, ev: TrackingEvent) -> None:
        if ev.event_id in ("SUBMIT", "DELIVER", "SEND") and ev.sender.casefold() in self.senders:
            self.tracking.append(ev)

    def findings(self) -> list[Finding]:
        from msgtrack.eas import find_blank_reply_candidates

        rule, s, ctx = self.rule, self.rule.settings, self.rule.ctx
        candidates = find_blank_reply_candidates(
            self.requests, self.tracking, mailbox_map=self.mailbox_map, window=self.window,
            side="all", exchange2010_servers=s["exchange2010_servers"],
            accepted_domains=sorted(ctx.config.accepted_domains),
            reply_prefixes=s["reply_prefixes"])
        out = []
        done: set[str] = set()
        for c in candidates:
            submit = c.submit
            if c.verdict.value not in ("LIKELY_BLANK", "POSSIBLE") or submit is None:
                continue
            if submit.origin in done or not ctx.start <= submit.timestamp < ctx.end:
                continue  # a retried request matching the same SUBMIT; or another day's
            if address_allowed(submit.sender, s["allow_senders"]):
                continue
            done.add(submit.origin)
            row = c.row()
            out.append(Finding(
                rule=rule.name, severity=s.severity, time=submit.timestamp,
                last_time=max([d.timestamp for d in c.delivers] or [submit.timestamp]),
                count=len(c.internal), server=submit.server_hostname, sender=submit.sender,
                recipients=tuple(c.internal), message_id=submit.message_id,
                details=f"{c.verdict.value} (score {c.score}, match {c.match}): {c.note}; "
                        f"device {row['DeviceType']} {row['DeviceId']} ({row['UserAgent']})",
                evidence="; ".join([f"{c.request.origin} ({c.request.cmd} by "
                                    f"{c.request.user})", evidence_of(submit)]
                                   + [evidence_of(d) for d in c.delivers[:EVIDENCE_MAX]]),
                why=rule.why, action=rule.action))
        return out


RULES: tuple[type[Rule], ...] = (
    AnonymousSubmission, CleartextLogin, LegacyAuthInventory, PickupReplay, NewSubmitter,
    VolumeSpike, ExternalRedirect, SmimeActiveSyncReply,
)
_ORDER = {cls.name: i for i, cls in enumerate(RULES)}


def build_rules(ctx: RuleContext) -> list[Rule]:
    return [cls(ctx.config.rules[cls.name], ctx) for cls in RULES
            if ctx.config.rules[cls.name].enabled]


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Most severe first, then by rule, time and key: the same order on every run."""
    return sorted(findings, key=lambda f: (-f.rank, _ORDER.get(f.rule, 99), f.time,
                                           f.server, f.client_ip, f.connector, f.sender,
                                           f.recipients, f.message_id, f.details))


def new_facts(config: AuditConfig) -> DayFacts:
    ns, vs = config.rules["new-submitter"], config.rules["volume-spike"]
    return DayFacts(config.internal_ranges, config.accepted_domains,
                    all_client_ips=ns["all_client_ips"], internal_senders_only=vs["internal_only"])


def evaluate(events: Iterable[TrackingEvent], ctx: RuleContext,
             on_event: Callable[[TrackingEvent], None] | None = None
             ) -> tuple[list[Finding], dict[str, str]]:
    """Run every enabled rule over ``events``: (sorted findings, status per rule).

    Convenience for tests and library users; the audit run feeds rules itself while it
    streams the events to the CSV.
    """
    rules = build_rules(ctx)
    for ev in events:
        ctx.facts.feed(ev)
        for rule in rules:
            rule.feed(ev)
        if on_event is not None:
            on_event(ev)
    return finish_rules(rules, ctx)


def finish_rules(rules: list[Rule], ctx: RuleContext
                 ) -> tuple[list[Finding], dict[str, str]]:
    findings: list[Finding] = []
    for rule in rules:
        findings += rule.finish()
    status = {name: "off" for name in ctx.config.rules}
    status.update({rule.name: rule.status for rule in rules})
    return sort_findings(findings), status


def counts_by(findings: Iterable[Finding], attr: str) -> Mapping[str, int]:
    return dict(sorted(Counter(getattr(f, attr) for f in findings).items()))


__all__ = [
    "FINDING_COLUMNS", "DayFacts", "Finding", "History", "NoHistory", "Rule", "RuleContext",
    "build_rules", "evaluate", "finish_rules", "new_facts", "sort_findings",
]
