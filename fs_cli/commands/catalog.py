"""fs list / describe / search: feature discovery from the catalog."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape

from ..output import console, err_console, print_json, print_table
from ._context import get_store
from ._output import Listing, Output, output_options


@click.command("list")
@output_options(csv=True)
@click.pass_context
def list_cmd(ctx: click.Context) -> Output:
    """List feature groups and feature views, with their latest commit and row count."""
    rows = get_store(ctx).list()
    shown = []
    for r in rows:
        lc = r.get("latest_commit")
        shown.append({**r, "latest commit": f"#{lc['commit_id']} {lc['commit_time'][:19]}" if lc else ""})
    invalid = [r for r in rows if r["kind"] == "invalid"]

    def invalid_note() -> None:  # the others are listed; the broken ones say what is wrong
        for r in invalid:
            err_console.print(f"[yellow]WARN[/] {escape(r['name'])}: {escape(r['description'])}", highlight=False)

    return Listing(rows=rows, table_rows=shown, title="feature store catalog",
                   columns=["name", "kind", "entities", "features", "online", "ttl", "owner", "tags", "latest commit",
                            "rows"], after=invalid_note)


@click.command()
@click.argument("name")
@output_options(json_help="Print JSON instead of tables.")
@click.pass_context
def describe(ctx: click.Context, name: str) -> Output:
    """Describe a feature group (features, keys, TTL, owner, lineage, commits) or a feature view."""
    d = get_store(ctx).describe(name)
    return Output(d, show=lambda: _show_description(d))


def _show_description(d: dict[str, Any]) -> None:
    if d["kind"] == "feature_view":
        console.print(f"[bold]{d['name']}[/] (feature view) - {d['description']}")
        print_json(d["spec"])
        return
    console.print(f"[bold]{d['name']}[/] - {d['description']}", highlight=False)
    facts = {
        "entities": ", ".join(d["entities"]), "primary key": ", ".join(d["primary_key"]),
        "event time": d["event_time"], "created time": d["created_time"] or "", "online": d["online"],
        "ttl": d["ttl"], "owner": d["owner"], "tags": ", ".join(d["tags"]), "policy": d["policy"],
        "snapshot": d["snapshot"], "defined in": d["path"], "upstream sources": ", ".join(d["sources"]),
        "rows": d["rows"], "commits": d["commits"],
    }
    print_table([{"field": k, "value": v} for k, v in facts.items()], ["field", "value"])
    print_table(d["features"], ["name", "data_type", "pii", "description"], title="features")
    if d["commit_log"]:
        print_table(d["commit_log"][-5:], ["commit_id", "commit_time", "inserted", "updated", "deleted", "rows"],
                    title="latest commits")
    if d.get("cost"):
        print_table(d["cost"], ["recorded_at", "build_seconds", "test_seconds", "validation_seconds", "rows",
                                "bytes_estimate"], title="cost per run (latest first)")
    print_table(d["lineage"], ["depth", "type", "name"], title="lineage (upstream)")


@click.command()
@click.argument("text")
@output_options(csv=True)
@click.pass_context
def search(ctx: click.Context, text: str) -> Output:
    """Find features, feature groups and views whose name, description, tags or owner contain TEXT."""
    return Listing(rows=get_store(ctx).search(text), columns=["kind", "feature_group", "name", "data_type",
                                                              "description"],
                   title=f"matches for {text!r}", empty=f"no feature, feature group or view matches {text!r}")
