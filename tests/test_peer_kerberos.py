"""Kerberos end to end: pypsrp's ``kerberos`` auth against the peer and a real MIT KDC.

This is the path Exchange uses (remoting-facts §1.3). Skipped where krb5-kdc or the
Python gssapi/krb5 packages are missing.
"""

from __future__ import annotations

import pytest
import spnego.exceptions
from pypsrp.powershell import PowerShell

from tests.exchange_peer.auth import SPNEGO_PROTOCOL
from tests.exchange_peer.fixtures import kdc_peer_options, open_pool

pytest_plugins = ["tests.exchange_peer.fixtures"]

KERBEROS_PROTOCOL = "application/HTTP-Kerberos-session-encrypted"


def transport_services(pool) -> list[str]:
    ps = PowerShell(pool)
    ps.add_cmdlet("Get-TransportService")
    return [o.adapted_properties["Name"] for o in ps.invoke()]


def test_kerberos_with_message_encryption_over_http(kerberos_kdc, exchange_peer_factory):
    peer = exchange_peer_factory(**kdc_peer_options(kerberos_kdc))
    with open_pool(peer) as pool:
        assert transport_services(pool) == ["EX01"]
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-MessageTrackingLog").add_parameter("ResultSize", 5)
        assert len(ps.invoke()) == 5
    # "WWW-Authenticate: Kerberos" makes pypsrp use the Kerberos MIME framing.
    assert set(peer.stats.encryption_protocols) == {KERBEROS_PROTOCOL}


def test_kerberos_inside_negotiate(kerberos_kdc, exchange_peer_factory):
    peer = exchange_peer_factory(**kdc_peer_options(kerberos_kdc, auth="negotiate"))
    with open_pool(peer, auth="kerberos",
                   username=kerberos_kdc.principal,
                   negotiate_hostname_override=kerberos_kdc.service_host) as pool:
        assert transport_services(pool) == ["EX01"]
    assert set(peer.stats.encryption_protocols) == {SPNEGO_PROTOCOL}


def test_kerberos_refuses_a_wrong_password(kerberos_kdc, exchange_peer_factory):
    import krb5

    peer = exchange_peer_factory(**kdc_peer_options(kerberos_kdc))
    with pytest.raises(krb5.Krb5Error, match="integrity"):  # the in-process kinit fails
        with open_pool(peer, password="wrong"):
            pass
    assert peer.stats.shells_created == 0


def test_kerberos_without_password_needs_a_ticket(kerberos_kdc, exchange_peer_factory):
    peer = exchange_peer_factory(**kdc_peer_options(kerberos_kdc))
    with pytest.raises(spnego.exceptions.NoCredentialError):  # empty KRB5CCNAME
        with open_pool(peer, password=None):
            pass


def test_kerberos_needs_the_right_service_principal(kerberos_kdc, exchange_peer_factory):
    peer = exchange_peer_factory(**kdc_peer_options(kerberos_kdc))
    with pytest.raises(spnego.exceptions.SpnegoError, match="not found"):
        with open_pool(peer, negotiate_hostname_override="other.contoso.test"):
            pass
