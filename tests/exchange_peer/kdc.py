"""A throw-away MIT Kerberos realm on loopback, for the ``kerberos`` path Exchange uses.

Needs Debian's ``krb5-kdc`` and ``krb5-admin-server`` (krb5kdc, kdb5_util, kadmin.local)
and the Python ``gssapi`` + ``krb5`` packages (``pip install "pypsrp[kerberos]"``, which
builds against ``libkrb5-dev``). :func:`missing` says what is absent so tests can skip.

The realm holds one user and the service principal ``host/<service_host>`` whose key is
exported to a keytab for the peer's acceptor. MIT Kerberos reads its configuration from
process-wide environment variables; :meth:`MitKdc.env` gives the ones a test must set
(KRB5_CONFIG, KRB5_KTNAME, and a private in-memory KRB5CCNAME).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

TOOLS = ("krb5kdc", "kdb5_util", "kadmin.local")


def _tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def missing() -> list[str]:
    gone = [t for t in TOOLS if _tool(t) is None]
    gone += [m for m in ("gssapi", "krb5") if importlib.util.find_spec(m) is None]
    return gone


class MitKdc:
    def __init__(self, directory: str | Path, *, realm: str = "CONTOSO.TEST",
                 user: str = "tester", password: str = "Passw0rd!",
                 service_host: str = "exchange.contoso.test") -> None:
        self.dir = Path(directory)
        self.realm = realm
        self.user = user
        self.password = password
        self.service_host = service_host
        self.keytab = self.dir / "http.keytab"
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def principal(self) -> str:
        return f"{self.user}@{self.realm}"

    def env(self) -> dict[str, str]:
        return {"KRB5_CONFIG": str(self.dir / "krb5.conf"), "KRB5_KTNAME": str(self.keytab),
                "KRB5CCNAME": f"MEMORY:msgtrack-peer-{os.getpid()}",
                "KRB5_KDC_PROFILE": str(self.dir / "kdc.conf")}

    def start(self) -> MitKdc:
        self.dir.mkdir(parents=True, exist_ok=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._write_config()
        env = {**os.environ, **self.env()}

        def run(*args: str) -> None:
            subprocess.run(args, env=env, check=True, capture_output=True, timeout=30)

        run(_tool("kdb5_util") or "kdb5_util", "create", "-s", "-r", self.realm,
            "-P", "master-key-for-tests")
        kadmin = _tool("kadmin.local") or "kadmin.local"
        for query in (f"addprinc -pw {self.password} {self.user}",
                      f"addprinc -randkey host/{self.service_host}",
                      f"addprinc -randkey HTTP/{self.service_host}",
                      f"ktadd -k {self.keytab} host/{self.service_host} HTTP/{self.service_host}"):
            run(kadmin, "-r", self.realm, "-q", query)
        self._proc = subprocess.Popen([_tool("krb5kdc") or "krb5kdc", "-n", "-r", self.realm],
                                      env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            if self._proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"krb5kdc did not start (see {self.dir}/kdc.log)")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def _write_config(self) -> None:
        realm, port = self.realm, self.port
        domain = self.service_host.split(".", 1)[-1]
        (self.dir / "krb5.conf").write_text(
            "[libdefaults]\n"
            f"  default_realm = {realm}\n  dns_lookup_realm = false\n  dns_lookup_kdc = false\n"
            "  dns_canonicalize_hostname = false\n  rdns = false\n  udp_preference_limit = 1\n"
            f"[realms]\n  {realm} = {{\n    kdc = 127.0.0.1:{port}\n  }}\n"
            f"[domain_realm]\n  .{domain} = {realm}\n  {domain} = {realm}\n")
        (self.dir / "kdc.conf").write_text(
            f"[kdcdefaults]\n  kdc_listen = 127.0.0.1:{port}\n  kdc_tcp_listen = 127.0.0.1:{port}\n"
            f"[realms]\n  {realm} = {{\n    database_name = {self.dir}/principal\n"
            f"    key_stash_file = {self.dir}/stash\n    acl_file = {self.dir}/kadm5.acl\n"
            "    max_life = 10h\n  }\n"
            f"[logging]\n  kdc = FILE:{self.dir}/kdc.log\n")
