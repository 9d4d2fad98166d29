"""Concept drift: a model's logged predictions joined with the labels that arrived later, its metrics per time window
and per slice, against thresholds declared for the model.

Predictions come from fs_meta.predictions_log (loaded from the JSONL logs first, fs_cli/monitoring/logtables.py).
Labels: a dbt model (default: the feature view's label spine) or a .parquet/.csv file (loaded into a scratch table),
joined in the warehouse by `row_id` when the labels have that column, else by the view's entity keys and spine
timestamp (= the prediction's event_time). Windows are fixed spans of the prediction's event time (its spine time;
logged_at when it had none), aligned on `since` when given, else on 1970-01-01 (1d = calendar days, UTC).
Metrics and slices are the registry's (fs_cli/registry/validate.py): the same metric code and the same slice columns
as `fs model validate` (vars.fs_model_slices, the version's `slices` meta). A slice column is read from the labels
relation when it has it, else from the logged features.

Thresholds, declared per model name in dbt_project.yml:

    vars:
      fs_model_monitoring:
        fraud_model:
          thresholds: {auc: {min: 0.6, max_drop: 0.05}, "worst_slice.auc": {min: 0.5}}
          min_rows: 50          # windows with fewer labelled predictions are reported `skipped`, never failing

Bounds: `min`, `max` (absolute) and `max_drop` (the most the metric may worsen from its baseline: the metrics of the
version's latest `fs model validate`, else computed on its training dataset's test split). Metric names as in
validation: auc, accuracy, f1, log_loss, rmse, mae, r2, worst_slice.<m>, slice_gap.<m>. Defaults (nothing declared):
classification {auc: {max_drop: 0.1}}, regression {r2: {max_drop: 0.1}}; min_rows 30.

Results: fs_meta.model_monitoring, one row per run, window, slice (null = the whole window) and metric, with the
effective bounds (limit_min/limit_max), the baseline and the status (pass | fail | skipped | info).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FeatureStoreError
from ..registry.config import project_vars
from ..registry.validate import HIGHER_IS_BETTER, compute_metrics, slice_metrics
from ..timeutil import parse_timestamp, parse_ttl, utcnow
from ..warehouse import META_SCHEMA
from .logtables import PREDICTION_VALUES, PREDICTIONS, sync_logs

RESULTS_TABLE = "model_monitoring"
DEFAULT_THRESHOLDS = {"classification": {"auc": {"max_drop": 0.1}}, "regression": {"r2": {"max_drop": 0.1}}}
DEFAULT_MIN_ROWS = 30
BOUNDS = ("min", "max", "max_drop")
EPOCH = datetime(1970, 1, 1)


@dataclass
class WindowResult:
    start: datetime
    end: datetime
    n: int
    status: str  # pass | fail | skipped
    metrics: dict[str, Any]
    checks: list[dict[str, Any]] = field(default_factory=list)
    slices: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ModelMonitorReport:
    run_id: str
    checked_at: datetime
    model: str
    task: str
    window: str
    labels: str
    predictions: int  # logged predictions of the model in the time range
    labelled: int  # of which a label was found
    thresholds: dict[str, dict[str, float]]
    min_rows: int
    baseline: dict[str, Any]
    windows: list[WindowResult]

    @property
    def failing(self) -> list[WindowResult]:
        return [w for w in self.windows if w.status == "fail"]

    @property
    def ok(self) -> bool:
        return not self.failing

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        d["failing_windows"] = [w.start for w in self.failing]
        return d


# -- declarations -------------------------------------------------------------------------------------------------
def settings_for(project: Any, model_name: str, task: str) -> tuple[dict[str, dict[str, float]], int]:
    """(thresholds, min_rows) of a model: vars.fs_model_monitoring.<name> over the defaults."""
    where = f"dbt_project.yml vars.fs_model_monitoring.{model_name}"
    spec = (project_vars(project).get("fs_model_monitoring") or {}).get(model_name) or {}
    if not isinstance(spec, dict) or set(spec) - {"thresholds", "min_rows"}:
        raise FeatureStoreError(f"{where} must be {{thresholds: {{metric: {{min|max|max_drop: x}}}}, min_rows: n}}",
                                fix=f"write e.g. `{model_name}: {{thresholds: {{auc: {{min: 0.6}}}}, min_rows: 50}}`")
    thresholds = spec.get("thresholds") or DEFAULT_THRESHOLDS.get(task, {})
    for metric, bounds in thresholds.items():
        ok = isinstance(bounds, dict) and bounds and set(bounds) <= set(BOUNDS) and all(
            isinstance(b, int | float) and not isinstance(b, bool) for b in bounds.values())
        if not ok:
            raise FeatureStoreError(f"{where}.thresholds.{metric} is {bounds!r}",
                                    fix=f"write `{metric}: {{min: x}}`, `{{max: x}}` and/or `{{max_drop: x}}`")
    min_rows = spec.get("min_rows", DEFAULT_MIN_ROWS)
    if not isinstance(min_rows, int) or isinstance(min_rows, bool) or min_rows < 1:
        raise FeatureStoreError(f"{where}.min_rows is {min_rows!r}", fix="a positive whole number, e.g. 30")
    return {m: {k: float(v) for k, v in b.items()} for m, b in thresholds.items()}, min_rows


def _higher_is_better(metric: str) -> bool:
    return HIGHER_IS_BETTER.get(metric.split(".")[-1], True) if not metric.startswith("slice_gap.") else False


def limits(metric: str, bounds: dict[str, float], baseline: float | None) -> tuple[float | None, float | None]:
    """Effective (min, max) of a metric: absolute bounds, tightened by max_drop from the baseline."""
    lo, hi = bounds.get("min"), bounds.get("max")
    if "max_drop" in bounds and baseline is not None:
        if _higher_is_better(metric):
            lo = max(x for x in (lo, baseline - bounds["max_drop"]) if x is not None)
        else:
            hi = min(x for x in (hi, baseline + bounds["max_drop"]) if x is not None)
    return lo, hi


def check_metrics(metrics: dict[str, Any], thresholds: dict[str, dict[str, float]], baseline: dict[str, Any]
                  ) -> list[dict[str, Any]]:
    out = []
    for metric, bounds in thresholds.items():
        lo, hi = limits(metric, bounds, _float(baseline.get(metric)))
        v = _float(metrics.get(metric))
        if lo is None and hi is None:
            ok, note = True, "no baseline for max_drop"
        elif v is None:
            ok, note = False, "metric not computed on this window"
        else:
            ok, note = (lo is None or v >= lo) and (hi is None or v <= hi), ""
        out.append({"metric": metric, "value": v, "baseline": _float(baseline.get(metric)), "limit_min": lo,
                    "limit_max": hi, "passed": bool(ok), "note": note})
    return out


def _float(v: Any) -> float | None:
    try:
        return None if v is None or isinstance(v, str) else float(v)
    except (TypeError, ValueError):
        return None


# -- labels and the join ------------------------------------------------------------------------------------------
def _labels_relation(fs: Any, wh: Any, fv: Any, labels: str | Path | None) -> tuple[str, str, str | None]:
    """(relation to read labels from, its description, scratch table to drop or None)."""
    from .scoring import FILE_SUFFIXES, _model_relation, _read_spine_file

    if labels is None:
        if not fv.spine_relation:
            raise FeatureStoreError(f"feature view {fv.name} has no label spine", fix="pass --labels")
        return fv.spine_relation, f"{fv.spine_model} (the view's label spine)", None
    path = Path(str(labels))
    if path.suffix.lower() in FILE_SUFFIXES:
        scratch = wh.relation(META_SCHEMA, f"monitoring_labels_{uuid.uuid4().hex[:12]}")
        wh.ensure_schema(META_SCHEMA)
        wh.write_arrow(scratch, _read_spine_file(path), mode="create")
        return scratch, str(path), scratch
    return _model_relation(fs.project, str(labels)), str(labels), None


def joined_rows(wh: Any, relation: str, fv: Any, model_ref: str, label: str, slice_columns: list[str],
                since: datetime | None, until: datetime | None) -> tuple[pd.DataFrame, int]:
    """Labelled predictions of `model_ref` (row_id, at, prediction, prediction_value, score, label, slice columns)
    and the number of predictions in the range (labelled or not)."""
    have = set(wh.query_columns(f"select * from {relation}"))
    if label not in have:
        raise FeatureStoreError(f"the labels ({relation}) have no column {label!r}, the model's label",
                                fix=f"give rows with row_id or {', '.join([*fv.key_columns, fv.spine_timestamp])} "
                                    f"and {label}")
    p, pv = wh.relation(META_SCHEMA, PREDICTIONS), wh.relation(META_SCHEMA, PREDICTION_VALUES)
    text = wh.type("text")
    joins: list[str] = []
    params: list[Any] = []
    if "row_id" in have:
        on = "cast(l.row_id as " + text + ") = p.row_id"
    else:
        need = [*fv.key_columns, fv.spine_timestamp]
        missing = [c for c in need if c not in have]
        if missing:
            raise FeatureStoreError(f"the labels ({relation}) lack {', '.join(missing)} to find the predictions by",
                                    fix="give a row_id column (from the prediction log) or the view's keys and "
                                        "spine timestamp")
        conds = [f"cast(l.{wh.quote(fv.spine_timestamp)} as {wh.type('timestamp')}) = p.event_time"]
        for i, k in enumerate(fv.key_columns):
            joins.append(f"join {pv} k{i} on k{i}.row_id = p.row_id and k{i}.kind = 'entity' and k{i}.name = ?")
            params.append(k)
            conds.append(f"cast(l.{wh.quote(k)} as {text}) = k{i}.value_text")
        on = " and ".join(conds)
    selects = ["p.row_id", "p.logged_at", "p.event_time", "p.prediction", "p.prediction_value", "p.score",
               f"l.{wh.quote(label)} as fs_label"]
    for i, c in enumerate(slice_columns):
        if c in have:
            selects.append(f"l.{wh.quote(c)} as {wh.quote('slice_' + c)}")
        else:  # a logged feature
            joins.append(f"left join {pv} s{i} on s{i}.row_id = p.row_id and s{i}.kind = 'feature' and s{i}.name = ?")
            params.append(c)
            selects += [f"s{i}.value_number as {wh.quote('slicen_' + c)}",
                        f"s{i}.value_text as {wh.quote('slicet_' + c)}"]
    where, wparams = _time_filter(since, until)
    sql = (f"select {', '.join(selects)} from {p} p {' '.join(joins)} join {relation} l on {on} "
           f"where p.model = ? and l.{wh.quote(label)} is not null{where} order by p.row_id")
    # joins come before the `on` of the labels join in the text, and so do their parameters
    frame = wh.arrow(sql, [*params, model_ref, *wparams]).to_pandas()
    total = wh.scalar(f"select count(*) from {p} p where p.model = ?{where}", [model_ref, *wparams])
    return frame.drop_duplicates("row_id").reset_index(drop=True), int(total or 0)


def _time_filter(since: datetime | None, until: datetime | None) -> tuple[str, list[Any]]:
    at = "coalesce(p.event_time, p.logged_at)"
    sql, params = "", []
    if since is not None:
        sql, params = sql + f" and {at} >= ?", [*params, since]
    if until is not None:
        sql, params = sql + f" and {at} < ?", [*params, until]
    return sql, params


# -- metrics ------------------------------------------------------------------------------------------------------
def _norm(v: Any) -> str | None:
    """One text per class value across JSON, Arrow and numpy (True/1/1.0/'1' -> '1')."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, bool | np.bool_):
        return "1" if v else "0"
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return "1" if v.lower() == "true" else "0"
    try:
        f = float(v)
        return str(int(f)) if f.is_integer() else repr(f)
    except (TypeError, ValueError):
        return str(v)


