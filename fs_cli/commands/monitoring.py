"""fs monitor | check | model score --spine: thin adapters over the SDK's monitoring methods (fs_cli/monitoring)."""

from __future__ import annotations

from typing import Any

import click

from ..output import console, print_json, print_table
from ._context import get_store
from ._output import Listing, Output, output_options


@click.command()
@click.argument("feature_view")
@click.option("--training-dataset", "td_version", type=int, help="Training dataset version to compare with "
              "(default: the latest).")
@click.option("--window", help="Logged vectors of the last WINDOW before --until/--now (e.g. 1d, 6h).")
@click.option("--since", help="Logged vectors at or after this time (overrides --window).")
@click.option("--until", help="Logged vectors before this time (default: now).")
@click.option("--now", help="The clock (naive UTC), for reproducible runs.")
@click.option("--source", type=click.Choice(["all", "served", "predicted"]), default="all", show_default=True,
              help="Served-vector logs, batch-prediction logs, or both.")
@output_options()
@click.pass_context
def monitor(ctx: click.Context, feature_view: str, td_version: int | None, window: str | None, since: str | None,
            until: str | None, now: str | None, source: str) -> Output:
    """Model feature drift: logged vectors vs the training dataset, per feature. Exit 1 naming drifted features."""
    report = get_store(ctx).monitor(feature_view, td_version, window=window, since=since, until=until, now=now,
                                    source=source)

    def show() -> None:
        rows = [{"feature": f.feature, "kind": f.kind, "status": f.status, "n_cur": f.n_cur,
                 **{k: f.stats.get(k) for k in ("psi", "ks_d", "wasserstein_norm", "jensen_shannon",
                                                "missing_change")},
                 "exceeded": f.exceeded} for f in report.features]
        print_table(rows, list(rows[0]) if rows else ["feature"],
                    title=f"{feature_view} vs training dataset v{report.training_dataset_version}: "
                          f"{report.vectors} logged vectors ({report.source}), window "
                          f"[{report.window_start or '-'}, {report.window_end})")
        if report.drifted:
            console.print(f"[bold red]drift:[/] {', '.join(report.drifted)}", highlight=False)
        else:
            console.print("no drift above the thresholds", highlight=False)

    return Output(report.to_dict(), show=show, exit_code=1 if report.drifted else 0)


@click.command()
@click.argument("feature_groups", nargs=-1)
@click.option("--now", help="The clock (naive UTC), for reproducible runs.")
@click.option("--webhook", help="POST the result as JSON to this URL.")
@click.option("--store-url", help="Online store URL (default: FS_ONLINE_STORE or .fs/online_store.sqlite).")
@output_options(csv=True)
@click.pass_context
def check(ctx: click.Context, feature_groups: tuple[str, ...], now: str | None, webhook: str | None,
          store_url: str | None) -> Output:
    """Freshness (read-only, cron-safe): last commit and online copy of each feature group vs its declared
    `freshness`. Exit 0: all fresh; 1: something stale or never published; 2: usage error."""
    report = get_store(ctx).check_freshness(list(feature_groups) or None, now=now, store_url=store_url,
                                            webhook=webhook)
    rows = [r.to_dict() for r in report.results]
    return Listing({"ok": report.ok, "results": rows}, rows=rows, title="freshness",
                   columns=["feature_group", "target", "status", "last", "age_seconds", "max_age_seconds"],
                   exit_code=0 if report.ok else 1)


def _extend_score(score: click.Command) -> None:
    """`fs model score MODEL --spine X`: score any spine (dbt model or file) with point-in-time features; without
    --spine the command behaves as before (the view's own labelled spine)."""
    if any(p.name == "spine" for p in score.params):
        return
    original = score.callback
    score.params.append(click.Option(["--spine"], help="Score these rows instead of the view's spine: a dbt model "
                                     "or a .parquet/.csv file with the view's key and timestamp columns (logged to "
                                     ".fs/predictions/)."))
    score.params.append(click.Option(["--no-log"], is_flag=True, help="With --spine: do not log the predictions."))

    @click.pass_context
    def callback(ctx: click.Context, spine: str | None, no_log: bool, **kwargs: Any):
        if spine is None:
            return ctx.invoke(original, **kwargs)
        df = get_store(ctx).score_spine(kwargs["ref"], spine, as_of=kwargs.get("as_of"), log=not no_log)
        out = kwargs.get("out")
        if out:
            from pathlib import Path

            p = Path(out)
            p.parent.mkdir(parents=True, exist_ok=True)
            df.to_csv(p, index=False) if p.suffix.lower() == ".csv" else df.to_parquet(p, index=False)
        if kwargs.get("as_json"):
            print_json(df.to_dict(orient="records"))
            return None
        cols = [c for c in ("row_id", "prediction", "score", "model") if c in df.columns]
        print_table(df.head(10).to_dict(orient="records"), cols,
                    title=f"{len(df)} spine rows scored" + (f", written to {out}" if out else ""))
        return None

    score.callback = callback


