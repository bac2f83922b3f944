"""What a run did, and whether its answer is complete.

Sources and the remote searcher report problems here instead of raising, so one bad
line or one failed server never stops the rest. The CLI prints each problem as it
happens (through ``on_problem``) and turns an incomplete report into exit code 3.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Problems kept in full for the summary; all of them are still counted.
MAX_KEPT = 1000


@dataclass(frozen=True)
class Problem:
    kind: str  #: e.g. "bad-line", "bad-file", "server", "slice"
    where: str  #: "path:line", "path", "server" or "server [start, end)"
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class RunReport:
    """Counters and problems of one run. Not thread-safe; feed it from one thread."""

    on_problem: Callable[[Problem], None] | None = None
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    problem_counts: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)

    def problem(self, kind: str, where: str, message: str) -> Problem:
        found = Problem(kind, where, message)
        self.problem_counts[kind] += 1
        if len(self.problems) < MAX_KEPT:
            self.problems.append(found)
        if self.on_problem is not None:
            self.on_problem(found)
        return found

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    @property
    def complete(self) -> bool:
        return not self.problem_counts

    def summary_line(self) -> str:
        if self.complete:
            return "complete"
        parts = ", ".join(f"{n} {k}" for k, n in sorted(self.problem_counts.items()))
        return f"INCOMPLETE: {parts}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "complete": self.complete,
            "counts": dict(sorted(self.counts.items())),
            "problem_counts": dict(sorted(self.problem_counts.items())),
            "problems": [
                {"kind": p.kind, "where": p.where, "message": p.message} for p in self.problems
            ],
            "warnings": list(self.warnings),
        }
