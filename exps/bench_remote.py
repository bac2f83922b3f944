"""Remote search benchmark: msgtrack against loopback Exchange peers, measured side by side.

    python exps/bench_remote.py                  # 4 servers x 50,000 events (a few minutes)
    python exps/bench_remote.py --events 10000   # quicker

Each server is its own peer process on its own loopback address (127.0.0.11, .12, …), so
msgtrack reaches every server at its own endpoint as it would in production. A real
Exchange server spends most of a Get-MessageTrackingLog call in its Log Search service;
``--delay-ms`` (per object, default 0.25 ms = 4,000 events/s per server) stands in for
that, so the fan-out measures how well msgtrack overlaps servers rather than how fast two
shared cores can run five Python processes.

Reported, all in one run:
1. the conversion rate alone: msgtrack's CLIXML converter vs pypsrp's generic
   ``Serializer.deserialize`` on the same PIPELINE_OUTPUT texts (CPU time);
2. end to end: one server alone (the slowest of them), then all servers at once with
   threads (``--parallel N``), then all servers as N separate msgtrack processes;
   events/s and the fan-out ratio against the slowest single server;
3. peak RSS of the client at two event counts (flat = streaming works).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "exps" / "out"
PASSWORD = "Bench-Passw0rd!"
START = datetime(2026, 11, 27, tzinfo=timezone.utc)


def window(days: int) -> list[str]:
    end = START + timedelta(days=days)
    return ["--start", START.strftime("%Y-%m-%dT%H:%M:%SZ"), "--end", end.strftime("%Y-%m-%dT%H:%M:%SZ")]


# --------------------------------------------------------------------------- peer child


def serve(host: str, port: int, events: int, delay_ms: float, days: int) -> None:
    """Run one peer for one server named ``host`` until killed (child process)."""
    sys.path.insert(0, str(ROOT))
    from tests.exchange_peer.config import PeerConfig, ServerSpec
    from tests.exchange_peer.exchange import prerender
    from tests.exchange_peer.faults import Fault
    from tests.exchange_peer.server import ExchangePeer
    from tests.exchange_peer.synthetic import make_events

    step = timedelta(days=days) / max(events, 1) * 2.5  # a few events per message
    spec = ServerSpec(host, events=make_events(events, host, start=START, step=step),
                      cache_objects=True)
    faults = [Fault.slow(delay_ms / 1000.0)] if delay_ms > 0 else []
    config = PeerConfig(servers=[spec], auth="ntlm", password=PASSWORD, host=host, port=port,
                        faults=faults, clock=lambda: START + timedelta(days=days + 1))
    prerender(config)  # a real server renders on its own CPU, not on the client's
    peer = ExchangePeer(config).start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        peer.close()


def start_peers(n: int, port: int, events: int, delay_ms: float, days: int = 1
                ) -> list[subprocess.Popen]:
    procs = []
    for i in range(n):
        host = f"127.0.0.{11 + i}"
        procs.append(subprocess.Popen(
            [sys.executable, __file__, "--serve", host, "--port", str(port),
             "--events", str(events), "--delay-ms", str(delay_ms), "--days", str(days)],
            stdout=subprocess.PIPE, text=True))
    for proc in procs:
        line = proc.stdout.readline() if proc.stdout else ""
        if line.strip() != "ready":
            raise SystemExit("a peer did not start")
    return procs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- client runs


#: Runs msgtrack and reports VmHWM at exit. ru_maxrss from wait4 would also count the
#: memory of the forked benchmark process before exec, so it cannot be used here.
_LAUNCH = ("import atexit, sys\n"
           "def hwm():\n"
           "    for line in open('/proc/self/status'):\n"
           "        if line.startswith('VmHWM:'): sys.stderr.write('VmHWM ' + line.split()[1] + '\\n')\n"
           "atexit.register(hwm)\n"
           "from msgtrack.cli import main\n"
           "sys.argv[0] = 'msgtrack'\n"
           "main()\n")


def msgtrack_cmd(servers: list[str], port: int, parallel: int, days: int = 1) -> list[str]:
    cmd = [sys.executable, "-c", _LAUNCH, "search", "--port", str(port), "--auth", "ntlm",
           "--username", "CONTOSO\\tester", "--parallel", str(parallel), "--format", "csv",
           "--output", os.devnull, "--operation-timeout", "5", *window(days)]
    for s in servers:
        cmd += ["--server", s]
    return cmd


def run_measured(cmds: list[list[str]]) -> tuple[float, list[int]]:
    """Run the commands at once; (wall seconds, peak RSS in KiB of each)."""
    env = {**os.environ, "MSGTRACK_PASSWORD": PASSWORD, "MSGTRACK_CONFIG": "/nonexistent"}
    began = time.perf_counter()
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for c in cmds]
    rss = []
    for proc in procs:
        _, err_bytes = proc.communicate()
        err = err_bytes.decode()
        if proc.returncode != 0:
            raise SystemExit(f"msgtrack failed ({proc.returncode}): {err[-2000:]}")
        rss += [int(line.split()[1]) for line in err.splitlines() if line.startswith("VmHWM ")]
    return time.perf_counter() - began, rss


# --------------------------------------------------------------------------- conversion


def conversion_rates(n: int, n_pypsrp: int) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from pypsrp.serializer import Serializer

    from msgtrack.sources.clixml import convert_text
    from tests.exchange_peer.objects import ObjectShape, render_tracking_event
    from tests.exchange_peer.synthetic import make_events

    shape = ObjectShape(computer_name="ex01.contoso.com")
    runspace = uuid.UUID(int=7)
    texts = [render_tracking_event(ev, shape, runspace).decode()
             for ev in make_events(n, "EX01", start=START)]

    def rate(fn, items: list[str]) -> float:  # type: ignore[no-untyped-def]
        began = time.process_time()
        for text in items:
            fn(text)
        return len(items) / (time.process_time() - began)

    ours = max(rate(lambda t: convert_text(t, origin="EX01"), texts) for _ in range(3))
    theirs = max(rate(lambda t: Serializer().deserialize(t), texts[:n_pypsrp]) for _ in range(2))
    assert convert_text(texts[0], origin="EX01") is not None
    return {"msgtrack_events_per_cpu_s": ours, "pypsrp_events_per_cpu_s": theirs,
            "ratio": ours / theirs}


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", type=int, default=4)
    parser.add_argument("--events", type=int, default=50_000, help="events per server")
    parser.add_argument("--small", type=int, default=0,
                        help="events per server for the RSS comparison (default events/5)")
    parser.add_argument("--delay-ms", type=float, default=0.25)
    parser.add_argument("--days", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--serve", metavar="HOST", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.events, args.delay_ms, args.days)
        return 0

    OUT.mkdir(parents=True, exist_ok=True)
    result: dict[str, object] = {"servers": args.servers, "events_per_server": args.events,
                                 "delay_ms_per_object": args.delay_ms}
    print("conversion: msgtrack converter vs pypsrp deserialize, same texts …", flush=True)
    conv = conversion_rates(min(args.events, 20_000), 500)
    result["conversion"] = conv
    print(f"  msgtrack {conv['msgtrack_events_per_cpu_s']:,.0f} events/CPU-s, "
          f"pypsrp {conv['pypsrp_events_per_cpu_s']:,.0f} -> {conv['ratio']:.1f}x")

    small = args.small or max(args.events // 5, 1000)
    rss_runs: dict[int, int] = {}
    for events in (small, args.events):
        # The same number of events per hour (per slice) at both sizes, over more days:
        # memory is bounded by what one slice holds, so it must not grow with the total.
        days = max(1, round(events / small))
        port = free_port()
        peers = start_peers(args.servers, port, events, args.delay_ms, days)
        try:
            servers = [f"127.0.0.{11 + i}" for i in range(args.servers)]
            singles = [run_measured([msgtrack_cmd([s], port, 1, days)]) for s in servers]
            slowest = max(w for w, _ in singles)
            fan_wall, fan_rss = run_measured([msgtrack_cmd(servers, port, args.servers, days)])
            proc_wall, _ = run_measured([msgtrack_cmd([s], port, 1, days) for s in servers])
        finally:
            for p in peers:
                p.kill()
                p.wait()
        rss_runs[events] = fan_rss[0]
        total = events * args.servers
        row = {"days": days, "slowest_single_s": slowest, "fan_out_threads_s": fan_wall,
               "fan_out_processes_s": proc_wall, "fan_out_ratio": fan_wall / slowest,
               "processes_vs_threads": proc_wall / fan_wall,
               "end_to_end_events_per_s": total / fan_wall, "peak_rss_kib": fan_rss[0]}
        result[f"run_{events}"] = row
        print(f"{args.servers} servers x {events:,} events over {days} day(s): "
              f"slowest single {slowest:.1f} s, "
              f"fan-out (threads) {fan_wall:.1f} s = {row['fan_out_ratio']:.2f}x, "
              f"{args.servers} processes {proc_wall:.1f} s; "
              f"{row['end_to_end_events_per_s']:,.0f} events/s; "
              f"peak RSS {fan_rss[0] / 1024:.1f} MiB", flush=True)
    result["rss_ratio_large_vs_small"] = rss_runs[args.events] / rss_runs[small]
    print(f"peak RSS at {args.events:,}/server vs {small:,}/server: "
          f"{result['rss_ratio_large_vs_small']:.2f}x")
    (OUT / "bench_remote.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT / 'bench_remote.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
