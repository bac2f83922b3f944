"""Run the Exchange peer by hand: ``python -m tests.exchange_peer --logs examples/logs``.

``--logs DIR`` serves one server per sub-folder of DIR that holds MSGTRK*.LOG files (the
sub-folder's name is the server's name); when DIR holds the logs itself it is one server,
named by ``--server-name``. The password comes from MSGTRACK_PEER_PASSWORD, or a random one
is generated and printed to stderr; it is never taken from the command line.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import sys
import threading
from datetime import datetime, timezone

from .config import AUTH_MODES, VERSIONS, PeerConfig, ServerSpec, servers_from_folder
from .objects import CULTURES
from .server import ExchangePeer
from .synthetic import make_events

PASSWORD_ENV = "MSGTRACK_PEER_PASSWORD"


def servers_from(args: argparse.Namespace) -> list[ServerSpec]:
    common = dict(version=args.exchange_version, time_zone=args.time_zone, culture=args.culture,
                  domain=args.dns_domain)
    if args.synthetic:
        names = args.server_name or ["EX01", "EX02"]
        common["version"] = args.exchange_version or 2019
        return [ServerSpec(n, events=make_events(args.synthetic, n, domain=args.dns_domain),
                           **common) for n in names]
    try:
        return servers_from_folder(args.logs, (args.server_name or ["EX01"])[0], **common)
    except ValueError as e:
        raise SystemExit(f"exchange peer: {e}") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.exchange_peer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--logs", help="folder of MSGTRK logs, or of one sub-folder per server")
    src.add_argument("--synthetic", type=int, metavar="N",
                     help="serve N synthetic events per server instead of logs")
    p.add_argument("--server-name", action="append",
                   help="server name(s) for --synthetic, or for a flat --logs folder")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    p.add_argument("--auth", choices=AUTH_MODES, default="ntlm")
    p.add_argument("--user", default="tester")
    p.add_argument("--domain", default="CONTOSO", help="NetBIOS domain for NTLM")
    p.add_argument("--dns-domain", default="contoso.com")
    p.add_argument("--kdc", metavar="DIR",
                   help="with --auth kerberos: run a throw-away MIT KDC with its files in DIR")
    p.add_argument("--tls", metavar="DIR",
                   help="serve HTTPS; write a new test CA (ca.pem) and certificate to DIR")
    p.add_argument("--time-zone", default="UTC", help="IANA zone of the servers' clocks")
    p.add_argument("--culture", choices=sorted(CULTURES), default="en-US")
    p.add_argument("--exchange-version", type=int, choices=VERSIONS,
                   help="default: from each log folder's #Version header (2019 for --synthetic)")
    p.add_argument("--now", help="pin 'now' (ISO 8601) for the cmdlet's default End")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        password = secrets.token_urlsafe(12)
        print(f"exchange peer: generated password (set {PASSWORD_ENV} to choose one): "
              f"{password}", file=sys.stderr)
    options: dict = {}
    if args.tls:
        from .tls import make_tls

        options["tls"] = make_tls(args.tls)
    if args.now:
        pinned = datetime.fromisoformat(args.now.replace("Z", "+00:00"))
        pinned = pinned if pinned.tzinfo else pinned.replace(tzinfo=timezone.utc)
        options["clock"] = lambda: pinned
    kdc = None
    if args.auth == "kerberos":
        if not args.kdc:
            raise SystemExit("exchange peer: --auth kerberos needs --kdc DIR")
        from .kdc import MitKdc, missing

        if missing():
            raise SystemExit(f"exchange peer: no local KDC, missing {', '.join(missing())}")
        kdc = MitKdc(args.kdc, user=args.user, password=password).start()
        os.environ.update(kdc.env())
        options.update(kerberos_realm=kdc.realm, service_host=kdc.service_host)
        print(f"exchange peer: KDC for {kdc.realm} on 127.0.0.1:{kdc.port}; clients need "
              f"KRB5_CONFIG={kdc.dir / 'krb5.conf'} and the SPN host/{kdc.service_host}",
              file=sys.stderr)
    config = PeerConfig(servers=servers_from(args), auth=args.auth, username=args.user,
                        password=password, domain=args.domain, host=args.host, port=args.port,
                        **options)
    peer = ExchangePeer(config).start()
    user = (args.user if args.auth in ("basic", "none")
            else f"{args.user}@{config.kerberos_realm}" if args.auth == "kerberos"
            else f"{args.domain}\\{args.user}")
    tls = ["--ssl", "--ca-bundle", config.tls.ca_pem] if config.tls and config.tls.ca_pem else []
    print(f"exchange peer: {peer.url} (auth {args.auth}, user {user}); servers: "
          + ", ".join(f"{s.name} ({s.logs or 'synthetic'})" for s in config.servers),
          file=sys.stderr)
    print("exchange peer: try  MSGTRACK_PASSWORD=... msgtrack search --connect "
          f"{args.host} --port {peer.port} --auth {'basic' if args.auth == 'none' else args.auth}"
          f" -u '{user}' {' '.join(tls)} --all-servers".replace("  ", " "), file=sys.stderr)
    print("exchange peer: Ctrl+C stops it", file=sys.stderr, flush=True)
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        peer.close()
        if kdc is not None:
            kdc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
