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
# PSI 0.2 is the usual "significant shift" line; KS D / normalized W1 0.2 mean a fifth of the probability mass /
# a fifth of a reference standard deviation moved; JS 0.1 (base 2) and Cramer's V 0.2 are a moderate change.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "psi": 0.2,
    "ks_d": 0.2,
    "wasserstein_norm": 0.2,
    "jensen_shannon": 0.1,
    "cramers_v": 0.2,
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
