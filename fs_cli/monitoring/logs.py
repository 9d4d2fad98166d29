"""Reading and writing the inference logs (format: see the package docstring).

Readers return plain Python rows (dicts) filtered by feature view and time; `vectors_table` turns them into an
Arrow table with one typed column per feature (float64 for numeric features, text otherwise) that the warehouse
layer loads (`Warehouse.write_arrow`) before drift statistics are computed where the training data lives.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

LOG_VERSION = 1
SERVED_DIR = "served_vectors"
PREDICTIONS_DIR = "predictions"


def _parse_time(text: Any) -> datetime | None:
    """Naive UTC from an ISO text ('...Z' or offset)."""
    if not isinstance(text, str) or not text:
        return None
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


def _lines(directory: Path, pattern: str) -> Iterator[dict[str, Any]]:
    """Every complete JSON line of the directory's files, oldest file first (a torn last line is skipped)."""
    if not directory.is_dir():
        return
    for path in sorted(directory.glob(pattern), key=lambda p: (p.stat().st_mtime, p.name)):
        with open(path, "rb") as fh:
            yield from log_objects(fh)


def log_objects(lines: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """The log records among raw JSONL lines: objects of a known format version (torn or foreign lines skipped)."""
    for raw in lines:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, dict) and int(obj.get("v", 1)) <= LOG_VERSION:
            yield obj


def _in_window(t: datetime | None, since: datetime | None, until: datetime | None) -> bool:
    if t is None:
        return False
    return (since is None or t >= since) and (until is None or t < until)


def served_line_vectors(obj: dict[str, Any], key_columns: Sequence[str] | None = None
                        ) -> list[dict[str, tuple[str, Any, str | None]]]:
    """The entity vectors of one served-log line: per row {name: (kind, value, status)}, kind `entity` for the
    request keys (`key_columns`: the view's keys, listed first in a served answer) and `feature` otherwise. A value whose status is not PRESENT is None, as the
    model saw it."""
    resp = obj.get("response") or {}
    names = (resp.get("metadata") or {}).get("feature_names") or []
    results = resp.get("results") or []
    n = len(results[0].get("values") or []) if results else 0
    keys = set(key_columns) if key_columns is not None else set(_leading_keys(obj, names))
    out = []
    for i in range(n):
        row: dict[str, tuple[str, Any, str | None]] = {}
        for name, res in zip(names, results, strict=False):
            v = res["values"][i]
            statuses = res.get("statuses") or []
            status = statuses[i] if statuses else None
            if name in keys:
                row[name] = ("entity", v, status)
            else:
                row[name] = ("feature", v if (status is None or status == "PRESENT") else None, status)
        out.append(row)
    return out


def _leading_keys(obj: dict[str, Any], names: Sequence[str]) -> list[str]:
    """Fallback for a line of a view no longer declared: the leading names ending in `_id` (keys come first)."""
    keys = []
    for name in names:
        if not name.endswith("_id"):
            break
        keys.append(name)
    return keys


def read_served_vectors(state_dir: str | os.PathLike, feature_view: str, key_columns: Sequence[str],
                        since: datetime | None = None, until: datetime | None = None) -> list[dict[str, Any]]:
    """One row per served entity vector of `feature_view` logged in [since, until):
    {"source": "served", "logged_at", "row_id": "<request_id>:<i>", "entity": {...}, "features": {...}}.
    `key_columns`: the view's request keys (listed first in a served answer). Values whose status is not PRESENT
    are missing (None), as the model saw them."""
    out: list[dict[str, Any]] = []
    for obj in _lines(Path(state_dir) / SERVED_DIR, "served-*.jsonl"):
        if obj.get("feature_view") != feature_view:
            continue
        at = _parse_time(obj.get("served_at"))
        if not _in_window(at, since, until):
            continue
        for i, row in enumerate(served_line_vectors(obj, key_columns)):
            out.append({"source": "served", "logged_at": at, "row_id": f"{obj.get('request_id')}:{i}",
                        "entity": {n: v for n, (k, v, _) in row.items() if k == "entity"},
                        "features": {n: v for n, (k, v, _) in row.items() if k == "feature"}})
    return out


def read_predictions(state_dir: str | os.PathLike, feature_view: str | None = None, model: str | None = None,
                     since: datetime | None = None, until: datetime | None = None) -> list[dict[str, Any]]:
    """Logged predictions in [since, until) (by `logged_at`), of one feature view and/or model name (or `name:v`)."""
    out = []
    for obj in _lines(Path(state_dir) / PREDICTIONS_DIR, "predictions-*.jsonl"):
        if feature_view is not None and obj.get("feature_view") != feature_view:
            continue
        m = str(obj.get("model") or "")
        if model is not None and m != model and m.split(":")[0] != model:
            continue
        at = _parse_time(obj.get("logged_at"))
        if not _in_window(at, since, until):
            continue
        out.append({**obj, "source": "predicted", "logged_at": at, "timestamp": _parse_time(obj.get("timestamp"))})
    return out


def vectors_table(rows: Sequence[dict[str, Any]], features: Sequence[tuple[str, bool]]) -> pa.Table:
    """Arrow table of logged vectors: logged_at, row_id and one column per (feature, numeric?) pair; a numeric
    feature that does not parse as a number counts as missing (it cannot be compared with a number)."""

    def number(v: Any) -> float | None:
        if v is None or isinstance(v, bool):
            return None if v is None else float(v)
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    cols: dict[str, pa.Array] = {
        "logged_at": pa.array([r["logged_at"] for r in rows], pa.timestamp("us")),
        "row_id": pa.array([str(r["row_id"]) for r in rows], pa.string()),
    }
    for name, numeric in features:
        values = [(r.get("features") or {}).get(name) for r in rows]
        if numeric:
            cols[name] = pa.array([number(v) for v in values], pa.float64())
        else:
            cols[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
    return pa.table(cols)


class PredictionLog:
    """Appends prediction records to `<state>/predictions/predictions-<start>-<pid>.jsonl` (one file per process)."""

    def __init__(self, state_dir: str | os.PathLike):
        self.dir = Path(state_dir) / PREDICTIONS_DIR
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        self.path = self.dir / f"predictions-{stamp}-{os.getpid()}.jsonl"

    def write(self, records: Iterable[dict[str, Any]]) -> int:
        self.dir.mkdir(parents=True, exist_ok=True)
        data = b"".join(orjson.dumps({"v": LOG_VERSION, **r}, default=_json_default,
                                     option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC) + b"\n"
                        for r in records)
        with open(self.path, "ab") as fh:
            fh.write(data)
        return data.count(b"\n")


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):  # numpy / pandas scalars
        return o.item()
    if hasattr(o, "isoformat"):
        return o.isoformat()
    return str(o)


def new_row_id() -> str:
    return uuid.uuid4().hex


def utc_text(t: datetime) -> str:
    return t.replace(tzinfo=None).isoformat() + "Z"
