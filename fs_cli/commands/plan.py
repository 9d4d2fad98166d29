"""fs plan: the project against the deployed manifest, before it is deployed (the CI gate of a pull request)."""

from __future__ import annotations

from typing import Any

import click

from ..output import console, err_console, print_table
from ._context import get_store
from ._output import Output, output_options


@click.command()
@click.option("--state", "state", metavar="PATH", type=click.Path(),
              help="The deployed (production) manifest: a folder holding manifest.json, or the file.")
@output_options()
@click.pass_context
def plan(ctx: click.Context, state: str | None) -> Output:
    """Compare the project with the deployed manifest: what changes, what depends on it, what would break.

    \b
    Lists added, changed and removed feature groups, features (with their
    types) and feature views; for each changed or removed one, the training
    datasets, models (with aliases) and served views that use it.
    \b
    Exit codes:
      0  no breaking change
      1  a change drops or retypes a feature used by an aliased model or a
         served view, or changes a published group's key in place (publish
         a new version instead: a dbt model version or a new model name)
      2  bad usage: missing or invalid --state, invalid declarations
    """
    result = get_store(ctx).plan(state)
    return Output(result.to_dict(), show=lambda: _show(result.to_dict()), exit_code=result.exit_code)


def _downstream(c: dict[str, Any]) -> str:
    parts = []
    for key, label in (("feature_views", "views"), ("training_datasets", "TDs"), ("models", "models"),
                       ("served_views", "served")):
        if c[key]:
            parts.append(f"{label}: {', '.join(c[key])}")
    return "; ".join(parts)


def _show(d: dict[str, Any]) -> None:
    s = d["summary"]
    if d["changes"]:
        rows = [{**c, "breaking": "BREAKING" if c["breaking"] else "", "downstream": _downstream(c)}
                for c in d["changes"]]
        print_table(rows, ["change", "kind", "name", "detail", "downstream", "breaking"],
                    title=f"plan against {d['state']}")
    else:
        console.print(f"no change against {d['state']}", highlight=False)
    for note in d["notes"]:
        err_console.print(f"[yellow]note:[/] {note}", highlight=False)
    for c in d["changes"]:
        for why in c["breaking"]:
            console.print(f"[bold red]breaking:[/] {why}", highlight=False)
    console.print(f"{s['added']} added, {s['changed']} changed, {s['removed']} removed; "
                  f"{s['breaking']} breaking", highlight=False)
