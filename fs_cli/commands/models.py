"""fs model ...: the model registry (register, list, show, alias, best, validate, lineage, delete), and fs impact."""

from __future__ import annotations

from typing import Any

import click

from ..errors import FeatureStoreError
from ..output import console, print_table
from ._context import get_store
from ._output import Listing, Output, output_options


def _pairs(values: tuple[str, ...], opt: str) -> dict[str, str]:
    out = {}
    for v in values:
        k, sep, val = v.partition("=")
        if not sep or not k.strip():
            raise FeatureStoreError(f"{opt} {v!r} is not KEY=VALUE", fix=f"write e.g. {opt} owner=fraud-team")
        out[k.strip()] = val
    return out


def _registry(ctx: click.Context):
    return get_store(ctx).models


def _version_row(m) -> dict[str, Any]:
    return {
        "model": m.name, "version": m.version, "status": m.status, "aliases": m.aliases, "task": m.task,
        "estimator": (m.estimator_class or "").rsplit(".", 1)[-1],
        "training dataset": f"{m.training_dataset}:{m.training_dataset_version}",
        "validation": (m.validation or {}).get("status"), "created_at": m.created_at,
        "metrics": ", ".join(f"{k}={v:.4g}" for k, v in m.metrics.items()),
        "owner": m.meta.get("owner"),
    }


def print_report(report) -> None:
    """A validation report as tables: metrics, slices, robustness and the gate."""
    skip = lambda k: k.startswith(("worst_slice.", "slice_gap.", "ood."))  # noqa: E731
    print_table([{"metric": k, "value": v} for k, v in report.metrics.items() if not skip(k)],
                ["metric", "value"], title=f"{report.name}:{report.version} on the test split of "
                f"{report.training_dataset}:{report.training_dataset_version} ({report.n_test} rows)")
    if report.slices:
        cols = ["column", "slice", "n", "counted"] + [k for k in report.slices[0] if k not in
                                                      ("column", "slice", "n", "counted")]
        print_table(report.slices, cols, title="metrics per slice")
        print_table([{"metric": k, "value": v} for k, v in report.metrics.items()
                     if k.startswith(("worst_slice.", "slice_gap."))], ["metric", "value"],
                    title="worst slice and max gap (slices with enough rows)")
    print_table([{**o, "result": "ok" if o["ok"] else "FAILED"} for o in report.ood],
                ["kind", "feature", "value", "result", "changed_fraction", "mean_abs_proba_shift", "error"],
                title="robustness to out-of-distribution inputs")
    print_table([{**c, "result": "pass" if c["passed"] else "FAIL"} for c in report.checks],
                ["metric", "bound", "threshold", "value", "result", "note"], title="gate")
    colour = "green" if report.passed else "red"
    console.print(f"validation {report.validation_id} of {report.name}:{report.version}: "
                  f"[bold {colour}]{report.status}[/]", highlight=False)


@click.group("model")
def model() -> None:
    """The model registry: immutable, hash-verified model versions linked to their training data.

    \b
    fs model register fraud_model --path model.skops --training-dataset fv_fraud_detection:1 --meta owner=me
    fs model list | show fraud_model@champion | alias fraud_model 3 champion | best fraud_model --metric auc
    fs model validate fraud_model:3 | lineage fraud_model:3 | delete fraud_model:2 --reason "leak"

    Artifacts are scikit-learn estimators or pipelines saved with skops (.skops: loading runs no code). Pickles
    (.joblib, .pkl) run code when loaded and are refused unless you pass --trust-pickle. Every load re-checks the
    blob's sha256 and allows only what registration trusted.
    """


@model.command()
@click.argument("name")
@click.option("--path", "path", required=True, type=click.Path(dir_okay=False),
              help="The fitted model: skops.io.dump of a scikit-learn estimator or Pipeline (.skops); a pickle "
              "(.joblib/.pkl) only with --trust-pickle.")
@click.option("--training-dataset", "td", required=True, metavar="FV:VERSION",
              help="The training dataset version the model was trained on.")
@click.option("--metrics", help='Metrics measured while training, as JSON: \'{"auc": 0.91}\'.')
@click.option("--description", default="", help="What this version is.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A tag (repeatable).")
@click.option("--meta", "meta", multiple=True, metavar="KEY=VALUE",
              help="Governance metadata (repeatable), e.g. owner=..., intended_use=...")
