"""Offline search benchmark: ``msgtrack search --log DIR --format csv`` against a bare
``csv.reader`` pass over the same files, and peak RSS of the search at two sizes.

    python exps/bench_offline.py                      # 100k and 1M rows (a few minutes)
    python exps/bench_offline.py --rows 20000 --repeat 1   # quick look

Both sides run as fresh subprocesses, interleaved, ``--repeat`` times each; the medians
are reported. Wall time is what an admin waits for; CPU time (user + sys of the child,
from ``os.wait4``) is shown next to it because it is far less disturbed by other work on
the machine. Peak RSS is the child's ``ru_maxrss``. msgtrack runs byte-compiled, as an
install leaves it. Targets (issue #2): search/bare ratio <= 2.5, RSS@1M <= 1.2 x RSS@100k.

The fixed cost of a run (``msgtrack --version``, and a search over 10 rows, each in a
fresh process) is measured too, since it is part of every search run. ``--stages`` (on
by default) also times the pipeline in-process at the smallest size, stage by stage, in
process CPU time (bare csv.reader; read_logs; + the Query filter; read_logs +
ev.annotations(); the whole CSV search), and prints us/row and the multiple of the bare
pass; ``--stages-only`` runs just that (a quick check while optimising). ``--profile``
prints the cProfile top functions of the full in-process search. Results go to
``exps/out/bench_offline.json``. Log files are generated once by ``exps/gen_logs.py``
and reused.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))

from gen_logs import generate  # noqa: E402

#: The baseline: what any CSV tool must at least do, in the same interpreter.
BARE = r"""
import csv, os, sys
n = 0
for top in sys.argv[1:]:
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(filenames):
            if not name.upper().endswith(".LOG"):
                continue
            with open(os.path.join(dirpath, name), encoding="utf-8-sig", newline="") as fh:
                for row in csv.reader(fh):
                    n += 1
print(n)
"""


def byte_compile_msgtrack() -> None:
    """Byte-compile msgtrack's modules, as ``pip install`` does.

    An editable install under PYTHONDONTWRITEBYTECODE (or on a read-only tree) would
    otherwise compile every module from source in every run: 0.04 s of start-up that an
    installed msgtrack never pays.
    """
    import compileall

    import msgtrack

    compileall.compile_dir(Path(msgtrack.__file__).parent, quiet=2)


def search_command(log_dir: Path) -> list[str]:
    script = Path(sys.executable).with_name("msgtrack")
    exe = [str(script)] if script.exists() else [shutil.which("msgtrack") or "msgtrack"]
    return [*exe, "search", "--log", str(log_dir), "--format", "csv", "--output", os.devnull]


def run_child(cmd: list[str]) -> dict[str, Any]:
    """Run one fresh process; its own wall time, CPU time and peak RSS (os.wait4)."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{stderr[-2000:]}")
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "maxrss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
    }


def median(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 3)


def bench_size(rows: int, repeat: int) -> dict[str, Any]:
    log_dir = OUT / f"logs-{rows}"
    t = time.perf_counter()
    files = generate(log_dir, rows)
    gen_s = time.perf_counter() - t
    size = sum(f.stat().st_size for f in files)
    print(
        f"  {rows} rows: {len(files)} files, {size / 1e6:.0f} MB ({gen_s:.1f} s to generate or check)",
        file=sys.stderr,
    )
    bare_cmd = [sys.executable, "-c", BARE, str(log_dir)]
    full_cmd = search_command(log_dir)
    bare, full = [], []
    for i in range(repeat):
        bare.append(run_child(bare_cmd))
        full.append(run_child(full_cmd))
        print(
            f"    run {i + 1}/{repeat}: bare {bare[-1]['wall_s']} s, search {full[-1]['wall_s']} s, "
            f"{full[-1]['maxrss_mb']} MB",
            file=sys.stderr,
        )
    result = {
        "rows": rows,
        "files": len(files),
        "bytes": size,
        "bare": {
            "runs": bare,
            "wall_s": median(bare, "wall_s"),
            "cpu_s": median(bare, "cpu_s"),
            "maxrss_mb": median(bare, "maxrss_mb"),
        },
        "search": {
            "runs": full,
            "wall_s": median(full, "wall_s"),
            "cpu_s": median(full, "cpu_s"),
            "maxrss_mb": max(r["maxrss_mb"] for r in full),
        },
        "command": " ".join(full_cmd),
    }
    result["ratio_wall"] = round(result["search"]["wall_s"] / result["bare"]["wall_s"], 2)
    result["ratio_cpu"] = round(result["search"]["cpu_s"] / result["bare"]["cpu_s"], 2)
    # Other jobs on the machine only ever add time, so the fastest run of each side is
    # the steadiest estimate of what the work itself costs; the medians stay the headline.
    result["ratio_wall_fastest"] = round(
        min(r["wall_s"] for r in full) / min(r["wall_s"] for r in bare), 2)
    result["rows_per_s"] = round(rows / result["search"]["wall_s"])
    return result