def _outcomes(df: pd.DataFrame, info: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[Any] | None]:
    """(y, prediction, probabilities or None, classes) of the joined rows, in the estimator's class values."""
    if info.task != "classification":
        pred = df["prediction_value"].astype(float).to_numpy()
        return df["fs_label"].astype(float).to_numpy(), pred, None, None
    classes = list(info.output_schema.get("classes") or [])
    by_text = {_norm(c): c for c in classes}
    y = np.array([by_text.get(_norm(v), v) for v in df["fs_label"]], dtype=object)
    pred = np.array([by_text.get(_norm(v), v) for v in df["prediction"]], dtype=object)
    if classes:
        kind = np.asarray(classes).dtype
        if all(_norm(v) in by_text for v in [*df["fs_label"], *df["prediction"]]):
            y, pred = y.astype(kind), pred.astype(kind)
    proba = None
    if len(classes) == 2 and df["score"].notna().all() and len(df):
        s = df["score"].astype(float).to_numpy()
        proba = np.column_stack([1 - s, s])
    return y, pred, proba, classes or None


def _slice_frame(df: pd.DataFrame, slice_columns: list[str]) -> pd.DataFrame:
    out = pd.DataFrame(index=df.index)
    for c in slice_columns:
        if f"slice_{c}" in df.columns:
            out[c] = df[f"slice_{c}"]
        else:
            num, txt = df[f"slicen_{c}"], df[f"slicet_{c}"]
            out[c] = num.astype(float) if num.notna().sum() == txt.notna().sum() else txt
    return out