@click.option("--slice", "slices", multiple=True, metavar="COLUMN",
              help="A training-dataset column to report validation metrics per value of (repeatable).")
@click.option("--transformed", is_flag=True,
              help="The model was trained on the TD's transformed columns (training_dataset(..., transformed=True)).")
@click.option("--validate", "run_validation", is_flag=True, help="Validate right after registering.")
@click.option("--trust-pickle", is_flag=True,
              help="Accept a pickle (.joblib/.pkl): loading it runs code chosen by its author. Only for files "
              "you produced yourself.")
@click.option("--trust-type", "trusted_types", multiple=True, metavar="TYPE",
              help="A type in a .skops file to trust beyond skops' defaults (repeatable), e.g. "
              "sklearn.tree._tree.Tree for tree models; registration names the ones a file needs.")
@output_options(json_help="Print JSON.")
@click.pass_context
def register(ctx: click.Context, name: str, path: str, td: str, metrics: str | None, description: str,
             tags: tuple[str, ...], meta: tuple[str, ...], slices: tuple[str, ...], transformed: bool,
             run_validation: bool, trust_pickle: bool, trusted_types: tuple[str, ...]) -> Output:
    """Register the artifact at --path as the next version of NAME."""
    reg = _registry(ctx)
    m = reg.register(name, path, td, metrics=metrics, description=description, tags=_pairs(tags, "--tag"),
                     meta=_pairs(meta, "--meta"), slices=list(slices), transformed=transformed,
                     trust_pickle=trust_pickle, trusted_types=list(trusted_types))
    report = reg.validate(m.ref) if run_validation else None

    def tell() -> None:
        console.print(f"registered [bold]{m.ref}[/] (sha256 {m.artifact_sha256[:12]}..., trained on "
                      f"{m.training_dataset}:{m.training_dataset_version}, inputs: "
                      f"{', '.join(m.input_columns)})", highlight=False)
        if report:
            print_report(report)

    return Output({"model": m.to_dict(), "validation": report.to_dict() if report else None}, show=tell,
                  exit_code=1 if report and not report.passed else 0)


@model.command("list")
@click.argument("name", required=False)
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Only versions with this tag.")
@click.option("--meta", "meta", multiple=True, metavar="KEY=VALUE", help="Only versions with this metadata.")
@click.option("--search", "text", help="Free text over names, descriptions, tags and metadata.")
@output_options(json_help="Print JSON instead of a table.")
@click.pass_context
def list_models(ctx: click.Context, name: str | None, tags: tuple[str, ...], meta: tuple[str, ...],
                text: str | None) -> Output:
    """List model versions (deleted ones too, marked)."""
    rows = _registry(ctx).list(name, tags=_pairs(tags, "--tag"), meta=_pairs(meta, "--meta"), text=text)
    return Listing(data=[m.to_dict() for m in rows], rows=[_version_row(m) for m in rows],
                   columns=["model", "version", "status", "aliases", "task", "estimator", "training dataset",
                            "validation", "metrics", "owner", "created_at"], title="model registry",
                   empty="no models registered" + (f" under {name}" if name else ""))


@model.command()
@click.argument("ref", metavar="NAME[:VERSION|@ALIAS]")
@output_options(json_help="Print JSON.")
@click.pass_context
def show(ctx: click.Context, ref: str) -> Output:
    """One model version: artifact (hash re-verified), schema, metadata, validations and alias history."""
    reg = _registry(ctx)
    m = reg.info(ref)
    integrity = reg.artifact_integrity(m)
    vals = reg.validations(m.ref)
    history = reg.alias_history(m.name)
    return Output({**m.to_dict(), "artifact_safety": m.artifact_safety, "artifact_integrity": integrity,
                   "validations": vals, "alias_history": history},
                  show=lambda: _show_version(m, integrity, vals, history))