def stages(rows: int, repeat: int) -> dict[str, float]:
    """In-process CPU seconds per stage, each stage including the ones before it.

    The stages run round-robin ``repeat`` times and the best run of each is kept, so a
    burst of load on the machine hits all of them alike.
    """
    import csv

    from msgtrack.filters import Query
    from msgtrack.pipeline import open_events
    from msgtrack.report import RunReport
    from msgtrack.sinks import SinkOptions, write
    from msgtrack.sources.logfile import read_logs

    log_dir = OUT / f"logs-{rows}"
    files = sorted(p for p in log_dir.rglob("*.LOG"))

    def bare() -> None:
        for path in files:
            with open(path, encoding="utf-8-sig", newline="") as fh:
                for _ in csv.reader(fh):
                    pass

    def events() -> None:
        for _ in read_logs([log_dir], RunReport()):
            pass

    def filtered() -> None:
        for _ in open_events([log_dir], [], None, Query(), RunReport()):
            pass

    def annotated() -> None:
        for ev in read_logs([log_dir], RunReport()):
            ev.annotations()

    def search() -> None:
        # What `search --log DIR --format csv` does after start-up.
        with open(os.devnull, "w", newline="", encoding="utf-8-sig") as out:
            write(open_events([log_dir], [], None, Query(), RunReport()), "csv", out, SinkOptions())

    runs = (
        ("csv_reader", bare),
        ("read_logs", events),
        ("read_logs+filter", filtered),
        ("read_logs+annotations", annotated),
        ("search_csv", search),
    )
    best = dict.fromkeys((name for name, _ in runs), float("inf"))
    for _ in range(repeat):
        for name, fn in runs:
            t = time.process_time()
            fn()
            best[name] = min(best[name], time.process_time() - t)
    return {name: round(value, 3) for name, value in best.items()}


def startup(repeat: int) -> dict[str, float]:
    """The fixed cost inside every search run, in fresh processes: ``msgtrack --version``
    (interpreter and imports) and ``search --format csv`` over 10 rows (+ option parsing
    and the search's own set-up)."""
    tiny = OUT / "logs-10"
    generate(tiny, 10)
    version = [run_child([search_command(OUT)[0], "--version"]) for _ in range(repeat)]
    search = [run_child(search_command(tiny)) for _ in range(repeat)]
    return {"wall_s": median(version, "wall_s"), "cpu_s": median(version, "cpu_s"),
            "search_10_rows_wall_s": median(search, "wall_s"),
            "search_10_rows_cpu_s": median(search, "cpu_s")}


def profile(rows: int, top: int = 25) -> str:
    from msgtrack.report import RunReport
    from msgtrack.sinks import SinkOptions, write
    from msgtrack.sources.logfile import read_logs

    log_dir = OUT / f"logs-{rows}"
    prof = cProfile.Profile()
    with open(os.devnull, "w", newline="", encoding="utf-8") as out:
        prof.enable()
        write(read_logs([log_dir], RunReport()), "csv", out, SinkOptions())
        prof.disable()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(top)
    return text.getvalue()


