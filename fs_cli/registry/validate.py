"""Model validation on the training dataset's held-out (test) split: metrics, metrics per slice, and robustness to
out-of-distribution inputs; gated by per-model thresholds, stored with the version.

Metric names in a report (and in `fs_model_thresholds`):
  classification: auc, accuracy, f1, log_loss          regression: rmse, mae, r2
  per slice:      worst_slice.<metric>, slice_gap.<metric>   (over slices with >= min_slice_rows rows)
  robustness:     ood.failures (inputs the model could not answer; must be 0 unless a threshold says otherwise),
                  ood.max_changed_fraction, ood.<kind>.changed_fraction  (kind: above_range, below_range, nulls,
                  unseen_category; mean over the features it applies to)
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import FeatureStoreError
from ..timeutil import utcnow
from ..warehouse.retry import in_transaction
from .config import project_vars
from .schema import VALIDATIONS, ensure_registry
from .td import load_td, read_td

if TYPE_CHECKING:
    from .registry import ModelRegistry

HIGHER_IS_BETTER = {"auc": True, "accuracy": True, "f1": True, "r2": True,
                    "log_loss": False, "rmse": False, "mae": False}
OOD_SAMPLE = 2000  # rows perturbed per check: enough to measure a fraction, cheap for any sklearn model
NULL_SLICE = "(null)"


@dataclass
class ValidationReport:
    name: str
    version: int
    validation_id: int
    status: str
    task: str
    training_dataset: str
    training_dataset_version: int
    n_test: int
    metrics: dict[str, float | None]
    slices: list[dict[str, Any]] = field(default_factory=list)
    ood: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- metrics -----------------------------------------------------------------------------------------------------
def _num(x: Any) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def classification_metrics(y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None,
                           classes: list[Any]) -> dict[str, float | None]:
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

    out: dict[str, float | None] = {"accuracy": float(accuracy_score(y, pred))}
    if len(classes) == 2:
        out["f1"] = float(f1_score(y, pred, pos_label=classes[1], labels=classes, zero_division=0))
    else:
        out["f1"] = float(f1_score(y, pred, average="macro", labels=classes, zero_division=0))
    out["auc"] = out["log_loss"] = None
    if proba is not None:
        present = set(pd.unique(y).tolist())
        if len(present) >= 2 and present <= set(classes):  # AUC needs both classes; unseen labels make it undefined
            if len(classes) == 2:
                out["auc"] = _num(roc_auc_score(y == classes[1], proba[:, 1]))
            elif present == set(classes):
                out["auc"] = _num(roc_auc_score(y, proba, multi_class="ovr", labels=classes))
        if present <= set(classes):
            out["log_loss"] = _num(log_loss(y, proba, labels=classes))
    return out


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float | None]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y, pred = y.astype(float), pred.astype(float)
    return {
        "rmse": float(math.sqrt(mean_squared_error(y, pred))),
        "mae": float(mean_absolute_error(y, pred)),
        "r2": _num(r2_score(y, pred)) if len(y) >= 2 else None,
    }


def compute_metrics(task: str, y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None,
                    classes: list[Any] | None) -> dict[str, float | None]:
    if task == "classification":
        return classification_metrics(y, pred, proba, list(classes if classes is not None else pd.unique(y)))
    return regression_metrics(y, pred)


# -- slices ------------------------------------------------------------------------------------------------------
def slice_keys(col: pd.Series, max_levels: int = 10) -> pd.Series:
    """Group labels for a slice column: its values, or quartile bins for a numeric column with many values;
    NULL is a slice of its own."""
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col) and col.nunique() > max_levels:
        binned = pd.qcut(col.astype(float), 4, duplicates="drop")
        keys = binned.astype(str).astype(object)
    else:
        keys = col.astype(object).map(str)
    return keys.where(col.notna(), NULL_SLICE)


def slice_metrics(task: str, df: pd.DataFrame, y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None,
                  classes: list[Any] | None, columns: list[str], min_rows: int
                  ) -> tuple[list[dict[str, Any]], dict[str, float | None]]:
    """Metrics per slice, and per metric the worst slice value and the gap (best - worst) across slices."""
    rows: list[dict[str, Any]] = []
    summary: dict[str, float | None] = {}
    for c in columns:
        keys = slice_keys(df[c]).to_numpy()
        per: list[dict[str, Any]] = []
        for k in sorted(set(keys), key=str):
            m = keys == k
            met = compute_metrics(task, y[m], pred[m], None if proba is None else proba[m], classes)
            per.append({"column": c, "slice": k, "n": int(m.sum()), "counted": bool(m.sum() >= min_rows), **met})
        rows.extend(per)
        for metric, hib in HIGHER_IS_BETTER.items():
            vals = [(r[metric], r["slice"]) for r in per if r["counted"] and r.get(metric) is not None]
            if not vals:
                continue
            worst = min(vals, key=lambda t: t[0]) if hib else max(vals, key=lambda t: t[0])
            gap = max(v for v, _ in vals) - min(v for v, _ in vals)
            # across several slice columns, keep the worst one seen
            wk, gk = f"worst_slice.{metric}", f"slice_gap.{metric}"
            if wk not in summary or (worst[0] < summary[wk] if hib else worst[0] > summary[wk]):
                summary[wk] = worst[0]
                summary[f"worst_slice.{metric}.where"] = f"{c}={worst[1]}"  # type: ignore[assignment]
            summary[gk] = max(summary.get(gk) or 0.0, gap)
    return rows, summary


# -- robustness --------------------------------------------------------------------------------------------------
def _predict(est: Any, X: pd.DataFrame, task: str) -> tuple[np.ndarray, np.ndarray | None]:
    pred = np.asarray(est.predict(X))
    proba = np.asarray(est.predict_proba(X)) if task == "classification" and hasattr(est, "predict_proba") else None
    return pred, proba


def ood_checks(est: Any, task: str, raw_test: pd.DataFrame, raw_train: pd.DataFrame, columns: list[str],
               prepare: Any, classes: list[Any] | None) -> list[dict[str, Any]]:
    """Perturb one raw input column at a time (of the rows as the feature view gives them), prepare the rows the
    way the model is always fed (`prepare`: transformations, then its input frame), and require a valid answer."""
    raw = raw_test.iloc[:OOD_SAMPLE].reset_index(drop=True)
    base, base_proba = _predict(est, prepare(raw), task)
    out = []
    for c in columns:
        perturbations: list[tuple[str, Any]] = [("nulls", np.nan)]
        col = raw_train[c]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            lo, hi = col.min(), col.max()
            if pd.notna(lo) and pd.notna(hi):
                span = float(hi - lo) or max(abs(float(hi)), 1.0)
                perturbations += [("above_range", float(hi) + 2 * span), ("below_range", float(lo) - 2 * span)]
        else:
            perturbations.append(("unseen_category", "__fs_unseen_category__"))
        for kind, value in perturbations:
            rp = raw.copy()
            rp[c] = pd.Series([value] * len(rp), dtype="float64" if isinstance(value, float) else object)
            rec: dict[str, Any] = {"kind": kind, "feature": c, "value": None if value is np.nan else value}
            try:
                pred, proba = _predict(est, prepare(rp), task)
                problem = None
                if len(pred) != len(rp):
                    problem = f"returned {len(pred)} predictions for {len(rp)} rows"
                elif task == "regression" and not np.all(np.isfinite(pred.astype(float))):
                    problem = "returned non-finite predictions"
                elif classes is not None and task == "classification" and not np.isin(pred, classes).all():
                    problem = "returned labels outside its classes"
                elif proba is not None and not np.all(np.isfinite(proba)):
                    problem = "returned non-finite probabilities"
                if problem:
                    rec.update(ok=False, error=problem)
                else:
                    changed = pred != base if task == "classification" else ~np.isclose(
                        pred.astype(float), base.astype(float), rtol=1e-9, atol=1e-12)
                    rec.update(ok=True, changed_fraction=float(np.mean(changed)))
                    if proba is not None and base_proba is not None:
                        rec["mean_abs_proba_shift"] = float(np.mean(np.abs(proba - base_proba)))
            except Exception as e:  # noqa: BLE001 - a crash is exactly what this check reports
                rec.update(ok=False, error=f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
            out.append(rec)
    return out


def ood_summary(checks: list[dict[str, Any]]) -> dict[str, float]:
    s: dict[str, float] = {"ood.failures": float(sum(not c["ok"] for c in checks))}
    fracs = [c["changed_fraction"] for c in checks if c["ok"]]
    s["ood.max_changed_fraction"] = max(fracs) if fracs else 0.0
    for kind in ("above_range", "below_range", "nulls", "unseen_category"):
        ks = [c["changed_fraction"] for c in checks if c["ok"] and c["kind"] == kind]
        if ks:
            s[f"ood.{kind}.changed_fraction"] = float(np.mean(ks))
    return s


# -- gates -------------------------------------------------------------------------------------------------------
def gate(metrics: dict[str, Any], thresholds: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    bounds = {"ood.failures": {"max": 0}, **thresholds}  # the model must answer every OOD input, unless relaxed
    checks = []
    for metric, b in bounds.items():
        v = metrics.get(metric)
        for side in ("min", "max"):
            if side not in b:
                continue
            limit = float(b[side])
            if v is None:
                ok, note = False, "metric not computed (not applicable to this model or data)"
            else:
                ok = v >= limit if side == "min" else v <= limit
                note = ""
            checks.append({"metric": metric, "bound": side, "threshold": limit, "value": v, "passed": bool(ok),
                           "note": note})
    return checks


# -- entry point -------------------------------------------------------------------------------------------------
def validate_model(reg: ModelRegistry, ref: str, slices: list[str] | None = None) -> ValidationReport:
    from threadpoolctl import threadpool_limits

    # Dozens of small predict() calls: one thread each avoids OpenMP start-up and oversubscription costs, which
    # were measured to dominate (HistGradientBoosting: 0.7 s per 2,000-row predict on a busy 2-core machine).
    with threadpool_limits(limits=1):
        return _validate(reg, ref, slices)


def _validate(reg: ModelRegistry, ref: str, slices: list[str] | None) -> ValidationReport:
    loaded = reg.get(ref)
    info, est = loaded.info, loaded.estimator
    cfg = reg.config
    min_rows = int(project_vars(reg.project).get("fs_model_min_slice_rows", 10))
    slice_cols = list(dict.fromkeys([*(slices or []), *cfg.slices.get(info.name, []),
                                     *[s for s in info.meta.get("slices", "").split(",") if s]]))
    label = info.output_schema["label"]
    with reg.project.warehouse(read_only=True) as con:
        td = load_td(con, info.training_dataset, info.training_dataset_version)
        test = read_td(con, td, "test")
        train = read_td(con, td, "train")
    bad = [c for c in slice_cols if c not in test.columns]
    if bad:
        raise FeatureStoreError(f"slice column(s) {', '.join(bad)} are not columns of training dataset {td.ref}",
                                fix=f"pick from: {', '.join(c for c in test.columns if c != 'split')}")
    labelled = test[label].notna().to_numpy()
    test = test[labelled].reset_index(drop=True)
    if test.empty:
        raise FeatureStoreError(f"the test split of {td.ref} has no labelled rows", fix="check the label spine")
    y = test[label].to_numpy()
    classes = info.output_schema.get("classes")
    if info.task == "classification" and classes is not None and y.dtype.kind in "iuf":
        y = y.astype(np.asarray(classes).dtype)
    X = loaded.frame(test)
    try:
        pred, proba = _predict(est, X, info.task)
    except Exception as e:  # noqa: BLE001
        raise FeatureStoreError(f"model {info.ref} failed to predict on the test split of {td.ref}: "
                                f"{type(e).__name__}: {e}", fix="fix the model; it must accept its own inputs") from None
    metrics: dict[str, Any] = compute_metrics(info.task, y, pred, proba, classes)
    slice_rows, slice_summary = slice_metrics(info.task, test, y, pred, proba, classes, slice_cols, min_rows)
    # which raw columns to perturb: the model's inputs, or for a model on transformed inputs also the raw columns
    # the transformations read (a perturbed raw value then flows through the same SQL as in training)
    raw_inputs = info.input_columns if loaded.statistics is None else list(dict.fromkeys(
        [c["feature"] for c in loaded.statistics.get("chains", [])] + info.input_columns))
    ood = ood_checks(est, info.task, test, train, [c for c in raw_inputs if c in test.columns], loaded.frame,
                     classes)
    metrics.update(slice_summary)
    metrics.update(ood_summary(ood))
    checks = gate(metrics, cfg.thresholds.get(info.name, {}))
    status = "passed" if all(c["passed"] for c in checks) else "failed"
    def insert(con) -> int:
        vid = con.execute(f"select coalesce(max(validation_id), 0) + 1 from {VALIDATIONS} where name = ? and "
                          "version = ?", [info.name, info.version]).fetchall()[0][0]
        con.execute(f"insert into {VALIDATIONS} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [info.name, info.version, vid, utcnow(), status, td.feature_view, td.version, info.task,
                     len(test), json.dumps(metrics, default=str), json.dumps(slice_rows, default=str),
                     json.dumps(ood, default=str), json.dumps(checks, default=str)])
        return int(vid)

    with reg._rw() as con:
        ensure_registry(con)
        vid = in_transaction(con, insert)
    return ValidationReport(info.name, info.version, vid, status, info.task, td.feature_view, td.version,
                            len(test), metrics, slice_rows, ood, checks)
