"""Write the ActiveSync example logs: IIS W3C (examples/iis) and MSGTRK (examples/eas).

Run ``python examples/eas/generate_examples.py`` from the repository root; the output is
deterministic and committed, so tests and the README use the files, not this script.
Everything here is invented for the examples (names, GUIDs, message ids); the formats
follow eas-facts §2 (IIS) and tracking-facts §3 (MSGTRK).

The story (see README.md beside this file for the expected verdicts):

Exchange 2010, 2012-11-05, CAS EX2010-CAS1 (front end only, port 443):
  alice  iPhone 4S iOS 5.1    SmartReply, IPM.Note.SMIME, delivered internally  -> LIKELY_BLANK
  henry  iPhone 4  iOS 5.0.1  SmartReply, no MessageClass logged (older 2010)   -> POSSIBLE
  carol  iPad 2    iOS 5.0    SmartReply, IPM.Note.SMIME, sent externally only  -> INFO
  dave   iPhone 4S iOS 5.0.1  SmartForward, clear-signed, delivered internally  -> INFO
  erin   iPhone 5  iOS 6.0    SmartReply, IPM.Note                              -> INFO
  frank  Android              SmartForward, no SUBMIT in the tracking logs      -> INFO
  grace  Windows Phone 8      base64 queries; SmartReply, IPM.Note              -> INFO
  mike   iPhone 4S iOS 5.x (build not in the table) SmartReply, no SUBMIT       -> INFO
Exchange 2016, 2017-03-14, EX16-01 front end (W3SVC1, 443) proxying to EX16-02 back
end (W3SVC2, 444); every EAS request is logged on both sides:
  ivan   iPhone 4S iOS 5.1.1  SmartReply, IPM.Note.SMIME, internal + external   -> LIKELY_BLANK
  judy   iPhone 4S iOS 5.0    SmartReply, two SUBMITs in the window (AirSync
                              S/MIME at +4 s, OWA at +48 s)                     -> LIKELY_BLANK, ambiguous
  nina   iPhone 5  iOS 6.1.4  SmartForward, IPM.Note                            -> INFO
  kate   Outlook mobile       base64 SmartReply (EAS 16.1), IPM.Note            -> INFO
  leo    Samsung Android      SendMail only
"""

from __future__ import annotations

import base64
import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IIS = ROOT / "examples" / "iis"
EAS = ROOT / "examples" / "eas"
BAD = ROOT / "examples" / "bad-iis"

UTC = timezone.utc
IIS_FIELDS_2010 = ("date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip "
                   "cs(User-Agent) sc-status sc-substatus sc-win32-status time-taken")
IIS_FIELDS_2016 = ("date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip "
                   "cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken")

TRK_2010 = ("date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,"
            "connector-id,source,event-id,internal-message-id,message-id,recipient-address,"
            "recipient-status,total-bytes,recipient-count,related-recipient-address,reference,"
            "message-subject,sender-address,return-path,message-info,directionality,tenant-id,"
            "original-client-ip,original-server-ip,custom-data").split(",")
TRK_2016 = ("date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,"
            "connector-id,source,event-id,internal-message-id,message-id,network-message-id,"
            "recipient-address,recipient-status,total-bytes,recipient-count,"
            "related-recipient-address,reference,message-subject,sender-address,return-path,"
            "message-info,directionality,tenant-id,original-client-ip,original-server-ip,"
            "custom-data,transport-traffic-type,log-id,schema-version").split(",")


@dataclass(frozen=True)
class Device:
    user: str
    device_id: str
    device_type: str
    ua: str
    client_ip: str


ALICE = Device("alice", "ApplDNQGKRB3DTD7", "iPhone", "Apple-iPhone4C1/902.176", "203.0.113.7")
HENRY = Device("henry", "ApplC39GQ7X1DP0N", "iPhone", "Apple-iPhone3C1/901.405", "198.51.100.23")
CAROL = Device("carol", "ApplDLXH2K8JDFHW", "iPad", "Apple-iPad2C1/901.334", "203.0.113.41")
DAVE = Device("dave", "ApplF2LK9QW1DTC1", "iPhone", "Apple-iPhone4C1/901.406", "198.51.100.77")
ERIN = Device("erin", "ApplF17JK2N0DTWF", "iPhone", "Apple-iPhone5C2/1001.403", "203.0.113.90")
FRANK = Device("frank", "androidc1928374650", "Android", "Android/4.0.4-EAS-1.3", "198.51.100.8")
GRACE = Device("grace", "6F24CAD599A5BF1A690246B8C68FAE8D", "WP8", "MSFT-WP/8.0.10211",
               "203.0.113.120")
