"""Feature-group drift: statistics per feature between a reference window and the candidate's detection window.

The statistics are the SQL macros of macros/drift/drift_statistics.sql (one definition, see there for the exact
formulas) of the project being run, rendered for the target's engine and run where the data lives; nothing but
one row per feature is pulled into Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from ..transforms.macros import render_macro

NUMERIC_TYPES = ("int", "double", "float", "real", "decimal", "numeric", "bigint", "smallint", "tinyint", "hugeint")

# Defaults, per statistic: a feature drifts when its value exceeds the threshold (absolute value for missing_change).
# PSI 0.25 is the usual "major shift" line; KS D 0.25 = a quarter of the probability mass moved; normalized W1 0.5 =
# the mass moved half a reference standard deviation on average; JS 0.1 (base 2) and Cramer's V 0.25 are a clear
# change of category shares; 10 points more (or fewer) missing values. Rolling-window features are autocorrelated,
# so a window holds fewer independent samples than rows: the defaults are deliberately not tighter than this.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "psi": 0.25,
    "ks_d": 0.25,
    "wasserstein_norm": 0.5,
    "jensen_shannon": 0.1,
    "cramers_v": 0.25,
    "missing_change": 0.1,
}
NUMERIC_STATS = ("psi", "ks_d", "wasserstein_norm", "missing_change")
CATEGORICAL_STATS = ("jensen_shannon", "cramers_v", "missing_change")


def fetch_dicts(wh: Any, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    """Run a query on a Warehouse; rows as dicts."""
    res = wh.execute(sql, params or [])
    return [dict(zip(res.columns, r, strict=True)) for r in res.fetchall()]


def _clean(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v
    f = float(v)
    return None if math.isnan(f) else f


def is_numeric(data_type: str | None) -> bool:
    t = (data_type or "").lower()
    return any(n in t for n in NUMERIC_TYPES) and "interval" not in t


def column_drift(wh: Any, reference: str, current: str, column: str, numeric: bool, *, macro_dir: Path,
                 bins: int = 10) -> dict[str, Any]:
    """All drift statistics of one column, computed by warehouse `wh` with the macros of `macro_dir` (the project's
    macros/) rendered for its engine. `reference`/`current`: relation names (trusted SQL, e.g. temp tables)."""
    macro = "fs_numeric_drift" if numeric else "fs_categorical_drift"
    args = (reference, current, column, bins) if numeric else (reference, current, column)
    sql = render_macro(macro_dir, wh.engine, macro, *args, quote=wh.quote)
    row = fetch_dicts(wh, sql)[0]
    return {k: _clean(v) for k, v in row.items()}


@dataclass
class FeatureDrift:
    feature: str
    kind: str  # numeric | categorical
    stats: dict[str, Any]
    thresholds: dict[str, float]
    exceeded: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return bool(self.exceeded)


def evaluate(feature: str, numeric: bool, stats: dict[str, Any], thresholds: dict[str, float]) -> FeatureDrift:
    names = NUMERIC_STATS if numeric else CATEGORICAL_STATS
    used = {k: thresholds[k] for k in names if k in thresholds and thresholds[k] is not None}
    exceeded = []
    for k, limit in used.items():
        v = stats.get(k)
        if v is None:
            continue
        if (abs(v) if k == "missing_change" else v) > limit:
            exceeded.append(k)
    return FeatureDrift(feature, "numeric" if numeric else "categorical", stats, used, exceeded)


# -- feature-group drift: detection window of the candidate vs a reference of the published data ---------------
MIN_SAMPLES = 30  # fewer values on either side: the statistics are noise, the check is skipped


def _published_live(fg, as_of_param: bool, columns: str = "*") -> str:
    live = "coalesce(dbt_is_deleted, 'False') <> 'True'"
    if as_of_param:
        return (f"select {columns} from {fg.snapshot_relation} where dbt_valid_from <= ? "
                f"and (dbt_valid_to is null or dbt_valid_to > ?) and {live}")
    return f"select {columns} from {fg.snapshot_relation} where dbt_valid_to is null and {live}"


def _as_datetime(v: Any) -> Any:
    """Window arithmetic on a date event time happens at midnight (what the warehouse compares it as)."""
    if isinstance(v, date) and not isinstance(v, datetime):
        return datetime(v.year, v.month, v.day)
    return v


# Why the reference is read from the snapshot at check time, also for an incremental batch (whose publish should
# cost the batch, not the table). The statistics are exact (scipy's numbers): PSI needs the reference's deciles and
# its count per bin, KS and Wasserstein-1 need the reference's whole empirical CDF (its sorted values with their
# counts), so any exact summary of a continuous feature is as large as its distinct values (bench/publish.py's 2.3M
# reference rows hold 0.9M distinct values). And the reference moves with every batch: `previous_window` ends where
# the batch's detection window starts (its event times decide it), so a summary kept per commit would have to be per
# (event time, value): the snapshot itself. Deciles and CDF positions of a multiset that changes by a batch cannot be
# updated in a batch's time in portable SQL (every larger value's cumulative count moves; it would take an
# order-statistic index). A fixed-size sample of the reference would cost the batch but change the numbers. So by
# default the reference is the published window, read once into a narrow temp table, and the statistics are made
# cheap per reference row instead (macros/drift/drift_statistics.sql: one sort for the deciles, bins without a join);
# a group may opt into a sample (`max_reference_rows`, `_sampled` below).
def _windows(wh: Any, fg, dc, commit_time, features: list[str] | None = None) -> tuple[str, str, dict | None]:
    """Materialize the detection window (fs_drift_cur) and the reference (fs_drift_ref) as temp tables; the third
    value describes the reference's sample (None: every reference row).

    Window bounds are computed here and bound as values, so the SQL needs no engine's interval syntax. With
    `features`, the tables hold only those columns and the event time (the statistics read nothing else): the
    reference is a slice of the snapshot, whose other columns (dbt_scd_id ...) would only be copied."""
    et = wh.quote(fg.event_time)
    cols = "*" if features is None else ", ".join(wh.quote(c) for c in dict.fromkeys([fg.event_time, *features]))
    window = timedelta(seconds=int(dc.window.total_seconds()))
    newest = _as_datetime(wh.scalar(f"select max({et}) from {fg.relation}"))
    if newest is None:  # an empty candidate: an empty detection window
        cur = wh.create_temp_table("fs_drift_cur", f"select {cols} from {fg.relation} where 1 = 0")
    else:
        cur = wh.create_temp_table("fs_drift_cur", f"select {cols} from {fg.relation} where {et} > ?",
                                   [newest - window])
    params: list[Any] = []
    if dc.reference == "previous_window":
        pub = _published_live(fg, False, cols)
        detect_start = _as_datetime(wh.scalar(f"select min({et}) from {cur}"))
        # The window before the detection window (or the latest published one, when publishing lags behind).
        hi = detect_start if _published_from(wh, pub, et, detect_start) else min(
            (t for t in (detect_start, _as_datetime(wh.scalar(f"select max({et}) from ({pub}) as pub")))
             if t is not None), default=None)
        if hi is None:
            query = f"{pub} and 1 = 0"
        else:
            # Rows at exactly the detection start belong to the detection window, not the reference.
            before_detection = f" and {et} < ?" if detect_start is not None else ""
            params = [hi, hi - window] + ([detect_start] if detect_start is not None else [])
            query = f"{pub} and {et} <= ? and {et} > ?{before_detection}"
    elif dc.reference == "last_commit":
        query = _published_live(fg, False, cols)
    else:
        query, params = _published_live(fg, True, cols), [commit_time, commit_time]
    query, params, sample = _sampled(wh, fg, dc, query, params)
    return wh.create_temp_table("fs_drift_ref", query, params), cur, sample


# Why a cap on the reference is opt-in (drift.max_reference_rows) and a hash sample. Exact statistics need every
# reference row (comment above), and the reference of a dense group can be millions of rows whatever the batch: the
# cap trades exactness for a check whose cost is the sample's. The sample is the rows whose hash of (key, event
# time) falls below cap / reference size: deterministic (the same rows on every engine run, so a re-run gives the
# same numbers, and a row keeps its place in the sample as the reference moves), spread over the whole window and
# every key, and selected while the reference is read (no sort; one count of the reference first). Its size is
# binomial around the cap.
def _sampled(wh: Any, fg, dc, query: str, params: list[Any]) -> tuple[str, list[Any], dict | None]:
    cap = dc.max_reference_rows
    if cap is None:
        return query, params, None
    rows = int(wh.scalar(f"select count(*) from ({query}) as ref", params) or 0)
    if rows <= cap:
        return query, params, {"max_reference_rows": cap, "reference_rows": rows, "fraction": 1.0}
    fraction = cap / rows
    keys = [wh.quote(c) for c in dict.fromkeys(fg.key_columns)]
    return (f"{query} and {wh.unit_hash(keys)} < ?", [*params, fraction],
            {"max_reference_rows": cap, "reference_rows": rows, "fraction": fraction})


def _published_from(wh: Any, pub: str, et: str, start: Any) -> bool:
    """Whether a published row has an event time at or after `start`: then min(start, newest published) is `start`,
    and the newest published event time need not be found (a max over every published row; this stops at the first
    such row)."""
    if start is None:
        return False
    found = wh.scalar(f"select count(*) from (select 1 as found from ({pub}) as pub where {et} >= ? limit 1) as f",
                      [start])
    return bool(found)


def feature_group_drift(wh, fg, exp, published: bool, commit_time=None, *, macro_dir: Path) -> list:
    """Drift checks of every feature of `fg`'s candidate, on Warehouse `wh` with the macros of `macro_dir`.

    Detection window: candidate rows with event time in (max - window, max]. Reference (exp.drift.reference):
      previous_window  published rows with event time in the `window` before the detection window starts (or
                       the latest `window` of published event time, when publishing lags behind)
      last_commit      the feature group as published now
      commit           the feature group as published by commit N (`commit_time` = that commit's time)
    """
    from .results import CheckResult

    dc = exp.drift
    if not dc.enabled:
        return []
    if not published:
        return [CheckResult("drift", "drift", "skipped", message="no published version to compare with yet")]
    seconds = int(dc.window.total_seconds())
    try:
        drifting = [col.name for col in fg.features if exp.columns[col.name].drift]
        ref, cur, sample = _windows(wh, fg, dc, commit_time, drifting)
        results = []
        base = {**DEFAULT_THRESHOLDS, **dc.thresholds}
        for col in fg.features:
            ce = exp.columns[col.name]
            if not ce.drift:
                continue
            numeric = is_numeric(col.data_type) and not ce.categorical and not ce.allowed_values
            stats = column_drift(wh, ref, cur, col.name, numeric, macro_dir=macro_dir)
            fd = evaluate(col.name, numeric, stats, {**base, **ce.drift_thresholds})
            metrics = {**stats, "thresholds": fd.thresholds, "exceeded": fd.exceeded, "kind": fd.kind,
                       "reference": dc.reference, "window_seconds": seconds,
                       **({"reference_sample": sample} if sample else {})}
            n_ref, n_cur = stats.get("n_ref") or 0, stats.get("n_cur") or 0
            if min(n_ref, n_cur) < MIN_SAMPLES:
                outcome = "skipped"
                msg = f"too few rows to compare (reference {n_ref}, detection window {n_cur}; need {MIN_SAMPLES})"
            elif fd.drifted:
                outcome = "fail"
                msg = "drift: " + ", ".join(f"{k} {stats[k]:.3g} > {fd.thresholds[k]:g}" for k in fd.exceeded)
            else:
                outcome = "pass"
                msg = "no drift"
            results.append(CheckResult(f"drift:{col.name}", "drift", outcome, column=col.name, message=msg,
                                       metrics=metrics))
        return results
    finally:
        for name in ("fs_drift_cur", "fs_drift_ref"):
            wh.execute(f"drop table if exists {wh.temp_relation(name)}")