def print_stages(st: dict[str, float]) -> None:
    rows, base = st["rows"], st["csv_reader"]
    print(f"in-process CPU at {rows} rows (each stage includes the ones above it):")
    print(f"  {'stage':<24} {'s':>7} {'us/row':>7} {'x bare':>7}")
    for name, value in st.items():
        if name != "rows":
            print(f"  {name:<24} {value:>7.3f} {value / rows * 1e6:>7.2f} {value / base:>7.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-stages", dest="stages", action="store_false")
    ap.add_argument("--stages-only", action="store_true",
                    help="only the in-process stage breakdown (quick; no subprocess runs)")
    ap.add_argument("--profile", action="store_true", help="print cProfile top functions (smallest size)")
    ap.add_argument("--json", type=Path, default=OUT / "bench_offline.json")
    args = ap.parse_args(argv)

    sizes = sorted(set(args.rows))
    byte_compile_msgtrack()
    if args.stages_only:
        generate(OUT / f"logs-{sizes[0]}", sizes[0])
        print_stages({"rows": sizes[0], **stages(sizes[0], max(1, args.repeat))})
        return 0
    print(f"bench_offline: sizes {sizes}, {args.repeat} runs each", file=sys.stderr)
    results = [bench_size(n, args.repeat) for n in sizes]

    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_before": os.getloadavg()[0],
        "sizes": results,
        "target_ratio": 2.5,
        "target_rss_growth": 1.2,
    }
    if len(results) > 1:
        small, large = results[0]["search"]["maxrss_mb"], results[-1]["search"]["maxrss_mb"]
        report["rss_growth"] = round(large / small, 3)
    report["startup"] = fixed = startup(args.repeat)
    for r in results:
        # What the rows cost, without the fixed cost of a run (see startup()).
        r["ratio_wall_without_fixed_cost"] = round(
            (r["search"]["wall_s"] - fixed["search_10_rows_wall_s"]) / r["bare"]["wall_s"], 2)
    if args.stages:
        report["stages_cpu_s"] = {"rows": sizes[0], **stages(sizes[0], max(1, args.repeat))}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")

    print()
    print(
        f"{'rows':>9} {'bare csv s':>11} {'search s':>9} {'ratio':>6} {'cpu ratio':>9} "
        f"{'ratio-fixed':>11} {'fastest':>7} {'RSS MB':>7} {'rows/s':>8}"
    )
    for r in results:
        print(
            f"{r['rows']:>9} {r['bare']['wall_s']:>11.2f} {r['search']['wall_s']:>9.2f} "
            f"{r['ratio_wall']:>6.2f} {r['ratio_cpu']:>9.2f} {r['ratio_wall_without_fixed_cost']:>11.2f} "
            f"{r['ratio_wall_fastest']:>7.2f} "
            f"{r['search']['maxrss_mb']:>7.1f} {r['rows_per_s']:>8}"
        )
    print(
        f"ratio target <= {report['target_ratio']}: "
        + ", ".join(f"{r['rows']}: {'met' if r['ratio_wall'] <= 2.5 else 'NOT met'}" for r in results)
    )
    if "rss_growth" in report:
        ok = "met" if report["rss_growth"] <= report["target_rss_growth"] else "NOT met"
        print(f"RSS@{sizes[-1]} / RSS@{sizes[0]} = {report['rss_growth']} (target <= 1.2: {ok})")
    st = report["startup"]
    print("ratio-fixed: (search - search over 10 rows) / bare, i.e. without the fixed cost; "
          "fastest: fastest search / fastest bare run")
    print(f"start-up: msgtrack --version {st['wall_s']} s wall ({st['cpu_s']} s CPU); "
          f"search --format csv over 10 rows {st['search_10_rows_wall_s']} s wall "
          f"({st['search_10_rows_cpu_s']} s CPU)")
    if args.stages:
        print_stages(report["stages_cpu_s"])
    print(f"written {args.json}")
    if args.profile:
        print(profile(sizes[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