MIKE = Device("mike", "ApplDX4KP0QQDTC0", "iPhone", "Apple-iPhone4C1/902.999", "198.51.100.99")
IVAN = Device("ivan", "ApplC8PKD0AFDTC0", "iPhone", "Apple-iPhone4C1/902.206", "203.0.113.15")
JUDY = Device("judy", "ApplDQ7MX1ZGDTC1", "iPhone", "Apple-iPhone4C1/901.334", "198.51.100.140")
NINA = Device("nina", "ApplF9TQ2HN5FH19", "iPhone", "Apple-iPhone5C2/1002.350", "203.0.113.66")
KATE = Device("kate", "8C5A1E0D2B7F4E6A9D3C1B0A7F6E5D4C", "Outlook", "Outlook-iOS-Android/1.0",
              "52.96.0.12")
LEO = Device("leo", "SEC1A2B3C4D5E6F7", "SAMSUNGSMG900F", "SAMSUNG-SM-G900F/101.50101",
             "198.51.100.201")

#: (sam, UPN, primary SMTP): alice's and judy's primary addresses differ from the account name.
MAILBOXES = [
    ("alice", "alice@contoso.com", "alice.wong@contoso.com"),
    ("bob", "bob@contoso.com", "bob@contoso.com"),
    ("carol", "carol@contoso.com", "carol@contoso.com"),
    ("dave", "dave@contoso.com", "dave@contoso.com"),
    ("erin", "erin@contoso.com", "erin@contoso.com"),
    ("frank", "frank@contoso.com", "frank@contoso.com"),
    ("grace", "grace@contoso.com", "grace@contoso.com"),
    ("henry", "henry@contoso.com", "henry@contoso.com"),
    ("ivan", "ivan@contoso.com", "ivan@contoso.com"),
    ("judy", "judy@contoso.com", "judy.lee@contoso.com"),
    ("kate", "kate@contoso.com", "kate@contoso.com"),
    ("leo", "leo@contoso.com", "leo@contoso.com"),
    ("mike", "mike@contoso.com", "mike@contoso.com"),
    ("nina", "nina@contoso.com", "nina@contoso.com"),
]
ADDRESS = {sam: smtp for sam, _, smtp in MAILBOXES}


def t(day: str, clock: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=UTC)


# ----------------------------------------------------------------------------- IIS


def plain_query(d: Device, cmd: str | None, log: str | None, extra: str = "",
                user: str | None = None) -> str:
    parts = [f"User={user or d.user}", f"DeviceId={d.device_id}", f"DeviceType={d.device_type}"]
    if cmd:
        parts.append(f"Cmd={cmd}")
    if extra:
        parts.append(extra)
    if log:
        parts.append(f"Log={log}")
    return "&".join(parts)


def base64_query(version: int, code: int, d: Device, policy_key: int | None,
                 user: str | None, options: int | None = None) -> str:
    out = bytearray([version, code]) + (1033).to_bytes(2, "little")
    out += bytes([len(d.device_id)]) + d.device_id.encode()
    out += bytes([4]) + policy_key.to_bytes(4, "little") if policy_key else bytes([0])
    out += bytes([len(d.device_type)]) + d.device_type.encode()
    if user:
        out += bytes([8, len(user)]) + user.encode()
    if options is not None:
        out += bytes([7, 1, options])
    # IIS logs the query as the client sent it: base64 with '+' '/' '=' percent-encoded.
    return (base64.b64encode(bytes(out)).decode()
            .replace("+", "%2B").replace("/", "%2F").replace("=", "%3D"))


def iis_line(when: datetime, s_ip: str, method: str, stem: str, query: str, port: int,
             username: str, c_ip: str, ua: str, status: int, taken: int,
             referer: bool = False, substatus: int = 0, win32: int = 0) -> str:
    cells = [when.strftime("%Y-%m-%d"), when.strftime("%H:%M:%S"), s_ip, method, stem,
             query or "-", str(port), username or "-", c_ip, ua.replace(" ", "+")]
    if referer:
        cells.append("-")
    cells += [str(status), str(substatus), str(win32), str(taken)]
    return " ".join(cells)


def iis_file(path: Path, lines: list[str], fields: str, opened: datetime) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ["#Software: Microsoft Internet Information Services 7.5"
              if "Referer" not in fields else "#Software: Microsoft Internet Information Services 10.0",
              "#Version: 1.0", f"#Date: {opened:%Y-%m-%d %H:%M:%S}", f"#Fields: {fields}"]
    path.write_bytes(("\r\n".join(header + lines) + "\r\n").encode("ascii"))


def log2010(mbx: str, extra: str = "") -> str:
    # eas-facts §2.3: V141, LDAP/RPC counters, Mbx:, Throttle, Budget (escaped by Exchange).
    base = f"V141_LdapC0_LdapL0_RpcC{len(extra) % 9 + 3}_RpcL{len(extra) % 7 + 11}"
    middle = f"_{extra}" if extra else ""
    return (f"{base}{middle}_Mbx:{mbx}.contoso.com_Throttle0_"
            "Budget:(D)Owner%3aS-1-5-21-1004336348-1177238915-682003330-1150%2fContoso%5cuser")


