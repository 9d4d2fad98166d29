"""fs list / describe / search: feature discovery from the catalog."""

from __future__ import annotations

import click

from ..output import console, print_json, print_table


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool) -> None:
    """List feature groups and feature views, with their latest commit and row count."""
    from ..cli import get_store

    rows = get_store(ctx).list()
    if as_json:
        print_json(rows)
        return
    for r in rows:
        lc = r.get("latest_commit")
        r["latest commit"] = f"#{lc['commit_id']} {lc['commit_time'][:19]}" if lc else ""
    print_table(rows, ["name", "kind", "entities", "features", "online", "ttl", "owner", "tags", "latest commit",
                       "rows"], title="feature store catalog")


@click.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_context
def describe(ctx: click.Context, name: str, as_json: bool) -> None:
    """Describe a feature group (features, keys, TTL, owner, lineage, commits) or a feature view."""
    from ..cli import get_store

    d = get_store(ctx).describe(name)
    if as_json:
        print_json(d)
        return
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
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def search(ctx: click.Context, text: str, as_json: bool) -> None:
    """Find features, feature groups and views whose name, description, tags or owner contain TEXT."""
    from ..cli import get_store

    hits = get_store(ctx).search(text)
    if as_json:
        print_json(hits)
        return
    if not hits:
        console.print(f"no feature, feature group or view matches {text!r}", highlight=False)
        return
    print_table(hits, ["kind", "feature_group", "name", "data_type", "description"], title=f"matches for {text!r}")
