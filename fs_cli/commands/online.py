"""fs materialize / fs serve: the online half on the command line."""

from __future__ import annotations

import os
import sys

import click
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from ..output import console, err_console, print_table
from ..sdk import online_locations, serving_key_file
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
@click.option("--allow-unvalidated", is_flag=True,
              help="Also serve a strict group's commits that carry no passing validation run (published by plain "
                   "`dbt build`); recorded with the online version.")
@output_options(json_help="Print the results as JSON.")
@click.pass_context
def materialize(ctx: click.Context, feature_groups: tuple[str, ...], full: bool, end: str | None, start: str | None,
                store_url: str | None, allow_unvalidated: bool) -> Output:
    """Write the latest value per entity (within TTL) of online feature groups into the online store.

    \b
    Atomic: readers see the previous version or the new one, never a mix; a crash leaves the previous
    version serving. Incremental by default: only entities changed by commits since the last run are
    rewritten. Also publishes the feature view definitions the service needs. Default: all online FGs.
    Backfills and demos on historical data: `fs materialize --end 2026-01-15` serves what was current then
    (per entity the latest row with max(--start, --end - ttl) <= event_time <= --end).
    Only validated data is served from a strict group: commits published by plain `dbt build` (no PII,
    future-time or drift check ran) are withheld with a WARN line naming them -- the store keeps serving
    its previous version -- until `fs run` validates the group, or --allow-unvalidated. Warn groups are
    served with a warning. Waits (FS_LOCK_TIMEOUT, default 60 s) for another writer on the project.
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
                                                progress_factory=factory, start=start, end=end,
                                                allow_unvalidated=allow_unvalidated)

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
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="uvicorn's per-request log (one line per request on stdout).")
@click.option("--public-metrics/--no-public-metrics", envvar="FS_PUBLIC_METRICS", default=False, show_default=True,
              help="Serve /metrics without an API key (it names feature groups and counts requests). "
                   "Env FS_PUBLIC_METRICS=1.")
@click.option("--public-docs/--no-public-docs", envvar="FS_PUBLIC_DOCS", default=False, show_default=True,
              help="Serve /docs and /openapi.json without an API key (they list every route). Env FS_PUBLIC_DOCS=1.")
@click.option("--header-timeout", envvar="FS_HEADER_TIMEOUT", default=10.0, show_default=True,
              type=click.FloatRange(0), help="Seconds to receive a request's headers (then 408 and close; 0 = none).")
@click.option("--body-timeout", envvar="FS_BODY_TIMEOUT", default=30.0, show_default=True,
              type=click.FloatRange(0, min_open=True), help="Seconds to receive a request body (then 408).")
@click.option("--keep-alive-timeout", default=5, show_default=True, type=click.IntRange(1),
              help="Seconds an idle keep-alive connection stays open (uvicorn's timeout_keep_alive).")
@click.option("--limit-concurrency", type=click.IntRange(1), default=None,
              help="Most concurrent connections and tasks per worker; beyond, 503 (uvicorn's limit_concurrency).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, store_url: str | None, log_dir: str | None,
          no_log: bool, max_batch: int, access_log: bool, public_metrics: bool, public_docs: bool,
          header_timeout: float, body_timeout: float, keep_alive_timeout: int, limit_concurrency: int | None) -> None:
    """Serve online features over HTTP (OpenAPI page at /docs).

    \b
    POST /get-online-features          Feast feature-server request/response
    GET  /feature-views/NAME/vector    ?customer_id=42
    POST /feature-views/NAME/vectors   {"entities": [{"customer_id": 42}, ...]}
    /health  /ready  /metrics

    \b
    Security:
    Scoped API keys: `fs keys create NAME --feature-view FV [--pii] [--push]` (hashed in
    .fs/api_keys.json, or $FS_API_KEYS_FILE; read at start, re-read when it changes, so
    `fs keys revoke` needs no restart). No valid key: 401; outside the key's scope (a view or
    group not granted, a pii feature without --pii, a push without --push): 403.
    FS_API_KEYS=key1,key2: plain keys in the environment, full access (the older way).
    With keys on, only /health and /ready stay open (/ready without the versions);
    /metrics, /docs, /openapi.json need a key unless --public-metrics / --public-docs.
    Request bodies: at most 4 MiB on every route (413, also for chunked bodies),
    received within --body-timeout (408); headers within --header-timeout.
    Every 5xx is logged to stderr with its request id (x-request-id, echoed or generated).
    """
    import uvicorn

    try:  # file locations only: the server never opens the warehouse
        store = get_store(ctx)
        store.project.state_dir  # noqa: B018 - a missing project shows here, not while serving
    except Exception:  # serving needs no dbt project, only a store URL
        store = None
    url, state_dir = online_locations(store, store_url)  # opens the store once: fails fast, before forking workers
    # Workers are separate processes that build the app from the environment (fs_cli/server/main.py).
    os.environ["FS_ONLINE_STORE"] = url
    os.environ["FS_MAX_BATCH"] = str(max_batch)
    os.environ["FS_SERVED_LOG_DIR"] = "" if no_log else str(log_dir or (state_dir / "served_vectors"))
    os.environ["FS_PUSH_DIR"] = os.environ.get("FS_PUSH_DIR") or str(state_dir / "push")  # POST /push's log
    os.environ["FS_PUBLIC_METRICS"] = "1" if public_metrics else "0"
    os.environ["FS_PUBLIC_DOCS"] = "1" if public_docs else "0"
    os.environ["FS_BODY_TIMEOUT"] = str(body_timeout)
    os.environ["FS_HEADER_TIMEOUT"] = str(header_timeout)  # read by the protocol (fs_cli/server/protocol.py)
    key_file = serving_key_file(store)  # read once here: a bad key file fails now, with its message
    if key_file is not None:
        os.environ["FS_API_KEYS_FILE"] = str(key_file)
    keys_on = bool(os.environ.get("FS_API_KEYS")) or key_file is not None
    err_console.print(f"serving {url} on http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''}); "
                      f"docs at /docs; API keys {'on' if keys_on else 'off'}"
                      + (f" (key file {key_file})" if key_file is not None else "")
                      + (f"; without a key: /health /ready{' /metrics' if public_metrics else ''}"
                         f"{' /docs' if public_docs else ''}" if keys_on else ""), highlight=False)
    uvicorn.run("fs_cli.server.main:app_from_env", factory=True, host=host, port=port, workers=workers,
                access_log=access_log, log_config=_log_config(), log_level=None, lifespan="on",
                http="fs_cli.server.protocol:ServingProtocol",  # uvicorn's protocol + a header read deadline
                timeout_keep_alive=keep_alive_timeout, limit_concurrency=limit_concurrency)
    sys.exit(0)


def _log_config() -> dict:
    """uvicorn's logging config with levels set per logger: its own messages from WARNING, the access log at INFO
    (a global log_level="warning" also hid the access lines: --access-log printed nothing), and the service's
    logger (fs_cli.server: 5xx with request id and traceback) on stderr."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    cfg = copy.deepcopy(LOGGING_CONFIG)
    cfg["loggers"]["uvicorn"]["level"] = "WARNING"
    cfg["loggers"]["uvicorn.error"]["level"] = "WARNING"
    cfg["loggers"]["uvicorn.access"]["level"] = "INFO"
    cfg["loggers"]["fs_cli.server"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return cfg
