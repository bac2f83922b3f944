"""Where a password comes from: MSGTRACK_PASSWORD, the system keyring, or a prompt.

Never from argv (it would show in ``ps`` and shell history) and never from the config
file. The prompt appears only on a terminal, so cron jobs fail fast instead of hanging.
Kerberos with a ticket cache or keytab needs no password at all.
"""

from __future__ import annotations

import getpass
import logging
import os
import sys

from msgtrack.errors import ConfigError

log = logging.getLogger(__name__)

PASSWORD_ENV = "MSGTRACK_PASSWORD"
KEYRING_SERVICE = "msgtrack"

#: Auth schemes that can work from a ticket cache / keytab or a client certificate.
PASSWORDLESS = {"kerberos", "certificate"}


def get_password(username: str | None, auth: str, *, interactive: bool | None = None) -> str | None:
    """The password for ``username``, or None when ``auth`` can do without one."""
    if auth in PASSWORDLESS and not os.environ.get(PASSWORD_ENV):
        # Kerberos: GSSAPI uses KRB5CCNAME / KRB5_CLIENT_KTNAME. A password would only
        # force an in-process kinit, so do not ask for one.
        return None
    secret = os.environ.get(PASSWORD_ENV) or (_from_keyring(username) if username else None)
    if not secret:
        if interactive is None:
            interactive = sys.stdin.isatty() and sys.stderr.isatty()
        if interactive and username:
            secret = getpass.getpass(f"Password for {username}: ")
    if secret:
        register_secret(secret, username)
        return secret
    raise ConfigError(
        f"no password for {username or '(no --username)'} with --auth {auth}",
        hint=f"set {PASSWORD_ENV}, store it with 'keyring set {KEYRING_SERVICE} USERNAME', "
             "or run on a terminal to be prompted")


def _from_keyring(username: str) -> str | None:
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:  # pragma: no cover - keyring is a dependency
        return None
    try:
        return keyring.get_password(KEYRING_SERVICE, username)
    except (KeyringError, RuntimeError) as exc:  # no backend on a headless box
        log.debug("keyring unavailable: %s", type(exc).__name__)
        return None


# --------------------------------------------------------------------------- redaction

_SECRETS: set[str] = set()


def register_secret(secret: str, username: str | None = None) -> None:
    """Remember a secret so :class:`RedactingFilter` can scrub it (and its Basic-auth form)."""
    import base64

    if not secret:
        return
    _SECRETS.add(secret)
    if username:
        _SECRETS.add(base64.b64encode(f"{username}:{secret}".encode()).decode())


class RedactingFilter(logging.Filter):
    """Defence in depth for --debug: no registered secret survives into a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            message = record.getMessage()
            if any(s in message for s in _SECRETS):
                for secret in _SECRETS:
                    message = message.replace(secret, "***")
                record.msg, record.args = message, None
        return True
