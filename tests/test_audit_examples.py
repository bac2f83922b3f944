"""The committed audit sample and the README section stay true to the code.

``examples/audit/sample/2026-11-27/`` is regenerated from the example logs and must be
byte-identical (the report is deterministic); the sample excerpt in ``docs/audit.md``
must be found verbatim in the sample report; every option of every rule is in the
commented template that ``audit init`` writes.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from msgtrack.audit.config import RULE_OPTIONS, TEMPLATE

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "audit" / "sample" / "2026-11-27"


def load_maker():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("make_sample",
                                                  ROOT / "examples" / "audit" / "make_sample.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_sample_is_what_the_audit_writes(tmp_path: Path) -> None:
    maker = load_maker()
    maker.generate(tmp_path)
    for name in maker.FILES:
        fresh, kept = (tmp_path / name).read_bytes(), (SAMPLE / name).read_bytes()
        if name == "summary.json":
            # The gzip digest depends on the zlib build; everything else must match.
            a, b = json.loads(fresh), json.loads(kept)
            a["outputs"].pop("events.csv.gz"), b["outputs"].pop("events.csv.gz")
            assert a == b
        else:
            assert fresh == kept, f"{name} is stale: run python examples/audit/make_sample.py"
    summary = json.loads((SAMPLE / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["findings"]["max_severity"] == "high"
    assert b"/work/" not in (SAMPLE / "findings.csv").read_bytes()  # portable evidence


def test_the_readme_section_quotes_the_sample_report() -> None:
    doc = (ROOT / "docs" / "audit.md").read_text(encoding="utf-8")
    report = (SAMPLE / "report.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```markdown\n(.*?)```", doc, re.S)
    assert blocks, "docs/audit.md has no ```markdown sample excerpt"
    for block in blocks:
        for line in block.splitlines():
            if line.strip() and line.strip() != "...":
                assert line in report, f"not in the sample report: {line!r}"
    for command in ("audit init", "audit run", "audit schedule", "kinit -k -t",
                    "KRB5_CLIENT_KTNAME", "Persistent=true"):
        assert command in doc


def test_every_rule_option_is_in_the_init_template() -> None:
    for rule, options in RULE_OPTIONS.items():
        section = TEMPLATE.split(f"[rules.{rule}]", 1)[1].split("\n[", 1)[0]
        for key in ("enabled", "severity", *options):
            assert re.search(rf"^{key} = ", section, re.M), f"[rules.{rule}] {key}"
