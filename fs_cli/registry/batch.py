"""Batch inference through the feature view: the model's own feature view (the declaration its training dataset
was built from) is compiled to SQL, read from the warehouse as currently published, and scored."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd

from ..errors import FeatureStoreError
from ..timeutil import parse_timestamp
from ..training import decimals_as_double

if TYPE_CHECKING:
    from .registry import ModelRegistry


def score_batch(reg: ModelRegistry, ref: str, since: str | datetime | None = None,
                until: str | datetime | None = None, as_of: str | datetime | None = None) -> pd.DataFrame:
    """Score the feature view's rows with spine time in [since, until): keys, timestamp, prediction and (for a
    classifier with probabilities) the score of the positive class. Features are read as published at `as_of`
    (commit time; default: now)."""
    from ..training import compile_feature_view

    loaded = reg.get(ref)
    info = loaded.info
    fv = reg.fs.catalog.fv(info.training_dataset)
    read_at = parse_timestamp(as_of, where="as_of") if as_of is not None else None
    sql = compile_feature_view(reg.project, fv, read_at)
    ops, params = [], []
    for bound, op in ((since, ">="), (until, "<")):
        if bound is not None:
            ops.append(op)
            params.append(parse_timestamp(bound, where="since/until"))
    with reg.project.warehouse(read_only=True) as wh:
        ts = wh.quote(fv.spine_timestamp)
        where = [f"{ts} {op} ?" for op in ops]
        query = f"select * from ({sql}) as fv" + (f" where {' and '.join(where)}" if where else "") + f" order by {ts}"
        rows = decimals_as_double(wh.arrow(query, params)).to_pandas()
    if rows.empty:
        raise FeatureStoreError(f"feature view {fv.name} has no rows in the requested window",
                                fix="widen --since/--until")
    keep = [c for c in dict.fromkeys([*fv.key_columns, fv.spine_timestamp, *fv.spine_extra]) if c in rows.columns]
    out = rows[keep].copy()
    out["prediction"] = loaded.predict(rows)
    classes = info.output_schema.get("classes")
    if info.task == "classification" and info.output_schema.get("probabilities") and classes and len(classes) == 2:
        out["score"] = loaded.predict_proba(rows)[:, 1]
    out["model"] = info.ref
    return out
