"""Report A: how each device sends replies and forwards (IIS logs only; eas-facts §5).

One row per user, device, user agent, iOS version and EAS protocol version, with the
SendMail / SmartReply / SmartForward counts, the smart ratio, first and last seen and the
error count. A device is ``EXPOSED`` when all of these hold:

- its user agent is iOS 5.x (build major 9);
- it made at least one successful SmartReply or SmartForward;
- it spoke EAS 14.x, or a server it reached is known to run Exchange 2010.

Non-iOS clients that use SmartReply/SmartForward are noted for context only.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from msgtrack.eas.iis import EasRequest
from msgtrack.eas.useragent import UserAgent, decode_user_agent

SMART_COMMANDS = frozenset({"SmartReply", "SmartForward"})

#: Column order of report A.
DEVICE_COLUMNS: tuple[str, ...] = (
    "Flag", "User", "DeviceId", "DeviceType", "UserAgent", "Device", "iOSVersion", "iOSBuild",
    "ProtocolVersion", "Servers", "Hits", "SendMail", "SmartReply", "SmartForward",
    "SmartRatio", "FirstSeen", "LastSeen", "Errors", "Reason",
)


def format_time(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


class ServerSet:
    """Servers known to run Exchange 2010, matched by name, FQDN's first label or IP."""

    def __init__(self, names: Collection[str] = ()) -> None:
        self._names = frozenset(n.strip().casefold() for n in names if n.strip())

    def __bool__(self) -> bool:
        return bool(self._names)

    def match(self, *candidates: str) -> str:
        """The first candidate that is listed (as written), or ``""``."""
        for candidate in candidates:
            if not candidate:
                continue
            folded = candidate.casefold()
            if folded in self._names or folded.split(".")[0] in self._names:
                return candidate
        return ""


def request_exchange2010(request: EasRequest, servers: ServerSet) -> str:
    """The listed Exchange 2010 server this request touched (s-computername, s-ip, Mbx:)."""
    return servers.match(request.computer, request.server_ip, request.query.log.mailbox_server)


@dataclass
class DeviceSummary:
    """Counters for one (user, device, user agent, protocol version)."""

    user: str
    device_id: str
    device_type: str
    user_agent: str
    protocol_version: str
    hits: int = 0
    send_mail: int = 0
    smart_reply: int = 0
    smart_forward: int = 0
    smart_ok: int = 0  #: successful SmartReply + SmartForward
    errors: int = 0  #: non-200 or ``Error:`` in the Log data
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    servers: set[str] = field(default_factory=set)
    exchange2010: set[str] = field(default_factory=set)  #: listed 2010 servers reached

    @property
    def ua(self) -> UserAgent:
        return decode_user_agent(self.user_agent)

    @property
    def smart_ratio(self) -> float | None:
        smart = self.smart_reply + self.smart_forward
        total = smart + self.send_mail
        return round(smart / total, 2) if total else None

    @property
    def exposed(self) -> bool:
        return (self.ua.is_ios5 and self.smart_ok > 0
                and (self.protocol_version.startswith("14.") or bool(self.exchange2010)))

    @property
    def reason(self) -> str:
        against = (f"EAS {self.protocol_version}" if self.protocol_version.startswith("14.")
                   else "")
        if self.exchange2010:
            listed = f"Exchange 2010 server {', '.join(sorted(self.exchange2010))}"
            against = f"{against}, {listed}" if against else listed
        if self.exposed:
            return (f"iOS {self.ua.ios_version} used SmartReply/SmartForward against {against}: "
                    "encrypted replies from this device are candidates for blank bodies")
        if self.smart_ok and self.ua.is_ios5:
            return "iOS 5.x used SmartReply/SmartForward, but no EAS 14.x or Exchange 2010 seen"
        if self.smart_reply + self.smart_forward and self.ua.family != "iOS":
            return f"context: {self.ua.family} client uses SmartReply/SmartForward"
        return ""

    def add(self, request: EasRequest, exchange2010: str) -> None:
        self.hits += 1
        cmd = request.cmd
        if cmd == "SendMail":
            self.send_mail += 1
        elif cmd == "SmartReply":
            self.smart_reply += 1
        elif cmd == "SmartForward":
            self.smart_forward += 1
        ok = request.succeeded
        if not ok:
            self.errors += 1
        elif cmd in SMART_COMMANDS:
            self.smart_ok += 1
        t = request.timestamp
        if self.first_seen is None or t < self.first_seen:
            self.first_seen = t
        if self.last_seen is None or t > self.last_seen:
            self.last_seen = t
        if request.server:
            self.servers.add(request.server)
        if exchange2010:
            self.exchange2010.add(exchange2010)

    def merge(self, other: DeviceSummary) -> None:
        for name in ("hits", "send_mail", "smart_reply", "smart_forward", "smart_ok", "errors"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        times = [t for t in (self.first_seen, self.last_seen, other.first_seen, other.last_seen)
                 if t is not None]
        self.first_seen, self.last_seen = (min(times), max(times)) if times else (None, None)
        self.servers |= other.servers
        self.exchange2010 |= other.exchange2010

    def row(self) -> dict[str, Any]:
        ua = self.ua
        return {
            "Flag": "EXPOSED" if self.exposed else "",
            "User": self.user,
            "DeviceId": self.device_id,
            "DeviceType": self.device_type,
            "UserAgent": self.user_agent,
            "Device": ua.device,
            "iOSVersion": ua.ios_version,
            "iOSBuild": ua.build,
            "ProtocolVersion": self.protocol_version,
            "Servers": sorted(self.servers),
            "Hits": self.hits,
            "SendMail": self.send_mail,
            "SmartReply": self.smart_reply,
            "SmartForward": self.smart_forward,
            "SmartRatio": self.smart_ratio,
            "FirstSeen": format_time(self.first_seen),
            "LastSeen": format_time(self.last_seen),
            "Errors": self.errors,
            "Reason": self.reason,
        }


def summarize_devices(requests: Iterable[EasRequest], *,
                      exchange2010_servers: Collection[str] = ()) -> list[DeviceSummary]:
    """Aggregate requests per device; exposed devices first, then by user and device.

    Requests that carry no protocol version (OPTIONS, 401s, front-end lines on 2013+)
    are folded into the device's row when the device spoke exactly one version.
    """
    servers = ServerSet(exchange2010_servers)
    groups: dict[tuple[str, str, str, str], dict[str, DeviceSummary]] = {}
    for request in requests:
        key = (request.account.casefold(), request.device_id.casefold(),
               request.device_type.casefold(), request.user_agent)
        by_version = groups.setdefault(key, {})
        version = request.protocol_version
        summary = by_version.get(version)
        if summary is None:
            summary = by_version[version] = DeviceSummary(
                request.account, request.device_id, request.device_type, request.user_agent,
                version)
        summary.add(request, request_exchange2010(request, servers))
    result: list[DeviceSummary] = []
    for by_version in groups.values():
        unversioned = by_version.pop("", None)
        if unversioned is not None and len(by_version) == 1:
            summary = next(iter(by_version.values()))
            summary.merge(unversioned)
        elif unversioned is not None:
            by_version[""] = unversioned
        result += by_version.values()
    result.sort(key=lambda s: (not s.exposed, s.user.casefold(), s.device_id.casefold(),
                               s.user_agent, s.protocol_version))
    return result


def device_rows(summaries: Iterable[DeviceSummary]) -> Iterator[dict[str, Any]]:
    """Report A rows (ordered dicts, :data:`DEVICE_COLUMNS`)."""
    for summary in summaries:
        yield summary.row()
