"""One exception root, and the exit codes every command shares.

The CLI maps these to exit codes in exactly one place (``msgtrack.cli.app``).
Messages are one line, safe to print: they never contain a password.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    #: Something was skipped (bad line, failed server or slice); the output is partial.
    INCOMPLETE = 3
    #: An audit found something at or above the configured severity.
    FINDINGS = 4


class MsgtrackError(Exception):
    """Root of every error msgtrack raises on purpose."""

    exit_code: ExitCode = ExitCode.ERROR
    #: A short suggestion printed after the message, for causes we recognise.
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class UsageError(MsgtrackError):
    """Bad option values the parser could not catch (e.g. --end before --start)."""

    exit_code = ExitCode.USAGE


class ConfigError(MsgtrackError):
    """A config file or profile is missing, unreadable or invalid."""


class InputError(MsgtrackError):
    """An input file cannot be used at all (missing, not a tracking log, hostile XML)."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 hint: str | None = None) -> None:
        where = path if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {message}" if where else message, hint=hint)
        self.path = path
        self.line = line


class RemoteError(MsgtrackError):
    """A remote Exchange server refused or failed a request."""

    def __init__(self, message: str, *, server: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(f"{server}: {message}" if server else message, hint=hint)
        self.server = server


class AuthenticationFailed(RemoteError):
    hint = "check the username and password, or run 'kinit user@REALM' for Kerberos"


class CertificateUntrusted(RemoteError):
    hint = "pass --ca-bundle with your CA's PEM file (or --insecure, not recommended)"


class EndpointNotFound(RemoteError):
    hint = ("Exchange's remote PowerShell lives at http://SERVER/PowerShell (port 80/443), "
            "configuration Microsoft.Exchange")


class KerberosUnavailable(RemoteError):
    hint = ("no usable Kerberos ticket: run 'kinit user@REALM' or set KRB5_CLIENT_KTNAME to a "
            "keytab; install with 'pip install msgtrack[kerberos]'")


class LockedError(MsgtrackError):
    """Another run holds the lock."""
