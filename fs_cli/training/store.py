"""The versions of training datasets: their metadata table (fs_meta.training_datasets) and lookups."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from ..errors import FeatureStoreError
from ..project import Project
from ..versions import latest_or_version
from ..warehouse import META_SCHEMA, Warehouse, quote_ident, relation_exists

TD_SCHEMA = "fs_training"
TD_META = f"{META_SCHEMA}.training_datasets"  # as DuckDB and Postgres spell it (SQL clients, docs)
SPLIT_COLUMN = "split"


# -- metadata ----------------------------------------------------------------------------------------------------

@dataclass
class TrainingDataset:
    feature_view: str
    version: int
    table: str  # quoted, schema-qualified
    created_at: datetime
    as_of: datetime | None  # the commit time asked for (None: the latest at creation)
    read_at: datetime  # the commit time the feature groups were read at
    fg_commits: list[dict[str, Any]]  # [{feature_group, commit_id, commit_time}]
    spine_model: str
    spine_read: str | None  # "as_of": a snapshot spine read at read_at; "live": read as it was at created_at
    spine_start: datetime | None
    spine_end: datetime | None
    split: dict[str, Any]
    row_counts: dict[str, int]
    rows: int
    content_hash: str
    features: list[dict[str, Any]]  # [{name, type, feature_group, feature}]
    labels: list[str]
    columns: list[dict[str, Any]]  # every column: {name, type, role}
    declaration: dict[str, Any]
    statistics: dict[str, Any] | None = None
    description: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.feature_view}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        d["ref"] = self.ref
        for k in ("created_at", "as_of", "read_at", "spine_start", "spine_end"):
            d[k] = d[k].isoformat(sep=" ") if d[k] is not None else None
        return d


# (name, logical type): JSON documents are stored as text, which every engine has (Spark has no json type).
_META_COLUMNS = [
    ("feature_view", "text"), ("version", "integer"), ("table_name", "text"), ("created_at", "timestamp"),
    ("as_of", "timestamp"), ("read_at", "timestamp"), ("fg_commits", "text"), ("spine_model", "text"),
    ("spine_start", "timestamp"), ("spine_end", "timestamp"), ("split", "text"), ("row_counts", "text"),
    ("rows", "bigint"), ("content_hash", "text"), ("features", "text"), ("labels", "text"), ("columns", "text"),
    ("declaration", "text"), ("statistics", "text"), ("description", "text"), ("spine_read", "text"),
]
# spine_read is NULL on versions made before it was recorded (their spine was read live).
_NULLABLE = {"as_of", "spine_start", "spine_end", "statistics", "description", "spine_read"}
_JSON = {"fg_commits", "split", "row_counts", "features", "labels", "columns", "declaration", "statistics"}


def ensure_td_meta(wh: Warehouse) -> None:
    wh.ensure_schema(META_SCHEMA)
    wh.ensure_schema(TD_SCHEMA)
    if wh.relation_exists(META_SCHEMA, "training_datasets"):
        have = {n for n, _ in wh.describe(_td_meta(wh))}
        for n, t in _META_COLUMNS:  # a table from an older release: add the columns recorded since (nullable)
            if n not in have:
                wh.add_column(_td_meta(wh), n, t)
        return
    cols = ",\n".join(f"{wh.quote(n)} {wh.type(t)}{'' if n in _NULLABLE else ' not null'}"
                      for n, t in _META_COLUMNS)
    try:
        wh.execute(f"create table if not exists {_td_meta(wh)} (\n{cols}"
                   f"{wh.primary_key_clause(['feature_view', 'version'])})")
    except Exception as e:
        if not wh.is_write_conflict(e):  # a concurrent first create made it: fine
            raise


def _td_meta(wh: Warehouse) -> str:
    return wh.relation(META_SCHEMA, "training_datasets")


def table_name(feature_view: str, version: int) -> str:
    return f"{feature_view}_v{version}"


def _row_to_td(row: tuple, quote=quote_ident) -> TrainingDataset:
    d = dict(zip([n for n, _ in _META_COLUMNS], row, strict=True))
    for k in _JSON:
        if isinstance(d[k], str):
            d[k] = json.loads(d[k])
    return TrainingDataset(
        feature_view=d["feature_view"], version=int(d["version"]),
        table=f"{TD_SCHEMA}.{quote(d['table_name'])}", created_at=d["created_at"], as_of=d["as_of"],
        read_at=d["read_at"], fg_commits=d["fg_commits"], spine_model=d["spine_model"],
        spine_read=d["spine_read"] or "live", spine_start=d["spine_start"], spine_end=d["spine_end"], split=d["split"], row_counts=d["row_counts"],
        rows=int(d["rows"]), content_hash=d["content_hash"], features=d["features"], labels=d["labels"],
        columns=d["columns"], declaration=d["declaration"], statistics=d["statistics"], description=d["description"],
    )


def list_tds(wh: Warehouse, feature_view: str | None = None) -> list[TrainingDataset]:
    if not relation_exists(wh, META_SCHEMA, "training_datasets"):
        return []
    have = {n for n, _ in wh.describe(TD_META)}  # an older release's table lacks the newer (nullable) columns
    names = ", ".join(wh.quote(n) if n in have else "null" for n, _ in _META_COLUMNS)  # Spark: `x` a column
    where, params = ("where feature_view = ?", [feature_view]) if feature_view else ("", [])
    rows = wh.execute(f"select {names} from {TD_META} {where} order by feature_view, version", params).fetchall()
    return [_row_to_td(r, wh.quote) for r in rows]


def parse_ref(ref: str) -> tuple[str, int | None]:
    """'fv' (latest) or 'fv:3'."""
    fv, sep, ver = str(ref).partition(":")
    if not fv or (sep and not ver.strip().isdigit()):
        raise FeatureStoreError(f"training dataset {ref!r} is not FEATURE_VIEW or FEATURE_VIEW:VERSION",
                                fix="write e.g. `fv_fraud_detection` (the latest version) or `fv_fraud_detection:2`")
    return fv, int(ver) if sep else None


def get_td(wh: Warehouse, feature_view: str, version: int | None = None) -> TrainingDataset:
    """Version `version` of the view's training datasets, or the latest one."""
    tds = list_tds(wh, feature_view)

    def none_yet() -> FeatureStoreError:
        return FeatureStoreError(f"feature view {feature_view} has no training datasets",
                                 fix=f"create one: `fs training-dataset create {feature_view}`")

    if not tds:  # whichever version was asked for
        raise none_yet()
    return latest_or_version(tds, version, no_latest=none_yet, unknown=lambda existing: FeatureStoreError(
        f"training dataset {feature_view}:{version} does not exist", fix=f"existing versions: {existing}"))


def info(project: Project, feature_view: str, version: int | None = None) -> TrainingDataset:
    """The metadata of one version (default: the latest), read from the project's target warehouse."""
    with project.warehouse(read_only=True) as wh:
        return get_td(wh, feature_view, version)


