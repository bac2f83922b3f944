"""The audit's TOML config: a commented template for ``audit init`` and a strict loader.

Every value is checked when the file is loaded, and a problem names the file and the
key (``audit.toml: [rules.volume-spike] factor: expected a number, got 'x'``), so a
nightly job fails at once with a line the admin can act on, not halfway through a day.
Relative paths are relative to the config file. Secrets never go in the file.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from platformdirs import user_config_dir

from msgtrack.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_ENV = "MSGTRACK_AUDIT_CONFIG"
SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
_SECRET_KEYS = {"password", "secret", "passwd", "pwd", "token"}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The reply/forward subject prefixes of the issue (Outlook in EN, DE, Nordic, IT, FR).
REPLY_PREFIXES: tuple[str, ...] = (
    "RE:", "AW:", "SV:", "VS:", "R:", "RIF:", "Réf.:", "FW:", "FWD:", "WG:")

PRIVATE_RANGES: tuple[str, ...] = (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "fc00::/7", "::1/128")


def default_config_path() -> Path:
    """``$MSGTRACK_AUDIT_CONFIG`` or ``<user config dir>/msgtrack/audit.toml``."""
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else Path(user_config_dir("msgtrack")) / "audit.toml"


# --------------------------------------------------------------------------- options

#: Each rule's own keys: name -> (kind, default). Every rule also has enabled/severity.
RULE_OPTIONS: dict[str, dict[str, tuple[str, Any]]] = {
    "anonymous-submission": {
        "allow_ips": ("nets", []),
        "allow_connectors": ("names", []),
        "allow_senders": ("addresses", []),
    },
    "cleartext-login": {
        "allow_ips": ("nets", []),
        "allow_senders": ("addresses", []),
    },
    "legacy-auth-inventory": {
        "methods": ("names", ["TLSAuthLogin", "Login"]),
        "allow_ips": ("nets", []),
        "allow_senders": ("addresses", []),
    },
    "pickup-replay": {
        "allow_servers": ("names", []),
        "allow_senders": ("addresses", []),
    },
    "new-submitter": {
        "baseline_days": ("int", 7),
        "all_client_ips": ("bool", False),
        "ignore_methods": ("names", ["MUTUALGSSAPI", "DirectTrustTLS"]),
        "allow_ips": ("nets", []),
        "allow_connectors": ("names", []),
    },
    "volume-spike": {
        "factor": ("float", 5.0),
        "trailing_days": ("int", 14),
        "min_history_days": ("int", 7),
        "min_count": ("int", 50),
        "internal_only": ("bool", True),
        "allow_senders": ("addresses", []),
    },
    "external-redirect": {
        "allow_domains": ("domains", []),
        "allow_recipients": ("addresses", []),
        "allow_mailboxes": ("addresses", []),
    },
    "smime-activesync-reply": {
        "reply_prefixes": ("strs", list(REPLY_PREFIXES)),
        "iis_logs": ("paths", []),
        "mailbox_map": ("path", ""),
        "address_rule": ("str", ""),
        "window": ("str", "-10,+120"),
        "exchange2010_servers": ("names", []),
        "allow_senders": ("addresses", []),
    },
}

RULE_SEVERITY: dict[str, str] = {
    "anonymous-submission": "high",
    "cleartext-login": "high",
    "legacy-auth-inventory": "info",
    "pickup-replay": "medium",
    "new-submitter": "medium",
    "volume-spike": "medium",
    "external-redirect": "high",
    "smime-activesync-reply": "medium",
}

RULE_NAMES: tuple[str, ...] = tuple(RULE_OPTIONS)


@dataclass(frozen=True)
class RuleSettings:
    name: str
    enabled: bool = True
    severity: str = "medium"
    options: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.options[key]


@dataclass(frozen=True)
class LogFolder:
    display: str  #: as written in the config (shown in outputs, so they stay portable)
    path: str  #: resolved against the config file's folder


@dataclass(frozen=True)
class SourceSettings:
    logs: tuple[LogFolder, ...] = ()
    profile: str | None = None
    servers: tuple[str, ...] = ()
    all_servers: bool = False
    slice_hours: float = 1.0
    cap: int = 5000
    parallel: int | None = None
    retries: int = 3
    operation_timeout: int = 20
    connect_timeout: int = 30

    @property
    def remote(self) -> bool:
        return not self.logs


@dataclass(frozen=True)
class NotifySettings:
    enabled: bool = False
    host: str = ""
    port: int = 587
    starttls: bool = True
    username: str = ""
    sender: str = ""
    to: tuple[str, ...] = ()
    min_severity: str = "medium"
    on_incomplete: bool = True
    ca_file: str = ""
    timeout: float = 30.0
    attach_html: bool = True


@dataclass(frozen=True)
class AuditConfig:
    path: Path
    zone: str = "UTC"
    output: Path = Path("audit-out")
    retention_days: int = 90
    history_days: int = 180
    backfill_days: int = 1
    settle: timedelta = timedelta(minutes=30)
    max_retry_days: int = 7
    fail_severity: str = "medium"
    events_format: str = "csv.gz"
    report_formats: tuple[str, ...] = ("md", "html")
    accepted_domains: frozenset[str] = frozenset()
    internal_ranges: tuple[Network, ...] = ()
    source: SourceSettings = SourceSettings()
    rules: Mapping[str, RuleSettings] = field(default_factory=dict)
    notify: NotifySettings = NotifySettings()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    def rule(self, name: str) -> RuleSettings:
        return self.rules[name]


# --------------------------------------------------------------------------- loading


class _Table:
    """One TOML table being read: typed getters that name the file and key on error."""

    def __init__(self, path: Path, name: str, raw: Any) -> None:
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: [{name}] must be a table")
        self.path, self.name, self.raw = path, name, raw
        self.used: set[str] = set()
        secrets = _SECRET_KEYS & {k.lower() for k in raw}
        if secrets:
            raise ConfigError(
                f"{path}: [{name}] holds a secret ({', '.join(sorted(secrets))}); secrets "
                "never go in the config file",
                hint="use MSGTRACK_SMTP_PASSWORD / MSGTRACK_PASSWORD, the keyring, or a keytab")

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: [{self.name}] {key}: {message}")

    def get(self, key: str, kind: str, default: Any) -> Any:
        self.used.add(key)
        value = self.raw.get(key, default)
        return _convert(self, key, kind, value)

    def finish(self) -> None:
        unknown = sorted(set(self.raw) - self.used)
        if unknown:
            raise ConfigError(f"{self.path}: [{self.name}] unknown key(s): {', '.join(unknown)}")


def _network(table: _Table, key: str, value: Any) -> Network:
    if not isinstance(value, str):
        raise table.fail(key, f"expected an address or network as text, got {value!r}")
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise table.fail(key, f"not an IP address or network: {value!r}") from None


def _convert(table: _Table, key: str, kind: str, value: Any) -> Any:
    def want(ok: bool, what: str) -> None:
        if not ok:
            raise table.fail(key, f"expected {what}, got {value!r}")

    if kind == "bool":
        want(isinstance(value, bool), "true or false")
        return value
    if kind == "int":
        want(isinstance(value, int) and not isinstance(value, bool) and value >= 0,
             "a whole number >= 0")
        return value
    if kind == "float":
        want(isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0,
             "a number > 0")
        return float(value)
    if kind in ("str", "path"):
        want(isinstance(value, str), "text")
        if kind == "path" and value:
            return _resolve(table.path, value)
        return value
    if kind == "severity":
        want(isinstance(value, str) and value.lower() in SEVERITY_RANK,
             "one of " + ", ".join(SEVERITIES))
        return value.lower()
    # list kinds
    want(isinstance(value, list) and all(isinstance(v, str) for v in value), "a list of text")
    if kind == "nets":
        return tuple(_network(table, key, v) for v in value)
    if kind == "domains":
        return frozenset(v.strip().lstrip("*").lstrip("@").casefold() for v in value if v.strip())
    if kind == "addresses":
        return frozenset(v.strip().casefold() for v in value if v.strip())
    if kind == "names":
        return tuple(v.strip() for v in value if v.strip())
    if kind == "paths":
        return tuple(_resolve(table.path, v) for v in value)
    return tuple(value)  # strs


def _resolve(config_path: Path, value: str) -> str:
    path = Path(os.path.expanduser(value))
    if not path.is_absolute():
        path = config_path.parent / path
    return os.path.normpath(path)


def load_config(path: Path | str | None = None) -> AuditConfig:
    """Read and check the audit config (default: :func:`default_config_path`)."""
    path = Path(path) if path is not None else default_config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no audit config here",
                          hint="create one with 'msgtrack audit init --config FILE'") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    return check_text(path, text)


def check_text(path: Path, text: str) -> AuditConfig:
    """Parse config text as if it were the file at ``path``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(path, data)


