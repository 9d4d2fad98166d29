"""fs training-dataset create/list/show/export: versioned, point-in-time correct training datasets."""

from __future__ import annotations

import click

from ..output import console, print_json, print_table
from ..training import SPLIT_HELP, parse_ref


@click.group("training-dataset")
def training_dataset() -> None:
    """Immutable, numbered training datasets of a feature view (point-in-time join over its label spine).

    \b
    fs training-dataset create fv_fraud_detection --split random:0.8,0.2:42
    fs training-dataset create fv_fraud_detection --as-of "2026-01-15 00:00:00"   # as the store knew it then
    fs training-dataset list [FV] [--json]
    fs training-dataset show fv_fraud_detection:1
    fs training-dataset export fv_fraud_detection:1 --out td.parquet [--split train]
    """


def _summary(td) -> dict:
    return {
        "ref": td.ref, "created_at": td.created_at, "as_of": td.as_of, "read_at": td.read_at,
        "rows": td.rows, "splits": ", ".join(f"{k} {v}" for k, v in td.row_counts.items()),
        "split": td.split.get("spec"), "features": len(td.features),
        "spine": f"{td.spine_start} .. {td.spine_end}",
        "fg_commits": ", ".join(f"{c['feature_group']}#{c['commit_id']}" for c in td.fg_commits),
        "content_hash": td.content_hash[:16], "description": td.description or "",
    }


@training_dataset.command()
@click.argument("feature_view")
@click.option("--as-of", help="Commit time (ISO 8601, UTC) to read the feature groups at; default: now.")
@click.option("--split", "split", help=f"How to split rows: {SPLIT_HELP}. Default: none (all train).")
@click.option("--description", help="A note stored with the version.")
@click.option("--json", "as_json", is_flag=True, help="Print the new version's metadata as JSON.")
@click.pass_context
def create(ctx: click.Context, feature_view: str, as_of: str | None, split: str | None, description: str | None,
           as_json: bool) -> None:
    """Materialize the next version of FEATURE_VIEW's training dataset (never overwrites one)."""
    from ..cli import get_store

    with console.status(f"building a training dataset of {feature_view}", spinner="dots"):
        td = get_store(ctx).create_training_dataset(feature_view, as_of=as_of, split=split, description=description)
    if as_json:
        print_json(td.to_dict())
        return
    console.print(f"created training dataset [bold]{td.ref}[/] in table {td.table}: {td.rows} rows "
                  f"({', '.join(f'{k} {v}' for k, v in td.row_counts.items())}), sha256 {td.content_hash[:16]}...",
                  highlight=False)


@training_dataset.command("list")
@click.argument("feature_view", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def list_cmd(ctx: click.Context, feature_view: str | None, as_json: bool) -> None:
    """List training dataset versions (of one feature view, or all)."""
    from ..cli import get_store

    tds = get_store(ctx).training_datasets(feature_view)
    if as_json:
        print_json([td.to_dict() for td in tds])
        return
    if not tds:
        console.print("no training datasets yet: `fs training-dataset create FEATURE_VIEW`", highlight=False)
        return
    print_table([_summary(td) for td in tds],
                ["ref", "created_at", "as_of", "rows", "splits", "features", "fg_commits", "content_hash"],
                title="training datasets")


@training_dataset.command()
@click.argument("ref", metavar="FEATURE_VIEW[:VERSION]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_context
def show(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Show one version (default: the latest): commits read, time range, split, counts, features, hash."""
    from ..cli import get_store

    fv, version = parse_ref(ref)
    td = get_store(ctx).training_dataset_info(fv, version)
    if as_json:
        print_json(td.to_dict())
        return
    facts = _summary(td)
    facts.update(table=td.table, content_hash=td.content_hash, labels=", ".join(td.labels),
                 spine_model=td.spine_model)
    print_table([{"field": k, "value": v} for k, v in facts.items()], ["field", "value"], title=td.ref)
    print_table(td.fg_commits, ["feature_group", "commit_id", "commit_time"], title="feature-group commits read")
    print_table(td.columns, ["name", "type", "role", "feature_group"], title="columns")


@training_dataset.command()
@click.argument("ref", metavar="FEATURE_VIEW[:VERSION]")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="File to write (.parquet or .csv).")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), help="Default: from --out's suffix.")
@click.option("--split", help="Export one split only (e.g. train).")
@click.pass_context
def export(ctx: click.Context, ref: str, out: str, fmt: str | None, split: str | None) -> None:
    """Export a version (default: the latest) to Parquet or CSV, in its canonical row order."""
    from ..cli import get_store

    fv, version = parse_ref(ref)
    td, n = get_store(ctx).export_training_dataset(fv, out, version=version, format=fmt, split=split)
    console.print(f"wrote {n} rows of {td.ref}{f' ({split})' if split else ''} to {out}", highlight=False)
