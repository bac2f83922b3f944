"""Remote search benchmark: msgtrack against loopback Exchange peers, measured side by side.

    python exps/bench_remote.py                  # 4 servers x 50,000 events (several minutes)
    python exps/bench_remote.py --events 10000   # quicker

Each server is its own peer process on its own loopback address (127.0.0.11, .12, …), so
msgtrack reaches every server at its own endpoint as it would in production. Two things
keep the simulated servers honest stand-ins for other machines:

* A real Exchange server spends most of a Get-MessageTrackingLog call in its Log Search
  service. ``--delay-ms`` (per object) stands in for that. The headline runs at 1 ms,
  i.e. 1,000 events/s per server: twice the only field figure we have (a MessageStats
  sample run, about 500 records/s per server; research/anchors.md). The run is repeated
  at each further ``--sweep`` delay (default 0.25 ms and 0) to show where two shared
  cores, rather than the servers, set the pace.
* Each peer renders its objects once before the clock starts (``cache_objects``): on
  Exchange that CPU is the server's, not the client's.

Reported, all in one run:
1. the conversion rate alone: msgtrack's CLIXML converter vs pypsrp's generic
   ``Serializer.deserialize`` on the same PIPELINE_OUTPUT texts (CPU time);
2. end to end, per delay: one server alone (the slowest of them), then all servers at
   once with threads (``--parallel N``), then with worker processes (``--workers
   process``); events/s, the fan-out ratio against the slowest single server, and the
   CPU seconds the client and the peers used (the floor a 2-core box puts under the
   fan-out: (client + peer CPU) / cores);
3. peak RSS of the client at two event counts (flat = streaming works).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


def msgtrack_cmd(servers: list[str], port: int, parallel: int, days: int = 1,
                 workers: str = "thread") -> list[str]:
    cmd = [sys.executable, "-c", _LAUNCH, "search", "--port", str(port), "--auth", "ntlm",
           "--username", "CONTOSO\\tester", "--parallel", str(parallel), "--format", "csv",
           "--workers", workers,
           "--output", os.devnull, "--operation-timeout", "5", *window(days)]
    for s in servers:
        cmd += ["--server", s]
    return cmd


def run_measured(cmds: list[list[str]]) -> tuple[float, list[int], float]:
    """Run the commands at once; (wall seconds, peak RSS in KiB of each, their CPU seconds)."""
    env = {**os.environ, "MSGTRACK_PASSWORD": PASSWORD, "MSGTRACK_CONFIG": "/nonexistent"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
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
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the peers are not reaped yet
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, rss, cpu


def cpu_of(procs: list[subprocess.Popen]) -> float:
    """CPU seconds the (still running) peer processes have used so far."""
    total = 0
    for proc in procs:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


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


def fan_out(n_servers: int, events: int, delay_ms: float, days: int) -> dict[str, float]:
    """Singles, threads and processes against fresh peers; the figures of one run."""
    port = free_port()
    peers = start_peers(n_servers, port, events, delay_ms, days)
    try:
        servers = [f"127.0.0.{11 + i}" for i in range(n_servers)]
        singles = []
        for s in servers:
            peer_cpu = cpu_of(peers)
            wall, _, client_cpu = run_measured([msgtrack_cmd([s], port, 1, days)])
            singles.append((wall, client_cpu, cpu_of(peers) - peer_cpu))
        peer_cpu = cpu_of(peers)
        fan_wall, fan_rss, fan_cpu = run_measured(
            [msgtrack_cmd(servers, port, n_servers, days)])
        fan_peer_cpu = cpu_of(peers) - peer_cpu
        proc_wall, proc_rss, proc_cpu = run_measured(
            [msgtrack_cmd(servers, port, n_servers, days, workers="process")])
    finally:
        for p in peers:
            p.kill()
            p.wait()
    slowest = max(w for w, _, _ in singles)
    total = events * n_servers
    cores = os.cpu_count() or 1
    return {
        "delay_ms_per_object": delay_ms, "days": days, "slowest_single_s": slowest,
        "fan_out_threads_s": fan_wall, "fan_out_processes_s": proc_wall,
        "fan_out_ratio": fan_wall / slowest, "fan_out_processes_ratio": proc_wall / slowest,
        "processes_vs_threads": proc_wall / fan_wall,
        "client_cpu_us_per_event_processes": proc_cpu / total * 1e6,
        "peak_rss_kib_processes": proc_rss[0],
        "end_to_end_events_per_s": total / fan_wall, "peak_rss_kib": fan_rss[0],
        "client_cpu_us_per_event": fan_cpu / total * 1e6,
        "peer_cpu_us_per_event": fan_peer_cpu / total * 1e6,
        # What two shared cores allow at best: all the CPU the fan-out needed, spread
        # over every core, against the slowest single server's wall time.
        "cpu_floor_ratio": (fan_cpu + fan_peer_cpu) / cores / slowest,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", type=int, default=4)
    parser.add_argument("--events", type=int, default=50_000, help="events per server")
    parser.add_argument("--small", type=int, default=0,
                        help="events per server for the RSS comparison (default events/5)")
    parser.add_argument("--delay-ms", type=float, default=1.0,
                        help="per object: the server's own search time (headline run)")
    parser.add_argument("--sweep", default="0.25,0",
                        help="further per-object delays to run (comma separated; '' for none)")
    parser.add_argument("--days", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--serve", metavar="HOST", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.events, args.delay_ms, args.days)
        return 0

    OUT.mkdir(parents=True, exist_ok=True)
    result: dict[str, object] = {"servers": args.servers, "events_per_server": args.events,
                                 "cores": os.cpu_count()}
    print("conversion: msgtrack converter vs pypsrp deserialize, same texts …", flush=True)
    conv = conversion_rates(min(args.events, 20_000), 500)
    result["conversion"] = conv
    print(f"  msgtrack {conv['msgtrack_events_per_cpu_s']:,.0f} events/CPU-s, "
          f"pypsrp {conv['pypsrp_events_per_cpu_s']:,.0f} -> {conv['ratio']:.1f}x")

    small = args.small or max(args.events // 5, 1000)
    sweep = [float(x) for x in args.sweep.split(",") if x.strip()]
    runs = [(small, args.delay_ms), (args.events, args.delay_ms)]
    runs += [(args.events, d) for d in sweep]
    rss_runs: dict[int, int] = {}
    for events, delay in runs:
        # The same number of events per hour at both sizes, over more days: memory is
        # bounded by what one slice holds, so it must not grow with the total.
        days = max(1, round(events / small))
        row = fan_out(args.servers, events, delay, days)
        if delay == args.delay_ms:
            rss_runs[events] = int(row["peak_rss_kib"])
        result[f"run_{events}_{delay:g}ms"] = row
        print(f"{args.servers} servers x {events:,} events over {days} day(s), "
              f"{delay:g} ms/object: slowest single {row['slowest_single_s']:.1f} s, "
              f"fan-out (threads) {row['fan_out_threads_s']:.1f} s = "
              f"{row['fan_out_ratio']:.2f}x (CPU floor {row['cpu_floor_ratio']:.2f}x), "
              f"worker processes {row['fan_out_processes_s']:.1f} s = "
              f"{row['fan_out_processes_ratio']:.2f}x; "
              f"{row['end_to_end_events_per_s']:,.0f} events/s; CPU per event: client "
              f"{row['client_cpu_us_per_event']:.0f} us, peers "
              f"{row['peer_cpu_us_per_event']:.0f} us; peak RSS "
              f"{row['peak_rss_kib'] / 1024:.1f} MiB", flush=True)
    result["rss_ratio_large_vs_small"] = rss_runs[args.events] / rss_runs[small]
    print(f"peak RSS at {args.events:,}/server vs {small:,}/server: "
          f"{result['rss_ratio_large_vs_small']:.2f}x")
    (OUT / "bench_remote.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT / 'bench_remote.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