def parse_config(path: Path, data: Mapping[str, Any]) -> AuditConfig:
    unknown = sorted(set(data) - {"audit", "source", "rules", "notify"})
    if unknown:
        raise ConfigError(f"{path}: unknown table(s): {', '.join(unknown)}")

    a = _Table(path, "audit", data.get("audit", {}))
    zone = a.get("zone", "str", "UTC")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise a.fail("zone", f"unknown time zone {zone!r} (use an IANA name such as "
                             "'Europe/Berlin' or 'UTC')") from None
    output = a.get("output", "path", "audit-out")
    events_format = a.get("events_format", "str", "csv.gz")
    if events_format not in ("csv", "csv.gz"):
        raise a.fail("events_format", f"choose 'csv' or 'csv.gz', got {events_format!r}")
    report_formats = a.get("report_formats", "strs", ["md", "html"])
    bad = [f for f in report_formats if f not in ("md", "html")]
    if bad or not report_formats:
        raise a.fail("report_formats", "choose one or both of 'md' and 'html'")
    retention = a.get("retention_days", "int", 90)
    history = a.get("history_days", "int", 180)
    if retention < 1:
        raise a.fail("retention_days", "must be at least 1")
    backfill = a.get("backfill_days", "int", 1)
    if backfill < 1:
        raise a.fail("backfill_days", "must be at least 1")
    settle = a.get("settle_minutes", "int", 30)
    cfg_audit = dict(
        zone=zone, output=Path(output), retention_days=retention,
        history_days=max(history, retention), backfill_days=backfill,
        settle=timedelta(minutes=settle),
        max_retry_days=a.get("max_retry_days", "int", 7),
        fail_severity=a.get("fail_severity", "severity", "medium"),
        events_format=events_format, report_formats=tuple(dict.fromkeys(report_formats)),
        accepted_domains=a.get("accepted_domains", "domains", []),
        internal_ranges=a.get("internal_ranges", "nets", list(PRIVATE_RANGES)),
    )
    a.finish()

    source = _source(path, data.get("source"))
    rules = _rules(path, data.get("rules", {}))
    notify = _notify(path, data.get("notify", {}))
    return AuditConfig(path=path, source=source, rules=rules, notify=notify, **cfg_audit)


