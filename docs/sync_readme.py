"""Copy docs/<name>.md into README.md between <!-- name:start --> and <!-- name:end -->.

Run `python docs/sync_readme.py` after editing a section; tests/test_docs.py fails when
the README and the section files disagree, so the README cannot go stale.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("session", "peer", "audit", "eas", "perf")
#: Sections kept beside the examples they describe: (file, the heading they start at).
ELSEWHERE = {"eas": ("examples/eas/README.md", "## ActiveSync: iOS 5 SmartReply")}


def synced(readme: str) -> str:
    for name in SECTIONS:
        if name in ELSEWHERE:
            where, heading = ELSEWHERE[name]
            text = (ROOT / where).read_text(encoding="utf-8")
            body = text[text.index(heading):].strip("\n")
        else:
            source = ROOT / "docs" / f"{name}.md"
            if not source.exists():
                continue
            body = source.read_text(encoding="utf-8").strip("\n")
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
        readme = pattern.sub(lambda m, body=body: f"{m.group(1)}{body}\n{m.group(2)}", readme)
    return readme


def main() -> int:
    path = ROOT / "README.md"
    old = path.read_text(encoding="utf-8")
    new = synced(old)
    if new != old:
        path.write_text(new, encoding="utf-8")
        print("README.md updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