def write_iis_2010() -> None:
    day = "2012-11-05"
    cas = "10.0.0.5"
    stem = "/Microsoft-Server-ActiveSync/default.eas"
    rows: list[tuple[datetime, str]] = []

    def eas(clock: str, d: Device, cmd: str | None, status: int = 200, log: str | None = "",
            mbx: str = "EX2010-MBX1", extra_log: str = "", method: str = "POST",
            extra: str = "", taken: int = 250, username: str | None = None) -> None:
        when = t(day, clock)
        value = log2010(mbx, extra_log) if log == "" else log
        query = plain_query(d, cmd, value, extra)
        user = f"CONTOSO\\{d.user}" if username is None else username
        rows.append((when, iis_line(when, cas, method, stem, query, 443, user, d.client_ip,
                                    d.ua, status, taken)))

    # Non-ActiveSync traffic the reader must skip.
    rows.append((t(day, "08:59:58"), iis_line(t(day, "08:59:58"), cas, "GET", "/owa/", "-",
                                              443, "-", "10.0.2.31",
                                              "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0)",
                                              302, 3)))
    rows.append((t(day, "09:00:01"), iis_line(t(day, "09:00:01"), cas, "POST",
                                              "/EWS/Exchange.asmx", "-", 443,
                                              "CONTOSO\\bob", "10.0.2.44",
                                              "Microsoft Office/14.0 (Windows NT 6.1; "
                                              "Microsoft Outlook 14.0.6129; Pro)", 200, 46)))
    # alice: iOS 5.1, encrypted SmartReply at 09:14:07.
    eas("09:00:02", ALICE, None, 200, None, method="OPTIONS", taken=15, username="-")
    eas("09:00:15", ALICE, "FolderSync", extra_log="Sk1234567890_S1")
    eas("09:00:47", ALICE, "Sync", extra_log="Ty:Em_Filt3_Sk1739506118_Cli:0a0c0d0f_Svr:2a0c0d0s_S1")
    eas("09:14:07", ALICE, "SmartReply", extra_log="S1", taken=1250)
    eas("09:14:21", ALICE, "Sync", extra_log="Ty:Em_Filt3_Sk1739506119_Cli:0a0c0d0f_Svr:1a0c0d0s_S1")
    eas("09:20:31", ALICE, "SendMail", extra_log="S1", taken=900)
    eas("09:41:02", ALICE, "SmartReply", extra_log="S1", taken=1100)
    eas("09:55:40", ALICE, "Ping", extra_log="Hb900_S1", taken=900012)
    # henry: iOS 5.0.1 on the older mailbox server; a failed try, then the reply.
    eas("10:02:11", HENRY, "SmartReply", 500, mbx="EX2010-MBX2", extra_log="Error:ServerError",
        taken=30015)
    eas("10:02:45", HENRY, "SmartReply", mbx="EX2010-MBX2", extra_log="S1", taken=1480)
    eas("10:05:00", HENRY, "Ping", mbx="EX2010-MBX2", extra_log="Hb1680_S2_Error:PingCollisionDetected",
        taken=1680031)
    # carol: iOS 5.0 iPad, encrypted reply to an external partner.
    eas("10:29:58", CAROL, "Sync", extra_log="Ty:Em_Filt2_Sk902113456_S1")
    eas("10:30:12", CAROL, "SmartReply", extra_log="S1", taken=1320)
    # dave: iOS 5.0.1, forwards a clear-signed message.
    eas("11:05:44", DAVE, "SmartForward", extra_log="S1", taken=1010)
    eas("11:16:02", DAVE, "SendMail", extra_log="S1", taken=780)
    # erin: iOS 6.0 still uses SmartReply, with a plain reply.
    eas("11:30:05", ERIN, "SmartReply", extra_log="S1", taken=640)
    eas("11:31:10", ERIN, "Sync", extra_log="Ty:Em_Filt3_Sk77120_S1")
    # frank: stock Android mail app, SmartForward with nothing in tracking.
    eas("12:00:12", FRANK, "Sync", extra_log="Ty:Em_Filt2_Sk5519_S1")
    eas("12:01:10", FRANK, "SmartForward", extra_log="S1", taken=700)
    eas("12:03:40", FRANK, "SendMail", extra_log="S1", taken=690)
    # grace: Windows Phone 8, base64 query form (version byte 141).
    for clock, code, user, options in (("12:29:00", 0, None, None),
                                       ("12:30:00", 3, "grace", 0x01),
                                       ("12:44:30", 1, None, 0x01)):
        when = t(day, clock)
        q = base64_query(141, code, GRACE, 3942120183, user, options)
        q += "&Log=" + log2010("EX2010-MBX1", "S1").removeprefix("V141_")
        rows.append((when, iis_line(when, cas, "POST", "/Microsoft-Server-ActiveSync", q, 443,
                                    "CONTOSO\\grace", GRACE.client_ip, GRACE.ua, 200, 420)))
    # mike: iOS build 9B999 is not in the table; reported as iOS 5.x.
    eas("13:10:05", MIKE, "SmartReply", extra_log="S1", taken=990)
    eas("13:12:00", MIKE, "Ping", extra_log="Hb900_S1", taken=900004)
    rows.sort(key=lambda r: r[0])
    iis_file(IIS / "ex2010" / "W3SVC1" / "u_ex121105.log", [line for _, line in rows],
             IIS_FIELDS_2010, t(day, "08:59:58"))