def _source(path: Path, raw: Any) -> SourceSettings:
    if raw is None:
        raise ConfigError(f"{path}: no [source] table",
                          hint="set [source] logs = [...] (log folders) or profile = \"NAME\"")
    s = _Table(path, "source", raw)
    logs = s.get("logs", "strs", [])
    profile = s.get("profile", "str", "") or None
    servers = s.get("servers", "names", [])
    all_servers = s.get("all_servers", "bool", False)
    settings = SourceSettings(
        logs=tuple(LogFolder(v, _resolve(path, v)) for v in logs),
        profile=profile, servers=servers, all_servers=all_servers,
        slice_hours=s.get("slice_hours", "float", 1.0),
        cap=s.get("cap", "int", 5000) or 5000,
        parallel=s.get("parallel", "int", 0) or None,
        retries=s.get("retries", "int", 3),
        operation_timeout=s.get("operation_timeout", "int", 20) or 20,
        connect_timeout=s.get("connect_timeout", "int", 30) or 30,
    )
    s.finish()
    remote = bool(profile or servers or all_servers)
    if settings.logs and remote:
        raise ConfigError(f"{path}: [source] names both log folders and remote servers; "
                          "pick one (one audit, one source)")
    if not settings.logs and not remote:
        raise ConfigError(f"{path}: [source] names no source",
                          hint="set logs = [\"/mnt/ex01/MessageTracking\"] or profile = \"prod\"")
    return settings