@click.command("model-monitor")
@click.argument("ref", metavar="MODEL[:V|@ALIAS]")
@click.option("--window", default="1d", show_default=True, help="Window span (e.g. 1d, 6h, 7d) over the "
              "predictions' spine time.")
@click.option("--labels", help="Labels that arrived later: a dbt model or a .parquet/.csv file with row_id, or the "
              "view's keys + spine timestamp, and the label column (default: the view's label spine).")
@click.option("--since", help="Predictions at or after this spine time (windows are aligned on it).")
@click.option("--until", help="Predictions before this spine time.")
@click.option("--now", help="The clock (naive UTC) recorded with the results.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False), help="Also write the HTML report here.")
@output_options()
@click.pass_context
def model_monitor(ctx: click.Context, ref: str, window: str, labels: str | None, since: str | None,
                  until: str | None, now: str | None, html_out: str | None) -> Output:
    """Concept drift: logged predictions joined with late labels; metrics per window and slice (stored in
    fs_meta.model_monitoring). Exit 1 when a window is below the model's thresholds."""
    fs = get_store(ctx)
    report = fs.monitor_model(ref, window=window, labels=labels, since=since, until=until, now=now)
    if html_out:
        fs.report(html_out, models=[report.model])

    def show() -> None:
        metric_names = list(report.thresholds) or ["accuracy"]
        rows = [{"window_start": w.start, "n": w.n, "status": w.status,
                 **{m: w.metrics.get(m) for m in metric_names},
                 "failed": [c["metric"] for c in w.checks if not c["passed"]]} for w in report.windows]
        print_table(rows, list(rows[0]) if rows else ["window_start"],
                    title=f"{report.model}: {report.labelled} of {report.predictions} logged predictions labelled "
                          f"({report.labels}), windows of {report.window}")
        bounds = "; ".join(f"{m} {b}" for m, b in report.thresholds.items())
        baseline = ", ".join(f"{m}={report.baseline.get(m)}" for m in report.thresholds)
        console.print(f"thresholds: {bounds} (baseline: {baseline})", highlight=False)
        if report.failing:
            console.print(f"[bold red]below thresholds:[/] windows starting "
                          f"{', '.join(str(w.start) for w in report.failing)}", highlight=False)
        else:
            console.print("every window with enough labels meets the thresholds", highlight=False)
        if html_out:
            console.print(f"report: {html_out}", highlight=False)

    return Output(report.to_dict(), show, exit_code=1 if report.failing else 0)


@click.group("logs")
def logs() -> None:
    """Inference logs as data: load the served-vector and prediction logs into fs_meta tables (models/monitoring/).
    """


@logs.command("sync")
@output_options()
@click.pass_context
def logs_sync(ctx: click.Context) -> Output:
    """Load the new lines of .fs/served_vectors and .fs/predictions into fs_meta.served_vectors_log /
    predictions_log (idempotent); then `dbt build -s path:models/monitoring` refreshes the BI views."""
    result = get_store(ctx).sync_inference_logs()
    return Output(result.to_dict(), lambda: console.print(
        f"loaded {result.predictions} new predictions and {result.served_vectors} new served vectors from "
        f"{result.files} file(s)", highlight=False))


@click.command("report")
@click.option("--html", "out", required=True, type=click.Path(dir_okay=False), help="The HTML file to write.")
@click.option("--feature-view", "feature_views", multiple=True, help="Feature views to show (default: every view "
              "with a training dataset).")
@click.option("--model", "models", multiple=True, help="Models to show metrics of (default: every monitored model).")
@click.pass_context
def report(ctx: click.Context, out: str, feature_views: tuple[str, ...], models: tuple[str, ...]) -> None:
    """Write a self-contained HTML monitoring report (inline SVG charts, nothing loaded from the network).

    Per feature view: each feature's distribution in the training dataset against the logged vectors, and drift
    over time; per model: its metrics per window over time."""
    path = get_store(ctx).report(out, feature_views=list(feature_views) or None, models=list(models) or None)
    console.print(f"report written to {path}", highlight=False)


def register(main: click.Group) -> None:
    """Add the monitoring commands to `fs` (called once from fs_cli/cli.py)."""
    main.add_command(monitor)
    main.add_command(check)
    model = main.commands.get("model")
    if isinstance(model, click.Group):
        model.add_command(model_monitor, "monitor")
        if "score" in model.commands:
            _extend_score(model.commands["score"])
