"""Instructions a row of the offline CSV search, counted by valgrind's cachegrind.

    python exps/instructions_offline.py              # 20k rows; about a minute
    python exps/instructions_offline.py --cache-sim  # + simulated cache misses and mispredictions

The clock on a shared 2-core machine moves by tens of per cent between runs; an
instruction count does not (PYTHONHASHSEED is fixed, so dict layouts repeat). Each mode
runs in its own interpreter under cachegrind, and the count of a run that only imports
the same modules is subtracted, so what is left is the work of the rows:

* ``bare``: csv.reader over the files (the baseline of exps/bench_offline.py);
* ``read``: msgtrack's reader alone (read_logs);
* ``search``: what ``msgtrack search --log DIR --format csv`` does after start-up.

The ratio of instructions is not the ratio of time: csv.reader is one small C loop,
while a row of the search runs through far more code (see ``--cache-sim``). Needs
``valgrind`` on PATH (Debian: ``apt install valgrind``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_offline import byte_compile_msgtrack  # noqa: E402
from gen_logs import generate  # noqa: E402

#: One mode per run; "none" does the imports only.
CHILD = r"""
import csv, os, sys
from pathlib import Path
from msgtrack.filters import Query
from msgtrack.pipeline import open_events
from msgtrack.report import RunReport
from msgtrack.sinks import SinkOptions, write
from msgtrack.sources.logfile import read_logs

mode, log_dir = sys.argv[1], Path(sys.argv[2])
if mode == "bare":
    for path in sorted(log_dir.rglob("*.LOG")):
        with open(path, encoding="utf-8-sig", newline="") as fh:
            for _ in csv.reader(fh):
                pass
elif mode == "read":
    for _ in read_logs([log_dir], RunReport()):
        pass
elif mode == "search":
    with open(os.devnull, "w", newline="", encoding="utf-8-sig") as out:
        write(open_events([log_dir], [], None, Query(), RunReport()), "csv", out, SinkOptions())
"""

#: cachegrind's summary lines: "I refs", "I1 misses", "D1 misses", "Mispredicts".
_SUMMARY = re.compile(r"==\d+== (I\s+refs|I1\s+misses|D1\s+misses|Mispredicts):\s+([\d,]+)")


def count(mode: str, log_dir: Path, cache_sim: bool) -> dict[str, int]:
    cmd = ["valgrind", "--tool=cachegrind", "--cachegrind-out-file=/dev/null",
           f"--cache-sim={'yes' if cache_sim else 'no'}",
           f"--branch-sim={'yes' if cache_sim else 'no'}",
           sys.executable, "-c", CHILD, mode, str(log_dir)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{mode}: valgrind exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    found = {" ".join(name.split()): int(value.replace(",", ""))
             for name, value in _SUMMARY.findall(proc.stderr)}
    if "I refs" not in found:
        raise SystemExit(f"{mode}: no instruction count in valgrind's output")
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--cache-sim", action="store_true",
                    help="also simulate caches and branch prediction (slower)")
    args = ap.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("instructions_offline: valgrind is not on PATH (apt install valgrind)")
    byte_compile_msgtrack()  # as an install leaves it
    log_dir = HERE / "out" / f"logs-{args.rows}"
    generate(log_dir, args.rows)

    base = count("none", log_dir, args.cache_sim)
    per_row = {}
    for mode in ("bare", "read", "search"):
        found = count(mode, log_dir, args.cache_sim)
        per_row[mode] = {k: (v - base.get(k, 0)) / args.rows for k, v in found.items()}
        print(f"{mode:>7}: " + ", ".join(f"{k} {v:,.0f}" for k, v in per_row[mode].items())
              + " a row")
    ratio = per_row["search"]["I refs"] / per_row["bare"]["I refs"]
    print(f"search / bare: {ratio:.2f}x the instructions "
          f"(PYTHONHASHSEED=0, {args.rows} rows, Python {sys.version.split()[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