def _show_version(m, integrity: str, vals: list[dict[str, Any]], history: list[dict[str, Any]]) -> None:
    facts = {"version": m.ref, "status": m.status + (f" ({m.deleted_reason})" if m.deleted_reason else ""),
             "aliases": ", ".join(m.aliases), "task": m.task, "estimator": m.estimator_class,
             "training dataset": f"{m.training_dataset}:{m.training_dataset_version}"
             + (" (transformed inputs)" if m.input_transformed else ""),
             "artifact": f"{m.artifact_path} ({m.artifact_bytes} bytes)", "format": m.artifact_safety,
             "sha256": m.artifact_sha256, "integrity": integrity, "created": f"{m.created_at} by {m.created_by}",
             "description": m.description, "label": m.output_schema.get("label"),
             "classes": m.output_schema.get("classes"),
             **{f"meta.{k}": v for k, v in m.meta.items()}, **{f"tag.{k}": v for k, v in m.tags.items()},
             **{f"metric.{k}": v for k, v in m.metrics.items()}}
    print_table([{"field": k, "value": v} for k, v in facts.items()], ["field", "value"], title=m.ref)
    print_table(m.input_schema, ["name", "type"], title="inputs (derived from the training dataset)")
    if vals:
        print_table([{"validation": v["validation_id"], "at": v["validated_at"], "status": v["status"],
                      **{k: x for k, x in (v["metrics"] or {}).items()
                         if k in ("auc", "accuracy", "f1", "log_loss", "rmse", "mae", "r2", "ood.failures")}}
                     for v in vals], ["validation", "at", "status", "auc", "accuracy", "f1", "log_loss", "rmse",
                                      "mae", "r2", "ood.failures"], title="validations")
    if history:
        print_table(history, ["changed_at", "alias", "action", "old_version", "new_version", "changed_by", "reason"],
                    title=f"alias history of {m.name}")


@model.command()
@click.argument("name")
@click.argument("version", type=int)
@click.argument("alias")
@click.option("--reason", help="Why (kept in the alias history).")
@click.option("--force", is_flag=True, help="Allow a version whose latest validation did not pass (logged).")
@output_options(json_help="Print JSON.")
@click.pass_context
def alias(ctx: click.Context, name: str, version: int, alias: str, reason: str | None, force: bool,
) -> Output:
    """Point ALIAS (e.g. champion) of NAME at VERSION (which must have passed validation, unless --force).
    Every change is logged in fs_meta.alias_history."""
    r = _registry(ctx).alias(name, version, alias, reason=reason, force=force)
    return Output(r, show=lambda: console.print(
        f"{name}@{alias}: {r['old_version'] or '-'} -> {r['new_version']} ({r['action']})", highlight=False))


@model.command()
@click.argument("name")
@click.argument("alias")
@click.option("--reason", help="Why (kept in the alias history).")
@output_options(json_help="Print JSON.")
@click.pass_context
def unalias(ctx: click.Context, name: str, alias: str, reason: str | None) -> Output:
    """Remove ALIAS from NAME (logged)."""
    r = _registry(ctx).unalias(name, alias, reason=reason)
    return Output(r, show=lambda: console.print(f"{name}@{alias} removed (was version {r['old_version']})",
                                                highlight=False))


@model.command()
@click.argument("name")
@click.option("--alias", "alias_name", help="Only this alias.")
@output_options(json_help="Print JSON.")
@click.pass_context
def history(ctx: click.Context, name: str, alias_name: str | None) -> Output:
    """The alias history of NAME: every set, move and removal."""
    rows = _registry(ctx).alias_history(name, alias_name)
    return Listing(rows=rows, columns=["changed_at", "alias", "seq", "action", "old_version", "new_version",
                                       "changed_by", "reason"], title=f"alias history of {name}")


@model.command()
@click.argument("name")
@click.option("--metric", required=True, help="Metric name, e.g. auc, log_loss, rmse.")
@click.option("--max/--min", "maximize", default=True, help="Highest (default) or lowest value wins.")
@output_options(json_help="Print JSON.")
@click.pass_context
def best(ctx: click.Context, name: str, metric: str, maximize: bool) -> Output:
    """The active version of NAME with the best METRIC (registered metrics, else its latest validation)."""
    m, value = _registry(ctx).best(name, metric, max=maximize)
    return Output({"model": m.ref, "version": m.version, "metric": metric, "value": value, "aliases": m.aliases},
                  show=lambda: console.print(f"{m.ref}  {metric}={value:.6g}"
                                             + (f"  ({', '.join(m.aliases)})" if m.aliases else ""), highlight=False))


@model.command()
@click.argument("ref", metavar="NAME[:VERSION|@ALIAS]")
@click.option("--slice", "slices", multiple=True, metavar="COLUMN", help="Slice column (repeatable).")
@output_options(json_help="Print JSON.")
@click.pass_context
def validate(ctx: click.Context, ref: str, slices: tuple[str, ...]) -> Output:
    """Validate a version on its training dataset's test split; exit code 1 if a threshold fails."""
    report = _registry(ctx).validate(ref, slices=list(slices))
    return Output(report.to_dict(), show=lambda: print_report(report), exit_code=0 if report.passed else 1)