def write_iis_2016() -> None:
    day = "2017-03-14"
    fe_ip, be_ip = "10.0.1.11", "10.0.1.12"
    fe_lines: list[tuple[datetime, str]] = []
    be_lines: list[tuple[datetime, str]] = []
    counter = [0]

    def both(clock: str, d: Device, cmd: str, version: int = 141, status: int = 200,
             be_log: str = "S1", taken: int = 300, query: str | None = None,
             stem_fe: str = "/Microsoft-Server-ActiveSync/default.eas",
             stem_be: str = "/Microsoft-Server-ActiveSync/Proxy/default.eas") -> None:
        counter[0] += 1
        req_id = f"3f2c{counter[0]:04x}-8e51-4a7b-9c0d-5e1f2a3b4c{counter[0]:02x}"
        fe_time = t(day, clock)
        be_time = fe_time - timedelta(seconds=1)
        user = f"CONTOSO\\{d.user}"
        log = (f"V{version}_HH:mail.contoso.com_SmtpAdrs:{d.user}%40contoso.com_"
               f"Cafe:EX16-01.contoso.com_Mbx:EX16-02.contoso.com_{be_log}_As:AllowedG")
        if query is None:
            fe_q = plain_query(d, cmd, None) + f"&CorrelationID=<empty>;&cafeReqId={req_id};"
            be_q = plain_query(d, cmd, log)
        else:
            fe_q = query + f"&CorrelationID=<empty>;&cafeReqId={req_id};"
            be_q = query + f"&Log={log}"
        fe_lines.append((fe_time, iis_line(fe_time, fe_ip, "POST", stem_fe, fe_q, 443, user,
                                           d.client_ip, d.ua, status, taken + 15, referer=True)))
        be_lines.append((be_time, iis_line(be_time, be_ip, "POST", stem_be, be_q, 444, user,
                                           fe_ip, d.ua, status, taken, referer=True)))

    fe_lines.append((t(day, "08:00:03"), iis_line(t(day, "08:00:03"), fe_ip, "GET",
                                                  "/owa/auth/logon.aspx",
                                                  "url=https%3a%2f%2fmail.contoso.com%2fowa%2f",
                                                  443, "-", "10.0.2.51",
                                                  "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
                                                  200, 12, referer=True)))
    # ivan: iOS 5.1.1 against 2016 (EAS 14.1), encrypted reply, internal + external.
    both("08:10:04", IVAN, "Sync")
    both("08:15:31", IVAN, "SmartReply", taken=1400)
    # judy: iOS 5.0, encrypted reply; she also sends from OWA 44 s later (ambiguous).
    both("09:02:10", JUDY, "SmartReply", taken=1210)
    both("09:05:00", JUDY, "Ping", be_log="Hb900_S1", taken=900003)
    # nina: iOS 6.1.4 forwards a plain message.
    both("09:30:00", NINA, "SmartForward", taken=800)
    # kate: Outlook for iOS and Android, base64 query form, EAS 16.1.
    both("10:00:00", KATE, "Sync", version=161,
         query=base64_query(161, 0, KATE, None, "kate"),
         stem_fe="/Microsoft-Server-ActiveSync", stem_be="/Microsoft-Server-ActiveSync/Proxy")
    both("10:01:30", KATE, "SmartReply", version=161,
         query=base64_query(161, 3, KATE, None, "kate", 0x01), taken=950,
         stem_fe="/Microsoft-Server-ActiveSync", stem_be="/Microsoft-Server-ActiveSync/Proxy")
    # leo: Samsung native client, SendMail only.
    both("10:20:00", LEO, "Sync", version=160)
    both("10:21:12", LEO, "SendMail", version=160, taken=880)
    fe_lines.sort(key=lambda r: r[0])
    be_lines.sort(key=lambda r: r[0])
    iis_file(IIS / "ex2016" / "EX16-01" / "W3SVC1" / "u_ex17031408.log",
             [line for _, line in fe_lines], IIS_FIELDS_2016, t(day, "08:00:03"))
    iis_file(IIS / "ex2016" / "EX16-02" / "W3SVC2" / "u_ex17031408.log",
             [line for _, line in be_lines], IIS_FIELDS_2016, t(day, "08:10:03"))


