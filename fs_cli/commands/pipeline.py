"""fs run: the feature pipeline."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from ..output import console, err_console, log, print_table, progress_line
from ._context import get_store
from ._output import Output, machine_readable, output_options


@click.command()
@click.option("--select", "-s", multiple=True, help="dbt selection of models to build (default: the whole project).")
@click.option("--vars", "vars_", help="dbt vars as YAML/JSON, e.g. '{demo_data_cutoff: \"2026-01-15\"}'.")
@click.option("--no-materialize", is_flag=True, help="Publish but do not update the online store.")
@click.option("--rebuild", is_flag=True,
              help="Build, test and audit even when nothing changed since the last clean run.")
@output_options(json_help="Print the run report as JSON.")
@click.pass_context
def run(ctx: click.Context, select: tuple[str, ...], vars_: str | None, no_materialize: bool,
        rebuild: bool) -> Output:
    """Run the feature pipeline: build, test, publish, log commits.

    \b
    1. dbt builds the staging models and feature-group candidates and runs their tests (snapshots excluded);
    2. the validation gate (contracts, drift, PII) audits each candidate;
    3. candidates that passed -- or failed under policy `warn` -- are published by their snapshot;
    4. every publish that changed data becomes a commit (inserted/updated/deleted counts);
    5. online feature groups are materialized into the online store.
    Exits 1 if any feature group failed, naming the failing checks; the previous commit stays published.
    Nothing changed costs less. When the project's files, vars and target, every source and table the last clean
    run read or built, and the push log are all as that run left them, dbt is not even started: the run reports
    each group unchanged (--rebuild builds anyway). Otherwise a seed whose file, config and table are as its last
    load left them is not loaded again, and a candidate equal to its published version that a passing gate run
    validated is neither audited nor snapshotted again (unless the group declares a freshness expectation,
    which is checked every run).
    One writer at a time: a second `fs run` (or materialize, training-dataset create, model register) on the
    project waits for the first, up to FS_LOCK_TIMEOUT seconds (default 60; one line on stderr names the
    holder), then fails with a clear error.
    """
    quiet = machine_readable()
    with _dbt_log_level("none" if quiet else None):  # programs read stdout: keep dbt's log lines out of it
        report = _run(ctx, select, vars_, no_materialize, quiet, rebuild)
    _log_report(report)
    return Output(report.to_dict(), show=lambda: _show_report(report), exit_code=0 if report.ok else 1)


@contextmanager
def _dbt_log_level(level: str | None) -> Iterator[None]:
    """dbt reads its log level from the environment; set only while this command runs, so a caller in the same
    process (the SDK, a test) does not inherit a silenced dbt -- log files included."""
    previous = os.environ.get("DBT_LOG_LEVEL")
    if level is not None:
        os.environ["DBT_LOG_LEVEL"] = level
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("DBT_LOG_LEVEL", None)
        else:
            os.environ["DBT_LOG_LEVEL"] = previous


def _run(ctx: click.Context, select: tuple[str, ...], vars_: str | None, no_materialize: bool, quiet: bool,
         rebuild: bool):
    store = get_store(ctx)
    parsed = _parse_vars(vars_)
    verbose = bool(ctx.find_root().obj.get("verbose"))
    # A terminal gets a bar; elsewhere (CI, a pipe) or with --verbose, one line per dbt node as it finishes, on
    # stderr. --json/--csv keep quiet unless --verbose. The log file (--log-file) gets the lines either way.
    lines = verbose or (not quiet and not err_console.is_terminal)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=None),
                  MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True, disable=quiet or lines or not err_console.is_terminal) as bar:
        task = bar.add_task("parsing project", total=None)
        started = time.monotonic()

        def progress(msg: str, done: int, total: int | None = None) -> None:
            bar.update(task, description=msg, completed=done, total=total)
            counted = f"[{done}/{total}]" if total else f"[{done}]"
            line = f"fs run {time.monotonic() - started:6.1f}s {counted} {msg}"
            log.info(line)
            if lines and (verbose or _finished(msg)):
                progress_line(line)

        return store.run(select=select, materialize=not no_materialize, progress=progress, vars=parsed,
                         rebuild=rebuild)


def _finished(msg: str) -> bool:
    """A node's last line (`phase: node status`): outside a terminal, one line per node, not two."""
    return msg.rsplit(" ", 1)[-1] in {"success", "error", "fail", "pass", "warn", "skipped", "skip"}


def _log_report(report) -> None:
    """The outcome of each group, for --log-file (what the table shows, one line each)."""
    for o in report.outcomes.values():
        c = o.commit
        commit = f"commit {c.commit_id} (+{c.inserted} ~{c.updated} -{c.deleted}, {c.rows} rows)" if c else (
            "unchanged" if o.published else "not published")
        log.info("fs run: %s %s (policy %s): %s", o.feature_group, o.status, o.policy, commit)
        for f in o.failures:
            log.warning("fs run: %s: %s", o.feature_group, f)
        for w in o.warnings:
            log.warning("fs run: %s: %s", o.feature_group, w)
    for f in report.other_failures:
        log.warning("fs run: %s", f)


def _parse_vars(vars_: str | None) -> dict | None:
    import yaml

    if not vars_:
        return None
    try:
        parsed = yaml.safe_load(vars_)
    except yaml.YAMLError as e:
        raise click.BadParameter(f"not YAML/JSON: {e}", param_hint="--vars") from None
    if not isinstance(parsed, dict):
        raise click.BadParameter("must be a mapping, e.g. '{key: value}'", param_hint="--vars")
    return parsed


def _show_report(report) -> None:
    rows = []
    for o in report.outcomes.values():
        c = o.commit
        rows.append({
            "feature group": o.feature_group,
            "status": o.status,
            "policy": o.policy,
            "commit": c.commit_id if c else ("unchanged" if o.published else "-"),
            "+inserted": c.inserted if c else None,
            "~updated": c.updated if c else None,
            "-deleted": c.deleted if c else None,
            "rows": c.rows if c else None,
            "online": o.materialized,
        })
    print_table(rows, ["feature group", "status", "policy", "commit", "+inserted", "~updated", "-deleted",
                       "rows", "online"], title="fs run")
    for o in report.outcomes.values():
        errors = o.errors  # checks that could not run: errors, not verdicts on the data
        for f in o.failures:
            if f in errors:
                console.print(f"[red]ERROR[/] {escape(o.feature_group)}: {escape(f.split(' ', 1)[1])}", highlight=False)
            else:
                console.print(f"[red]FAIL[/] {escape(o.feature_group)}: {escape(f)}", highlight=False)
        for w in o.warnings:
            console.print(f"[yellow]WARN[/] {escape(o.feature_group)}: {escape(w)}", highlight=False)
    for f in report.other_failures:
        console.print(f"[red]FAIL[/] {escape(f)}", highlight=False)
    if not report.outcomes and not report.other_failures:
        console.print("nothing selected: no feature group was built", style="yellow")
    if report.unchanged_since is not None:
        since = report.unchanged_since.to_dict()
        console.print(f"nothing changed since the run of {since['recorded_at']} (project files, vars, "
                      f"{since['relations_compared']} tables and the push log compared): nothing built, audited "
                      "or published; `fs run --rebuild` builds anyway", highlight=False)
