"""What the registry needs from a training dataset (TD): its metadata row and its rows by split.

TDs are built by fs_cli.training: table fs_training.<fv>_v<N> (with a `split` column, 'train'/'test') and one
metadata row in fs_meta.training_datasets. This module is the registry's only contact with that interface.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from ..errors import FeatureStoreError
from ..warehouse import META_SCHEMA, quote_ident, relation_exists

TD_SCHEMA = "fs_training"
TD_META = f"{META_SCHEMA}.training_datasets"


@dataclass
class TrainingDatasetInfo:
    feature_view: str
    version: int
    created_at: datetime | None
    as_of: datetime | None
    content_hash: str | None
    features: list[dict[str, str]]  # [{name, type}]
    labels: list[str]
    fg_commits: list[dict[str, Any]]  # [{feature_group, commit_id, commit_time}]
    split: Any = None
    row_counts: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.feature_view}:{self.version}"

    @property
    def table(self) -> str:
        return f"{TD_SCHEMA}.{quote_ident(f'{self.feature_view}_v{self.version}')}"

    @property
    def feature_names(self) -> list[str]:
        return [f["name"] for f in self.features]

    def feature_groups(self) -> list[str]:
        return sorted({str(c["feature_group"]) for c in self.fg_commits})


def parse_td_ref(ref: str) -> tuple[str, int]:
    fv, sep, ver = str(ref).rpartition(":")
    if not sep or not fv or not ver.isdigit():
        raise FeatureStoreError(
            f"training dataset reference {ref!r} is not FEATURE_VIEW:VERSION",
            fix="write e.g. `--training-dataset fv_fraud:1`; see `fs training-dataset list`",
        )
    return fv, int(ver)


def _json(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def _first(row: dict[str, Any], *names: str) -> Any:
    for n in names:
        if n in row and row[n] is not None:
            return _json(row[n])
    return None


def _features(v: Any) -> list[dict[str, str]]:
    if not v:
        return []
    if isinstance(v, dict):  # {name: type}
        return [{"name": str(k), "type": str(t)} for k, t in v.items()]
    out = []
    for f in v:
        if isinstance(f, str):
            out.append({"name": f, "type": "unknown"})
        else:
            out.append({"name": str(f.get("name")),
                        "type": str(f.get("type") or f.get("data_type") or f.get("dtype") or "unknown")})
    return out


def _commits(v: Any) -> list[dict[str, Any]]:
    if not v:
        return []
    if isinstance(v, dict):  # {fg: commit_id} or {fg: {commit_id, commit_time}}
        items = [{"feature_group": k, **(c if isinstance(c, dict) else {"commit_id": c})} for k, c in v.items()]
    else:
        items = [dict(c) for c in v]
    out = []
    for c in items:
        fg = c.get("feature_group") or c.get("fg") or c.get("name")
        out.append({"feature_group": fg, "commit_id": c.get("commit_id", c.get("commit")),
                    "commit_time": None if c.get("commit_time") is None else str(c.get("commit_time"))})
    return sorted(out, key=lambda c: str(c["feature_group"]))


def load_td(con: duckdb.DuckDBPyConnection, feature_view: str, version: int) -> TrainingDatasetInfo:
    if not relation_exists(con, META_SCHEMA, "training_datasets"):
        raise FeatureStoreError(
            "no training datasets exist in this warehouse yet",
            fix="create one first: `fs training-dataset create FEATURE_VIEW`",
        )
    cols = [r[0] for r in con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position", [META_SCHEMA, "training_datasets"]).fetchall()]
    fv_col = next(c for c in ("feature_view", "fv", "name") if c in cols)
    rows = con.execute(
        f"select * from {TD_META} where {quote_ident(fv_col)} = ? and version = ?", [feature_view, version]
    ).fetchall()
    if not rows:
        known = con.execute(
            f"select {quote_ident(fv_col)} || ':' || version from {TD_META} order by all").fetchall()
        raise FeatureStoreError(
            f"training dataset {feature_view}:{version} does not exist",
            fix=f"existing training datasets: {', '.join(k[0] for k in known) or '(none)'}",
        )
    row = dict(zip(cols, rows[0], strict=True))
    labels = _first(row, "label_columns", "labels", "label_column", "label")
    if isinstance(labels, str):
        labels = [labels]
    counts = {k: row[k] for k in cols if k.endswith("_rows") or k in ("row_count", "rows")}
    rc = _first(row, "row_counts")
    if isinstance(rc, dict):
        counts.update(rc)
    return TrainingDatasetInfo(
        feature_view=feature_view, version=int(version),
        created_at=_first(row, "created_at"), as_of=_first(row, "as_of"),
        content_hash=_first(row, "content_hash", "hash", "sha256"),
        features=_features(_first(row, "features", "feature_columns", "schema")),
        labels=[str(x) for x in (labels or [])],
        fg_commits=_commits(_first(row, "fg_commits", "commits", "feature_group_commits")),
        split=_first(row, "split", "split_spec"), row_counts=counts, raw=row,
    )


def list_tds(con: duckdb.DuckDBPyConnection) -> list[TrainingDatasetInfo]:
    if not relation_exists(con, META_SCHEMA, "training_datasets"):
        return []
    cols = [r[0] for r in con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
        [META_SCHEMA, "training_datasets"]).fetchall()]
    fv_col = next(c for c in ("feature_view", "fv", "name") if c in cols)
    refs = con.execute(f"select {quote_ident(fv_col)}, version from {TD_META} order by 1, 2").fetchall()
    return [load_td(con, fv, int(v)) for fv, v in refs]


def read_td(con: duckdb.DuckDBPyConnection, td: TrainingDatasetInfo, split: str | None = None) -> pd.DataFrame:
    """The TD's rows (one split or all), in a stable order."""
    name = f"{td.feature_view}_v{td.version}"
    if not relation_exists(con, TD_SCHEMA, name):
        raise FeatureStoreError(f"the table of training dataset {td.ref} ({td.table}) is missing",
                                fix="recreate the training dataset; its metadata row exists but its data does not")
    if split is None:
        return con.sql(f"select * from {td.table}").df()
    df = con.sql(f"select * from {td.table} where split = ?", params=[split]).df()
    if df.empty:
        raise FeatureStoreError(
            f"training dataset {td.ref} has no rows in split {split!r}",
            fix="create a training dataset with a held-out split, e.g. `--split random:0.8,0.2:42`",
        )
    return df
