"""fs ui: the read-only web UI over the project's warehouse (catalog, commits, validation, drift, training datasets,
models, monitoring), each page also as JSON at <page>.json."""

from __future__ import annotations

import os
import sys

import click

from ..output import err_console
from ..sdk import serving_key_file
from ._context import get_store


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8890, show_default=True, type=click.IntRange(1, 65535), help="Port.")
@click.option("--access-log/--no-access-log", default=False, show_default=True, help="uvicorn's per-request log.")
@click.pass_context
def ui(ctx: click.Context, host: str, port: int, access_log: bool) -> None:
    """Browse the feature store in a web browser: a read-only UI at http://HOST:PORT/ui/.

    \b
    A separate app from `fs serve`: the UI reads the warehouse (commits, validation results, training
    datasets, the model registry), which the online service never opens. To add it to `fs serve` instead,
    set FS_UI_PROJECT_DIR=<project dir>. API keys as for `fs serve`: FS_API_KEYS=key1,key2, or keys
    from `fs keys create NAME --admin` (a scoped key without --admin gets 403 here). curl: the x-api-key
    header; a browser: open /ui/?key=KEY once, a cookie keeps it.
    Nothing is loaded from the network: pages are server-rendered HTML with inline SVG charts.
    """
    import uvicorn

    store = get_store(ctx)
    store.catalog  # noqa: B018 - a broken project fails here, with its message, not on the first page view
    os.environ["FS_PROJECT_DIR"] = str(store.project.dir)
    os.environ["FS_TARGET"] = store.project.target
    key_file = serving_key_file(store)  # scoped keys: only `--admin` ones open the UI
    if key_file is not None:
        os.environ["FS_API_KEYS_FILE"] = str(key_file)
    keys = "on" if os.environ.get("FS_API_KEYS") or key_file is not None else "off"
    err_console.print(f"fs ui: http://{host}:{port}/ui/ (project {store.project.dir}, target {store.project.target}; "
                      f"API keys {keys})", highlight=False)
    # An import string, not the app object: commands reach the package only through the SDK (test_architecture).
    uvicorn.run("fs_cli.ui.app:app_from_env", factory=True, host=host, port=port, access_log=access_log,
                log_level="warning")
    sys.exit(0)
