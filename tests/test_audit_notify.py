"""Notification against a real SMTP server on loopback (aiosmtpd) with STARTTLS and AUTH.

The server requires STARTTLS before AUTH and presents a certificate from a throwaway
trustme CA, which the audit trusts through ``[notify] ca_file``: the mail can only
arrive if the client really negotiated TLS, checked the certificate and logged in.
"""

from __future__ import annotations

import email
import socket
import ssl
from collections.abc import Iterator
from datetime import date, datetime, timezone
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aiosmtpd")
trustme = pytest.importorskip("trustme")

from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

from msgtrack.audit.config import load_config  # noqa: E402
from msgtrack.audit.run import run_audit  # noqa: E402
from tests.test_audit_helpers import smtp, write_config, write_logs  # noqa: E402


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.logins: list[tuple[bytes, bool]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                     auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"s3cret"
        self.logins.append((auth_data.login, session.ssl is not None))
        return AuthResult(success=ok)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[tuple[Inbox, int, Path]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True, auth_require_tls=True,
                            authenticator=inbox.authenticate)
    controller.start()
    try:
        yield inbox, port, ca_file
    finally:
        controller.stop()


def notify_toml(port: int, ca_file: Path) -> str:
    return f"""
[notify]
enabled = true
host = "127.0.0.1"
port = {port}
starttls = true
username = "svc-msgtrack"
from = "msgtrack@contoso.com"
to = ["admins@contoso.com"]
min_severity = "high"
ca_file = "{ca_file}"
timeout = 10
"""


def test_findings_are_mailed_with_the_report(smtp_server, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    inbox, port, ca_file = smtp_server
    monkeypatch.setenv("MSGTRACK_SMTP_PASSWORD", "s3cret")
    write_logs(tmp_path / "logs", [smtp("2026-11-25T09:00:00.000Z", "07I: ", ip="10.5.5.60"),
                                   smtp("2026-11-26T09:00:00.000Z", "04I: ")])
    cfg = load_config(write_config(tmp_path / "audit.toml", backfill_days=2,
                                   extra=notify_toml(port, ca_file)))
    result = run_audit(cfg, now=datetime(2026, 11, 27, 6, tzinfo=timezone.utc))
    assert result.notify_errors == []
    assert result.notified == [date(2026, 11, 25)]  # the 26th is clean: no mail
    assert inbox.logins == [(b"svc-msgtrack", True)]  # logged in over TLS only
    [mail] = inbox.messages
    assert mail["Subject"] == "[msgtrack audit] 2026-11-25: 2 finding(s), max high"
    assert mail["To"] == "admins@contoso.com"
    parts = {p.get_content_type(): p for p in mail.walk() if not p.is_multipart()}
    text = parts["text/plain"].get_payload(decode=True).decode()
    assert text.replace("\r\n", "\n") == (cfg.output / "2026-11-25" / "report.md").read_text()
    assert "cleartext-login" in text
    attached = [p for p in mail.walk() if p.get_filename()]
    assert [p.get_filename() for p in attached] == ["msgtrack-audit-2026-11-25.html"]
    # Sent once: the next run has nothing to mail.
    run_audit(cfg, now=datetime(2026, 11, 27, 7, tzinfo=timezone.utc))
    assert len(inbox.messages) == 1


def test_a_failed_mail_is_retried_on_the_next_run(smtp_server, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    inbox, port, ca_file = smtp_server
    monkeypatch.setenv("MSGTRACK_SMTP_PASSWORD", "s3cret")
    write_logs(tmp_path / "logs", [smtp("2026-11-25T09:00:00.000Z", "07I: ", ip="10.5.5.60")])
    down = write_config(tmp_path / "audit.toml", extra=notify_toml(free_port(), ca_file))
    first = run_audit(load_config(down), now=datetime(2026, 11, 26, 6, tzinfo=timezone.utc))
    assert first.days[0].findings == 2 and first.notified == []
    assert "Connection refused" in first.notify_errors[0]
    up = write_config(tmp_path / "audit.toml", extra=notify_toml(port, ca_file))
    second = run_audit(load_config(up), now=datetime(2026, 11, 26, 7, tzinfo=timezone.utc))
    assert second.days == [] and second.notified == [date(2026, 11, 25)]
    assert len(inbox.messages) == 1


def test_an_untrusted_certificate_is_refused(smtp_server, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    inbox, port, _ = smtp_server
    monkeypatch.setenv("MSGTRACK_SMTP_PASSWORD", "s3cret")
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    write_logs(tmp_path / "logs", [smtp("2026-11-25T09:00:00.000Z", "07I: ", ip="10.5.5.60")])
    cfg = load_config(write_config(tmp_path / "audit.toml", extra=notify_toml(port, other)))
    result = run_audit(cfg, now=datetime(2026, 11, 26, 6, tzinfo=timezone.utc))
    assert "TLS failed" in result.notify_errors[0]
    assert inbox.messages == [] and inbox.logins == []  # no password left the client
