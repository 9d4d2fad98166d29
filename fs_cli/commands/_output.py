"""One way every command prints what it returns: a table (or text) for people, `--json` for programs, and `--csv`
for listings. A command returns an `Output` and declares `@output_options()` (or `@output_options(csv=True)`);
the decorator adds the flags and prints. Commands never call print_json themselves.

    @click.command()
    @output_options(csv=True)
    @click.pass_context
    def search(ctx, text):
        hits = get_store(ctx).search(text)
        return Listing(hits, ["kind", "name", ...], title=..., empty=f"no match for {text!r}")
"""

from __future__ import annotations

import csv
import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import click

from ..output import console, print_json, print_table

FORMAT_KEY = "fs.output_format"


@dataclass
class Output:
    """What a command answers: `data` is its JSON (the shape programs rely on), `show` prints it for people;
    `exit_code` is the process exit code after printing (e.g. 1 when a validation failed)."""

    data: Any
    show: Callable[[], None] | None = None
    exit_code: int = 0

    def rows_for_csv(self) -> tuple[list[dict[str, Any]], list[str]] | None:
        return None


@dataclass
class Listing(Output):
    """Rows shown as one table. JSON: `data` (default: the rows). CSV: `columns` of `rows` (or of `csv_rows`)."""

    data: Any = None
    columns: Sequence[str] = ()
    title: str | None = None
    empty: str | None = None  # said instead of an empty table
    table_rows: list[dict[str, Any]] | None = None  # rows as people see them, when they differ from the JSON rows
    after: Callable[[], None] | None = None  # notes printed under the table
    rows: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.data is None:
            self.data = self.rows
        if self.show is None:
            self.show = self._show

    def _show(self) -> None:
        if not self.rows and self.empty:
            console.print(self.empty, highlight=False)
            return
        print_table(self.table_rows if self.table_rows is not None else self.rows, list(self.columns),
                    title=self.title)
        if self.after:
            self.after()

    def rows_for_csv(self) -> tuple[list[dict[str, Any]], list[str]] | None:
        return (self.table_rows if self.table_rows is not None else self.rows), list(self.columns)


def listing(rows: list[dict[str, Any]], columns: Sequence[str], **kw: Any) -> Listing:
    return Listing(rows=rows, columns=columns, **kw)


def output_format() -> str:
    """"table", "json" or "csv": what the running command was asked for (e.g. to keep progress bars and dbt's log
    lines off stdout when a program reads it)."""
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(FORMAT_KEY, "table") if ctx is not None else "table"


def machine_readable() -> bool:
    return output_format() != "table"


def _csv_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, list | tuple):
        return ";".join(_csv_cell(x) for x in v)
    return str(v)


def print_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(columns)
    for r in rows:
        out.writerow([_csv_cell(r.get(c)) for c in columns])


def output_options(csv: bool = False, json_help: str = "Print JSON instead of a table.") -> Callable:
    """Adds --json (and --csv when `csv`) to a command that returns an `Output`, and prints that output."""

    def decorate(f: Callable[..., Output | None]) -> Callable[..., None]:
        @functools.wraps(f)
        def command(*args: Any, as_json: bool = False, as_csv: bool = False, **kwargs: Any) -> None:
            if as_json and as_csv:
                raise click.UsageError("choose one of --json and --csv")
            ctx = click.get_current_context()
            ctx.meta[FORMAT_KEY] = "json" if as_json else "csv" if as_csv else "table"
            out = f(*args, **kwargs)
            if out is None:
                return
            if as_json:
                print_json(out.data)
            elif as_csv:
                rows = out.rows_for_csv()
                if rows is None:
                    raise click.UsageError("--csv applies to listings only; use --json")
                print_csv(*rows)
            elif out.show is not None:
                out.show()
            if out.exit_code:
                sys.exit(out.exit_code)

        command = click.option("--json", "as_json", is_flag=True, help=json_help)(command)
        if csv:
            command = click.option("--csv", "as_csv", is_flag=True, help="Print CSV (the table's columns).")(command)
        return command

    return decorate
