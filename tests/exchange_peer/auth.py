"""Server-side authentication and WinRM message encryption.

- Basic: the ``Authorization`` header on every request (meant for HTTPS).
- NTLM / Negotiate: pyspnego's acceptor, one security context per TCP connection (IIS
  binds Windows authentication to the connection). The context then wraps and unwraps
  every body in the ``multipart/encrypted`` framing WinRM uses over plain HTTP.

pyspnego's NTLM acceptor reads its users from the file named by the **process-wide**
environment variable ``NTLM_USER_FILE``. :data:`NTLM_USERS` owns that variable for the whole
test process: every running peer registers its user there, and the file is rewritten when
peers start and stop. Two peers running at the same time may not give the same user
different passwords.
"""

from __future__ import annotations

import base64
import os
import re
import struct
import tempfile
import threading
from dataclasses import dataclass

import spnego
import spnego.exceptions

BOUNDARY = b"--Encrypted Boundary"
SPNEGO_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"


class NtlmUserStore:
    """The one NTLM_USER_FILE of this process, shared by all peers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[tuple[str, str], tuple[str, int]] = {}
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def path(self) -> str | None:
        return os.path.join(self._dir.name, "ntlm-users") if self._dir else None

    def register(self, domain: str, user: str, password: str, dns_domain: str) -> list[tuple]:
        """Accept DOMAIN\\user, user@dns.domain and a bare user; returns a handle."""
        keys = [(domain, user), ("", f"{user}@{dns_domain}"), ("", user)]
        with self._lock:
            for key in keys:
                norm = (key[0].upper(), key[1].upper())
                old = self._users.get(norm)
                if old is not None and old[0] != password:
                    raise ValueError(f"NTLM user {key} is already registered with another "
                                     "password by a running peer")
            for key in keys:
                norm = (key[0].upper(), key[1].upper())
                old_pw, count = self._users.get(norm, (password, 0))
                self._users[norm] = (password, count + 1)
            self._write()
        return keys

    def unregister(self, keys: list[tuple]) -> None:
        with self._lock:
            for key in keys:
                norm = (key[0].upper(), key[1].upper())
                password, count = self._users[norm]
                if count <= 1:
                    del self._users[norm]
                else:
                    self._users[norm] = (password, count - 1)
            self._write()

    def _write(self) -> None:
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="msgtrack-peer-")
        lines = [f"{d}:{u}:{pw}" for (d, u), (pw, _) in self._users.items()]
        path = self.path
        assert path is not None
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
        os.environ["NTLM_USER_FILE"] = path


NTLM_USERS = NtlmUserStore()


def check_basic(header: str, username: str, password: str, domain: str) -> bool:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, given = base64.b64decode(token).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    names = {username.casefold(), f"{domain}\\{username}".casefold()}
    return user.casefold() in names and given == password


@dataclass
class StepResult:
    complete: bool
    token: bytes | None  #: for the WWW-Authenticate header; may be None


class ConnectionAuth:
    """The security context of one TCP connection (NTLM or Negotiate)."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol  # "ntlm" or "negotiate"
        self.ctx: spnego.ContextProxy | None = None

    @property
    def complete(self) -> bool:
        return self.ctx is not None and self.ctx.complete

    def step(self, header: str) -> StepResult:
        """Feed ``Authorization: Negotiate|NTLM <token>``; raises SpnegoError when refused."""
        _, _, b64 = header.partition(" ")
        if self.ctx is None or self.ctx.complete:
            self.ctx = spnego.server(protocol=self.protocol)
        try:
            out = self.ctx.step(base64.b64decode(b64.strip()))
        except (spnego.exceptions.SpnegoError, ValueError):
            self.ctx = None
            raise
        return StepResult(self.ctx.complete, out)

    def unwrap(self, body: bytes) -> bytes:
        """The SOAP text inside one ``multipart/encrypted`` body."""
        assert self.ctx is not None
        parts = [p for p in re.split(re.escape(BOUNDARY) + rb"\s*\r\n", body) if p]
        if len(parts) < 2:
            raise ValueError("not an encrypted WinRM body")
        m = re.search(rb"Length=(\d+)", parts[0])
        expected = int(m.group(1)) if m else -1
        payload = re.sub(re.escape(BOUNDARY) + rb"--\r\n\Z", b"", parts[1])
        payload = payload.replace(b"\tContent-Type: application/octet-stream\r\n", b"", 1)
        (header_len,) = struct.unpack("<i", payload[:4])
        plain = self.ctx.unwrap_winrm(payload[4:4 + header_len], payload[4 + header_len:])
        if expected >= 0 and len(plain) != expected:
            raise ValueError(f"decrypted {len(plain)} bytes, header said {expected}")
        return plain

    def wrap(self, plain: bytes, protocol: str = SPNEGO_PROTOCOL) -> tuple[str, bytes]:
        """(Content-Type, body) of the encrypted response."""
        assert self.ctx is not None
        res = self.ctx.wrap_winrm(plain)
        body = (
            BOUNDARY + b"\r\n\tContent-Type: " + protocol.encode() + b"\r\n"
            + b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=%d\r\n"
            % (len(plain) + res.padding_length)
            + BOUNDARY + b"\r\n\tContent-Type: application/octet-stream\r\n"
            + struct.pack("<i", len(res.header)) + res.header + res.data
            + BOUNDARY + b"--\r\n"
        )
        content_type = f'multipart/encrypted;protocol="{protocol}";boundary="Encrypted Boundary"'
        return content_type, body


def encrypted_protocol(content_type: str) -> str | None:
    """The ``protocol=`` of a multipart/encrypted Content-Type, or None if plain."""
    if not content_type.lower().startswith("multipart/encrypted"):
        return None
    m = re.search(r'protocol="([^"]+)"', content_type)
    return m.group(1) if m else SPNEGO_PROTOCOL