def _rules(path: Path, raw: Any) -> dict[str, RuleSettings]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: [rules] must be a table")
    unknown = sorted(set(raw) - set(RULE_OPTIONS))
    if unknown:
        raise ConfigError(f"{path}: unknown rule(s): {', '.join(unknown)} "
                          f"(known: {', '.join(RULE_NAMES)})")
    rules = {}
    for name, spec in RULE_OPTIONS.items():
        t = _Table(path, f"rules.{name}", raw.get(name, {}))
        enabled = t.get("enabled", "bool", True)
        severity = t.get("severity", "severity", RULE_SEVERITY[name])
        options = {key: t.get(key, kind, default) for key, (kind, default) in spec.items()}
        t.finish()
        rules[name] = RuleSettings(name, enabled, severity, options)
    return rules


def _notify(path: Path, raw: Any) -> NotifySettings:
    n = _Table(path, "notify", raw)
    settings = NotifySettings(
        enabled=n.get("enabled", "bool", False),
        host=n.get("host", "str", ""),
        port=n.get("port", "int", 587),
        starttls=n.get("starttls", "bool", True),
        username=n.get("username", "str", ""),
        sender=n.get("from", "str", ""),
        to=n.get("to", "names", []),
        min_severity=n.get("min_severity", "severity", "medium"),
        on_incomplete=n.get("on_incomplete", "bool", True),
        ca_file=n.get("ca_file", "path", ""),
        timeout=n.get("timeout", "float", 30.0),
        attach_html=n.get("attach_html", "bool", True),
    )
    n.finish()
    if settings.enabled:
        for key, value in (("host", settings.host), ("from", settings.sender),
                           ("to", settings.to)):
            if not value:
                raise n.fail(key, "required when notification is enabled")
        if settings.username and not settings.starttls:
            raise n.fail("starttls", "must be true when a username is set: the password "
                                     "would cross the network in clear text")
    return settings


# --------------------------------------------------------------------------- template

