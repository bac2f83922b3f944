"""What a peer saw, for client tests to assert on (e.g. "Start went as <DT> in UTC",
"never a script", "the shell was closed")."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CommandCall:
    name: str
    is_script: bool
    #: (name or None for a positional argument, value as psrpcore deserialized it:
    #: ``<DT>`` -> datetime, ``<S>`` -> str subclass, lists -> list)
    parameters: tuple[tuple[str | None, Any], ...]

    @property
    def named(self) -> dict[str, Any]:
        return {n: v for n, v in self.parameters if n is not None}


@dataclass
class CommandRecord:
    shell_id: str
    pipeline_id: str
    calls: tuple[CommandCall, ...]
    state: str = "Running"  #: Completed, Failed or Stopped once the pipeline ended

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.calls]


@dataclass
class PeerStats:
    """What the peer saw; client tests assert on it (e.g. "never a script")."""

    requests: Counter[str] = field(default_factory=Counter)  #: by WSMan action
    connections: int = 0
    auth_failures: int = 0
    shells_created: int = 0
    shells_open: int = 0
    max_shells_open: int = 0
    commands: list[CommandRecord] = field(default_factory=list)
    #: WSMan faults sent, by code (2150858793 = OperationTimeout on an idle Receive)
    faults: Counter[int] = field(default_factory=Counter)
    #: requests whose body was WinRM-encrypted (multipart/encrypted)
    encrypted_requests: int = 0
    #: by MIME protocol, e.g. application/HTTP-Kerberos-session-encrypted
    encryption_protocols: Counter[str] = field(default_factory=Counter)
    #: the largest SOAP response (before encryption); Receive fits MaxEnvelopeSize
    largest_response: int = 0

    @property
    def calls(self) -> list[CommandCall]:
        return [c for r in self.commands for c in r.calls]

    @property
    def scripts(self) -> int:
        return sum(c.is_script for c in self.calls)

    def calls_of(self, name: str) -> list[CommandCall]:
        return [c for c in self.calls if c.name.casefold() == name.casefold()]
