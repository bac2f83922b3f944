"""Deterministic generator of realistic Exchange 2016 message tracking logs.

Writes N event lines (30-field 2016/2019 schema, UTF-8 with BOM, CRLF) the way a
Transport + Mailbox server does: ``MSGTRK`` (transport), ``MSGTRKMS`` (mailbox
submission) and ``MSGTRKMD`` (mailbox delivery) files with 10-digit hourly names,
rolled at ``--max-bytes`` like Exchange's 10 MB default. Messages are followed
through their events (RECEIVE -> AGENTINFO -> SEND/DELIVER, NOTIFYMAPI -> SUBMIT ->
RECEIVE -> SEND, FAIL + DSN, DEFER ...), with the quoting Exchange writes (commas and
quotes in subjects, single-quoted list items, quoted source-contexts).

The same seed and row count always give byte-identical files, so benchmarks can cache
them: a ``manifest.json`` records what a directory holds. Used by
``exps/bench_offline.py`` and other benchmarks::

    python exps/gen_logs.py --rows 100000 --out exps/out/logs-100000
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

GENERATOR_VERSION = 1
UTC = timezone.utc

FIELDS_2016 = (
    "date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,"
    "connector-id,source,event-id,internal-message-id,message-id,network-message-id,"
    "recipient-address,recipient-status,total-bytes,recipient-count,"
    "related-recipient-address,reference,message-subject,sender-address,return-path,"
    "message-info,directionality,tenant-id,original-client-ip,original-server-ip,"
    "custom-data,transport-traffic-type,log-id,schema-version"
).split(",")

BUILD = "15.01.2375.007"
ORG = "contoso.com"
SYSTEM = f"MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@{ORG}"

_USERS = [
    "alex.wilber",
    "megan.bowen",
    "lee.gu",
    "nestor.wilke",
    "patti.fernandez",
    "isaiah.langer",
    "diego.siciliani",
    "adele.vance",
    "grady.archie",
    "lidia.holloway",
    "johanna.lorenz",
    "joni.sherman",
    "lynne.robbins",
    "miriam.graham",
    "pradeep.gupta",
    "henrietta.mueller",
    "christie.cline",
    "allan.deyoung",
    "enrico.cattaneo",
    "irvin.sayers",
    "o'brien.sean",  # a quote in the local part: Exchange single-quotes the list item
]
_EXTERNAL = [
    "orders@fabrikam.com",
    "support@fabrikam.com",
    "j.smith@tailspintoys.com",
    "newsletter@litwareinc.com",
    "billing@northwindtraders.com",
    "ceo@adventure-works.com",
    "noreply@wingtiptoys.com",
    "sales@proseware.com",
    "k.yamamoto@fourthcoffee.com",
]
_SUBJECTS = [
    "Quarterly report",
    "Re: Budget 2027",
    "FW: Invoice 4711",
    "Lunch tomorrow?",
    "Meeting notes, action items and next steps",
    'Re: "Project Phoenix" kickoff',
    "Your order #A-20391 has shipped",
    "Password expiry notice",
    "Re: Re: travel, hotel, car",
    "Out of office",
    "Weekly status",
    'Fwd: the "final" draft, v3',
    "Contract renewal",
    "Ünïcödé Grüße aus München",
    "Q4 forecast; revised",
    "Holiday schedule",
    "=cmd|' /C calc'!A0",  # formula-looking subjects are attacker-controlled
    "Server maintenance window",
    "Welcome aboard!",
    "Expense report (November)",
]
_AGENTS = ["Malware Agent", "Transport Rule Agent", "Content Filter Agent", "DLP Policy Agent"]
_CLIENT_TYPES = ["MOMT", "MOMT", "MOMT", "OWA", "AirSync", "WebServices"]
_CLASSES = ["IPM.Note"] * 12 + [
    "IPM.Schedule.Meeting.Request",
    "IPM.Note.SMIME",
    "IPM.Note.SMIME.MultipartSigned",
]
_FAIL_STATUS = "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"
_DEFER_STATUS = (
    "[{LED=451 4.4.397 Error communicating with target host. -> 421 4.4.2 Connection "
    "dropped};{MSG=};{FQDN=mx.fabrikam.com};{IP=10.20.0.25};{LRT=11/26/2026 3:04:11 AM}]"
)


def _csv(value: str) -> str:
    """Exchange's Utf8Csv.Escape: quote when the value holds ',' or '"'."""
    if "," in value or '"' in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def _list(items: list[str]) -> str:
    """Exchange's collection format: ';'-joined, items with ';' or "'" single-quoted."""
    out = []
    for item in items:
        if ";" in item or "'" in item:
            item = "'" + item.replace("'", "''") + "'"
        out.append(item)
    return ";".join(out)


