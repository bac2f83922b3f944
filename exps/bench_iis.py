"""Benchmark the IIS W3C reader (msgtrack.eas.iis.read_iis).

Run from the repository root:  python exps/bench_iis.py [--lines N] [--repeat R]

1. Generates N deterministic IIS lines (Exchange 2010 layout: ~85 % ActiveSync with plain
   and base64 queries, the rest OWA/EWS/Autodiscover) into exps/out/.
2. Measures, in the same process and run, the lines/s of
   - a bare pass: read the file, skip '#' lines, str.split(" ") (what a csv.reader-style
     split costs), and
   - read_iis(): #Fields mapping, ActiveSync filter, timestamps, query decoding,
     one frozen EasRequest per line, consumed by a loop that touches cmd and user,
   and reports best-of-R for both and the ratio.
3. Measures peak RSS of read_iis in fresh child processes at two file sizes (N/4 and N
   lines), each child reporting resource.getrusage(RUSAGE_SELF).ru_maxrss, plus a child
   that only imports: memory stays flat while streaming.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "exps" / "out"

FIELDS = ("date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip "
          "cs(User-Agent) sc-status sc-substatus sc-win32-status time-taken")
UAS = ["Apple-iPhone4C1/902.176", "Apple-iPad2C1/901.334", "Apple-iPhone5C2/1002.350",
       "Android/4.0.4-EAS-1.3", "SAMSUNG-SM-G900F/101.50101", "Apple-iPhone3C1/901.405"]
CMDS = ["Sync"] * 12 + ["Ping"] * 8 + ["FolderSync", "SendMail", "SmartReply", "SmartForward",
                                       "GetItemEstimate", "ItemOperations"]


def generate(path: Path, lines: int, seed: int = 6) -> None:
    rng = random.Random(seed)
    users = [(f"user{i:04d}", f"Appl{rng.getrandbits(48):012X}", rng.choice(UAS))
             for i in range(500)]
    with open(path, "w", encoding="ascii", newline="\r\n") as fh:
        fh.write("#Software: Microsoft Internet Information Services 7.5\n#Version: 1.0\n"
                 f"#Date: 2012-11-05 00:00:00\n#Fields: {FIELDS}\n")
        for n in range(lines):
            secs = n * 86_000 // max(lines, 1)
            clock = f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
            roll = rng.random()
            if roll < 0.15:
                stem, query, ua, user = "/EWS/Exchange.asmx", "-", "Microsoft+Office/14.0", "-"
            elif roll < 0.20:
                user, device, ua = rng.choice(users)
                blob = bytes([141, rng.choice([0, 1, 3, 18]), 9, 4, len(device)]) + device.encode()
                blob += bytes([0, 3]) + b"WP8"
                stem = "/Microsoft-Server-ActiveSync"
                query = base64.b64encode(blob).decode().replace("=", "%3D") + "&Log=V141_S1"
                ua, user = "MSFT-WP/8.0.10211", f"CONTOSO\\{user}"
            else:
                user, device, ua = rng.choice(users)
                cmd = rng.choice(CMDS)
                stem = "/Microsoft-Server-ActiveSync/default.eas"
                query = (f"User={user}&DeviceId={device}&DeviceType=iPhone&Cmd={cmd}&Log=V141_"
                         f"LdapC0_RpcC{rng.randint(1, 40)}_RpcL{rng.randint(1, 90)}_S1_"
                         "Mbx:EX2010-MBX1.contoso.com_Throttle0")
                user = f"CONTOSO\\{user}"
            status = 200 if rng.random() < 0.97 else rng.choice([401, 500, 503])
            fh.write(f"2012-11-05 {clock} 10.0.0.5 POST {stem} {query} 443 {user} "
                     f"203.0.113.{rng.randint(1, 254)} {ua} {status} 0 0 {rng.randint(5, 2000)}\n")


def bare_pass(path: Path) -> int:
    n = 0
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        for line in fh:
            if line[:1] == "#":
                continue
            parts = line.rstrip("\r\n").split(" ")
            n += len(parts) > 0
    return n


def reader_pass(path: Path) -> int:
    from msgtrack.eas.iis import read_iis
    from msgtrack.report import RunReport

    report = RunReport()
    n = 0
    for request in read_iis([path], report):
        n += bool(request.cmd) + bool(request.user)
    assert report.complete, report.summary_line()
    return report.counts["iis-lines"]


def timed(fn, path: Path, repeat: int) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    best, count = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        count = fn(path)
        best = min(best, time.perf_counter() - t0)
    return best, count


def child_peak_rss(path: Path | None) -> int:
    """Peak RSS (KiB) of a fresh interpreter that streams read_iis over ``path``
    (imports only when None), as the child measures itself with getrusage."""
    args = [sys.executable, __file__, "--child", str(path) if path else ""]
    done = subprocess.run(args, check=True, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    return int(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        if args.child:
            reader_pass(Path(args.child))
        else:
            import msgtrack.eas.iis  # noqa: F401  (the baseline: interpreter + imports)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        return

    OUT.mkdir(parents=True, exist_ok=True)
    small, large = OUT / "iis_small.log", OUT / "iis_large.log"
    generate(small, args.lines // 4)
    generate(large, args.lines)
    size_mb = large.stat().st_size / 1e6

    bare_s, lines = timed(bare_pass, large, args.repeat)
    reader_s, counted = timed(reader_pass, large, args.repeat)
    assert counted == lines, (counted, lines)
    print(f"input: {lines:,} lines, {size_mb:.1f} MB ({large.relative_to(ROOT)})")
    print(f"bare split pass : {lines / bare_s:>12,.0f} lines/s  ({bare_s:.3f} s, best of "
          f"{args.repeat})")
    print(f"read_iis        : {lines / reader_s:>12,.0f} lines/s  ({reader_s:.3f} s, best of "
          f"{args.repeat})")
    print(f"ratio           : read_iis takes {reader_s / bare_s:.1f}x the bare pass's time")

    base = child_peak_rss(None)
    rss_small = child_peak_rss(small)
    rss_large = child_peak_rss(large)
    print(f"peak RSS        : {rss_small / 1024:.1f} MiB at {args.lines // 4:,} lines, "
          f"{rss_large / 1024:.1f} MiB at {args.lines:,} lines "
          f"({(rss_large - rss_small) / 1024:+.1f} MiB for {3 * args.lines // 4:,} more lines; "
          f"interpreter + imports alone: {base / 1024:.1f} MiB)")


if __name__ == "__main__":
    main()
