"""A loopback Exchange remoting peer for tests (issue #3).

It speaks WS-Management + PSRP on 127.0.0.1 like Exchange's ``/PowerShell`` endpoint, so
pypsrp's real client can be tested against it: NTLM/Negotiate with message encryption
or Basic over HTTPS, a no-language runspace, Get-TransportService and
Get-MessageTrackingLog with the cmdlet's semantics, and injectable faults.

    from tests.exchange_peer import ExchangePeer, PeerConfig, ServerSpec
    with ExchangePeer(PeerConfig(servers=[ServerSpec("EX01", logs="examples/logs")])) as peer:
        WSMan(**peer.wsman_kwargs())

Run standalone with ``python -m tests.exchange_peer --help``.
"""

from .config import PeerConfig, ServerSpec, TlsFiles
from .faults import Fault, FaultPlan
from .server import ExchangePeer
from .stats import CommandCall, CommandRecord, PeerStats

__all__ = [
    "CommandCall", "CommandRecord", "ExchangePeer", "Fault", "FaultPlan", "PeerConfig",
    "PeerStats", "ServerSpec", "TlsFiles",
]
