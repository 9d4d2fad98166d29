"""Output for people (rich tables on a terminal) and for programs (--json)."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console(emoji=False)
if not console.is_terminal:  # piped output: do not squeeze tables into 80 columns
    console = Console(width=200, emoji=False)
err_console = Console(stderr=True, emoji=False)
if not err_console.is_terminal:  # CI logs: one message, one line, as for stdout
    err_console = Console(stderr=True, width=200, emoji=False)
#: What `fs --log-file PATH` writes (progress, warnings, errors with tracebacks); silent unless configured.
log = logging.getLogger("fs_cli")
log.addHandler(logging.NullHandler())


class _UTCFormatter(logging.Formatter):
    converter = time.gmtime


def configure_logging(verbose: bool, log_file: str | None, argv: list[str]) -> None:
    """`fs --verbose` / `--log-file PATH`: the log file gets every record of this command, in UTC."""
    log.setLevel(logging.DEBUG)
    log.propagate = False
    if log_file and not any(getattr(h, "fs_log_file", None) == log_file for h in log.handlers):
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.fs_log_file = log_file  # type: ignore[attr-defined]
        handler.setFormatter(_UTCFormatter("%(asctime)s.%(msecs)03dZ %(levelname)s %(message)s",
                                           datefmt="%Y-%m-%dT%H:%M:%S"))
        log.addHandler(handler)
    log.info("fs %s%s", " ".join(argv), " (verbose)" if verbose else "")


def print_error(message: str, fix: str | None, verbose: bool = False) -> None:
    """A user error on stderr: `error: ...` and `fix: ...`, printed literally (a `[customer]` in a message is
    text, not rich markup). With --verbose, the traceback of the exception being handled follows."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    if fix:
        err_console.print(f"  [bold]fix:[/] {escape(fix)}", highlight=False)
    log.error("%s%s", message, f"\n  fix: {fix}" if fix else "", exc_info=verbose)
    if verbose and sys.exc_info()[0] is not None:
        err_console.print_exception()


def print_internal_error(e: BaseException) -> None:
    """An unexpected exception: its traceback (to report it) and what the exit code means."""
    err_console.print_exception()
    err_console.print(f"[bold red]internal error:[/] {escape(type(e).__name__)}: {escape(str(e))}",
                      highlight=False)
    err_console.print("  this is a bug in fs (exit code 3): please report it with the traceback above",
                      highlight=False)
    log.error("internal error: %s: %s", type(e).__name__, e, exc_info=True)


def progress_line(message: str) -> None:
    """One progress line on stderr, flushed at once (CI logs show a run as it goes)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _default(o: Any) -> Any:
    if isinstance(o, datetime | date):
        return o.isoformat(sep=" ") if isinstance(o, datetime) else o.isoformat()
    if isinstance(o, Decimal):
        return float(o)
    if hasattr(o, "to_dict"):
        return o.to_dict()
    return str(o)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=_default, indent=2) + "\n")


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, list | tuple):
        return ", ".join(_cell(x) for x in v)
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, datetime):
        return v.isoformat(sep=" ", timespec="seconds")
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def fitting_columns(rows: Sequence[dict[str, Any]], columns: Sequence[str], width: int) -> list[str]:
    """The leading `columns` (callers list them most important first) whose table fits `width` characters without
    wrapping a cell; at least the first two. Rich would otherwise squeeze every column of a wide table into a narrow
    terminal and wrap each cell over several lines."""
    kept: list[str] = []
    used = 1  # the table's left border
    for c in columns:
        need = max([len(c), *(max((len(x) for x in _cell(r.get(c)).splitlines()), default=0) for r in rows)]) + 3
        if used + need > width and len(kept) >= 2:
            break
        kept.append(c)
        used += need
    return kept


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None = None) -> None:
    # A terminal shows the columns that fit; piped output (200 wide, for programs and logs) keeps them all.
    shown = fitting_columns(rows, columns, console.width) if console.is_terminal else list(columns)
    table = Table(title=title, show_lines=False, header_style="bold")
    for c in shown:
        table.add_column(c)
    for r in rows:
        table.add_row(*[_cell(r.get(c)) for c in shown])
    console.print(table)
    hidden = [c for c in columns if c not in shown]
    if hidden:
        err_console.print(f"({len(hidden)} column{'s' if len(hidden) > 1 else ''} not shown at this width: "
                          f"{', '.join(hidden)}; widen the terminal, or use --json)", style="dim", highlight=False)
