"""What a peer serves and how it behaves: servers, authentication, TLS, limits, faults."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from msgtrack.events import TrackingEvent
from msgtrack.report import RunReport

from .faults import Fault, FaultPlan
from .objects import CULTURES, Culture

AUTH_MODES = ("basic", "ntlm", "negotiate", "kerberos", "none")
VERSIONS = (2007, 2010, 2013, 2016, 2019)


@dataclass
class ServerSpec:
    """One Exchange transport server: its name, its tracking data and its local settings.

    The data is either ``events`` (in memory, e.g. 10k synthetic events) or ``logs`` (a
    folder of MSGTRK*.LOG files, read with msgtrack's own offline reader on each search,
    as the cmdlet reads the files each time).
    """

    name: str
    events: Sequence[TrackingEvent] | None = None
    logs: str | Path | None = None
    #: Before 2016: no NetworkMessageId/Source parameters and no 2016 properties
    #: (2007: no Directionality, TenantId, OriginalClientIp, latency or EventData either).
    version: int = 2019
    #: IANA zone of the server's clock: Timestamp offsets, naive Start/End, MessageInfo.
    time_zone: str = "UTC"
    #: Culture of the server's text output (MessageInfo dates, EventData strings).
    culture: str = "en-US"
    domain: str = "contoso.com"
    #: Keep every in-memory event's rendered CLIXML (benchmarks): a real server renders on
    #: its own CPU, so the peer should not compete with the client for these two cores.
    cache_objects: bool = False
    rendered: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.version not in VERSIONS:
            raise ValueError(f"version must be one of {VERSIONS}")
        if self.culture not in CULTURES:
            raise ValueError(f"culture must be one of {sorted(CULTURES)}")
        ZoneInfo(self.time_zone)  # fail early on a typo
        if self.events is not None and self.logs is not None:
            raise ValueError("give events or logs, not both")

    @property
    def fqdn(self) -> str:
        return f"{self.name.lower()}.{self.domain}"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def culture_info(self) -> Culture:
        return CULTURES[self.culture]

    @property
    def log_path(self) -> str:
        return str(self.logs) if self.logs else (
            r"C:\Program Files\Microsoft\Exchange Server\V15\TransportRoles\Logs\MessageTracking")

    def iter_events(self, report: RunReport) -> Iterator[TrackingEvent]:
        if self.events is not None:
            yield from self.events
            return
        if self.logs is None:
            return
        from msgtrack.sources.logfile import read_logs

        yield from read_logs([Path(self.logs)], report)


def _has_logs(folder: Path) -> bool:
    return any(p.is_file() and p.name.upper().startswith("MSGTRK") for p in folder.iterdir())


_BUILDS = {(8,): 2007, (14,): 2010, (15, 0): 2013, (15, 1): 2016, (15, 2): 2019}


def detect_version(folder: Path) -> int:
    """The Exchange version from the ``#Version:`` header of the folder's first log."""
    for path in sorted(folder.iterdir()):
        if not (path.is_file() and path.name.upper().startswith("MSGTRK")):
            continue
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            for line in fh:
                if not line.startswith("#"):
                    break
                if line.startswith("#Version:"):
                    parts = tuple(int(p) for p in line.split(":", 1)[1].strip().split(".")[:2])
                    return _BUILDS.get(parts, _BUILDS.get(parts[:1], 2019))
    return 2019