class _Clock:
    """Millisecond clock that formats ``yyyy-MM-ddTHH:mm:ss.fffZ`` cheaply."""

    def __init__(self, start: datetime) -> None:
        self.ms = int(start.timestamp() * 1000)
        self._sec = -1
        self._prefix = ""

    def stamp(self, offset_ms: int = 0) -> str:
        ms = self.ms + offset_ms
        sec, milli = divmod(ms, 1000)
        if sec != self._sec:
            self._sec = sec
            self._prefix = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._prefix}.{milli:03d}Z"

    def hour_key(self) -> str:
        return datetime.fromtimestamp(self.ms // 1000, UTC).strftime("%Y%m%d%H")


class _Writer:
    """One log stream (a prefix): rolls to a new file per hour and at max_bytes."""

    def __init__(self, root: Path, prefix: str, max_bytes: int) -> None:
        self.root, self.prefix, self.max_bytes = root, prefix, max_bytes
        self.hour = ""
        self.instance = 0
        self.size = 0
        self.fh = None
        self.paths: list[Path] = []

    def write(self, hour: str, stamp: str, line: str) -> None:
        if self.fh is None or hour != self.hour or self.size >= self.max_bytes:
            self._roll(hour, stamp)
        data = line + "\r\n"
        self.fh.write(data)  # type: ignore[union-attr]
        self.size += len(data)

    def _roll(self, hour: str, stamp: str) -> None:
        self.close()
        self.instance = self.instance + 1 if hour == self.hour else 1
        self.hour = hour
        path = self.root / f"{self.prefix}{hour}-{self.instance}.LOG"
        self.paths.append(path)
        self.fh = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        header = (
            "\ufeff#Software: Microsoft Exchange Server\r\n"
            f"#Version: {BUILD}\r\n"
            "#Log-type: Message Tracking Log\r\n"
            f"#Date: {stamp}\r\n"
            f"#Fields: {','.join(FIELDS_2016)}\r\n"
        )
        self.fh.write(header)
        self.size = len(header)

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


class _Generator:
    def __init__(self, seed: int, server: str, start: datetime) -> None:
        self.rng = random.Random(seed)
        self.server = server
        self.fqdn = f"{server}.{ORG}"
        self.server_ip = "10.10.1.11"
        self.clock = _Clock(start)
        self.imid = 25769803776
        self.session = 0x08DC1A2B3C4D0000
        self.mdb = self._guid()
        self.mailboxes = {u: self._guid() for u in _USERS}
        self.event_counter = 2200000

    def _guid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _addr(self, user: str) -> str:
        return f"{user}@{ORG}"

    # Each message yields (prefix, offset_ms, fields-dict) events.
    def message(self) -> Iterator[tuple[str, int, dict[str, str]]]:
        rng = self.rng
        self.imid += 1
        imid = str(self.imid)
        nmid = self._guid()
        subject = rng.choice(_SUBJECTS)
        size = str(rng.randint(2_000, 400_000) if rng.random() < 0.95 else rng.randint(1, 30) * 1_000_000)
        kind = rng.random()
        if kind < 0.40:
            yield from self._inbound(imid, nmid, subject, size)
        elif kind < 0.65:
            yield from self._outbound(imid, nmid, subject, size, internal=True)
        elif kind < 0.85:
            yield from self._outbound(imid, nmid, subject, size, internal=False)
        elif kind < 0.93:
            yield from self._relay(imid, nmid, subject, size)
        else:
            yield from self._failing(imid, nmid, subject, size)

    def _common(
        self, imid: str, nmid: str, mid: str, subject: str, sender: str, size: str, direction: str
    ) -> dict[str, str]:
        return {
            "server-hostname": self.server,
            "internal-message-id": imid,
            "message-id": mid,
            "network-message-id": nmid,
            "message-subject": subject,
            "sender-address": sender,
            "return-path": sender,
            "total-bytes": size,
            "directionality": direction,
            "transport-traffic-type": "Email",
            "schema-version": BUILD,
        }

    def _smtp_context(self) -> str:
        self.session += self.rng.randint(1, 40)
        return f"{self.session:016X};{self.clock.stamp(-self.rng.randint(5, 900))};0"

    def _latency(self, process: str, total: float) -> str:
        rng = self.rng
        smr = round(total * 0.3, 3)
        cat = round(total * 0.4, 3)
        agent = rng.choice(_AGENTS)
        parts = (
            f"TOTAL-{process}={total:.3f}|SMR={smr:.3f}(SMRDI={smr / 4:.3f}|SMRC={smr / 2:.3f}"
            f"(SMRCL={smr / 2:.3f}))|CAT={cat:.3f}(CATSM={cat / 3:.3f}"
            f"(CATSM-{agent}={cat / 4:.3f}))|QDM={total * 0.1:.3f}|SMSC={total * 0.05:.3f}"
            f"(X-SMSDR={total * 0.04:.3f})|SMS=0.001"
        )
        return f"{self.clock.stamp(-int(total * 1000))};SRV={self.fqdn}:{parts}"

    def _custom(self, extra: str = "") -> str:
        base = f"S:DeliveryPriority=Normal;S:AccountForest={ORG}"
        return base + (";" + extra if extra else "")

    def _inbound(self, imid, nmid, subject, size):
        rng = self.rng
        sender = rng.choice(_EXTERNAL)
        rcpts = [self._addr(u) for u in rng.sample(_USERS, rng.choice((1, 1, 1, 2, 3)))]
        domain = sender.split("@")[1]
        mid = f"<{rng.getrandbits(64):016x}.{imid}@mail.{domain}>"
        c = self._common(imid, nmid, mid, subject, sender, size, "Incoming")
        rl, n = _list(rcpts), str(len(rcpts))
        peer = f"10.20.{rng.randint(0, 3)}.{rng.randint(2, 250)}"
        code = rng.choice(("00A: ", "00A: ", "0cA: ", "02P:fabrikam.com: ", "10A: "))
        yield (
            "MSGTRK",
            0,
            {
                **c,
                "client-ip": peer,
                "client-hostname": f"mx{rng.randint(1, 4)}.{domain}",
                "server-ip": self.server_ip,
                "source-context": self._smtp_context(),
                "connector-id": f"{self.server}\\Default {self.server}",
                "source": "SMTP",
                "event-id": "RECEIVE",
                "recipient-address": rl,
                "recipient-count": n,
                "message-info": code,
                "original-client-ip": peer,
                "custom-data": self._custom(f"S:FirstForestHop={self.fqdn}"),
            },
        )
        yield (
            "MSGTRK",
            40,
            {
                **c,
                "source-context": "Transport Rule Agent",
                "source": "AGENT",
                "event-id": "AGENTINFO",
                "recipient-address": rl,
                "recipient-count": n,
                "custom-data": "S:TRA=ETR|ruleId=6f1d3c1e-2b8a-4c55-9f0e-1a2b3c4d5e6f"
                "|st=11/25/2026 8:00:00 AM|action=SetHeader|sev=1|mode=Enforce",
            },
        )
        total = rng.randint(80, 4000) / 1000
        yield (
            "MSGTRK",
            120,
            {
                **c,
                "client-ip": self.server_ip,
                "client-hostname": self.fqdn,
                "server-ip": self.server_ip,
                "server-hostname": f"{self.server}.{ORG}",
                "source-context": f"{self.session:016X};250 2.0.0 OK;ClientSubmitTime:",
                "connector-id": "Intra-Organization SMTP Send Connector",
                "source": "SMTP",
                "event-id": "SEND",
                "recipient-address": rl,
                "recipient-status": _list(["250 2.1.5 Recipient OK"] * len(rcpts)),
                "recipient-count": n,
                "message-info": self._latency("HUB", total),
                "custom-data": self._custom(f"S:E2ELatency={total:.3f}"),
            },
        )
        for i, r in enumerate(rcpts):
            yield (
                "MSGTRKMD",
                300 + i,
                {
                    **c,
                    "client-ip": self.server_ip,
                    "server-ip": self.server_ip,
                    "source-context": f"{self._guid()}",
                    "source": "STOREDRIVER",
                    "event-id": "DELIVER",
                    "recipient-address": r,
                    "recipient-count": "1",
                    "message-info": self._latency("DEL", total + 0.2),
                    "custom-data": self._custom(
                        f"S:MailboxDatabaseGuid={self.mdb};S:Mailboxes={self.mailboxes[r.split('@')[0]]}"
                        f";S:ToEntity=Hosted;S:FromEntity=Internet;S:MsgRecipCount={n}"
                        ";S:IncludeInSla=True"
                    ),
                },
            )

    def _submission(self, imid, nmid, mid, subject, sender, size, rl, n, statuses):
        rng = self.rng
        user = sender.split("@")[0]
        self.event_counter += rng.randint(1, 50)
        ctx = (
            f"MDB:{self.mdb}, Mailbox:{self.mailboxes[user]}, Event:{self.event_counter}, "
            f"MessageClass:{rng.choice(_CLASSES)}, CreationTime:{self.clock.stamp(-900)}, "
            f"ClientType:{rng.choice(_CLIENT_TYPES)}, "
            "SubmissionAssistant:MailboxTransportSubmissionEmailAssistant"
        )
        c = self._common(imid, nmid, mid, subject, sender, size, "Originating")
        sub_total = rng.randint(50, 500) / 1000
        lat = (
            f"{self.clock.stamp(-600)};LSRV={self.fqdn}:TOTAL-SUB={sub_total:.3f}"
            f"|SA={sub_total / 2:.3f}|MTSS={sub_total / 2:.3f}(MTSSD={sub_total / 4:.3f}"
            f"|MTSSDC=0.001|MTSSDM-PEN=0.000)"
        )
        yield (
            "MSGTRKMS",
            0,
            {
                **c,
                "source-context": ctx,
                "source": "STOREDRIVER",
                "event-id": "NOTIFYMAPI",
                "message-id": "",
                "network-message-id": "",
                "internal-message-id": "0",
                "message-subject": "",
                "total-bytes": "",
                "recipient-count": "",
                "sender-address": "",
                "return-path": "",
                "directionality": "",
                "message-info": lat,
            },
        )
        yield (
            "MSGTRKMS",
            60,
            {
                **c,
                "client-ip": self.server_ip,
                "client-hostname": self.fqdn,
                "server-ip": self.server_ip,
                "source-context": ctx,
                "source": "STOREDRIVER",
                "event-id": "SUBMIT",
                "internal-message-id": "0",
                "recipient-address": rl,
                "recipient-count": n,
                "message-info": lat,
                "custom-data": f"S:E2ELatency={sub_total:.3f};S:ToEntity=Hosted",
            },
        )
        yield (
            "MSGTRK",
            90,
            {
                **c,
                "client-ip": self.server_ip,
                "client-hostname": self.fqdn,
                "server-ip": self.server_ip,
                "source-context": f"{self._guid()}",
                "connector-id": "",
                "source": "STOREDRIVER",
                "event-id": "RECEIVE",
                "recipient-address": rl,
                "recipient-status": statuses,
                "recipient-count": n,
                "message-info": "04I: ",
                "original-client-ip": "",
                "custom-data": self._custom(),
            },
        )

    def _outbound(self, imid, nmid, subject, size, internal):
        rng = self.rng
        user = rng.choice(_USERS)
        sender = self._addr(user)
        if internal:
            others = [u for u in _USERS if u != user]
            rcpts = [self._addr(u) for u in rng.sample(others, rng.choice((1, 1, 2, 3, 5)))]
        else:
            rcpts = rng.sample(_EXTERNAL, rng.choice((1, 1, 2)))
        mid = f"<{rng.getrandbits(96):024x}@{self.fqdn}>"
        rl, n = _list(rcpts), str(len(rcpts))
        statuses = _list([rng.choice(("To", "To", "Cc", "Bcc")) for _ in rcpts])
        yield from self._submission(imid, nmid, mid, subject, sender, size, rl, n, statuses)
        c = self._common(imid, nmid, mid, subject, sender, size, "Originating")
        total = rng.randint(80, 3000) / 1000
        if internal:
            for i, r in enumerate(rcpts):
                yield (
                    "MSGTRKMD",
                    200 + i,
                    {
                        **c,
                        "client-ip": self.server_ip,
                        "server-ip": self.server_ip,
                        "source-context": self._guid(),
                        "source": "STOREDRIVER",
                        "event-id": "DELIVER",
                        "recipient-address": r,
                        "recipient-count": "1",
                        "message-info": self._latency("DEL", total),
                        "custom-data": self._custom(
                            f"S:MailboxDatabaseGuid={self.mdb};S:ToEntity=Hosted"
                            f";S:FromEntity=Hosted;S:MsgRecipCount={n}"
                        ),
                    },
                )
        else:
            mx = f"10.20.0.{rng.randint(2, 250)}"
            yield (
                "MSGTRK",
                400,
                {
                    **c,
                    "client-ip": self.server_ip,
                    "client-hostname": self.fqdn,
                    "server-ip": mx,
                    "server-hostname": "mx.fabrikam.com",
                    "source-context": f"{self._smtp_context().split(';')[0]};250 2.6.0 "
                    f"<{imid}@{self.fqdn}> Queued mail for delivery"
                    f";ClientSubmitTime:{self.clock.stamp(-800)}",
                    "connector-id": "Internet Send Connector",
                    "source": "SMTP",
                    "event-id": "SEND",
                    "recipient-address": rl,
                    "recipient-status": _list(["250 2.1.5 Ok"] * len(rcpts)),
                    "recipient-count": n,
                    "message-info": self._latency("HUB", total),
                    "custom-data": self._custom(
                        f"S:E2ELatency={total:.3f};S:ExternalSendLatency={total / 3:.3f}"
                        ";S:ToEntity=Internet;S:FromEntity=Hosted"
                        ";S:Microsoft.Exchange.Transport.MailRecipient."
                        "RequiredTlsAuthLevel=Opportunistic"
                    ),
                },
            )

    def _relay(self, imid, nmid, subject, size):
        rng = self.rng
        app = rng.choice(("scanner", "erp", "monitoring"))
        sender = f"{app}@{ORG}"
        rcpts = [self._addr(u) for u in rng.sample(_USERS, rng.choice((1, 2)))]
        mid = f"<{rng.getrandbits(48):012x}.{imid}@{app}.{ORG}>"
        c = self._common(imid, nmid, mid, subject, sender, size, "Originating")
        rl, n = _list(rcpts), str(len(rcpts))
        ip = f"10.10.5.{rng.randint(10, 60)}"
        code = rng.choice(("00A: ", "07I: ", "06I: "))
        yield (
            "MSGTRK",
            0,
            {
                **c,
                "client-ip": ip,
                "client-hostname": f"{app}.{ORG}",
                "server-ip": self.server_ip,
                "source-context": self._smtp_context(),
                "connector-id": f"{self.server}\\Relay {self.server}",
                "source": "SMTP",
                "event-id": "RECEIVE",
                "recipient-address": rl,
                "recipient-count": n,
                "message-info": code,
                "original-client-ip": ip,
                "custom-data": self._custom(),
            },
        )
        total = rng.randint(80, 900) / 1000
        for i, r in enumerate(rcpts):
            yield (
                "MSGTRKMD",
                150 + i,
                {
                    **c,
                    "client-ip": self.server_ip,
                    "server-ip": self.server_ip,
                    "source-context": self._guid(),
                    "source": "STOREDRIVER",
                    "event-id": "DELIVER",
                    "recipient-address": r,
                    "recipient-count": "1",
                    "message-info": self._latency("DEL", total),
                    "custom-data": self._custom(f"S:MailboxDatabaseGuid={self.mdb}"),
                },
            )

    def _failing(self, imid, nmid, subject, size):
        rng = self.rng
        user = rng.choice(_USERS)
        sender = self._addr(user)
        mid = f"<{rng.getrandbits(96):024x}@{self.fqdn}>"
        c = self._common(imid, nmid, mid, subject, sender, size, "Originating")
        if rng.random() < 0.5:
            bad = f"no.such.user{rng.randint(1, 99)}@{ORG}"
            yield from self._submission(imid, nmid, mid, subject, sender, size, bad, "1", "To")
            yield (
                "MSGTRK",
                150,
                {
                    **c,
                    "source": "ROUTING",
                    "event-id": "FAIL",
                    "recipient-address": bad,
                    "recipient-status": _FAIL_STATUS,
                    "recipient-count": "1",
                    "message-info": self._latency("HUB", 0.2),
                    "custom-data": "S:InvalidRecipient=True",
                },
            )
            dsn_id = f"<{rng.getrandbits(96):024x}@{self.fqdn}>"
            yield (
                "MSGTRK",
                170,
                {
                    **c,
                    "source": "DSN",
                    "event-id": "DSN",
                    "internal-message-id": str(self.imid + 1),
                    "message-id": dsn_id,
                    "recipient-address": sender,
                    "recipient-count": "1",
                    "related-recipient-address": bad,
                    "reference": mid,
                    "message-subject": f"Undeliverable: {subject}",
                    "sender-address": SYSTEM,
                    "return-path": "<>",
                },
            )
            self.imid += 1
        else:
            rcpt = rng.choice(_EXTERNAL)
            yield from self._submission(imid, nmid, mid, subject, sender, size, rcpt, "1", "To")
            yield (
                "MSGTRK",
                30_000,
                {
                    **c,
                    "server-hostname": "mx.fabrikam.com",
                    "source": "SMTP",
                    "connector-id": "Internet Send Connector",
                    "event-id": "DEFER",
                    "source-context": "Queued for retry",
                    "recipient-address": rcpt,
                    "recipient-status": _DEFER_STATUS,
                    "recipient-count": "1",
                    "message-info": self.clock.stamp(630_000),
                },
            )


def generate(
    out_dir: str | Path,
    rows: int,
    *,
    seed: int = 2026,
    start: datetime = datetime(2026, 11, 25, tzinfo=UTC),
    server: str = "EX2016-01",
    max_bytes: int = 10 * 1024 * 1024,
) -> list[Path]:
    """Write ``rows`` event lines under ``out_dir/server``; returns the files written.

    Reuses the directory when its manifest says it already holds exactly this.
    """
    out = Path(out_dir)
    manifest = out / "manifest.json"
    want = {
        "generator": GENERATOR_VERSION,
        "rows": rows,
        "seed": seed,
        "server": server,
        "start": start.isoformat(),
        "max_bytes": max_bytes,
    }
    if manifest.exists():
        have = json.loads(manifest.read_text())
        if {k: have.get(k) for k in want} == want:
            return [out / p for p in have["files"]]
    root = out / server
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob("*.LOG"):
        old.unlink()
    gen = _Generator(seed, server, start)
    writers = {p: _Writer(root, p, max_bytes) for p in ("MSGTRK", "MSGTRKMS", "MSGTRKMD")}
    empty = dict.fromkeys(FIELDS_2016, "")
    written = 0
    try:
        while written < rows:
            gen.clock.ms += gen.rng.randint(50, 1500)
            # Files roll on the message's own hour, so late events (DEFER) never reopen one.
            hour = gen.clock.hour_key()
            for prefix, offset, values in gen.message():
                stamp = gen.clock.stamp(offset)
                row = {**empty, **values, "date-time": stamp, "log-id": gen._guid()}
                line = ",".join(_csv(row[f]) for f in FIELDS_2016)
                writers[prefix].write(hour, stamp, line)
                written += 1
                if written >= rows:
                    break
    finally:
        for w in writers.values():
            w.close()
    files = sorted(p for w in writers.values() for p in w.paths)
    manifest.write_text(json.dumps({**want, "files": [str(p.relative_to(out)) for p in files]}, indent=1))
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--out", default=None, help="default: exps/out/logs-ROWS")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--server", default="EX2016-01")
    ap.add_argument("--max-bytes", type=int, default=10 * 1024 * 1024)
    args = ap.parse_args(argv)
    out = args.out or str(Path(__file__).parent / "out" / f"logs-{args.rows}")
    files = generate(out, args.rows, seed=args.seed, server=args.server, max_bytes=args.max_bytes)
    size = sum(f.stat().st_size for f in files)
    print(f"{args.rows} rows in {len(files)} files, {size / 1e6:.1f} MB under {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
