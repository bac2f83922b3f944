"""Failures a test can inject into the peer, with Exchange's real codes.

A :class:`Fault` fires on the ``at``-th matching occasion (1-based) and then on the next
``times - 1`` ones; ``times=None`` means "from then on, always". "Fail the first time,
succeed on retry" is therefore ``Fault.shell_quota()`` (``at=1, times=1``).

Two kinds of occasion are counted, each fault with its own counter:

- *request* faults match WS-Management requests by action (``"Create"``, ``"Command"``,
  ``"Receive"``, ``"Send"``, ``"Signal"``, ``"Delete"``; ``None`` = any) and fire before the
  peer handles the request;
- *pipeline* faults match cmdlet invocations by cmdlet name (default
  Get-MessageTrackingLog; optionally only for one ``server``) and change how the output
  stream goes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

# WS-Management fault codes (wsmerror.h).
OPERATION_TIMED_OUT = 2150858793  # ERROR_WSMAN_OPERATION_TIMEDOUT; pypsrp's poll ignores it
SHELL_NOT_FOUND = 2150858843  # ERROR_WSMAN_INVALID_SELECTORS as Exchange returns it
RESOURCE_NOT_FOUND = 2150858811  # ERROR_WSMAN_RESOURCE_NOT_FOUND (unknown configuration)
QUOTA_MAX_SHELLS = 2150859173  # ERROR_WSMAN_QUOTA_MAX_SHELLS
QUOTA_MAX_OPERATIONS = 2150859174  # ERROR_WSMAN_QUOTA_MAX_OPERATIONS (commands per shell)
ACTION_NOT_SUPPORTED = 2150858817
UNSPECIFIED = 2147467259  # E_FAIL

MESSAGES = {
    OPERATION_TIMED_OUT: "The WS-Management service cannot complete the operation within the "
    "time specified in OperationTimeout.",
    SHELL_NOT_FOUND: "The request for the Windows Remote Shell with ShellId {shell} failed "
    "because the shell was not found on the server. Possible causes are: the specified "
    "ShellId is incorrect or the shell no longer exists on the server. Provide the correct "
    "ShellId or create a new shell and retry the operation.",
    QUOTA_MAX_SHELLS: "The WS-Management service cannot process the request. This user is "
    "allowed a maximum number of {limit} concurrent shells, which has been exceeded. Close "
    "existing shells or raise the quota for this user.",
    QUOTA_MAX_OPERATIONS: "The WS-Management service cannot process the request. The maximum "
    "number of concurrent commands per shell has been exceeded. Retry the request later or "
    "raise the Maximum Commands per Shell quota.",
    UNSPECIFIED: "The WS-Management service cannot process the request. An internal error "
    "occurred.",
}

REQUEST_KINDS = frozenset({"wsman-fault", "http-500-text", "drop-connection", "delay",
                           "shell-not-found"})
PIPELINE_KINDS = frozenset({"slow", "drop-after", "error-records", "fail-after"})


@dataclass
class Fault:
    kind: str
    #: request faults: the WSMan action it applies to (None = any action)
    action: str | None = None
    #: pipeline faults: the cmdlet it applies to, and optionally one -Server only
    cmdlet: str = "Get-MessageTrackingLog"
    server: str | None = None
    at: int = 1
    times: int | None = 1
    code: int = UNSPECIFIED
    message: str | None = None
    #: seconds: the delay of a "delay" request fault, or per object for "slow"
    delay: float = 0.0
    #: pipeline faults: objects written before the fault acts
    after: int = 0
    #: error-records: how many records to write
    count: int = 1
    seen: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    # -- request faults
    @classmethod
    def wsman(cls, code: int, action: str | None = None, *, message: str | None = None,
              at: int = 1, times: int | None = 1) -> Fault:
        """HTTP 500 with a SOAP ``WSManFault`` of this code."""
        return cls("wsman-fault", action=action, code=code, message=message, at=at, times=times)

    @classmethod
    def shell_quota(cls, action: str = "Create", *, at: int = 1, times: int | None = 1) -> Fault:
        """2150859173, "maximum number of N concurrent shells" (usually on Create)."""
        return cls.wsman(QUOTA_MAX_SHELLS, action, at=at, times=times)

    @classmethod
    def shell_not_found(cls, action: str | None = "Receive", *, at: int = 1,
                        times: int | None = 1) -> Fault:
        """2150858843; the shell is also forgotten, as after an idle timeout."""
        return cls("shell-not-found", action=action, code=SHELL_NOT_FOUND, at=at, times=times)

    @classmethod
    def http_500_soap(cls, action: str | None = None, *, code: int = UNSPECIFIED,
                      at: int = 1, times: int | None = 1) -> Fault:
        return cls.wsman(code, action, at=at, times=times)

    @classmethod
    def http_500_text(cls, action: str | None = None, *, message: str = "Internal Server Error",
                      at: int = 1, times: int | None = 1) -> Fault:
        """HTTP 500 whose body is not XML (an IIS error page)."""
        return cls("http-500-text", action=action, message=message, at=at, times=times)

    @classmethod
    def drop_connection(cls, action: str | None = None, *, at: int = 1,
                        times: int | None = 1) -> Fault:
        """Close the TCP connection without answering the request."""
        return cls("drop-connection", action=action, at=at, times=times)

    @classmethod
    def delay_request(cls, seconds: float, action: str | None = None, *, at: int = 1,
                      times: int | None = 1) -> Fault:
        """Answer late (for client read timeouts)."""
        return cls("delay", action=action, delay=seconds, at=at, times=times)

    # -- pipeline faults
    @classmethod
    def slow(cls, per_object: float, *, cmdlet: str = "Get-MessageTrackingLog",
             server: str | None = None, at: int = 1, times: int | None = None) -> Fault:
        """Wait this long before each object (default: every invocation)."""
        return cls("slow", cmdlet=cmdlet, server=server, delay=per_object, at=at, times=times)

    @classmethod
    def drop_after(cls, objects: int, *, cmdlet: str = "Get-MessageTrackingLog",
                   server: str | None = None, at: int = 1, times: int | None = 1) -> Fault:
        """Drop the connection of the first Receive after ``objects`` objects were sent."""
        if objects < 1:
            raise ValueError("drop_after needs at least one object")
        return cls("drop-after", cmdlet=cmdlet, server=server, after=objects, at=at,
                   times=times)

    @classmethod
    def error_records(cls, after: int, count: int = 1, *, message: str | None = None,
                      cmdlet: str = "Get-MessageTrackingLog", server: str | None = None,
                      at: int = 1, times: int | None = 1) -> Fault:
        """Non-terminating error records in the middle of the stream."""
        return cls("error-records", cmdlet=cmdlet, server=server, after=after, count=count,
                   message=message, at=at, times=times)

    @classmethod
    def fail_after(cls, after: int, *, message: str | None = None,
                   cmdlet: str = "Get-MessageTrackingLog", server: str | None = None,
                   at: int = 1, times: int | None = 1) -> Fault:
        """End the pipeline Failed (a terminating error) after ``after`` objects."""
        return cls("fail-after", cmdlet=cmdlet, server=server, after=after, message=message,
                   at=at, times=times)

    def _hit(self) -> bool:
        self.seen += 1
        last = None if self.times is None else self.at + self.times - 1
        if self.seen >= self.at and (last is None or self.seen <= last):
            self.fired += 1
            return True
        return False


class FaultPlan:
    """The faults of one peer; thread-safe. Tests may ``add`` while the peer runs."""

    def __init__(self, faults: list[Fault] | tuple[Fault, ...] = ()) -> None:
        self._lock = threading.Lock()
        self.faults: list[Fault] = []
        for f in faults:
            self.add(f)

    def add(self, fault: Fault) -> Fault:
        if fault.kind not in REQUEST_KINDS | PIPELINE_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}")
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def for_request(self, action: str) -> Fault | None:
        """The first request fault that fires for this action; every match is counted."""
        fired = None
        with self._lock:
            for f in self.faults:
                if f.kind in REQUEST_KINDS and f.action in (None, action):
                    if f._hit() and fired is None:
                        fired = f
        return fired

    def for_pipeline(self, cmdlet: str, server: str | None) -> list[Fault]:
        """The pipeline faults that fire for this invocation."""
        fired = []
        with self._lock:
            for f in self.faults:
                if f.kind not in PIPELINE_KINDS or f.cmdlet.casefold() != cmdlet.casefold():
                    continue
                if f.server is not None and (server or "").casefold() != f.server.casefold():
                    continue
                if f._hit():
                    fired.append(f)
        return fired
