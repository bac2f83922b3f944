"""Regenerate examples/audit/sample/ from the example logs (tests check it is current).

    python examples/audit/make_sample.py

Runs the audit of examples/audit/audit.toml for 2026-11-25..27 as if it were the morning
of 2026-11-28, in a temporary folder, and copies the text outputs of 2026-11-27 here.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from msgtrack.audit.config import load_config
from msgtrack.audit.run import run_audit

HERE = Path(__file__).resolve().parent
NOW = datetime(2026, 11, 28, 6, 0, tzinfo=timezone.utc)
DAY = "2026-11-27"
FILES = ("report.md", "report.html", "findings.csv", "summary.json")


def generate(target: Path) -> None:
    """Write the sample outputs of DAY into ``target``."""
    with tempfile.TemporaryDirectory() as tmp:
        config = dataclasses.replace(load_config(HERE / "audit.toml"), output=Path(tmp))
        run_audit(config, now=NOW)
        target.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            shutil.copyfile(Path(tmp) / DAY / name, target / name)


if __name__ == "__main__":
    generate(HERE / "sample" / DAY)
    sys.stdout.write(f"wrote {HERE / 'sample' / DAY}\n")
