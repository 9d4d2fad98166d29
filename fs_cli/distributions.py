"""Per-feature distributions of a feature group as published now: what the UI's feature-group page draws.

Computed in the warehouse (no rows fetched: one scan for every feature's count, minimum and maximum, then one
aggregate query per feature): numeric features as a histogram of
equal-width bins between their minimum and maximum, text and boolean features as their most frequent values plus
an "other" count, time features as their range. Every distribution counts the missing values apart.

A value x of a numeric feature falls in bin floor((x - min) / width), the maximum in the last bin (numpy's
histogram convention), computed in double precision on every engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .commits import is_published, published_query
from .training import logical_type

if TYPE_CHECKING:
    from .declarations.model import FeatureGroup
    from .warehouse import Warehouse

BINS = 10
TOP_VALUES = 10


def _kind(type_name: str) -> str:
    """How a column of this engine type is drawn (the training datasets' reading of engine types)."""
    logical = logical_type(type_name)
    if logical == "number":
        return "numeric"
    return "time" if logical in ("timestamp", "date") else "categorical"


def latest(wh: Warehouse, fg: FeatureGroup, bins: int = BINS, top: int = TOP_VALUES) -> dict[str, dict[str, Any]]:
    """{feature: distribution} over the group's current published rows ({} before its first publish)."""
    if not is_published(wh, fg):
        return {}
    sql, params = published_query(fg, None, wh.quote, ordered=False)
    base = f"({sql}) as __fs_latest"
    types = dict(wh.describe(fg.snapshot_relation))
    names = [f.name for f in fg.features if f.name in types]
    if not names:
        return {}
    # count, min and max of every feature in one scan
    cols = [wh.quote(n) for n in names]
    stats = wh.fetchone("select count(*), " + ", ".join(f"count({c}), min({c}), max({c})" for c in cols)
                        + f" from {base}", params)
    rows = int(stats[0])
    return {n: _distribution(wh, base, params, c, _kind(types[n]), rows, *stats[1 + 3 * i: 4 + 3 * i], bins, top)
            for i, (n, c) in enumerate(zip(names, cols, strict=True))}


def _distribution(wh: Warehouse, base: str, params: list, col: str, kind: str, rows: int, present: int, lo: Any,
                  hi: Any, bins: int, top: int) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": kind, "rows": rows, "missing": rows - int(present)}
    if kind == "time":
        return {**out, "min": lo, "max": hi}
    if kind == "numeric":
        return {**out, "bins": _histogram(wh, base, params, col, lo, hi, int(present), bins)}
    text = wh.type("text")
    counted = wh.fetchall(
        f"select cast({col} as {text}) as v, count(*) as n from {base} where {col} is not null "
        f"group by cast({col} as {text}) order by n desc, v limit {int(top)}", params)
    values = [{"value": v, "count": int(n)} for v, n in counted]
    return {**out, "values": values, "other": int(present) - sum(v["count"] for v in values)}


def _histogram(wh: Warehouse, base: str, params: list, col: str, lo: Any, hi: Any, present: int,
               bins: int) -> list[dict[str, Any]]:
    if present == 0:
        return []
    lo, hi = float(lo), float(hi)
    if hi == lo:
        return [{"from": lo, "to": hi, "count": present}]
    width = (hi - lo) / bins
    double = wh.type("double")
    b = f"least(cast(floor((cast({col} as {double}) - ?) / ?) as {wh.type('integer')}), {int(bins) - 1})"
    counts = dict(wh.fetchall(f"select b, count(*) from (select {b} as b from {base} where {col} is not null) "
                              "as __fs_binned group by b", [lo, width, *params]))
    return [{"from": lo + i * width, "to": hi if i == bins - 1 else lo + (i + 1) * width,
             "count": int(counts.get(i, 0))} for i in range(bins)]
