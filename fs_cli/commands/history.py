"""fs commits / read: the commit log and time travel."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import FeatureStoreError
from ..output import console
from ._context import get_store
from ._output import Listing, Output, output_options


@click.command()
@click.argument("feature_group")
@output_options(csv=True)
@click.pass_context
def commits(ctx: click.Context, feature_group: str) -> Output:
    """The commit log of a feature group: every publish that changed data.

    \b
    validation: `passed` (a passing validation-gate run is linked to the commit), `failed` (published under policy
    `warn` despite failing checks) or `none` (published without fs validation, e.g. by plain `dbt snapshot`)."""
    log = [c.to_dict() for c in get_store(ctx).commits(feature_group)]

    def unvalidated_note() -> None:
        unvalidated = [str(c["commit_id"]) for c in log if not c.get("validated")]
        if unvalidated:
            console.print(f"commit(s) {', '.join(unvalidated)} carry no passing validation run: published outside "
                          "`fs run`'s gate (plain dbt) or under policy `warn`; see `fs validations "
                          f"{feature_group}`", style="yellow", highlight=False)

    return Listing(rows=log, columns=["commit_id", "commit_time", "inserted", "updated", "deleted", "rows",
                                      "validation", "run_id"],
                   title=f"commits of {feature_group}", empty=f"{feature_group} has no commits yet: run `fs run`",
                   after=unvalidated_note)


@click.command()
@click.argument("feature_group")
@click.option("--as-of", help="Commit time to read at (ISO 8601): the FG as it was published then.")
@click.option("--commit", "commit_id", type=int, help="Commit id to read (see `fs commits FG`).")
@click.option("--out", type=click.Path(dir_okay=False), help="Write to a .parquet or .csv file instead of printing.")
@click.option("--limit", type=int, default=20, show_default=True, help="Rows to print (not applied to --out).")
@output_options(csv=True, json_help="Print rows as JSON.")
@click.pass_context
def read(ctx: click.Context, feature_group: str, as_of: str | None, commit_id: int | None, out: str | None,
         limit: int) -> Output | None:
    """Read a feature group as published now, at a commit, or as of a time (time travel)."""
    if out:
        suffix = Path(out).suffix.lower()
        if suffix not in (".parquet", ".csv"):
            raise FeatureStoreError(f"--out {out}: unknown format {suffix!r}", fix="use a .parquet or .csv file name")
    table = get_store(ctx).read(feature_group, as_of=as_of, commit=commit_id, format="arrow")
    if out:
        if out.lower().endswith(".parquet"):
            import pyarrow.parquet as pq

            pq.write_table(table, out)
        else:
            import pyarrow.csv as pacsv

            pacsv.write_csv(table, out)
        console.print(f"wrote {table.num_rows} rows of {feature_group} to {out}", highlight=False)
        return None
    rows = table.slice(0, limit).to_pylist()
    return Listing(rows=rows, columns=table.column_names,
                   title=f"{feature_group} ({table.num_rows} rows, first {len(rows)})")