def write_bad_iis() -> None:
    good = iis_line(t("2012-11-05", "09:14:07"), "10.0.0.5", "POST",
                    "/Microsoft-Server-ActiveSync/default.eas",
                    plain_query(ALICE, "SmartReply", "V141_S1"), 443, "CONTOSO\\alice",
                    ALICE.client_ip, ALICE.ua, 200, 1250)
    lines = [
        good,
        good.rsplit(" ", 1)[0],  # a field short (truncated copy)
        good.replace("2012-11-05", "2012-13-05"),  # month 13
        good.replace(" 200 0 0 ", " OK 0 0 "),  # sc-status not a number
        good.replace(plain_query(ALICE, "SmartReply", "V141_S1"), "jAAJBAp2MTQwRGV2aW"),  # cut base64
        good.replace("09:14:07", "09:15:30").replace("SmartReply", "SendMail"),
    ]
    iis_file(BAD / "u_ex121105.log", lines, IIS_FIELDS_2010, t("2012-11-05", "09:00:00"))
    BAD.joinpath("not-a-w3c-log.log").write_bytes(b"hello\r\nthis is not an IIS log\r\n")


# ----------------------------------------------------------------------------- MSGTRK


def tracking_file(path: Path, fields: list[str], version: str, opened: datetime,
                  events: list[dict[str, str]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    for ev in sorted(events, key=lambda e: e["date-time"]):
        writer.writerow([ev.get(f, "") for f in fields])
    header = ("#Software: Microsoft Exchange Server\r\n"
              f"#Version: {version}\r\n"
              "#Log-type: Message Tracking Log\r\n"
              f"#Date: {stamp(opened)}\r\n"
              f"#Fields: {','.join(fields)}\r\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xef\xbb\xbf" + (header + buf.getvalue()).encode("utf-8"))


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def submit_context(mdb: str, mailbox: str, event: int, created: datetime, message_class: str | None,
                   client: str | None, assistant: bool) -> str:
    parts = [f"MDB:{mdb}", f"Mailbox:{mailbox}", f"Event:{event}"]
    if message_class:
        parts.append(f"MessageClass:{message_class}")
    parts.append(f"CreationTime:{stamp(created)}")
    if client:
        parts.append(f"ClientType:{client}")
    if assistant:
        parts.append("SubmissionAssistant:MailboxTransportSubmissionEmailAssistant")
    return ", ".join(parts)


@dataclass(frozen=True)
class Mail:
    sender: str  #: sam
    when: datetime  #: SUBMIT time
    subject: str
    message_id: str
    internal: tuple[str, ...] = ()
    external: tuple[str, ...] = ()
    message_class: str | None = "IPM.Note"
    client: str | None = "AirSync"
    size: int = 8420


def events_2010(mail: Mail, mbx: str, mdb: str, mailbox: str, event: int, imid: int
                ) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(mailbox-server events, hub events) for one message on Exchange 2010."""
    sender = ADDRESS[mail.sender]
    recipients = ";".join(mail.internal + mail.external)
    common = {"message-id": mail.message_id, "message-subject": mail.subject,
              "sender-address": sender, "return-path": sender, "directionality": "Originating"}
    submit = {**common, "date-time": stamp(mail.when), "server-hostname": mbx,
              "source-context": submit_context(mdb, mailbox, event,
                                               mail.when - timedelta(milliseconds=620),
                                               mail.message_class, mail.client, False),
              "source": "STOREDRIVER", "event-id": "SUBMIT", "recipient-address": recipients,
              "recipient-count": str(len(mail.internal) + len(mail.external)),
              "total-bytes": str(mail.size)}
    hub: list[dict[str, str]] = []
    t0 = mail.when + timedelta(milliseconds=310)
    hub.append({**common, "date-time": stamp(t0), "client-ip": "10.0.0.7",
                "client-hostname": f"{mbx}.contoso.com", "server-ip": "10.0.0.6",
                "server-hostname": "EX2010-HUB1", "source-context": "MDB:" + mdb,
                "source": "STOREDRIVER", "event-id": "RECEIVE", "internal-message-id": str(imid),
                "recipient-address": recipients,
                "recipient-status": ";".join("To" for _ in mail.internal + mail.external),
                "recipient-count": str(len(mail.internal) + len(mail.external)),
                "total-bytes": str(mail.size), "message-info": "04I: "})
    if mail.internal:
        hub.append({**common, "date-time": stamp(t0 + timedelta(milliseconds=840)),
                    "server-ip": "10.0.0.6", "server-hostname": "EX2010-HUB1",
                    "client-ip": "10.0.0.6", "client-hostname": "EX2010-HUB1",
                    "source": "STOREDRIVER", "event-id": "DELIVER",
                    "internal-message-id": str(imid), "recipient-address": ";".join(mail.internal),
                    "recipient-count": str(len(mail.internal)), "total-bytes": str(mail.size),
                    "message-info": stamp(mail.when - timedelta(milliseconds=620))})
    if mail.external:
        hub.append({**common, "date-time": stamp(t0 + timedelta(seconds=2, milliseconds=15)),
                    "client-ip": "10.0.0.6", "client-hostname": "EX2010-HUB1",
                    "server-ip": "192.0.2.25", "server-hostname": "mx1.fabrikam.com",
                    "source-context": "08CF8D6A1E2B3C4D;250 2.6.0 <queued as 4F1A2B>;"
                                      "ClientSubmitTime:" + stamp(mail.when),
                    "connector-id": "Internet Mail", "source": "SMTP", "event-id": "SEND",
                    "internal-message-id": str(imid), "recipient-address": ";".join(mail.external),
                    "recipient-status": ";".join("250 2.1.5 Recipient OK" for _ in mail.external),
                    "recipient-count": str(len(mail.external)), "total-bytes": str(mail.size + 2100),
                    "message-info": stamp(mail.when - timedelta(milliseconds=620))})
    return [submit], hub


def write_tracking_2010() -> None:
    day = "2012-11-05"
    mdb1, mdb2 = "d6b0c4b7-3f2a-4c8e-9a51-0c7e2d4f6a11", "5a9e1f3c-7b2d-4e6f-8a0c-1d3e5f7a9b22"
    mbx1: list[dict[str, str]] = []
    mbx2: list[dict[str, str]] = []
    hub: list[dict[str, str]] = []
    mails = [
        # (mail, mailbox server, mdb, mailbox guid, store event counter)
        (Mail("alice", t(day, "09:14:09.114"), "RE: Q3 forecast",
              "<7E0C2D6B-93A4-4C55-A1D2-5B8F3E9C1A07@contoso.com>",
              internal=("bob@contoso.com", "erin@contoso.com"), message_class="IPM.Note.SMIME"),
         "EX2010-MBX1", mdb1, "0b1f6e2a-44c1-4d3e-9f20-6a7b8c9d0e01", 2331907),
        (Mail("alice", t(day, "09:20:32.480"), "Lunch?",
              "<E5A1C3B7-2F4D-4B6A-8C9E-0D1F2A3B4C5D@contoso.com>",
              internal=("bob@contoso.com",)),
         "EX2010-MBX1", mdb1, "0b1f6e2a-44c1-4d3e-9f20-6a7b8c9d0e01", 2331955),
        (Mail("alice", t(day, "09:41:03.902"), "RE: Parking",
              "<1A2B3C4D-5E6F-4A7B-8C9D-0E1F2A3B4C5E@contoso.com>",
              internal=("frank@contoso.com",)),
         "EX2010-MBX1", mdb1, "0b1f6e2a-44c1-4d3e-9f20-6a7b8c9d0e01", 2332010),
        # henry's mailbox server does not log MessageClass/ClientType (the open point, §3).
        (Mail("henry", t(day, "10:02:47.233"), "RE: Contract draft v3",
              "<9C8B7A6F-5E4D-4C3B-2A19-087F6E5D4C3B@contoso.com>",
              internal=("alice.wong@contoso.com",), message_class=None, client=None),
         "EX2010-MBX2", mdb2, "7c2d9e4f-1a3b-4c5d-8e6f-7a8b9c0d1e22", 881204),
        (Mail("carol", t(day, "10:30:13.650"), "RE: NDA signature",
              "<3D4E5F60-7182-4394-A5B6-C7D8E9F00112@contoso.com>",
              external=("j.smith@fabrikam.com",), message_class="IPM.Note.SMIME"),
         "EX2010-MBX1", mdb1, "2e4f6a8c-0b1d-4f3e-a5c7-e9f1a3b5c7d9", 2332577),
        (Mail("dave", t(day, "11:05:46.010"), "FW: Signed travel policy",
              "<55AA66BB-77CC-48DD-99EE-00FF11AA22BB@contoso.com>",
              internal=("erin@contoso.com",), message_class="IPM.Note.SMIME.MultipartSigned"),
         "EX2010-MBX1", mdb1, "4a6c8e0a-2c4e-4a6c-8e0a-2c4e6a8c0e2a", 2333101),
        (Mail("dave", t(day, "11:16:03.300"), "Running late",
              "<66BB77CC-88DD-49EE-AAFF-11AA22BB33CC@contoso.com>",
              internal=("bob@contoso.com",)),
         "EX2010-MBX1", mdb1, "4a6c8e0a-2c4e-4a6c-8e0a-2c4e6a8c0e2a", 2333122),
        (Mail("erin", t(day, "11:30:06.420"), "Re: Team offsite",
              "<0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9@contoso.com>",
              internal=("dave@contoso.com", "bob@contoso.com")),
         "EX2010-MBX1", mdb1, "6c8e0a2c-4e6a-4c8e-0a2c-4e6a8c0e2a4c", 2333480),
        (Mail("grace", t(day, "12:30:02.015"), "RE: Printer on 3rd floor",
              "<BN1PR02MB0123A4B5C6D7E8F9@contoso.com>",
              internal=("bob@contoso.com",)),
         "EX2010-MBX1", mdb1, "8e0a2c4e-6a8c-4e0a-2c4e-6a8c0e2a4c6e", 2334002),
        (Mail("grace", t(day, "12:44:31.700"), "Minutes",
              "<BN1PR02MB0124A4B5C6D7E8F9@contoso.com>",
              internal=("erin@contoso.com",)),
         "EX2010-MBX1", mdb1, "8e0a2c4e-6a8c-4e0a-2c4e-6a8c0e2a4c6e", 2334090),
    ]
    for i, (mail, mbx, mdb, mailbox, counter) in enumerate(mails):
        sub, hub_events = events_2010(mail, mbx, mdb, mailbox, counter, 40211 + i)
        (mbx1 if mbx == "EX2010-MBX1" else mbx2).extend(sub)
        hub.extend(hub_events)
    opened = t(day, "00:00:01.012")
    tracking_file(EAS / "ex2010" / "EX2010-MBX1" / "MSGTRKM20121105-1.LOG", TRK_2010,
                  "14.2.247.5", opened, mbx1)
    tracking_file(EAS / "ex2010" / "EX2010-MBX2" / "MSGTRKM20121105-1.LOG", TRK_2010,
                  "14.0.694.0", opened, mbx2)
    tracking_file(EAS / "ex2010" / "EX2010-HUB1" / "MSGTRK20121105-1.LOG", TRK_2010,
                  "14.2.247.5", opened, hub)


def events_2016(mail: Mail, n: int) -> tuple[list[dict[str, str]], list[dict[str, str]],
                                             list[dict[str, str]]]:
    """(MSGTRKMS, MSGTRK, MSGTRKMD) events for one message on Exchange 2016."""
    sender = ADDRESS[mail.sender]
    version = "15.01.0845.034"
    nmid = f"4f{n:02x}7c1e-2d3b-4a59-08d4-6a{n:02x}b1c2d3e4"
    everyone = mail.internal + mail.external
    common = {"message-id": mail.message_id, "network-message-id": nmid,
              "message-subject": mail.subject, "sender-address": sender, "return-path": sender,
              "directionality": "Originating", "schema-version": version,
              "transport-traffic-type": "Email"}

    def row(when: datetime, **cells: str) -> dict[str, str]:
        log_id = f"a1b2c3d4-{n:04x}-4e5f-8a9b-{int(when.timestamp()) % 10**12:012d}"
        return {**common, "date-time": stamp(when), "log-id": log_id, **cells}

    ms = [row(mail.when, **{
        "server-hostname": "EX16-02",
        "source-context": submit_context("3b8e1f0a-6c2d-4e9f-a1b3-c5d7e9f1a3b5",
                                         f"9d{n:02x}e2f4-6a8c-4e0a-b2c4-d6e8f0a2b4c6",
                                         5521003 + n * 17, mail.when - timedelta(milliseconds=710),
                                         mail.message_class, mail.client, True),
        "source": "STOREDRIVER", "event-id": "SUBMIT",
        "message-info": f"{stamp(mail.when - timedelta(milliseconds=700))};"
                        "LSRV=EX16-02.contoso.com:TOTAL-SUB=0.231|SA=0.108|MTSS=0.120",
        "custom-data": "S:AccountForest=contoso.com",
    })]
    t0 = mail.when + timedelta(milliseconds=420)
    imid = str(187_000 + n)
    hub = [row(t0, **{
        "client-ip": "10.0.1.12", "client-hostname": "EX16-02.contoso.com",
        "server-ip": "10.0.1.12", "server-hostname": "EX16-02",
        "source-context": "08D46A3C9F1E2B7D;2017-03-14T08:00:01.412Z;" + str(n),
        "connector-id": "EX16-02\\Client Proxy EX16-02", "source": "SMTP", "event-id": "RECEIVE",
        "internal-message-id": imid, "recipient-address": ";".join(everyone),
        "recipient-count": str(len(everyone)), "total-bytes": str(mail.size),
        "message-info": "04I: ",
    })]
    md: list[dict[str, str]] = []
    if mail.internal:
        hub.append(row(t0 + timedelta(milliseconds=150), **{
            "client-ip": "10.0.1.12", "client-hostname": "EX16-02",
            "server-ip": "10.0.1.12", "server-hostname": "EX16-02.contoso.com",
            "source-context": "08D46A3C9F1E2B90;250 2.1.5 Recipient OK;ClientSubmitTime:",
            "connector-id": "Intra-Organization SMTP Send Connector", "source": "SMTP",
            "event-id": "SEND", "internal-message-id": imid,
            "recipient-address": ";".join(mail.internal),
            "recipient-count": str(len(mail.internal)), "total-bytes": str(mail.size),
        }))
        md.append(row(t0 + timedelta(milliseconds=390), **{
            "client-ip": "10.0.1.12", "client-hostname": "EX16-02.contoso.com",
            "server-hostname": "EX16-02", "source-context": "MDB:3b8e1f0a-6c2d-4e9f-a1b3-c5d7e9f1a3b5",
            "source": "STOREDRIVER", "event-id": "DELIVER", "internal-message-id": imid,
            "recipient-address": ";".join(mail.internal),
            "recipient-count": str(len(mail.internal)), "total-bytes": str(mail.size),
            "message-info": f"{stamp(mail.when - timedelta(milliseconds=700))};"
                            "SRV=EX16-02.contoso.com:TOTAL-SUB=0.231|SA=0.108|MTSS=0.120;"
                            "SRV=EX16-02.contoso.com:TOTAL-HUB=0.392|SMR=0.101|CAT=0.070|"
                            "QDM=0.150;SRV=EX16-02.contoso.com:TOTAL-DEL=0.120|SDD=0.118",
            "custom-data": "S:MailboxDatabaseGuid=3b8e1f0a-6c2d-4e9f-a1b3-c5d7e9f1a3b5;"
                           "S:DeliveryPriority=Normal;S:AccountForest=contoso.com",
        }))
    if mail.external:
        hub.append(row(t0 + timedelta(seconds=1, milliseconds=620), **{
            "client-ip": "10.0.1.12", "client-hostname": "EX16-02",
            "server-ip": "192.0.2.25", "server-hostname": "mx1.fabrikam.com",
            "source-context": "08D46A3C9F1E2BA4;250 2.6.0 <queued as 7B2C>;ClientSubmitTime:"
                              + stamp(mail.when),
            "connector-id": "Outbound to Internet", "source": "SMTP", "event-id": "SEND",
            "internal-message-id": imid, "recipient-address": ";".join(mail.external),
            "recipient-status": ";".join("250 2.1.5 Ok" for _ in mail.external),
            "recipient-count": str(len(mail.external)), "total-bytes": str(mail.size + 2300),
            "message-info": f"{stamp(mail.when - timedelta(milliseconds=700))};"
                            "SRV=EX16-02.contoso.com:TOTAL-HUB=1.850|SMR=0.101|CAT=0.070|"
                            "QDE=1.430|SMSC=0.210",
        }))
    return ms, hub, md


def write_tracking_2016() -> None:
    day = "2017-03-14"
    mails = [
        Mail("ivan", t(day, "08:15:32.870"), "RE: Budget 2017 (confidential)",
             "<A7B8C9D0-E1F2-4345-8687-98A9BACBDCED@contoso.com>",
             internal=("bob@contoso.com",), external=("partner@fabrikam.com",),
             message_class="IPM.Note.SMIME"),
        Mail("judy", t(day, "09:02:14.205"), "RE: Salary review",
             "<C0D1E2F3-0415-4627-8839-4A5B6C7D8E9F@contoso.com>",
             internal=("bob@contoso.com",), message_class="IPM.Note.SMIME"),
        Mail("judy", t(day, "09:02:58.640"), "Room booking",
             "<DB6PR0801MB1234ABCD5678EF90@DB6PR0801MB1234.contoso.com>",
             internal=("nina@contoso.com",), client="OWA"),
        Mail("nina", t(day, "09:30:01.333"), "FW: Canteen menu",
             "<F0E1D2C3-B4A5-4968-8776-655443322110@contoso.com>",
             internal=("bob@contoso.com", "ivan@contoso.com")),
        Mail("kate", t(day, "10:01:31.902"), "RE: Quarterly numbers",
             "<BY2PR1001MB0042C0FFEE0042@BY2PR1001MB0042.contoso.com>",
             internal=("judy.lee@contoso.com",)),
        Mail("leo", t(day, "10:21:13.004"), "Photos from the event",
             "<9e1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d@contoso.com>",
             internal=("kate@contoso.com",)),
    ]
    ms: list[dict[str, str]] = []
    hub: list[dict[str, str]] = []
    md: list[dict[str, str]] = []
    for n, mail in enumerate(mails, 1):
        a, b, c = events_2016(mail, n)
        ms += a
        hub += b
        md += c
    opened = t(day, "08:00:00.871")
    base = EAS / "ex2016" / "EX16-02"
    tracking_file(base / "MSGTRKMS2017031408-1.LOG", TRK_2016, "15.01.0845.034", opened, ms)
    tracking_file(base / "MSGTRK2017031408-1.LOG", TRK_2016, "15.01.0845.034", opened, hub)
    tracking_file(base / "MSGTRKMD2017031408-1.LOG", TRK_2016, "15.01.0845.034", opened, md)


def write_mailbox_map() -> None:
    # What `Get-Mailbox | Select SamAccountName,UserPrincipalName,PrimarySmtpAddress |
    # Export-Csv mailboxes.csv` writes on Windows PowerShell 5.1 (with the #TYPE line).
    lines = ["#TYPE Selected.Microsoft.Exchange.Data.Directory.Management.Mailbox",
             '"SamAccountName","UserPrincipalName","PrimarySmtpAddress"']
    lines += [f'"{sam}","{upn}","{smtp}"' for sam, upn, smtp in MAILBOXES]
    EAS.mkdir(parents=True, exist_ok=True)
    (EAS / "mailboxes.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode("ascii"))


def main() -> None:
    write_iis_2010()
    write_iis_2016()
    write_bad_iis()
    write_tracking_2010()
    write_tracking_2016()
    write_mailbox_map()


if __name__ == "__main__":
    main()
