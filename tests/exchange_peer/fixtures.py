"""pytest fixtures for the Exchange peer (registered with ``pytest_plugins``).

``exchange_peer``: one started peer. Configure it with a marker::

    @pytest.mark.exchange_peer(auth="basic", tls=True, servers=["EX01", "EX02"])
    def test_x(exchange_peer): ...

``exchange_peer_factory``: start any number of peers inside one test::

    peer = exchange_peer_factory(servers=[ServerSpec("EX01", logs=path)], auth="negotiate")

Both accept every :class:`PeerConfig` field as a keyword, plus ``tls=True`` (a fresh
trustme CA and server certificate; ``peer.config.tls.ca_pem`` is the CA) and ``servers``
given as ServerSpec objects or plain names (a name gets 50 synthetic events). Teardown
closes each peer and fails the test if a thread it started is still alive or its port
still accepts connections.

``open_pool(peer, **wsman_overrides)`` opens a pypsrp RunspacePool on the peer.

``kerberos_kdc``: a real MIT KDC on loopback (one per session), with KRB5_CONFIG,
KRB5_KTNAME and KRB5CCNAME set for the test only; skips when krb5-kdc or gssapi is
missing. Start a peer for it with ``exchange_peer_factory(**kdc_peer_options(kdc))``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from . import kdc as mit
from .config import PeerConfig, ServerSpec
from .server import ExchangePeer
from .synthetic import make_events
from .tls import make_tls

PeerFactory = Callable[..., ExchangePeer]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "exchange_peer(**options): options for the exchange_peer fixture "
        "(PeerConfig fields, tls=True, servers=[names or ServerSpec])")


def build_config(tmp: Path, *, servers: list[ServerSpec | str] | None = None,
                 tls: bool = False, **options: Any) -> PeerConfig:
    specs = [s if isinstance(s, ServerSpec) else ServerSpec(s, events=make_events(50, s))
             for s in (servers or ["EX01"])]
    if tls:
        options["tls"] = make_tls(tmp / "tls")
    if isinstance(options.get("faults"), (list, tuple)):
        # Marker arguments live as long as the module: give each peer fresh counters.
        options["faults"] = [dataclasses.replace(f) for f in options["faults"]]
    return PeerConfig(servers=specs, **options)


_open_scopes: list[object] = []


@contextlib.contextmanager
def _peer_scope(tmp_factory: pytest.TempPathFactory) -> Iterator[PeerFactory]:
    baseline = set(threading.enumerate())
    peers: list[ExchangePeer] = []
    token = object()
    _open_scopes.append(token)

    def start(**options: Any) -> ExchangePeer:
        peer = ExchangePeer(build_config(tmp_factory.mktemp("peer"), **options)).start()
        peers.append(peer)
        return peer

    try:
        yield start
    finally:
        ports = []
        for peer in peers:
            ports.append((peer.host, peer.port))
            peer.close()
        _open_scopes.remove(token)
        # With two peer fixtures in one test, the outer one checks the threads of both.
        _assert_clean(baseline if not _open_scopes else None, ports)


def _assert_clean(baseline: set[threading.Thread] | None, ports: list[tuple[str, int]]
                  ) -> None:
    for host, port in ports:
        with socket.socket() as s, pytest.raises(OSError):
            s.settimeout(1)
            s.connect((host, port))
    if baseline is None:
        return
    deadline = time.monotonic() + 5
    while True:
        leaked = [t for t in threading.enumerate() if t not in baseline and t.is_alive()]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not leaked, f"threads left running after the peer closed: {leaked}"


@pytest.fixture
def exchange_peer_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PeerFactory]:
    with _peer_scope(tmp_path_factory) as start:
        yield start


@pytest.fixture
def exchange_peer(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExchangePeer]:
    marker = request.node.get_closest_marker("exchange_peer")
    options = dict(marker.kwargs) if marker else {}
    with _peer_scope(tmp_path_factory) as start:
        yield start(**options)


@contextlib.contextmanager
def open_pool(peer: ExchangePeer, *, max_runspaces: int = 1, **wsman_overrides: Any
              ) -> Iterator[Any]:
    """A pypsrp RunspacePool on ``peer`` (configuration Microsoft.Exchange), closed after."""
    from pypsrp.powershell import RunspacePool
    from pypsrp.wsman import WSMan

    with WSMan(**peer.wsman_kwargs(**wsman_overrides)) as conn, \
            RunspacePool(conn, configuration_name="Microsoft.Exchange",
                         max_runspaces=max_runspaces) as pool:
        yield pool


@pytest.fixture(scope="session")
def _mit_kdc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[mit.MitKdc]:
    gone = mit.missing()
    if gone:
        pytest.skip(f"no local KDC: missing {', '.join(gone)} (apt-get install krb5-kdc "
                    "krb5-admin-server libkrb5-dev; pip install 'pypsrp[kerberos]')")
    kdc = mit.MitKdc(tmp_path_factory.mktemp("kdc")).start()
    try:
        yield kdc
    finally:
        kdc.stop()


@pytest.fixture
def kerberos_kdc(_mit_kdc: mit.MitKdc, monkeypatch: pytest.MonkeyPatch) -> mit.MitKdc:
    for name, value in _mit_kdc.env().items():
        monkeypatch.setenv(name, value)
    return _mit_kdc


def kdc_peer_options(kdc: mit.MitKdc, **options: Any) -> dict[str, Any]:
    """PeerConfig options for a peer whose users live in ``kdc``."""
    return {"auth": "kerberos", "username": kdc.user, "password": kdc.password,
            "kerberos_realm": kdc.realm, "service_host": kdc.service_host, **options}
