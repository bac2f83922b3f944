"""Connection options for remote search: flags > MSGTRACK_* environment > config profile."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from msgtrack.config import Profile, load_profile
from msgtrack.errors import UsageError

if TYPE_CHECKING:
    from msgtrack.sources.remote import Connection, Plan

T = TypeVar("T")
D = TypeVar("D")
_REMOTE = "Remote (WinRM)"
_AUTHS = ("kerberos", "negotiate", "ntlm", "basic", "certificate", "credssp")

Server = Annotated[list[str] | None, typer.Option(
    "--server", rich_help_panel=_REMOTE,
    help="Transport server to search (Get-MessageTrackingLog -Server); repeatable.")]
AllServers = Annotated[bool, typer.Option(
    "--all-servers", rich_help_panel=_REMOTE,
    help="Discover every transport server with Get-TransportService (needs --connect).")]
Connect = Annotated[str | None, typer.Option(
    "--connect", envvar="MSGTRACK_CONNECT", rich_help_panel=_REMOTE,
    help="Exchange server whose /PowerShell endpoint to use (FQDN for Kerberos). "
         "Default: each --server's own endpoint.")]
ProfileName = Annotated[str | None, typer.Option(
    "--profile", envvar="MSGTRACK_PROFILE", rich_help_panel=_REMOTE,
    help="Named profile from the config file (see README: config file).")]
Auth = Annotated[str | None, typer.Option(
    "--auth", envvar="MSGTRACK_AUTH", rich_help_panel=_REMOTE,
    help="kerberos (default, as Exchange), negotiate, ntlm, basic (needs --ssl), certificate, credssp.")]
Port = Annotated[int | None, typer.Option(
    "--port", envvar="MSGTRACK_PORT", rich_help_panel=_REMOTE, help="Default 80, or 443 with --ssl.")]
Ssl = Annotated[bool | None, typer.Option(
    "--ssl/--no-ssl", envvar="MSGTRACK_SSL", rich_help_panel=_REMOTE,
    help="HTTPS (certificate validated). Without it: HTTP with WinRM message encryption.")]
CaBundle = Annotated[str | None, typer.Option(
    "--ca-bundle", envvar="MSGTRACK_CA_BUNDLE", rich_help_panel=_REMOTE,
    help="PEM file of CA certificates to trust for --ssl.")]
Insecure = Annotated[bool, typer.Option(
    "--insecure", rich_help_panel=_REMOTE,
    help="Do not validate the server certificate (prints a warning; never for production).")]
Username = Annotated[str | None, typer.Option(
    "--username", "-u", envvar="MSGTRACK_USERNAME", rich_help_panel=_REMOTE,
    help="user@REALM (UPN) or DOMAIN\\user. The password comes from MSGTRACK_PASSWORD, "
         "the keyring, or a prompt, never from the command line.")]
SpnHost = Annotated[str | None, typer.Option(
    "--spn-host", envvar="MSGTRACK_SPN_HOST", rich_help_panel=_REMOTE,
    help="Kerberos: the server FQDN for the SPN when --connect is an IP address or an alias.")]
OperationTimeout = Annotated[int, typer.Option(
    "--operation-timeout", rich_help_panel=_REMOTE, min=1,
    help="WSMan OperationTimeout (s): how long one Receive waits for data.")]
ConnectTimeout = Annotated[int, typer.Option(
    "--connect-timeout", rich_help_panel=_REMOTE, min=1, help="TCP connect timeout (s).")]
SliceTimeout = Annotated[float | None, typer.Option(
    "--slice-timeout", rich_help_panel=_REMOTE, help="Give up one slice after this many seconds.")]
SliceHours = Annotated[float, typer.Option(
    "--slice", rich_help_panel=_REMOTE,
    help="Width of the first slice in hours; later ones double while answers are small "
         "(up to a day) and shrink to a quarter when capped.")]
Cap = Annotated[int, typer.Option(
    "--cap", rich_help_panel=_REMOTE, min=1,
    help="-ResultSize per slice; a slice that reaches it is split and queried again.")]
Parallel = Annotated[int | None, typer.Option(
    "--parallel", "-p", rich_help_panel=_REMOTE, min=1, help="Servers queried at once (default 4).")]
Workers = Annotated[str | None, typer.Option(
    "--workers", rich_help_panel=_REMOTE,
    help="auto, thread or process: search servers in threads of one process, or in worker "
         "processes (one per server, up to --parallel; decoding is CPU-bound, so processes "
         "use more cores). auto: processes from 3 servers at once.")]
Retries = Annotated[int, typer.Option(
    "--retries", rich_help_panel=_REMOTE, min=0, help="Retries per slice for transient faults.")]
Culture = Annotated[str | None, typer.Option(
    "--culture", envvar="MSGTRACK_CULTURE",
    help="Culture the server prints timestamp-only MessageInfo in (en-US, en-GB, de-DE, fr-FR).")]


def _pick(flag: T | None, profile_value: T | None, default: D) -> T | D:
    return flag if flag is not None else (profile_value if profile_value is not None else default)


def settings(*, profile_name: str | None, server: list[str] | None, all_servers: bool,
             connect: str | None, auth: str | None, port: int | None, ssl: bool | None,
             ca_bundle: str | None, insecure: bool, username: str | None,
             operation_timeout: int, connect_timeout: int, slice_timeout: float | None,
             slice_hours: float, cap: int, parallel: int | None, retries: int,
             culture: str | None, spn_host: str | None = None, workers: str | None = None
             ) -> tuple[Connection, Plan] | None:
    """(Connection, Plan) for a remote search, or None when nothing asks for one."""
    explicit = bool(server or all_servers or profile_name)
    profile: Profile = load_profile(profile_name)
    if not explicit and not (profile.servers or profile.all_servers):
        return None
    # Imported here: an offline search never loads the WinRM client or the keyring.
    from msgtrack.credentials import get_password
    from msgtrack.sources.remote import WORKER_KINDS, Connection, Plan

    auth = _pick(auth, profile.auth, "kerberos").lower()
    if auth not in _AUTHS:
        raise UsageError(f"--auth {auth}: choose one of {', '.join(_AUTHS)}")
    if slice_hours <= 0:
        raise UsageError("--slice must be a positive number of hours")
    workers = _pick(workers, profile.workers, "auto").lower()
    if workers not in WORKER_KINDS:
        raise UsageError(f"--workers {workers}: choose {', '.join(WORKER_KINDS[:-1])} or "
                         f"{WORKER_KINDS[-1]}")
    user = _pick(username, profile.username, None)
    conn = Connection(
        auth=auth,
        port=_pick(port, profile.port, None),
        ssl=bool(_pick(ssl, profile.ssl, False)),
        ca_bundle=_pick(ca_bundle, profile.ca_bundle, None),
        insecure=insecure or bool(profile.insecure),
        username=user,
        password=get_password(user, auth),
        connection_timeout=connect_timeout,
        operation_timeout=operation_timeout,
        culture=_pick(culture, profile.culture, "en-US"),
        spn_host=_pick(spn_host, profile.spn_host, None),
    )
    if conn.insecure:
        typer.echo("msgtrack: warning: --insecure: the server's TLS certificate is NOT "
                   "validated; anyone on the path can read the session", err=True)
    plan = Plan(
        servers=tuple(server or profile.servers),
        all_servers=all_servers or (not server and profile.all_servers),
        connect=_pick(connect, profile.connect, None),
        slice=timedelta(hours=slice_hours),
        cap=cap,
        parallel=_pick(parallel, profile.parallel, 4),
        retries=retries,
        slice_timeout=slice_timeout,
        workers=workers,
    )
    return conn, plan
