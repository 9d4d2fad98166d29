"""fs contract / validations / validate: the validation gate from the command line."""

from __future__ import annotations

import sys

import click
from rich.markup import escape

from ..output import console, print_table
from ._context import get_store
from ._output import Listing, Output, output_options


@click.command()
@click.argument("feature_group")
@click.option("--generated-only", is_flag=True, help="Leave out the hand-written <model>.contract.yml part.")
@output_options(json_help="Print the contract as JSON instead of YAML.")
@click.pass_context
def contract(ctx: click.Context, feature_group: str, generated_only: bool) -> Output:
    """Print the Soda data contract of a feature group (generated from its YAML, plus the hand-written part)."""
    store = get_store(ctx)
    c = store.contract(feature_group, generated_only=generated_only)
    return Output(c, show=lambda: sys.stdout.write(store.contract_yaml(feature_group, generated_only)))


@click.command()
@click.argument("feature_group")
@click.option("--limit", type=int, default=5, show_default=True, help="Number of most recent candidates to show.")
@click.option("--failed", is_flag=True, help="Only failed/errored checks.")
@output_options(csv=True)
@click.pass_context
def validations(ctx: click.Context, feature_group: str, limit: int, failed: bool) -> Output:
    """Validation history of a feature group (or feature view): every check of every candidate, newest first."""
    rows = get_store(ctx).validations(feature_group, limit=limit, failed=failed)
    table = [{**r, "check": r["check_name"], "commit": r["commit_id"] if r["commit_id"] is not None else "-",
              "metrics": _short_metrics(r["metrics"])} for r in rows]
    return Listing(data=rows, rows=table,
                   columns=["validated_at", "candidate_id", "commit", "check", "outcome", "message", "metrics"],
                   title=f"validations of {feature_group}",
                   empty=f"no validation results for {feature_group} yet: run `fs run` or `fs validate "
                         f"{feature_group}`")


def _short_metrics(m: dict | None) -> str:
    if not m:
        return ""
    keep = ("missing_count", "invalid_count", "duplicate_count", "failed_rows_count", "psi", "ks_d",
            "wasserstein_norm", "jensen_shannon", "cramers_v", "missing_change", "distinct_values", "failures",
            "freshness_in_hours", "check_rows_tested")
    parts = []
    for k in keep:
        v = m.get(k)
        if v is None:
            continue
        parts.append(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}")
    return " ".join(parts[:4])


@click.command()
@click.argument("name")
@click.option("--reference", help="Drift reference: previous_window, last_commit or commit:N (default: declared).")
@output_options(json_help="Print the report as JSON.")
@click.pass_context
def validate(ctx: click.Context, name: str, reference: str | None) -> Output:
    """Audit a feature group's current candidate (its built dbt model) without publishing it, or check the
    correlation limits (feature-label, pairwise) of a feature view.

    Exits 1 if a check failed or could not run (ERROR). The report is stored like the ones `fs run` writes (`fs validations NAME`).
    """
    ref: object = reference
    if reference and reference.startswith("commit:"):
        try:
            ref = {"commit": int(reference.split(":", 1)[1])}
        except ValueError:
            raise click.BadParameter("use commit:N with a commit id", param_hint="--reference") from None
    report = get_store(ctx).validate(name, reference=ref)

    def tables() -> None:
        print_table([r.to_dict() for r in report.results], ["check", "outcome", "message"],
                    title=f"validation of {report.feature_group} (candidate {report.candidate_id})")
        for r in report.failures:
            console.print(f"[red]FAIL[/] {escape(report.summary(r))}", highlight=False)
        for r in report.errors:  # the check could not run: not a verdict on the data
            console.print(f"[magenta]ERROR[/] {escape(report.summary(r))}", highlight=False)

    return Output(report.to_dict(), show=tables, exit_code=0 if report.passed else 1)