def servers_from_folder(folder: str | Path, name: str = "EX01", **settings: object
                        ) -> list[ServerSpec]:
    """A folder of MSGTRK logs is one server (``name``); a folder of folders that hold
    logs is one server per sub-folder, named after it (upper case). Without a
    ``version`` setting each server's version comes from its logs' ``#Version:``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"not a folder: {folder}")
    if _has_logs(folder):
        found = [(name, folder)]
    else:
        found = [(p.name.upper(), p) for p in sorted(folder.iterdir())
                 if p.is_dir() and _has_logs(p)]
    if not found:
        raise ValueError(f"no MSGTRK*.LOG files in {folder} or its sub-folders")
    specs = []
    for server, path in found:
        options = dict(settings)
        if options.get("version") is None:
            options["version"] = detect_version(path)
        specs.append(ServerSpec(server, logs=path, **options))  # type: ignore[arg-type]
    return specs


@dataclass
class TlsFiles:
    cert_pem: str  #: server certificate chain (PEM)
    key_pem: str  #: its private key (PEM)
    ca_pem: str | None = None  #: the CA that signed it, for clients (cert_validation)


@dataclass
class PeerConfig:
    servers: list[ServerSpec] = field(default_factory=lambda: [ServerSpec("EX01")])
    #: "basic", "ntlm", "negotiate" (SPNEGO: Kerberos if the client has it, else NTLM),
    #: "kerberos" (needs a KDC, see kdc.py) or "none".
    auth: str = "ntlm"
    username: str = "tester"
    password: str = "Passw0rd!"
    #: NetBIOS domain for NTLM: the client may log on as DOMAIN\\user, user@dns or user.
    domain: str = "CONTOSO"
    #: Kerberos: the realm of ``username``, and the host part of the service principal
    #: (host/<service_host>) in the keytab named by KRB5_KTNAME.
    kerberos_realm: str = "CONTOSO.TEST"
    service_host: str = "exchange.contoso.test"
    #: Serve HTTPS with this certificate (see tls.make_tls); None = plain HTTP.
    tls: TlsFiles | None = None
    host: str = "127.0.0.1"
    port: int = 0
    faults: FaultPlan = field(default_factory=FaultPlan)
    #: PSComputerName of every object: the host the client connected to (default: the
    #: first server's FQDN).
    computer_name: str | None = None
    #: Write type names as a PowerShell client shows them ("Deserialized." prefix).
    deserialized_type_names: bool = False
    #: EventData items as KeyValuePair objects ("object") or "[Key, Value]" strings.
    event_data_shape: str = "object"
    #: Exchange's /PowerShell runspace refuses scripts (no-language mode).
    no_language: bool = True
    #: ERROR_WSMAN_QUOTA_MAX_SHELLS past this many open shells (None = unlimited).
    max_shells: int | None = None
    #: ERROR_WSMAN_QUOTA_MAX_OPERATIONS past this many Commands on one shell, counting
    #: terminated ones too, as Windows does (pypsrp #148). None = unlimited.
    max_commands_per_shell: int | None = None
    #: A shell not used for this many seconds is gone (2150858843 afterwards).
    shell_idle_timeout: float | None = None
    #: Cap on a Receive's long poll, whatever OperationTimeout the client sends.
    max_long_poll: float | None = None
    #: Get-MessageTrackingLog's default ResultSize.
    default_result_size: int = 1000
    #: "Now" for the default End (now + 1 day), so tests with future-dated logs can pin it.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    #: Size of the PSRP fragments, and bytes buffered per pipeline before the cmdlet waits.
    fragment_size: int = 32_768
    outbox_limit: int = 1_000_000

    def __post_init__(self) -> None:
        if self.auth not in AUTH_MODES:
            raise ValueError(f"auth must be one of {AUTH_MODES}")
        if self.event_data_shape not in ("object", "string"):
            raise ValueError("event_data_shape must be 'object' or 'string'")
        if not self.servers:
            raise ValueError("at least one server")
        names = [s.name.casefold() for s in self.servers]
        if len(set(names)) != len(names):
            raise ValueError("server names must be unique")
        if isinstance(self.faults, (list, tuple)):
            self.faults = FaultPlan(list(self.faults))

    def add_fault(self, fault: Fault) -> Fault:
        return self.faults.add(fault)

    def server(self, name: str) -> ServerSpec | None:
        """Look a server up by name or FQDN, case-insensitively."""
        key = name.casefold()
        for s in self.servers:
            if key in (s.name.casefold(), s.fqdn.casefold()):
                return s
        return None
