"""Mail a day's report over SMTP with STARTTLS (smtplib), when it needs attention.

A day is mailed when it has a finding at or above ``[notify] min_severity``, or when it
is incomplete and ``on_incomplete`` is set. The password comes from
``MSGTRACK_SMTP_PASSWORD`` or the keyring (service ``msgtrack-smtp``), never from the
config file; credentials are only ever sent after STARTTLS succeeded, with the server's
certificate checked against the system CAs or ``ca_file``.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from msgtrack.audit.config import NotifySettings
from msgtrack.errors import ConfigError, MsgtrackError

log = logging.getLogger(__name__)

PASSWORD_ENV = "MSGTRACK_SMTP_PASSWORD"
KEYRING_SERVICE = "msgtrack-smtp"


class NotifyError(MsgtrackError):
    """The report could not be mailed (it is retried on the next run)."""


def smtp_password(username: str) -> str | None:
    if not username:
        return None
    secret = os.environ.get(PASSWORD_ENV)
    if secret:
        return secret
    try:
        import keyring
        from keyring.errors import KeyringError

        secret = keyring.get_password(KEYRING_SERVICE, username)
    except (ImportError, KeyringError, RuntimeError) as exc:  # no backend on a server
        log.debug("keyring unavailable: %s", type(exc).__name__)
        secret = None
    if not secret:
        raise ConfigError(
            f"no SMTP password for {username}",
            hint=f"set {PASSWORD_ENV} (in the audit's environment file) or run "
                 f"'keyring set {KEYRING_SERVICE} {username}'")
    return secret


def build_message(settings: NotifySettings, subject: str, report_md: str,
                  report_html: str | None, day: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = settings.sender
    msg["To"] = ", ".join(settings.to)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2] or None)
    msg.set_content(report_md)
    if report_html is not None:
        msg.add_alternative(report_html, subtype="html")
        # Also as a file, so the report can be kept with the ticket it starts.
        msg.add_attachment(report_html.encode("utf-8"), maintype="text", subtype="html",
                           filename=f"msgtrack-audit-{day}.html")
    return msg


def send_report(settings: NotifySettings, folder: Path, day: str, subject: str) -> None:
    """Mail the day's report (report.md as text, report.html as alternative/attachment)."""
    md_path, html_path = folder / "report.md", folder / "report.html"
    try:
        html_text = html_path.read_text(encoding="utf-8") if html_path.exists() else None
        md = md_path.read_text(encoding="utf-8") if md_path.exists() else None
    except OSError as exc:
        raise NotifyError(f"{folder}: cannot read the report: {exc.strerror}") from None
    if md is None:
        md = "The report of this day is attached (HTML).\n"
    if not settings.attach_html:
        html_text = None
    message = build_message(settings, subject, md, html_text, day)
    password = smtp_password(settings.username)
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as smtp:
            smtp.ehlo()
            if settings.starttls:
                context = ssl.create_default_context(cafile=settings.ca_file or None)
                smtp.starttls(context=context)
                smtp.ehlo()
            if settings.username:
                smtp.login(settings.username, password or "")
            smtp.send_message(message)
    except ssl.SSLError as exc:
        raise NotifyError(f"SMTP {settings.host}:{settings.port}: TLS failed ({exc.reason})",
                          hint="set [notify] ca_file to your CA's PEM file") from None
    except smtplib.SMTPAuthenticationError as exc:
        raise NotifyError(f"SMTP {settings.host}: login refused ({exc.smtp_code})") from None
    except smtplib.SMTPNotSupportedError as exc:
        raise NotifyError(f"SMTP {settings.host}: {exc}",
                          hint="the server offers no STARTTLS; fix it or set starttls = false "
                               "without a username") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise NotifyError(f"SMTP {settings.host}:{settings.port}: {exc}") from None
