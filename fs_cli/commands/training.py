"""fs training-dataset create/list/show/export: versioned, point-in-time correct training datasets."""

from __future__ import annotations

from datetime import datetime

import click

from ..output import console, print_table
from ..sdk import SPLIT_HELP, parse_ref
from ._context import get_store
from ._output import Listing, Output, output_options


@click.group("training-dataset")
def training_dataset() -> None:
    """Immutable, numbered training datasets of a feature view (point-in-time join over its label spine).

    \b
    fs training-dataset create fv_fraud_detection --split random:0.8,0.2:42
    fs training-dataset create fv_fraud_detection --as-of "$T"
        # as the store knew it at commit time T: a commit_time from `fs commits FG`
        # at full precision, e.g. "2026-12-01 10:00:00.123456" (not a date inside the data)
    fs training-dataset list [FV] [--json]
    fs training-dataset show fv_fraud_detection:1
    fs training-dataset export fv_fraud_detection:1 --out td.parquet [--split train]
    """


def _exact(t):
    """A commit time at full precision (microseconds): pasted back into `--as-of`, it reads the same commits."""
    return t.isoformat(sep=" ", timespec="microseconds") if isinstance(t, datetime) else t


def _summary(td) -> dict:
    return {
        "ref": td.ref, "created_at": td.created_at, "as_of": _exact(td.as_of), "read_at": _exact(td.read_at),
        "rows": td.rows, "splits": ", ".join(f"{k} {v}" for k, v in td.row_counts.items()),
        "split": td.split.get("spec"), "features": len(td.features),
        "spine": f"{td.spine_start} .. {td.spine_end}, " + (
            "read as of read_at (a snapshot)" if td.spine_read == "as_of" else "read live at created_at"),
        "fg_commits": ", ".join(f"{c['feature_group']}#{c['commit_id']}" for c in td.fg_commits),
        "content_hash": td.content_hash[:16], "description": td.description or "",
    }


@training_dataset.command()
@click.argument("feature_view")
@click.option("--as-of", help="Commit time (ISO 8601, UTC; see `fs commits FG`) to read the feature groups at, "
              "not a date inside the data; default: now.")
@click.option("--split", "split", help=f"How to split rows: {SPLIT_HELP}. Default: none (all train).")
@click.option("--description", help="A note stored with the version.")
@output_options(json_help="Print the new version's metadata as JSON.")
@click.pass_context
def create(ctx: click.Context, feature_view: str, as_of: str | None, split: str | None,
           description: str | None) -> Output:
    """Materialize the next version of FEATURE_VIEW's training dataset (never overwrites one)."""
    with console.status(f"building a training dataset of {feature_view}", spinner="dots"):
        td = get_store(ctx).create_training_dataset(feature_view, as_of=as_of, split=split, description=description)
    return Output(td.to_dict(), show=lambda: console.print(
        f"created training dataset [bold]{td.ref}[/] in table {td.table}: {td.rows} rows "
        f"({', '.join(f'{k} {v}' for k, v in td.row_counts.items())}), sha256 {td.content_hash[:16]}...",
        highlight=False))


@training_dataset.command("list")
@click.argument("feature_view", required=False)
@output_options(csv=True)
@click.pass_context
def list_cmd(ctx: click.Context, feature_view: str | None) -> Output:
    """List training dataset versions (of one feature view, or all)."""
    tds = get_store(ctx).training_datasets(feature_view)
    return Listing(data=[td.to_dict() for td in tds], rows=[_summary(td) for td in tds],
                   columns=["ref", "created_at", "as_of", "rows", "splits", "features", "fg_commits", "content_hash"],
                   title="training datasets",
                   empty="no training datasets yet: `fs training-dataset create FEATURE_VIEW`")


@training_dataset.command()
@click.argument("ref", metavar="FEATURE_VIEW[:VERSION]")
@output_options(json_help="Print JSON instead of tables.")
@click.pass_context
def show(ctx: click.Context, ref: str) -> Output:
    """Show one version (default: the latest): commits read, time range, split, counts, features, hash."""
    fv, version = parse_ref(ref)
    td = get_store(ctx).training_dataset_info(fv, version)

    def tables() -> None:
        facts = _summary(td)
        facts.update(table=td.table, content_hash=td.content_hash, labels=", ".join(td.labels),
                     spine_model=td.spine_model)
        print_table([{"field": k, "value": v} for k, v in facts.items()], ["field", "value"], title=td.ref)
        commits = [{**c, "commit_time": _exact(c.get("commit_time"))} for c in td.fg_commits]
        print_table(commits, ["feature_group", "commit_id", "commit_time"], title="feature-group commits read")
        print_table(td.columns, ["name", "type", "role", "feature_group"], title="columns")

    return Output(td.to_dict(), show=tables)


@training_dataset.command()
@click.argument("ref", metavar="FEATURE_VIEW[:VERSION]")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="File to write (.parquet or .csv).")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), help="Default: from --out's suffix.")
@click.option("--split", help="Export one split only (e.g. train).")
@click.pass_context
def export(ctx: click.Context, ref: str, out: str, fmt: str | None, split: str | None) -> None:
    """Export a version (default: the latest) to Parquet or CSV, in its canonical row order."""
    fv, version = parse_ref(ref)
    td, n = get_store(ctx).export_training_dataset(fv, out, version=version, format=fmt, split=split)
    console.print(f"wrote {n} rows of {td.ref}{f' ({split})' if split else ''} to {out}", highlight=False)
