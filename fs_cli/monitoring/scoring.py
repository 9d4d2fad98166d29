"""Batch inference on any spine: the rows to score (a dbt model or a Parquet/CSV file) are joined point-in-time
with the model's feature view through the same macro and resolved declaration as its training dataset, scored by
the registered model (its TD's fitted transformations applied by `LoadedModel.predict`, as in training) and logged
to `<state>/predictions/` (format: fs_cli/monitoring/__init__.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from ..errors import FeatureStoreError
from ..timeutil import parse_timestamp, utcnow
from ..warehouse import META_SCHEMA
from .logs import PredictionLog, new_row_id, utc_text

# The compiled view reads its spine from this name; it is replaced by the real relation before running (so one
# compile serves a dbt model and a file loaded into a scratch table in the same session).
SPINE_PLACEHOLDER = "fs_monitoring_spine_placeholder"
FILE_SUFFIXES = (".parquet", ".csv")


def _read_spine_file(path: Path) -> pa.Table:
    if not path.is_file():
        raise FeatureStoreError(f"spine file {path} does not exist", fix="give a .parquet/.csv file or a dbt model")
    if path.suffix.lower() == ".csv":
        import pyarrow.csv as pacsv

        return pacsv.read_csv(path)
    import pyarrow.parquet as pq

    return pq.read_table(path)


def _model_relation(project: Any, name: str) -> str:
    for node in project.manifest().nodes.values():
        if node.resource_type in ("model", "seed", "snapshot") and node.name == name and node.relation_name:
            return node.relation_name
    raise FeatureStoreError(f"spine {name!r} is neither a .parquet/.csv file nor a dbt model, seed or snapshot",
                            fix="name a model of the project (built) or a file path ending in .parquet or .csv")


def compile_on_spine(project: Any, fv: Any, spine_columns: list[str], as_of: datetime | None) -> str:
    """The view's PIT SQL (the project's fs_feature_view_sql macro through dbt) over spine SPINE_PLACEHOLDER
    keeping `spine_columns` (the view's spine columns the given spine has: labels may be missing)."""
    from ..training import compile_feature_view

    resolved = fv.resolved()
    resolved["spine"] = {**resolved["spine"], "relation": SPINE_PLACEHOLDER, "columns": spine_columns}
    resolved["output_columns"] = [c for c in resolved["output_columns"]
                                  if c in spine_columns or c not in fv.spine_columns]
    project = project.with_vars({"fs_resolved_views": {fv.name: resolved}})
    return compile_feature_view(project, fv, as_of)


def score_spine(fs: Any, ref: str, spine: str | Path | pd.DataFrame | pa.Table, as_of: str | datetime | None = None,
                log: bool = True) -> pd.DataFrame:
    """Score every spine row with model NAME[:V|@ALIAS]: spine columns, row_id, the features as joined, prediction
    (and `score` = positive-class probability for a binary classifier), model. Logged unless `log=False`."""
    loaded = fs.models.get(ref)
    info = loaded.info
    fv = fs.catalog.fv(info.training_dataset)
    read_at = parse_timestamp(as_of, where="as_of") if as_of is not None else None
    if isinstance(spine, pd.DataFrame):
        spine = pa.Table.from_pandas(spine, preserve_index=False)
    table = spine if isinstance(spine, pa.Table) else None
    relation = None
    if table is None:
        path = Path(str(spine))
        if path.suffix.lower() in FILE_SUFFIXES:
            table = _read_spine_file(path)
        else:
            relation = _model_relation(fs.project, str(spine))
    with fs.project.warehouse(read_only=table is None) as wh:
        have = table.column_names if table is not None else wh.query_columns(f"select * from {relation}")
    needed = [*fv.key_columns, fv.spine_timestamp]
    missing = [c for c in needed if c not in have]
    if missing:
        raise FeatureStoreError(f"the spine lacks column(s) {', '.join(missing)} of feature view {fv.name}",
                                fix=f"give one row per prediction with {', '.join(needed)} (spine time = when the "
                                    "features should be read, point in time)")
    keep = [c for c in fv.spine_columns if c in have]
    sql = compile_on_spine(fs.project, fv, keep, read_at)
    scratch = None
    with fs.project.warehouse() as wh:
        try:
            if table is not None:
                wh.ensure_schema(META_SCHEMA)
                scratch = wh.relation(META_SCHEMA, f"scoring_spine_{uuid.uuid4().hex[:12]}")
                wh.write_arrow(scratch, table, mode="create")
            ts = wh.quote(fv.spine_timestamp)
            order = ", ".join([ts, *(wh.quote(k) for k in fv.key_columns)])
            query = f"select * from ({sql.replace(SPINE_PLACEHOLDER, scratch or relation)}) as fs_scored order by {order}"
            from ..training import decimals_as_double

            rows = decimals_as_double(wh.arrow(query)).to_pandas()
        finally:
            if scratch is not None:
                wh.drop_table(scratch)
    out = rows.copy()
    out.insert(0, "row_id", [new_row_id() for _ in range(len(out))])
    if len(out):
        out["prediction"] = loaded.predict(rows)
        classes = info.output_schema.get("classes")
        if info.task == "classification" and info.output_schema.get("probabilities") and classes and len(classes) == 2:
            out["score"] = loaded.predict_proba(rows)[:, 1]
    out["model"] = info.ref
    if log and len(out):
        _log(fs.project.state_dir, out, fv, info)
    return out


def _log(state_dir: Path, scored: pd.DataFrame, fv: Any, info: Any) -> int:
    features = [c for c, _, _ in fv.feature_columns] + [d["name"] for d in fv.on_demand if isinstance(d, dict)]
    features = [c for c in features if c in scored.columns]
    keys = [k for k in fv.key_columns if k in scored.columns]
    now = utc_text(utcnow())
    has_score = "score" in scored.columns

    def clean(v: Any) -> Any:
        return None if v is None or (isinstance(v, float) and v != v) or v is pd.NaT else v

    records = []
    for rec in scored.to_dict(orient="records"):
        ts = rec.get(fv.spine_timestamp)
        records.append({
            "logged_at": now, "row_id": rec["row_id"], "model": info.ref, "feature_view": fv.name,
            "training_dataset_version": info.training_dataset_version,
            "entity": {k: clean(rec[k]) for k in keys},
            "timestamp": utc_text(pd.Timestamp(ts).to_pydatetime()) if clean(ts) is not None else None,
            "features": {f: clean(rec[f]) for f in features},
            "prediction": clean(rec["prediction"]), "score": clean(rec["score"]) if has_score else None,
        })
    return PredictionLog(state_dir).write(records)
