"""The command line: typer, thin. Each command parses options, calls the library, renders.

Errors become exit codes in exactly one place: :class:`_HandledGroup.invoke`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core
import typer.main
import typer.models

from msgtrack import __version__
from msgtrack.errors import ExitCode, MsgtrackError
from msgtrack.report import Problem, RunReport


def _stderr(line: str) -> None:
    typer.echo(line, err=True)


#: Sub-apps (msgtrack.cli.<name>), imported when first needed: with their libraries
#: (audit, eas) they were 0.15 s of every run's 0.33 s start-up, `search` included.
_SUBAPPS = ("eas", "audit")


class _Commands(MutableMapping[str, Any]):
    """The root group's commands, with the :data:`_SUBAPPS` built on first use.

    Looking up a command defined in this package (``search``) loads nothing; looking up
    a sub-app loads that one; anything else (iterating for --help, an unknown name that
    typer suggests close matches for) loads them all, so every caller still sees every
    command, in the order they had when registered eagerly.
    """

    def __init__(self, commands: MutableMapping[str, Any]) -> None:
        self._eager = dict(commands)
        self._lazy: dict[str, Any] = dict.fromkeys(n for n in _SUBAPPS if n not in self._eager)

    def _load(self, name: str) -> None:
        if name not in self._lazy or self._lazy[name] is not None:
            return
        try:
            module = importlib.import_module(f"msgtrack.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"msgtrack.cli.{name}":
                raise
            del self._lazy[name]  # not installed: no such command
            return
        # What app.add_typer(module.app, name=name) would have built.
        self._lazy[name] = typer.main.get_group_from_info(
            typer.models.TyperInfo(module.app, name=name),
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=app.rich_markup_mode,
            suggest_commands=app.suggest_commands,
        )

    def _load_all(self) -> None:
        for name in list(self._lazy):
            self._load(name)

    def __getitem__(self, name: str) -> Any:
        if name in self._eager:
            return self._eager[name]
        if name in self._lazy:
            self._load(name)
        else:
            self._load_all()
        if self._lazy.get(name) is None:
            raise KeyError(name)
        return self._lazy[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._lazy.pop(name, None)
        self._eager[name] = command

    def __delitem__(self, name: str) -> None:
        if name in self._eager:
            del self._eager[name]
        else:
            self._load(name)
            del self._lazy[name]

    def __iter__(self) -> Iterator[str]:
        self._load_all()
        return iter([*self._eager, *self._lazy])

    def __len__(self) -> int:
        self._load_all()
        return len(self._eager) + len(self._lazy)


class _HandledGroup(typer.core.TyperGroup):
    """Maps every exception to one stderr line and an exit code; tracebacks only with --debug."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _Commands(self.commands)

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click Context
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except MsgtrackError as exc:
            _show_error(ctx, exc, str(exc), exc.hint)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            _stderr("msgtrack: interrupted")
            ctx.exit(130)
        except BrokenPipeError:
            # `msgtrack search ... | head` closed the pipe: not an error worth a traceback.
            sys.stderr.close()
            ctx.exit(ExitCode.OK)
        except OSError as exc:
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            _show_error(ctx, exc, f"{where}{exc.strerror or exc}", None)
            ctx.exit(ExitCode.ERROR)
        except Exception as exc:  # a bug: say so plainly, never dump locals
            _show_error(ctx, exc, f"internal error: {type(exc).__name__}: {exc}",
                        "run again with --debug for a traceback, and report it")
            ctx.exit(ExitCode.ERROR)


def _show_error(ctx: typer.Context, exc: BaseException, message: str, hint: str | None) -> None:
    if (ctx.obj or {}).get("debug"):
        import traceback  # here: only --debug prints one (start-up)

        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    _stderr(f"msgtrack: error: {message}")
    if hint:
        _stderr(f"msgtrack: hint: {hint}")


app = typer.Typer(
    cls=_HandledGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Exchange message tracking from any machine: live servers over WinRM, copied "
         "MSGTRK*.LOG files or Export-Clixml files, with every MessageInfo decoded.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"msgtrack {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Tracebacks on errors; debug logging.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")] = False,
) -> None:
    ctx.obj = {"debug": debug}
    if debug or verbose:
        import logging  # here: a run without --debug/--verbose never loads it (start-up)

        from msgtrack.credentials import RedactingFilter

        handler = logging.StreamHandler(sys.stderr)
        handler.addFilter(RedactingFilter())
        handler.setFormatter(logging.Formatter("msgtrack: %(levelname)s %(name)s: %(message)s"))
        root, level = logging.getLogger(), logging.getLogger().level
        root.addHandler(handler)
        root.setLevel(logging.DEBUG if debug else logging.INFO)

        def restore() -> None:
            # One invocation, one handler: an in-process caller (tests) must not keep
            # writing to this run's stderr afterwards.
            root.removeHandler(handler)
            root.setLevel(level)

        ctx.call_on_close(restore)


def problem_printer(problem: Problem) -> None:
    _stderr(f"msgtrack: {problem.kind}: {problem}")


def new_report() -> RunReport:
    """A run report that prints each problem to stderr the moment it happens."""
    return RunReport(on_problem=problem_printer)


@contextmanager
def open_output(path: Path | None, fmt: str):  # type: ignore[no-untyped-def]
    if path is None or str(path) == "-":
        yield sys.stdout
        return
    # utf-8-sig so Excel reads non-ASCII subjects correctly when it opens the CSV.
    encoding = "utf-8-sig" if fmt == "csv" else "utf-8"
    # A 64 KiB buffer: one write() system call per 80 CSV rows rather than per ten.
    with open(path, "w", encoding=encoding, newline="", buffering=64 * 1024) as handle:
        yield handle


def finish(report: RunReport) -> None:
    """The outcome of a run that produced output: complete (0) or incomplete (3)."""
    if not report.complete:
        _stderr(f"msgtrack: {report.summary_line()}; the output is partial")
        raise typer.Exit(ExitCode.INCOMPLETE)


from msgtrack.cli import commands as _commands  # noqa: E402,F401  (registers commands)


def main() -> None:
    app()


__all__ = ["app", "finish", "main", "new_report", "open_output"]
