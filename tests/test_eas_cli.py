"""`msgtrack eas devices` and `msgtrack eas blank-replies`, run in-process.

Golden pairs live in tests/data/eas: ``<case>.json`` holds the arguments and the exit
code, ``<case>.out`` the exact stdout and ``<case>.err`` the exact stderr. The commands
run from the repository root on the files under examples/. To rewrite the expected
output after a deliberate change: ``MSGTRACK_UPDATE_GOLDEN=1 pytest tests/test_eas_cli.py``
(then read the diff).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from msgtrack.cli import app

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "eas"
CASES = sorted(DATA.glob("*.json"))
UPDATE = os.environ.get("MSGTRACK_UPDATE_GOLDEN") == "1"

pytest_plugins = ["tests.exchange_peer.fixtures"]

runner = CliRunner()


def read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as fh:  # keep CSV's \r\n
        return fh.read()


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_golden(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = json.loads(case.read_text(encoding="utf-8"))
    monkeypatch.chdir(ROOT)
    result = run(*spec["args"])
    out, err = case.with_suffix(".out"), case.with_suffix(".err")
    if UPDATE:
        out.write_text(result.stdout, encoding="utf-8", newline="")
        if result.stderr:
            err.write_text(result.stderr, encoding="utf-8", newline="")
        elif err.exists():
            err.unlink()
    assert result.exit_code == spec["exit_code"], result.stderr
    assert result.stdout == read(out)
    assert result.stderr == (read(err) if err.exists() else "")


def test_golden_cases_cover_the_issue() -> None:
    text = "".join(p.read_text(encoding="utf-8") for p in DATA.glob("*.out"))
    for needle in ("LIKELY_BLANK", "POSSIBLE", "ambiguous", "EXPOSED", "IPM.Note.SMIME",
                   "IPM.Note.SMIME.MultipartSigned", "probably readable", "candidate"):
        assert needle in text, needle


def test_help_lists_both_commands() -> None:
    result = run("eas", "--help")
    assert result.exit_code == 0
    assert "devices" in result.stdout and "blank-replies" in result.stdout
    for command in ("devices", "blank-replies"):
        assert run("eas", command, "--help").exit_code == 0


def test_blank_replies_needs_tracking_data() -> None:
    result = run("eas", "blank-replies", "--iis", str(ROOT / "examples/iis/ex2010"))
    assert result.exit_code == 2
    assert result.stderr == ("msgtrack: error: name the tracking data: --log PATH, --clixml "
                             "FILE, --server NAME or --all-servers\n")


def test_bad_window_is_a_usage_error() -> None:
    result = run("eas", "blank-replies", "--iis", str(ROOT / "examples/iis/ex2010"),
                 "--log", str(ROOT / "examples/eas/ex2010"), "--window", "soon")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "msgtrack: error: not a window: 'soon'",
        "msgtrack: hint: use BEFORE,AFTER in seconds, e.g. --window=-10,+120",
    ]


def test_missing_iis_path(tmp_path: Path) -> None:
    result = run("eas", "devices", "--iis", str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert result.stderr == f"msgtrack: error: {tmp_path / 'nope'}: no such file or directory\n"


def test_output_file(tmp_path: Path) -> None:
    target = tmp_path / "devices_smart_commands.csv"
    result = run("eas", "devices", "--iis", str(ROOT / "examples/iis/ex2010"), "-f", "csv",
                 "-o", str(target))
    assert result.exit_code == 0 and result.stdout == ""
    lines = target.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].startswith("Flag,User,DeviceId,DeviceType,UserAgent")
    assert len(lines) == 9


def test_blank_replies_from_a_live_server(exchange_peer_factory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # The loopback Exchange peer serves the 2016 example logs through Get-MessageTrackingLog.
    from tests.exchange_peer import ServerSpec

    logs = ROOT / "examples/eas/ex2016/EX16-02"
    peer = exchange_peer_factory(servers=[ServerSpec("EX16-02", logs=logs, version=2016)])
    monkeypatch.setenv("MSGTRACK_PASSWORD", peer.config.password)
    monkeypatch.chdir(ROOT)
    result = run("eas", "blank-replies", "--iis", "examples/iis/ex2016", "--side", "backend",
                 "--mailbox-map", "examples/eas/mailboxes.csv", "--server", "EX16-02",
                 "--connect", peer.host, "--port", str(peer.port), "--auth", peer.config.auth,
                 "--username", peer.config.username, "-f", "jsonl")
    assert result.exit_code == 0, result.stderr
    # The same findings as from the files; tracking evidence names the server, not file:line.
    evidence = ("SubmitLine", "DeliverLines", "SendLines", "OtherSubmitLines")
    remote = [json.loads(line) for line in result.stdout.splitlines()]
    offline = [json.loads(line)
               for line in read(DATA / "blank-replies-ex2016-backend-jsonl.out").splitlines()]
    assert [{k: v for k, v in r.items() if k not in evidence} for r in remote] == [
        {k: v for k, v in r.items() if k not in evidence} for r in offline]
    assert remote[0]["SubmitLine"].lower().startswith("ex16-02")


def console_sessions(text: str) -> list[tuple[list[str], str]]:
    """(argv, expected stdout) for each ``$ msgtrack …`` in the ```console blocks."""
    import shlex

    sessions: list[tuple[list[str], str]] = []
    for block in text.split("```console\n")[1:]:
        lines = block.split("```", 1)[0].splitlines()
        i = 0
        while i < len(lines):
            command = lines[i].removeprefix("$ ")
            while command.endswith("\\"):
                i += 1
                command = command[:-1] + lines[i]
            i += 1
            output = []
            while i < len(lines) and not lines[i].startswith("$ "):
                output.append(lines[i])
                i += 1
            while output and not output[-1]:
                output.pop()
            sessions.append((shlex.split(command)[1:], "\n".join(output) + "\n"))
    return sessions


SESSIONS = console_sessions((ROOT / "examples/eas/README.md").read_text(encoding="utf-8"))


@pytest.mark.parametrize(("argv", "expected"), SESSIONS, ids=[" ".join(a[:2]) for a, _ in SESSIONS])
def test_readme_sessions_are_real(argv: list[str], expected: str,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = run(*argv)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == expected
