"""fs materialize / fs serve: the online half on the command line."""

from __future__ import annotations

import os
import sys

import click
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from ..output import console, err_console, print_table
from ..sdk import online_locations
from ._context import get_store
from ._output import Output, machine_readable, output_options

BIG = 50_000  # rows: show a progress bar above this


@click.command()
@click.argument("feature_groups", nargs=-1)
@click.option("--full", is_flag=True, help="Rewrite every entity (default: incremental since the last materialization).")
@click.option("--end", "end", metavar="T",
              help="Serve the values as of T (ISO 8601, naive UTC): the latest row per entity with event_time <= T and "
                   "within TTL of T, like Feast's materialize END_TS (default: now). Implies --full.")
@click.option("--start", "start", metavar="T",
              help="Also ignore rows with event_time before T, like Feast's materialize START_TS. Implies --full.")
@click.option("--store", "store_url", envvar="FS_ONLINE_STORE",
              help="Online store URL: sqlite:///path or redis://host:6379/0 (default: .fs/online_store.sqlite).")
@output_options(json_help="Print the results as JSON.")
@click.pass_context
def materialize(ctx: click.Context, feature_groups: tuple[str, ...], full: bool, end: str | None, start: str | None,
                store_url: str | None) -> Output:
    """Write the latest value per entity (within TTL) of online feature groups into the online store.

    \b
    Atomic: readers see the previous version or the new one, never a mix; a crash leaves the previous
    version serving. Incremental by default: only entities changed by commits since the last run are
    rewritten. Also publishes the feature view definitions the service needs. Default: all online FGs.
    Backfills and demos on historical data: `fs materialize --end 2026-01-15` serves what was current then
    (per entity the latest row with max(--start, --end - ttl) <= event_time <= --end).
    """
    fs = get_store(ctx)
    with Progress(TextColumn("{task.description}"), BarColumn(bar_width=None), TaskProgressColumn(),
                  TextColumn("{task.completed:,}/{task.total:,} rows"), TimeElapsedColumn(),
                  console=err_console, transient=True,
                  disable=machine_readable() or not err_console.is_terminal) as bar:

        def factory(name: str):
            task = None

            def progress(done: int, total: int) -> None:
                nonlocal task
                if total < BIG:
                    return
                if task is None:
                    task = bar.add_task(f"materializing {name}", total=total)
                bar.update(task, completed=done)

            return progress

        url, results, warnings = fs.materialize(feature_groups, full=full, store_url=store_url,
                                                progress_factory=factory, start=start, end=end)

    def tables() -> None:
        rows = [{"feature group": r.feature_group, "mode": r.mode, "input rows": r.input_rows, "written": r.written,
                 "deleted": r.deleted, "version": r.version, "seconds": f"{r.seconds:.2f}",
                 "rows/s": f"{r.rows_per_s:,.0f}"} for r in results]
        print_table(rows, ["feature group", "mode", "input rows", "written", "deleted", "version", "seconds", "rows/s"],
                    title=f"fs materialize -> {url}")
        for w in warnings:
            console.print(f"[yellow]WARN[/] {w}", highlight=False)

    return Output({"store": url, "results": [r.to_dict() for r in results], "warnings": warnings}, show=tables)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=6566, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--store", "store_url", envvar="FS_ONLINE_STORE",
              help="Online store URL (default: .fs/online_store.sqlite in the project).")
@click.option("--log-dir", type=click.Path(file_okay=False),
              help="Where served vectors are logged as JSONL (default: .fs/served_vectors/ in the project).")
@click.option("--no-log", is_flag=True, help="Do not log served vectors.")
@click.option("--max-batch", default=1000, show_default=True, type=click.IntRange(1, 100_000),
              help="Most entity rows per request (larger batches get 413).")
@click.option("--access-log/--no-access-log", default=False, show_default=True, help="uvicorn's per-request log.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, store_url: str | None, log_dir: str | None,
          no_log: bool, max_batch: int, access_log: bool) -> None:
    """Serve online features over HTTP (OpenAPI page at /docs).

    \b
    POST /get-online-features          Feast feature-server request/response
    GET  /feature-views/NAME/vector    ?customer_id=42
    POST /feature-views/NAME/vectors   {"entities": [{"customer_id": 42}, ...]}
    /health  /ready  /metrics
    API keys: FS_API_KEYS=key1,key2 (then 401 without x-api-key / Authorization: Bearer).
    """
    import uvicorn

    try:  # file locations only: the server never opens the warehouse
        store = get_store(ctx)
        store.project.state_dir  # noqa: B018 - a missing project shows here, not while serving
    except Exception:  # serving needs no dbt project, only a store URL
        store = None
    url, state_dir = online_locations(store, store_url)  # opens the store once: fails fast, before forking workers
    os.environ["FS_ONLINE_STORE"] = url
    os.environ["FS_MAX_BATCH"] = str(max_batch)
    os.environ["FS_SERVED_LOG_DIR"] = "" if no_log else str(log_dir or (state_dir / "served_vectors"))
    os.environ["FS_PUSH_DIR"] = os.environ.get("FS_PUSH_DIR") or str(state_dir / "push")  # POST /push's log
    err_console.print(f"serving {url} on http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''}); "
                      f"docs at /docs; API keys {'on' if os.environ.get('FS_API_KEYS') else 'off'}", highlight=False)
    uvicorn.run("fs_cli.server.main:app_from_env", factory=True, host=host, port=port, workers=workers,
                access_log=access_log, log_level="warning", lifespan="on")
    sys.exit(0)
