"""A throw-away CA and server certificate for HTTPS tests (trustme)."""

from __future__ import annotations

from pathlib import Path

from .config import TlsFiles


def make_tls(directory: str | Path, names: tuple[str, ...] = ("127.0.0.1", "localhost")
             ) -> TlsFiles:
    """Write ca.pem, server.pem and server.key under ``directory``; the CA is new each time."""
    import trustme

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert(*names)
    files = TlsFiles(cert_pem=str(directory / "server.pem"), key_pem=str(directory / "server.key"),
                     ca_pem=str(directory / "ca.pem"))
    ca.cert_pem.write_to_path(files.ca_pem)
    cert.private_key_pem.write_to_path(files.key_pem)
    cert.cert_chain_pems[0].write_to_path(files.cert_pem)
    with open(files.cert_pem, "ab") as fh:
        for pem in cert.cert_chain_pems[1:]:
            fh.write(pem.bytes())
    return files