def window_start(t: datetime, span: timedelta, origin: datetime) -> datetime:
    return origin + span * ((t - origin) // span)


def baseline_metrics(fs: Any, loaded: Any, slice_columns: list[str], min_rows: int) -> dict[str, Any]:
    """The version's metrics at validation (latest `fs model validate`), else on its TD's test split now."""
    validations = fs.models.validations(loaded.info.ref)
    if validations and validations[-1].get("metrics"):
        return dict(validations[-1]["metrics"])
    from ..registry.td import load_td, read_td

    info = loaded.info
    with fs.project.warehouse(read_only=True) as wh:
        td = load_td(wh, info.training_dataset, info.training_dataset_version)
        if not td.row_counts.get("test"):
            return {}
        test = read_td(wh, td, "test")
    label = info.output_schema["label"]
    test = test[test[label].notna()].reset_index(drop=True)
    if test.empty:
        return {}
    y = test[label].to_numpy()
    classes = info.output_schema.get("classes")
    if info.task == "classification" and classes is not None and y.dtype.kind in "iufb":
        y = y.astype(np.asarray(classes).dtype)
    pred = loaded.predict(test)
    proba = loaded.predict_proba(test) if info.task == "classification" and hasattr(
        loaded.estimator, "predict_proba") else None
    metrics = compute_metrics(info.task, y, pred, proba, classes)
    cols = [c for c in slice_columns if c in test.columns]
    metrics.update(slice_metrics(info.task, test, y, pred, proba, classes, cols, min_rows)[1])
    return metrics


# -- entry point --------------------------------------------------------------------------------------------------
def monitor_model(fs: Any, ref: str, window: str = "1d", labels: str | Path | None = None,
                  since: str | datetime | None = None, until: str | datetime | None = None,
                  now: str | datetime | None = None, store: bool = True) -> ModelMonitorReport:
    loaded = fs.models.get(ref)
    info = loaded.info
    fv = fs.catalog.fv(info.training_dataset)
    span = parse_ttl(window, where="window")
    if span is None:
        raise FeatureStoreError(f"window {window!r} is empty", fix="give a duration, e.g. 1d or 6h")
    start = parse_timestamp(since, where="since") if since is not None else None
    end = parse_timestamp(until, where="until") if until is not None else None
    checked_at = parse_timestamp(now, where="now") if now is not None else utcnow()
    thresholds, min_rows = settings_for(fs.project, info.name, info.task)
    slice_columns = list(dict.fromkeys([*fs.models.config.slices.get(info.name, []),
                                        *[s for s in info.meta.get("slices", "").split(",") if s]]))
    label = info.output_schema["label"]
    keys = {name: v.key_columns for name, v in fs.catalog.feature_views.items()}
    with fs.project.warehouse() as wh:
        sync_logs(wh, fs.project.state_dir, keys)
        relation, described, scratch = _labels_relation(fs, wh, fv, labels)
        try:
            rows, total = joined_rows(wh, relation, fv, info.ref, label, slice_columns, start, end)
        finally:
            if scratch is not None:
                wh.drop_table(scratch)
    baseline = baseline_metrics(fs, loaded, slice_columns, min_rows)
    windows = _windows(rows, info, span, start or EPOCH, slice_columns, thresholds, baseline, min_rows)
    report = ModelMonitorReport(uuid.uuid4().hex, checked_at, info.ref, info.task, window, described, total,
                                len(rows), thresholds, min_rows, baseline, windows)
    if store:
        with fs.project.warehouse() as wh:
            store_results(wh, report)
    return report


def _windows(rows: pd.DataFrame, info: Any, span: timedelta, origin: datetime, slice_columns: list[str],
             thresholds: dict[str, dict[str, float]], baseline: dict[str, Any], min_rows: int) -> list[WindowResult]:
    if rows.empty:
        return []
    at = rows["event_time"].where(rows["event_time"].notna(), rows["logged_at"])
    starts = [window_start(pd.Timestamp(t).to_pydatetime(), span, origin) for t in at]
    rows = rows.assign(fs_window=starts)
    out = []
    for w0, part in rows.groupby("fs_window", sort=True):
        part = part.reset_index(drop=True)
        w0 = pd.Timestamp(w0).to_pydatetime()
        y, pred, proba, classes = _outcomes(part, info)
        metrics: dict[str, Any] = compute_metrics(info.task, y, pred, proba, classes)
        slices = _slice_frame(part, slice_columns)
        slice_rows, summary = slice_metrics(info.task, slices, y, pred, proba, classes, slice_columns,
                                            min(10, min_rows))
        metrics.update(summary)
        if len(part) < min_rows:
            status, checks = "skipped", []
        else:
            checks = check_metrics(metrics, thresholds, baseline)
            status = "pass" if all(c["passed"] for c in checks) else "fail"
        out.append(WindowResult(w0, w0 + span, len(part), status, metrics, checks, slice_rows))
    return out


# -- storage ------------------------------------------------------------------------------------------------------
_COLUMNS = [("run_id", "text"), ("checked_at", "timestamp"), ("model", "text"), ("model_name", "text"),
            ("model_version", "bigint"), ("window_start", "timestamp"), ("window_end", "timestamp"),
            ("slice_column", "text"), ("slice", "text"), ("n", "bigint"), ("metric", "text"), ("value", "double"),
            ("baseline", "double"), ("limit_min", "double"), ("limit_max", "double"), ("status", "text"),
            ("labels", "text")]


def ensure_results_table(wh: Any) -> str:
    wh.ensure_schema(META_SCHEMA)
    rel = wh.relation(META_SCHEMA, RESULTS_TABLE)
    cols = ", ".join(f"{wh.quote(c)} {wh.type(t)}" for c, t in _COLUMNS)
    wh.execute(f"create table if not exists {rel} ({cols})")
    return rel


def result_rows(report: ModelMonitorReport) -> list[list[Any]]:
    name, _, version = report.model.partition(":")
    head = [report.run_id, report.checked_at, report.model, name, int(version)]
    out = []
    for w in report.windows:
        checks = {c["metric"]: c for c in w.checks}
        for metric, value in w.metrics.items():
            if isinstance(value, str):  # worst_slice.<m>.where: said by the slice rows
                continue
            c = checks.get(metric)
            status = "skipped" if w.status == "skipped" else ("info" if c is None else
                                                             "pass" if c["passed"] else "fail")
            out.append([*head, w.start, w.end, None, None, w.n, metric, _float(value),
                        _float(report.baseline.get(metric)), c and c["limit_min"], c and c["limit_max"], status,
                        report.labels])
        for s in w.slices:
            for metric in HIGHER_IS_BETTER:
                if metric in s:
                    out.append([*head, w.start, w.end, s["column"], str(s["slice"]), s["n"], metric,
                                _float(s[metric]), None, None, None, "info", report.labels])
    return out


def store_results(wh: Any, report: ModelMonitorReport) -> None:
    import pyarrow as pa

    rel = ensure_results_table(wh)
    rows = result_rows(report)
    if not rows:
        return
    types = {"text": pa.string(), "timestamp": pa.timestamp("us"), "bigint": pa.int64(), "double": pa.float64()}
    table = pa.table({c: pa.array([r[i] for r in rows], types[t]) for i, (c, t) in enumerate(_COLUMNS)})
    wh.write_arrow(rel, table, mode="append")


def history(fs: Any, model: str | None = None) -> list[dict[str, Any]]:
    """Stored concept-drift results, oldest window first (model = name or name:version)."""
    with fs.project.warehouse(read_only=True) as wh:
        if not wh.relation_exists(META_SCHEMA, RESULTS_TABLE):
            return []
        where, params = "", []
        if model:
            where, params = ("where model = ?", [model]) if ":" in model else ("where model_name = ?", [model])
        res = wh.execute(f"select * from {wh.relation(META_SCHEMA, RESULTS_TABLE)} {where} "
                         "order by window_start, checked_at, metric", params)
        return [dict(zip(res.columns, r, strict=True)) for r in res.fetchall()]