@model.command()
@click.argument("ref", metavar="NAME[:VERSION|@ALIAS]")
@output_options(json_help="Print JSON.")
@click.pass_context
def lineage(ctx: click.Context, ref: str) -> Output:
    """Provenance: training dataset -> feature view -> feature-group commits -> dbt models and sources."""
    d = _registry(ctx).lineage(ref)
    return Output(d, show=lambda: _show_lineage(d))


def _show_lineage(d: dict[str, Any]) -> None:
    m, td, fv = d["model"], d["training_dataset"], d["feature_view"]
    console.print(f"[bold]{m['name']}:{m['version']}[/] (sha256 {m['artifact_sha256'][:12]}...)\n"
                  f"  <- training dataset [bold]{td['feature_view']}:{td['version']}[/] created {td['created_at']}"
                  f" as_of {td['as_of'] or 'latest'} hash {td['content_hash']}\n"
                  f"  <- feature view [bold]{fv['name']}[/] ({fv['relation'] or 'not in the project any more'})",
                  highlight=False)
    print_table(d["feature_group_commits"], ["feature_group", "commit_id", "commit_time", "inserted", "updated",
                                             "deleted", "rows"], title="feature-group commits read")
    print_table(d["dbt_nodes"], ["depth", "type", "name"], title="upstream dbt nodes")
    console.print(f"sources and seeds: {', '.join(d['sources']) or '(none)'}", highlight=False)


@model.command()
@click.argument("ref", metavar="NAME[:VERSION|@ALIAS]")
@click.option("--since", help="Score spine rows at or after this time.")
@click.option("--until", help="Score spine rows before this time.")
@click.option("--as-of", help="Read the feature groups as published at this commit time (default: now).")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the scores to this .parquet or .csv file.")
@output_options(json_help="Print the scores as JSON.")
@click.pass_context
def score(ctx: click.Context, ref: str, since: str | None, until: str | None, as_of: str | None, out: str | None,
) -> Output:
    """Batch inference: score the model's feature view with a registered (hash-verified) model."""
    from pathlib import Path

    df = _registry(ctx).score(ref, since=since, until=until, as_of=as_of)
    if out:
        p = Path(out)
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.suffix.lower() == ".csv":
            df.to_csv(p, index=False)
        else:
            df.to_parquet(p, index=False)

    def top() -> None:
        head = df.sort_values("score", ascending=False) if "score" in df.columns else df
        print_table(head.head(10).to_dict(orient="records"), list(df.columns),
                    title=f"{len(df)} rows scored by {df['model'].iloc[0]}" + (f", written to {out}" if out else "")
                    + (" (top 10 by score)" if "score" in df.columns else ""))

    return Output(df.to_dict(orient="records"), show=top)


@model.command()
@click.argument("ref", metavar="NAME:VERSION")
@click.option("--reason", help="Why (kept with the tombstone).")
@output_options(json_help="Print JSON.")
@click.pass_context
def delete(ctx: click.Context, ref: str, reason: str | None) -> Output:
    """Tombstone a version: it can no longer be loaded or aliased. Its bytes and metadata are kept."""
    m = _registry(ctx).delete(ref, reason=reason)
    return Output(m.to_dict(), show=lambda: console.print(
        f"{m.ref} deleted (tombstone recorded at {m.deleted_at}; artifact kept)", highlight=False))


@click.command()
@click.argument("feature_group")
@output_options(json_help="Print JSON.")
@click.pass_context
def impact(ctx: click.Context, feature_group: str) -> Output:
    """What used FEATURE_GROUP: feature views, training datasets and models."""
    d = _registry(ctx).impact(feature_group)
    return Output(d, show=lambda: _show_impact(d))


def _show_impact(d: dict[str, Any]) -> None:
    console.print(f"[bold]{d['feature_group']}[/] feeds feature views: {', '.join(d['feature_views']) or '(none)'}",
                  highlight=False)
    print_table(d["training_datasets"], ["training_dataset", "commit_ids", "created_at"],
                title="training datasets that read it")
    print_table(d["models"], ["model", "status", "aliases", "training_dataset", "commit_ids"],
                title="models trained on it")
