"""The README cannot go stale: its sections are copies of docs/*.md, checked here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_readme_sections_match_their_sources() -> None:
    spec = importlib.util.spec_from_file_location("sync_readme", ROOT / "docs" / "sync_readme.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert module.synced(readme) == readme, "run: python docs/sync_readme.py"


def test_readme_set_up_commands_are_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for command in ('pip install . && msgtrack search --log examples/logs',
                    'pip install ".[test]" && python -m pytest -q'):
        assert command in readme and command in ci


def console_sessions(text: str) -> list[tuple[str, str]]:
    """(command, expected output) for every ``$ msgtrack …`` line in ```console blocks."""
    sessions: list[tuple[str, str]] = []
    for block in text.split("```console\n")[1:]:
        body = block.split("```", 1)[0]
        command, output = None, []
        for line in body.splitlines():
            if line.startswith("$ "):
                if command:
                    sessions.append((command, "\n".join(output)))
                command, output = line[2:], []
            else:
                output.append(line)
        if command:
            sessions.append((command, "\n".join(output)))
    return sessions


SESSION = (ROOT / "docs" / "session.md").read_text(encoding="utf-8")


def test_the_session_has_commands() -> None:
    assert len(console_sessions(SESSION)) == 3


@pytest.mark.parametrize(("command", "expected"), console_sessions(SESSION),
                         ids=lambda v: v[:40] if isinstance(v, str) else "")
def test_readme_session_replays_exactly(command: str, expected: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import shlex

    from typer.testing import CliRunner

    from msgtrack.cli import app

    monkeypatch.chdir(ROOT)
    args = shlex.split(command)
    assert args[0] == "msgtrack"
    args = [str(tmp_path / a) if a.endswith(".csv") else a for a in args[1:]]
    result = CliRunner().invoke(app, args)
    assert (result.stdout + result.stderr).rstrip("\n") == expected.rstrip("\n")
