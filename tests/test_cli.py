"""The CLI run in-process with typer's CliRunner: exit codes and exact stderr lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from msgtrack import __version__
from msgtrack.cli import app

FIELDS_2016 = (
    "date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,"
    "connector-id,source,event-id,internal-message-id,message-id,network-message-id,"
    "recipient-address,recipient-status,total-bytes,recipient-count,related-recipient-address,"
    "reference,message-subject,sender-address,return-path,message-info,directionality,"
    "tenant-id,original-client-ip,original-server-ip,custom-data,transport-traffic-type,"
    "log-id,schema-version")
HEADER = ("#Software: Microsoft Exchange Server\r\n#Version: 15.01.2375.007\r\n"
          "#Log-type: Message Tracking Log\r\n#Date: 2026-11-27T08:00:00.000Z\r\n"
          f"#Fields: {FIELDS_2016}\r\n")


def line(when: str, event: str, sender: str, info: str, subject: str = "hi") -> str:
    cells = [when, "10.0.0.5", "app01", "10.0.0.10", "EX01", "08DC1F3A2B4C5D6E;" + when + ";0",
             "EX01\\Default", "SMTP", event, "1234", "<m1@contoso.com>", "", "b@contoso.com",
             "250 2.1.5", "100", "1", "", "", subject, sender, sender, info, "Originating", "",
             "", "", "", "Email", "", "15.01.2375.007"]
    return ",".join(cells) + "\r\n"


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    body = (line("2026-11-27T08:00:01.000Z", "RECEIVE", "a@contoso.com", "07I: ")
            + line("2026-11-27T09:00:01.000Z", "RECEIVE", "app@contoso.com", "00A: ", "=cmd")
            + line("2026-11-27T10:00:01.000Z", "RECEIVE", "c@contoso.com", "04I: "))
    (tmp_path / "MSGTRK2026112708-1.LOG").write_bytes(("\ufeff" + HEADER + body).encode())
    return tmp_path


runner = CliRunner()


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"msgtrack {__version__}"


def test_decode_names_mutual_tls_partner_and_domain() -> None:
    result = run("decode", "02P:fabrikam.com: ")
    assert result.exit_code == 0
    assert "MutualTLS" in result.stdout and "Partner" in result.stdout
    assert "fabrikam.com" in result.stdout


def test_decode_json_one_object_per_value() -> None:
    result = run("decode", "--format", "json", "04I: ", "0eA:", "")
    assert result.exit_code == 0
    records = [json.loads(x) for x in result.stdout.splitlines()]
    assert [r["Value"] for r in records] == ["04I: ", "0eA:", ""]
    assert records[0]["AuthMethod"] == "SecureMapiSubmit"
    assert records[1]["AuthMethod"] == "Unknown(0x0E)"
    assert records[2]["MessageInfoKind"] == "Empty"


def test_search_csv_with_filters(logdir: Path) -> None:
    result = run("search", "--log", str(logdir), "--format", "csv", "--auth-method", "Login")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and "a@contoso.com" in lines[1]


def test_search_jsonl_time_window_end_exclusive(logdir: Path) -> None:
    result = run("search", "--log", str(logdir), "-f", "jsonl",
                 "--start", "2026-11-27T08:00:01Z", "--end", "2026-11-27T10:00:01Z")
    assert result.exit_code == 0
    senders = [json.loads(x)["Sender"] for x in result.stdout.splitlines()]
    assert senders == ["a@contoso.com", "app@contoso.com"]


def test_search_output_file_is_formula_safe(logdir: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    result = run("search", "--log", str(logdir), "-f", "csv", "-o", str(target),
                 "--auth-category", "A")
    assert result.exit_code == 0
    text = target.read_text(encoding="utf-8-sig")
    assert ",'=cmd," in text


def test_end_before_start_is_a_usage_error(logdir: Path) -> None:
    result = run("search", "--log", str(logdir), "--start", "2026-11-28", "--end", "2026-11-27")
    assert result.exit_code == 2
    assert result.stderr.strip() == "msgtrack: error: --end must be later than --start"


def test_bad_date_gets_one_line_and_a_hint(logdir: Path) -> None:
    result = run("search", "--log", str(logdir), "--start", "yesterday")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == "msgtrack: error: not an ISO 8601 date/time: 'yesterday'"
    assert result.stderr.splitlines()[1].startswith("msgtrack: hint: ")


def test_no_source_is_a_usage_error() -> None:
    result = run("search")
    assert result.exit_code == 2
    assert "name a source" in result.stderr


def test_malformed_line_is_reported_and_exit_is_3(logdir: Path) -> None:
    log = logdir / "MSGTRK2026112708-1.LOG"
    with log.open("ab") as handle:
        handle.write(b"2026-11-27T11:00:00.000Z,only,three\r\n")
        handle.write(line("2026-11-27T12:00:01.000Z", "RECEIVE", "late@contoso.com", "04I: ").encode())
    result = run("search", "--log", str(logdir), "-f", "jsonl")
    assert result.exit_code == 3
    senders = [json.loads(x)["Sender"] for x in result.stdout.splitlines()]
    assert senders[-1] == "late@contoso.com" and len(senders) == 4
    bad = [x for x in result.stderr.splitlines() if x.startswith("msgtrack: bad-line: ")]
    assert bad == [f"msgtrack: bad-line: {log}:9: expected 30 fields, found 3"]
    assert "the output is partial" in result.stderr


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    from typer.main import get_command

    root = get_command(app)
    names = []
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        sub = getattr(command, "commands", None)
        names += [f"{name} {s}" for s in sub] if sub else [name]
    for name in names:
        result = run(*name.split(), "--help")
        assert result.exit_code == 0, name
        assert f"msgtrack {name}" in readme, f"README never shows 'msgtrack {name}'"


CLIXML = Path(__file__).parent / "data" / "clixml"
EXAMPLES = Path(__file__).parents[1] / "examples" / "logs"


def test_clixml_entity_bomb_is_refused_in_one_line() -> None:
    result = run("search", "--clixml", str(CLIXML / "billion_laughs.clixml"))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"msgtrack: error: {CLIXML / 'billion_laughs.clixml'}: refused: the file declares a "
        "DTD/entities (possible entity-expansion attack)")


def test_clixml_truncated_file_keeps_earlier_events_and_exits_3(tmp_path: Path) -> None:
    text = (CLIXML / "export_ps51.clixml").read_text()
    cut = tmp_path / "cut.clixml"
    cut.write_text(text[: text.index('<Obj RefId="6">') + 400])
    result = run("search", "--clixml", str(cut), "-f", "jsonl")
    assert result.exit_code == 3
    assert len(result.stdout.splitlines()) == 1
    assert f"msgtrack: bad-file: {cut}: truncated XML at line" in result.stderr


def test_an_offline_csv_search_loads_no_more_than_it_needs(tmp_path: Path) -> None:
    # Start-up is paid by every run: at 100 k rows it was a sixth of a search's time.
    # A fresh interpreter, so other tests' imports do not count.
    import subprocess
    import sys

    out = tmp_path / "out.csv"
    script = (
        "import sys\n"
        "from msgtrack.cli import main\n"
        f"sys.argv = ['msgtrack', 'search', '--log', {str(EXAMPLES)!r}, '--format', 'csv',"
        f" '--output', {str(out)!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert exc.code in (0, None), exc.code\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    loaded = set(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                check=True).stdout.split())
    assert out.stat().st_size > 0
    # pydantic: typer 0.29 converts every option value through it (pyproject pins 0.28).
    heavy = ("pydantic", "pypsrp", "spnego", "keyring", "tabulate", "rich", "tomllib",
             "msgtrack.sources.remote", "msgtrack.audit", "msgtrack.eas")
    assert sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in heavy)) == []
