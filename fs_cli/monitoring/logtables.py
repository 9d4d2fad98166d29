"""Inference logs as warehouse tables: the JSONL logs (format: fs_cli/monitoring/__init__.py) loaded into fs_meta so
dbt (models/monitoring/) and BI read them on every engine, the same way (dbt cannot read a local file on a server
warehouse, so there is one path: fs loads, dbt reads the tables).

Tables (schema fs_meta; created by fs or, when no log was ever loaded, by the monitoring models' pre-hook
`fs_inference_log_tables()` in macros/monitoring/, with the same columns):
  predictions_log            one row per logged prediction (row_id unique)
  predictions_log_values     one row per (row_id, kind = entity|feature, name): value_text, value_number
  served_vectors_log         one row per served entity vector (row_id = "<request_id>:<i>")
  served_vectors_log_values  one row per (row_id, kind, name): value_text, value_number, status
  inference_log_files        load watermark: bytes of each JSONL file already read

Loading is idempotent: a file is read from its watermark to its last complete line, and a row whose row_id is
already loaded is skipped (so a lost watermark or a re-run adds nothing twice).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from ..timeutil import utcnow
from ..warehouse import META_SCHEMA
from .logs import PREDICTIONS_DIR, SERVED_DIR, _parse_time, log_objects, served_line_vectors

PREDICTIONS = "predictions_log"
PREDICTION_VALUES = "predictions_log_values"
SERVED = "served_vectors_log"
SERVED_VALUES = "served_vectors_log_values"
FILES = "inference_log_files"

# (table, [(column, logical type)]): the one column list; macros/monitoring/inference_logs.sql mirrors it (tested)
COLUMNS: dict[str, list[tuple[str, str]]] = {
    PREDICTIONS: [("row_id", "text"), ("log_version", "bigint"), ("logged_at", "timestamp"), ("model", "text"),
                  ("model_name", "text"), ("model_version", "bigint"), ("feature_view", "text"),
                  ("training_dataset_version", "bigint"), ("event_time", "timestamp"), ("entity", "text"),
                  ("features", "text"), ("prediction", "text"), ("prediction_value", "double"), ("score", "double"),
                  ("source_file", "text")],
    PREDICTION_VALUES: [("row_id", "text"), ("logged_at", "timestamp"), ("feature_view", "text"), ("kind", "text"),
                        ("name", "text"), ("value_text", "text"), ("value_number", "double")],
    SERVED: [("row_id", "text"), ("request_id", "text"), ("row_index", "bigint"), ("log_version", "bigint"),
             ("served_at", "timestamp"), ("feature_view", "text"), ("versions", "text"), ("entity", "text"),
             ("features", "text"), ("source_file", "text")],
    SERVED_VALUES: [("row_id", "text"), ("served_at", "timestamp"), ("feature_view", "text"), ("kind", "text"),
                    ("name", "text"), ("value_text", "text"), ("value_number", "double"), ("status", "text")],
    FILES: [("file", "text"), ("kind", "text"), ("bytes_loaded", "bigint"), ("loaded_at", "timestamp")],
}
_ARROW = {"text": pa.string(), "bigint": pa.int64(), "double": pa.float64(), "timestamp": pa.timestamp("us")}


@dataclass
class SyncResult:
    predictions: int = 0
    served_vectors: int = 0
    files: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"predictions": self.predictions, "served_vectors": self.served_vectors, "files": self.files}


def ensure_log_tables(wh: Any) -> None:
    wh.ensure_schema(META_SCHEMA)
    for table, cols in COLUMNS.items():
        ddl = ", ".join(f"{wh.quote(c)} {wh.type(t)}" for c, t in cols)
        wh.execute(f"create table if not exists {wh.relation(META_SCHEMA, table)} ({ddl})")


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v)) if abs(v) < 2**53 else repr(v)
    return v if isinstance(v, str) else str(v)


def _number(v: Any) -> float | None:
    if v is None or isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def _json(v: Any) -> str:
    return orjson.dumps(v, default=str).decode()


def _new_lines(path: Path, start: int) -> tuple[list[bytes], int]:
    """Complete lines of `path` from byte `start` (from 0 when the file is shorter: it was recreated), and the byte
    offset after the last complete line."""
    size = path.stat().st_size
    if size < start:
        start = 0
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read(size - start)
    end = data.rfind(b"\n") + 1
    return data[:end].splitlines(), start + end


def _prediction_rows(obj: dict[str, Any], file: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    model = str(obj.get("model") or "")
    name, _, version = model.partition(":")
    at = _parse_time(obj.get("logged_at"))
    pred = obj.get("prediction")
    main = {"row_id": str(obj.get("row_id")), "log_version": int(obj.get("v", 1)), "logged_at": at, "model": model,
            "model_name": name, "model_version": int(version) if version.isdigit() else None,
            "feature_view": obj.get("feature_view"), "training_dataset_version": obj.get("training_dataset_version"),
            "event_time": _parse_time(obj.get("timestamp")), "entity": _json(obj.get("entity") or {}),
            "features": _json(obj.get("features") or {}), "prediction": _text(pred),
            "prediction_value": _number(pred), "score": _number(obj.get("score")), "source_file": file}
    values = [{"row_id": main["row_id"], "logged_at": at, "feature_view": main["feature_view"], "kind": kind,
               "name": k, "value_text": _text(v), "value_number": _number(v)}
              for kind, field in (("entity", "entity"), ("feature", "features"))
              for k, v in (obj.get(field) or {}).items()]
    return main, values


def _served_rows(obj: dict[str, Any], file: str, key_columns: dict[str, list[str]]
                 ) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    at = _parse_time(obj.get("served_at"))
    fv = obj.get("feature_view")
    request_id = str(obj.get("request_id"))
    for i, cells in enumerate(served_line_vectors(obj, key_columns.get(fv))):
        row_id = f"{request_id}:{i}"
        entity = {n: v for n, (kind, v, _) in cells.items() if kind == "entity"}
        features = {n: v for n, (kind, v, s) in cells.items() if kind == "feature"}
        main = {"row_id": row_id, "request_id": request_id, "row_index": i, "log_version": int(obj.get("v", 1)),
                "served_at": at, "feature_view": fv, "versions": _json(obj.get("versions") or {}),
                "entity": _json(entity), "features": _json(features), "source_file": file}
        values = [{"row_id": row_id, "served_at": at, "feature_view": fv, "kind": kind, "name": n,
                   "value_text": _text(v), "value_number": _number(v), "status": s}
                  for n, (kind, v, s) in cells.items()]
        yield main, values


def _arrow(table: str, rows: list[dict[str, Any]]) -> pa.Table:
    return pa.table({c: pa.array([r.get(c) for r in rows], _ARROW[t]) for c, t in COLUMNS[table]})


def _append_new(wh: Any, table: str, rows: list[dict[str, Any]], values_table: str, values: list[dict[str, Any]]
                ) -> int:
    """Append rows (and their values) whose row_id is not loaded yet; returns the number of new rows."""
    if not rows:
        return 0
    target, target_values = wh.relation(META_SCHEMA, table), wh.relation(META_SCHEMA, values_table)
    tag = uuid.uuid4().hex[:12]
    scratch, scratch_values = (wh.relation(META_SCHEMA, f"{table}_load_{tag}"),
                               wh.relation(META_SCHEMA, f"{values_table}_load_{tag}"))
    wh.write_arrow(scratch, _arrow(table, rows), mode="create")
    wh.write_arrow(scratch_values, _arrow(values_table, values), mode="create")
    try:
        cols = ", ".join(wh.quote(c) for c, _ in COLUMNS[table])
        vcols = ", ".join(wh.quote(c) for c, _ in COLUMNS[values_table])
        new = f"not exists (select 1 from {target} t where t.row_id = s.row_id)"
        with wh.transaction():
            before = wh.scalar(f"select count(*) from {target}")
            wh.execute(f"insert into {target_values} ({vcols}) select {vcols} from {scratch_values} s where {new}")
            wh.execute(f"insert into {target} ({cols}) select {cols} from {scratch} s where {new}")
            after = wh.scalar(f"select count(*) from {target}")
    finally:
        wh.drop_table(scratch)
        wh.drop_table(scratch_values)
    return int(after) - int(before)


def _watermarks(wh: Any) -> dict[tuple[str, str], int]:
    rows = wh.fetchall(f"select kind, file, max(bytes_loaded) from {wh.relation(META_SCHEMA, FILES)} "
                       "group by kind, file")
    return {(r[0], r[1]): int(r[2]) for r in rows}


def sync_logs(wh: Any, state_dir: str | Path, key_columns: dict[str, list[str]] | None = None) -> SyncResult:
    """Load the new lines of every inference log file under `state_dir` into the fs_meta log tables.
    `key_columns`: per feature view its entity keys (to tell keys from features in a served answer)."""
    key_columns = key_columns or {}
    ensure_log_tables(wh)
    marks = _watermarks(wh)
    result = SyncResult()
    now = utcnow()
    for kind, directory, pattern in (("predictions", PREDICTIONS_DIR, "predictions-*.jsonl"),
                                     ("served", SERVED_DIR, "served-*.jsonl")):
        folder = Path(state_dir) / directory
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(pattern)):
            lines, end = _new_lines(path, marks.get((kind, path.name), 0))
            if not lines and end == marks.get((kind, path.name), 0):
                continue
            rows: list[dict[str, Any]] = []
            values: list[dict[str, Any]] = []
            for obj in log_objects(lines):
                pairs = [_prediction_rows(obj, path.name)] if kind == "predictions" else _served_rows(obj, path.name,
                                                                                          key_columns)
                for main, vals in pairs:
                    rows.append(main)
                    values.extend(vals)
            if kind == "predictions":
                result.predictions += _append_new(wh, PREDICTIONS, rows, PREDICTION_VALUES, values)
            else:
                result.served_vectors += _append_new(wh, SERVED, rows, SERVED_VALUES, values)
            wh.execute(f"insert into {wh.relation(META_SCHEMA, FILES)} (file, kind, bytes_loaded, loaded_at) "
                       "values (?, ?, ?, ?)", [path.name, kind, end, now])
            result.files += 1
    return result
