"""fs keys create|list|revoke: scoped API keys of the online service, stored hashed (fs_cli/access.py)."""

from __future__ import annotations

import click

from ..errors import FeatureStoreError
from ..output import console, err_console
from ..sdk import FeatureStore, create_api_key, list_api_keys, revoke_api_key
from ._context import get_store
from ._output import Listing, Output, output_options


def _store(ctx: click.Context) -> FeatureStore | None:
    """The project, when there is one (a serving host may have only the key file: then no catalog check)."""
    try:
        store = get_store(ctx)
        store.project.state_dir  # noqa: B018 - a missing project shows here
    except FeatureStoreError:
        return None
    return store


@click.group("keys")
def keys() -> None:
    """Scoped API keys of `fs serve` / `fs ui`, stored hashed in .fs/api_keys.json.

    \b
    Each key reads the feature views / feature groups it is created for, and nothing else: a request
    outside its scope gets 403 (401 without a valid key). Features declared `pii: true` are served only
    to keys created with --pii (a request for one gets 403, never an answer without them).
    The secret is printed once by `fs keys create`; the file keeps only its SHA-256 (mode 0600).
    A running server re-reads the file when it changes: `fs keys revoke` takes effect within a second.
    File: $FS_API_KEYS_FILE, else the project's .fs/api_keys.json. Keys in $FS_API_KEYS (plain text in
    the environment) still work, with full access.
    """


@keys.command("create")
@click.argument("name")
@click.option("--feature-view", "feature_views", multiple=True, metavar="FV",
              help="A feature view it may read (repeatable; '*' = all).")
@click.option("--feature-group", "feature_groups", multiple=True, metavar="FG",
              help="A feature group it may read, alone or in any view (repeatable; '*' = all).")
@click.option("--push", is_flag=True, help="It may also write its feature groups (POST /push, /write-to-online-store).")
@click.option("--pii", is_flag=True, help="It may receive features declared `pii: true`.")
@click.option("--metrics", is_flag=True, help="It may read /metrics (and the served versions on /ready).")
@click.option("--admin", is_flag=True, help="Everything, including the web UI and /metrics.")
@output_options(json_help="Print the key (and its secret) as JSON.")
@click.pass_context
def create(ctx: click.Context, name: str, feature_views: tuple[str, ...], feature_groups: tuple[str, ...], push: bool,
           pii: bool, metrics: bool, admin: bool) -> Output:
    """Create an API key and print its secret (once: it is stored only as a hash).

    \b
    fs keys create fraud-model --feature-view fraud_v1
    fs keys create ingest --feature-group fg_transactions --push
    curl -H "x-api-key: SECRET" http://127.0.0.1:6566/feature-views/fraud_v1/vector?customer_id=42
    """
    entry, secret, path = create_api_key(_store(ctx), name, feature_views, feature_groups, push=push, pii=pii,
                                         metrics=metrics, admin=admin)

    def show() -> None:
        console.print(secret, highlight=False, soft_wrap=True)
        err_console.print(f"API key {name!r} added to {path}. This is the only time its secret is shown: store "
                          "it now (send it as x-api-key or Authorization: Bearer).", highlight=False)

    return Output({**entry, "secret": secret, "file": str(path)}, show=show)


@keys.command("list")
@output_options(csv=True)
@click.pass_context
def list_cmd(ctx: click.Context) -> Listing:
    """The API keys: names and scopes (never secrets or hashes)."""
    rows, path = list_api_keys(_store(ctx))
    table = [{**r, **{k: ", ".join(r[k]) for k in ("feature_views", "feature_groups", "push")}} for r in rows]
    return Listing(rows=rows, table_rows=table, title=f"API keys ({path})",
                   columns=["name", "feature_views", "feature_groups", "push", "pii", "metrics", "admin",
                            "created_at"], empty=f"no API keys in {path} (fs keys create NAME ...)")


@keys.command("revoke")
@click.argument("name")
@output_options()
@click.pass_context
def revoke(ctx: click.Context, name: str) -> Output:
    """Revoke an API key: running servers refuse it within a second, without a restart."""
    entry, path = revoke_api_key(_store(ctx), name)
    return Output({**entry, "revoked": True, "file": str(path)},
                  show=lambda: console.print(f"revoked API key {name!r} ({path})", highlight=False))