TEMPLATE = '''\
# msgtrack nightly audit (written by 'msgtrack audit init').
# Run it with:  msgtrack audit run --config {config_name}
# Relative paths are relative to this file. Secrets never go here: the SMTP password
# comes from MSGTRACK_SMTP_PASSWORD or the keyring, WinRM uses Kerberos (a keytab).

[audit]
# The IANA time zone that defines a "day" (its midnight to midnight, 23 or 25 hours on
# DST days).
zone = {zone}
# One folder per day (YYYY-MM-DD/) plus the checkpoint database and the lock.
output = {output}
# Day folders older than this many days are deleted. Checkpoint history (for the
# new-submitter and volume-spike rules) is kept for history_days (at least this long).
retention_days = 90
history_days = 180
# The very first run audits this many days, ending with yesterday.
backfill_days = 1
# A day counts as complete this many minutes after its end (Exchange writes late lines).
settle_minutes = 30
# Incomplete days (a server, slice or line failed) are retried on each run for this many
# days, then left marked incomplete.
max_retry_days = 7
# 'audit run' exits 4 when a finding is at or above this severity (info, low, medium, high).
fail_severity = "medium"
# Annotated events: "csv" or "csv.gz" (gzip, byte-identical on re-runs).
events_format = "csv.gz"
# Human report: "md", "html" or both.
report_formats = ["md", "html"]
# Your accepted domains: mail to any other domain is external.
accepted_domains = {accepted_domains}
# Client IPs treated as internal (anonymous-submission, new-submitter).
internal_ranges = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "fc00::/7", "::1/128"]

[source]
# Either log folders (mounted shares of TransportRoles\\Logs\\MessageTracking, or copies)...
{logs_line}
# ...or a remote profile from msgtrack's config file (see 'msgtrack search --help'),
# with its servers (default: the profile's), or every transport server:
{profile_line}
# servers = ["EX01", "EX02"]
# all_servers = false
# slice_hours = 1.0
# cap = 5000
# retries = 3

# Every rule has enabled = true/false and severity = "info"|"low"|"medium"|"high".
# Allowlists silence a finding for what you know about.

[rules.anonymous-submission]
# Unauthenticated SMTP (auth None, category Anonymous) from an internal client IP:
# an app or device relaying without credentials, or an open relay.
enabled = true
severity = "high"
allow_ips = []          # e.g. ["10.1.2.3", "10.20.0.0/24"] (the scanners you know)
allow_connectors = []   # e.g. ["EX01\\\\Relay Scanners"]
allow_senders = []      # addresses, or "@domain"

[rules.cleartext-login]
# AUTH LOGIN without TLS (auth code 07): the password crossed the network in clear.
enabled = true
severity = "high"
allow_ips = []
allow_senders = []

[rules.legacy-auth-inventory]
# One row per account and client IP submitting with basic auth (06 TLSAuthLogin,
# 07 Login): the list to migrate to modern auth.
enabled = true
severity = "info"
methods = ["TLSAuthLogin", "Login"]
allow_ips = []
allow_senders = []

[rules.pickup-replay]
# Messages dropped into the Pickup (08) or Replay (12) directory of a server.
enabled = true
severity = "medium"
allow_servers = []
allow_senders = []

[rules.new-submitter]
# A client IP or Receive connector never seen before with a given auth method. While
# the history holds fewer than baseline_days audited days, the rule only learns.
enabled = true
severity = "medium"
baseline_days = 7
all_client_ips = false  # false: only client IPs inside internal_ranges
# Exchange's own server-to-server hops (0c X-EXPS over TLS, 11 Edge DirectTrust).
ignore_methods = ["MUTUALGSSAPI", "DirectTrustTLS"]
allow_ips = []
allow_connectors = []

[rules.volume-spike]
# A sender's messages today > factor x their median over the trailing days (missing
# days count 0), and at least min_count. Needs min_history_days audited days first.
enabled = true
severity = "medium"
factor = 5.0
trailing_days = 14
min_history_days = 7
min_count = 50
internal_only = true    # only senders in accepted_domains
allow_senders = []

[rules.external-redirect]
# Inbox-rule (MAILBOXRULE), REDIRECT and RESOLVE traffic to domains outside
# accepted_domains: how data leaves through forwarding rules.
enabled = true
severity = "high"
allow_domains = []      # target domains you allow (e.g. a partner)
allow_recipients = []   # target addresses you allow
allow_mailboxes = []    # mailboxes whose forwarding is approved

[rules.smime-activesync-reply]
# Encrypted S/MIME replies from ActiveSync devices (MessageClass IPM.Note.SMIME,
# ClientType AirSync, reply/forward subject) delivered to internal recipients:
# candidate blank replies. With iis_logs, the ActiveSync requests are joined in.
enabled = true
severity = "medium"
reply_prefixes = ["RE:", "AW:", "SV:", "VS:", "R:", "RIF:", "Réf.:", "FW:", "FWD:", "WG:"]
iis_logs = []           # e.g. ["/mnt/ex01/W3SVC1"]: IIS logs of the CAS/front end
mailbox_map = ""        # Get-Mailbox CSV (SamAccountName, PrimarySmtpAddress...)
address_rule = ""       # or e.g. "{{user}}@contoso.com"
window = "-10,+120"     # seconds a SUBMIT may lie before/after the request
exchange2010_servers = []
allow_senders = []

[notify]
# Mail the report when a day has findings at or above min_severity, or is incomplete.
# The password comes from MSGTRACK_SMTP_PASSWORD or the keyring
# ('keyring set msgtrack-smtp USERNAME'). STARTTLS is required when a username is set.
enabled = false
host = "smtp.contoso.com"
port = 587
starttls = true
username = ""
from = "msgtrack@contoso.com"
to = ["mail-admins@contoso.com"]
min_severity = "medium"
on_incomplete = true
# ca_file = "/etc/ssl/certs/contoso-ca.pem"
'''


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_template(*, config_name: str = "audit.toml", zone: str = "UTC",
                    output: str = "audit-out", logs: list[str] | None = None,
                    profile: str | None = None,
                    accepted_domains: list[str] | None = None) -> str:
    """The commented config, with the given values filled in (it always loads)."""
    if logs or not profile:
        logs_line = "logs = [" + ", ".join(_toml_str(p) for p in (
            logs or ["/mnt/ex01/MessageTracking"])) + "]"
        profile_line = '# profile = "prod"'
    else:
        logs_line = '# logs = ["/mnt/ex01/MessageTracking"]'
        profile_line = f"profile = {_toml_str(profile)}"
    domains = "[" + ", ".join(_toml_str(d) for d in (accepted_domains or ["contoso.com"])) + "]"
    return TEMPLATE.format(config_name=config_name, zone=_toml_str(zone), output=_toml_str(output),
                           logs_line=logs_line, profile_line=profile_line,
                           accepted_domains=domains)
