"""Feature-group drift: statistics per feature between a reference window and the candidate's detection window.

The statistics are the SQL macros of macros/drift/drift_statistics.sql (one definition, see there for the exact
formulas), rendered for the connection's dialect and run where the data lives; nothing is pulled into Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .sqlrender import render_macro

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


def dialect_of(con: Any) -> str:
    """'duckdb' for a DuckDB connection, 'postgres' for a DB-API (psycopg2) one."""
    mod = type(con).__module__
    if mod.lstrip("_").startswith("duckdb"):
        return "duckdb"
    if mod.startswith("psycopg"):
        return "postgres"
    raise TypeError(f"unsupported connection type {type(con).__name__}: use DuckDB or psycopg2")


def fetch_dicts(con: Any, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    """Run a query on DuckDB or a DB-API connection; rows as dicts."""
    if dialect_of(con) == "duckdb":
        cur = con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    with con.cursor() as cur:
        cur.execute(sql, params or None)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


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


def column_drift(con: Any, reference: str, current: str, column: str, numeric: bool, bins: int = 10) -> dict[str, Any]:
    """All drift statistics of one column. `reference`/`current`: relation names (trusted SQL, e.g. temp tables)."""
    macro = "fs_numeric_drift" if numeric else "fs_categorical_drift"
    args = (reference, current, column, bins) if numeric else (reference, current, column)
    sql = render_macro(dialect_of(con), macro, *args)
    row = fetch_dicts(con, sql)[0]
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


def _published_live(fg, as_of_param: bool) -> str:
    live = "coalesce(dbt_is_deleted, 'False') <> 'True'"
    if as_of_param:
        return (f"select * from {fg.snapshot_relation} where dbt_valid_from <= ? "
                f"and (dbt_valid_to is null or dbt_valid_to > ?) and {live}")
    return f"select * from {fg.snapshot_relation} where dbt_valid_to is null and {live}"


def feature_group_drift(con, fg, exp, published: bool, commit_time=None) -> list:
    """Drift checks of every feature of `fg`'s candidate (DuckDB connection `con`).

    Detection window: candidate rows with event time in (max - window, max]. Reference (exp.drift.reference):
      previous_window  published rows with event time in the `window` before the detection window starts (or
                       the latest `window` of published event time, when publishing lags behind)
      last_commit      the feature group as published now
      commit           the feature group as published by commit N (`commit_time` = that commit's time)
    """
    from ..warehouse import quote_ident
    from .results import CheckResult

    dc = exp.drift
    if not dc.enabled:
        return []
    if not published:
        return [CheckResult("drift", "drift", "skipped", message="no published version to compare with yet")]
    et = quote_ident(fg.event_time)
    seconds = int(dc.window.total_seconds())
    con.execute(
        f"""create or replace temp table fs_drift_cur as
            select * from {fg.relation}
            where {et} > (select max({et}) from {fg.relation}) - to_seconds(cast(? as bigint))""",
        [seconds],
    )
    if dc.reference == "previous_window":
        con.execute(
            f"""create or replace temp table fs_drift_ref as
                with pub as ({_published_live(fg, False)}),
                bounds as (select least((select min({et}) from fs_drift_cur), (select max({et}) from pub)) as hi)
                select pub.* from pub, bounds
                where pub.{et} <= bounds.hi and pub.{et} > bounds.hi - to_seconds(cast(? as bigint))""",
            [seconds],
        )
        # Rows at exactly the detection start belong to the detection window, not the reference.
        con.execute(f"delete from fs_drift_ref where {et} >= (select min({et}) from fs_drift_cur)")
    elif dc.reference == "last_commit":
        con.execute(f"create or replace temp table fs_drift_ref as {_published_live(fg, False)}")
    else:
        con.execute(f"create or replace temp table fs_drift_ref as {_published_live(fg, True)}",
                    [commit_time, commit_time])
    try:
        results = []
        base = {**DEFAULT_THRESHOLDS, **dc.thresholds}
        for col in fg.features:
            ce = exp.columns[col.name]
            if not ce.drift:
                continue
            numeric = is_numeric(col.data_type) and not ce.categorical and not ce.allowed_values
            stats = column_drift(con, "fs_drift_ref", "fs_drift_cur", col.name, numeric)
            fd = evaluate(col.name, numeric, stats, {**base, **ce.drift_thresholds})
            metrics = {**stats, "thresholds": fd.thresholds, "exceeded": fd.exceeded, "kind": fd.kind,
                       "reference": dc.reference, "window_seconds": seconds}
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
        con.execute("drop table if exists fs_drift_cur")
        con.execute("drop table if exists fs_drift_ref")
