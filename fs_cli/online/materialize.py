"""Materialization: the latest row per entity within TTL, written to the online store atomically.

`materialize(store, spec, rows, now)` applies the point-in-time rule with `now` as the spine time: per entity
key, the row with the greatest event_time <= now and event_time >= now - ttl (ties broken by created_time
when declared); entities without such a row are not served. `start` (Feast's materialize(start_date, end_date),
with `now` as the end) also drops rows with event_time < start: the window is [max(start, now - ttl), now].
It knows nothing of dbt, DuckDB files, click or HTTP: the caller hands it the published rows (pyarrow or pandas) and the FG spec.

Incremental mode (`changed=` / `deleted=` entity keys): `rows` needs to hold the published rows of the changed
entities only; their latest rows are upserted and entities left without a qualifying row are removed, in one
atomic step on the current version. Cost is proportional to the change.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from ..errors import FeatureStoreError
from ..lazy import lazy
from .specs import FGSpec, FVSpec
from .store import OnlineStore, Pointer, data_version_of, encode_key, make_data_version, stale_error

# Imported on first use: materialization that finds nothing new never needs them (fs_cli/lazy.py).
np = lazy("numpy")
pd = lazy("pandas")
pa = lazy("pyarrow")
pc = lazy("pyarrow.compute")

Progress = Callable[[int, int], None]  # (rows written so far, rows to write)
_CHUNK = 20_000


@dataclass
class MaterializeResult:
    feature_group: str
    mode: str  # "full" | "incremental"
    input_rows: int
    written: int
    deleted: int
    version: int
    gen: int
    seconds: float
    now: str

    @property
    def rows_per_s(self) -> float:
        return (self.input_rows / self.seconds) if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_s": round(self.rows_per_s, 1)}


def _as_arrow(rows: pa.Table | pd.DataFrame) -> pa.Table:
    if isinstance(rows, pa.Table):
        return rows
    if isinstance(rows, pd.DataFrame):
        return pa.Table.from_pandas(rows, preserve_index=False)
    raise FeatureStoreError(f"materialize: rows must be a pyarrow Table or pandas DataFrame, not {type(rows).__name__}")


def _naive_us(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A time column as naive UTC microseconds (timestamp[us]): dates at midnight, zoned times in UTC."""
    t = col.type
    if pa.types.is_timestamp(t):
        if t.tz is not None:  # the instant in UTC: Arrow stores zoned timestamps as UTC already
            col = pc.cast(col, pa.timestamp(t.unit))
        return pc.cast(col, pa.timestamp("us"))
    if pa.types.is_date(t):
        return pc.cast(pc.cast(col, pa.date32()), pa.timestamp("us"))
    if pa.types.is_null(t):
        return pa.nulls(len(col), pa.timestamp("us"))
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pc.cast(pc.cast(col, pa.string()), pa.timestamp("us"))
    raise FeatureStoreError(f"materialize: a time column has type {t}, not a timestamp or date",
                            fix="declare event_time / created_time as timestamp columns")


def _epoch_us(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    return pc.cast(_naive_us(col), pa.int64())


def latest_rows(spec: FGSpec, rows: pa.Table | pd.DataFrame, now: datetime, start: datetime | None = None) -> pa.Table:
    """The PIT rule with `now` as spine time: latest row per key with now - ttl <= event_time <= now (and
    event_time >= `start` when given).

    Columns out: keys, features, __event_us, __created_us (epoch microseconds). Pure Arrow (no SQL engine): the
    warehouse already narrowed the rows to the latest per key (fs_cli.online.from_warehouse), so this is a
    guard for callers handing raw history, vectorized (filter, one sort, a key-change mask).
    """
    table = _as_arrow(rows)
    needed = [*spec.keys, spec.event_time, *spec.feature_names, *([spec.created_time] if spec.created_time else [])]
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise FeatureStoreError(
            f"materialize {spec.name}: the rows lack column(s) {', '.join(missing)}",
            fix=f"pass the published feature group with columns {', '.join(needed)}")
    event_us = _epoch_us(table.column(spec.event_time))
    created_us = (_epoch_us(table.column(spec.created_time)) if spec.created_time
                  else pa.nulls(table.num_rows, pa.int64()))
    out = pa.table({**{c: table.column(c) for c in [*spec.keys, *spec.feature_names]},
                    "__event_us": event_us, "__created_us": created_us})
    now_us = _to_us(now)
    keep = pc.less_equal(event_us, now_us)
    if spec.ttl_seconds:
        keep = pc.and_(keep, pc.greater_equal(event_us, now_us - int(spec.ttl_seconds) * 1_000_000))
    if start is not None:
        keep = pc.and_(keep, pc.greater_equal(event_us, _to_us(start)))
    for k in spec.keys:
        keep = pc.and_(keep, pc.is_valid(out.column(k)))
    out = out.filter(pc.fill_null(keep, False))
    if out.num_rows == 0:
        return out
    out = _at_latest_event(out, spec.keys)
    # keys ascending, then the newest event (ties: the newest created time, nulls last) first in each key
    created_last = pc.fill_null(out.column("__created_us"), _MIN_I64)  # nulls last when descending
    order = pc.sort_indices(out.append_column("__created_sort", created_last),
                            sort_keys=[*((k, "ascending") for k in spec.keys), ("__event_us", "descending"),
                                       ("__created_sort", "descending")])
    out = out.take(order)
    return out.filter(_first_of_each_key(out, spec.keys))


def _at_latest_event(rows: pa.Table, keys: Sequence[str]) -> pa.Table:
    """The rows whose event time is their key's latest (a hash aggregate and join: cheaper than sorting all of
    a long history; what is left is about one row per key, sorted next)."""
    latest = rows.group_by(list(keys)).aggregate([("__event_us", "max")])
    if latest.num_rows == rows.num_rows:  # one row per key already (e.g. the warehouse picked them)
        return rows
    probe = rows.select(list(keys)).append_column("__event_us", rows.column("__event_us")) \
        .append_column("__row", pa.array(np.arange(rows.num_rows, dtype=np.int64)))
    hit = probe.join(latest, keys=list(keys))
    hit = hit.filter(pc.equal(hit.column("__event_us"), hit.column("__event_us_max")))
    return rows.take(hit.column("__row"))


def _first_of_each_key(sorted_rows: pa.Table, keys: Sequence[str]) -> pa.Array:
    """True on the first row of each run of equal keys (rows sorted by key, keys non-null)."""
    n = sorted_rows.num_rows
    change = None
    for k in keys:
        col = sorted_rows.column(k).combine_chunks()
        diff = pc.not_equal(col.slice(1), col.slice(0, n - 1))
        change = diff if change is None else pc.or_(change, diff)
    return pa.concat_arrays([pa.array([True]), change.cast(pa.bool_())])


def _to_us(t: datetime) -> int:
    return (t - _EPOCH) // _US


_EPOCH = datetime(1970, 1, 1)
_MIN_I64 = -(2**63)
_US = timedelta(microseconds=1)


def _pylist(col: pa.ChunkedArray) -> list[Any]:
    if pa.types.is_decimal(col.type):
        col = pc.cast(col, pa.float64())
    return col.to_pylist()


_CONTROL = r"[\x00-\x1f]"


def json_texts(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Each value of a column as JSON text (vectorized): what orjson writes for it, up to the spelling of floats
    (shortest round-trip digits either way, so they parse back to the same double). JSON has no NaN/inf: null.
    Times are ISO text (`2026-01-10T12:00:00`, `...T12:00:00.123000`); unusual types fall back to orjson."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = col.type
    if pa.types.is_null(t):
        return pa.array(["null"] * len(col), pa.string())
    if pa.types.is_boolean(t) or pa.types.is_integer(t):
        text = pc.cast(col, pa.string())
    elif pa.types.is_floating(t) or pa.types.is_decimal(t):
        x = pc.cast(col, pa.float64())
        x = pc.if_else(pc.is_finite(x), x, pa.scalar(None, pa.float64()))
        text = pc.cast(x, pa.string())
        # Arrow writes 3.0 as "3": keep it a float for clients (orjson: "3.0")
        text = pc.if_else(pc.match_substring_regex(text, "[.e]"), text, pc.binary_join_element_wise(text, ".0", ""))
    elif pa.types.is_timestamp(t) or pa.types.is_date(t):
        text = pc.cast(_naive_us(col), pa.string()) if pa.types.is_timestamp(t) else pc.cast(col, pa.string())
        text = pc.replace_substring_regex(pc.replace_substring(text, " ", "T"), r"\.000000$", "")
        text = pc.binary_join_element_wise('"', text, '"', "")
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        text = _json_strings(pc.cast(col, pa.string()))
    else:
        text = pa.array([None if v is None else orjson.dumps(v, default=str).decode() for v in _pylist(col)],
                        pa.string())
    return pc.fill_null(text, "null")


def _json_strings(col: pa.Array) -> pa.Array:
    escaped = pc.replace_substring(pc.replace_substring(col, "\\", "\\\\"), '"', '\\"')
    text = pc.binary_join_element_wise('"', escaped, '"', "")
    odd = pc.fill_null(pc.match_substring_regex(col, _CONTROL), False)
    if pc.any(odd).as_py():  # control characters need \u escapes: the (rare) rows that have them via orjson
        mask = odd.to_pylist()
        values = col.to_pylist()
        fixed = [orjson.dumps(v).decode() if m else None for v, m in zip(values, mask, strict=True)]
        text = pc.if_else(odd, pa.array(fixed, pa.string()), text)
    return text


def encode_keys(spec: FGSpec, rows: pa.Table, columns: Sequence[str] | None = None) -> pa.Array:
    """store.encode_key of every row, vectorized: one string key as-is, one integer key as its digits, several
    keys as a compact JSON array (other single-key types fall back to encode_key per row)."""
    cols = list(columns or spec.keys)
    if len(cols) == 1:
        col = rows.column(cols[0]).combine_chunks()
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            return pc.cast(col, pa.string())
        if pa.types.is_integer(col.type):
            return pc.cast(col, pa.string())
        return pa.array([None if v is None else encode_key((v,)) for v in _pylist(col)], pa.string())
    parts = [json_texts(rows.column(c)) for c in cols]
    return pc.binary_join_element_wise("[", pc.binary_join_element_wise(*parts, ","), "]", "")


def encode_rows(spec: FGSpec, latest: pa.Table) -> list[tuple[str, str]]:
    """(encoded key, packed row) for every row of `latest` (output of latest_rows).

    Packed column by column with Arrow compute (vectorized, no SQL engine, no per-row Python): the text
    store.encode_key / store.pack_row would write (compact JSON array [event_us, created_us, f1, ...]).
    """
    if latest.num_rows == 0:
        return []
    parts = [json_texts(latest.column(c)) for c in ["__event_us", "__created_us", *spec.feature_names]]
    packed = pc.binary_join_element_wise("[", pc.binary_join_element_wise(*parts, ","), "]", "")
    keys = encode_keys(spec, latest)
    return list(zip(keys.to_pylist(), packed.to_pylist(), strict=True))


def _norm_keys(spec: FGSpec, keys: Iterable[Any] | None) -> list[str]:
    out = []
    for k in keys or ():
        if isinstance(k, str) and len(spec.keys) == 1:
            out.append(k)
        else:
            out.append(encode_key(k if isinstance(k, list | tuple) else (k,)))
    return out


def materialize(
    store: OnlineStore,
    spec: FGSpec,
    rows: pa.Table | pd.DataFrame | None,
    now: datetime,
    *,
    views: dict[str, FVSpec] | None = None,
    changed: Iterable[Any] | None = None,
    deleted: Iterable[Any] | None = None,
    watermark: dict[str, Any] | None = None,
    progress: Progress | None = None,
    input_rows: int | None = None,
    start: datetime | None = None,
    base: Pointer | None = None,
    rewind: bool = False,
    note: dict[str, Any] | None = None,
) -> MaterializeResult:
    """Write the latest row per entity of `rows` into `store` as a new version of `spec.name`.

    Full unless `changed`/`deleted` is given; when both are empty (nothing new) `rows` is not read (may be None). `views` (all feature view definitions) are published in the
    same atomic step. `watermark` is stored with the version (e.g. the commit time it reflects) so the caller
    can compute the next incremental change set. `input_rows`: how many rows the caller narrowed down to `rows`
    (reported instead of len(rows), e.g. the published rows the warehouse picked the latest of).
    `start`: serve only rows with event_time >= start (a range materialization [start, now]; full only).
    `note`: recorded with the version (meta["note"]), e.g. the unvalidated commits it serves (online/withhold.py).

    Ordering: the version carries ``data_version`` = (watermark["commit_time"], now); the store refuses to publish it
    over a serving version with newer data (StaleVersionError, nothing written) unless `rewind` (a deliberate
    backfill to the past, full only). An incremental update applies only to `base` (the serving pointer the change
    set was computed from; default: the one serving when this call starts) under the same spec; if another
    materialization published meanwhile, nothing is written (SupersededError) and the caller plans again.
    """
    t0 = time.perf_counter()
    if now.tzinfo is not None:
        raise FeatureStoreError("materialize: `now` must be a naive UTC datetime", fix="use fs_cli.timeutil.utcnow()")
    check_range(start, now)
    incremental = changed is not None or deleted is not None
    changed_keys = set(_norm_keys(spec, changed))
    deleted_keys = set(_norm_keys(spec, deleted))
    if incremental and not changed_keys and not deleted_keys:
        # Nothing new: no rows to pack, so no Arrow (importing pyarrow/pandas is most of the cost of a no-op run).
        # The version is still published: it records this run's clock and watermark (the next run's change window
        # starts there) without touching a row.
        table_rows, items = 0, []
    else:
        table = _as_arrow(rows)
        table_rows, items = table.num_rows, encode_rows(spec, latest_rows(spec, table, now, start))
    meta = {"spec": spec.to_dict(), "now": now.isoformat(), "watermark": watermark or {},
            "data_version": make_data_version((watermark or {}).get("commit_time"), now)}
    if incremental and (start is not None or rewind):
        raise FeatureStoreError(f"materialize {spec.name}: a start time or a rewind needs a full materialization",
                                fix="drop `changed`/`deleted`, or drop `start`/`rewind`")
    if start is not None:
        meta["start"] = start.isoformat()
    if note:
        meta["note"] = note
    ptr: Pointer
    if incremental:
        current = base or store.pointers().get(spec.name)
        if current is None or current.meta.get("spec") != spec.to_dict():
            raise FeatureStoreError(
                f"materialize {spec.name}: incremental update needs an online version with the same schema",
                fix="run a full materialization (fs materialize --full)")
        upserts = [(k, v) for k, v in items if k in changed_keys]
        present = {k for k, _ in upserts}
        removes = (changed_keys - present) | (deleted_keys - present)
        meta["mode"] = "incremental"
        ptr = store.apply_incremental(spec.name, upserts, sorted(removes), meta, views,
                                      base=(current.gen, current.version))
        written, removed = len(upserts), len(removes)
        if progress:
            progress(len(upserts), len(upserts))
    else:
        meta["mode"] = "full"
        serving = store.pointers().get(spec.name)
        if serving is not None and not rewind and data_version_of(meta) < data_version_of(serving.meta):
            # refused at the flip anyway (atomically); say so before writing every row for nothing
            raise stale_error(spec.name, data_version_of(meta), data_version_of(serving.meta))
        w = store.begin_full(spec.name)
        try:
            for i in range(0, len(items), _CHUNK):
                w.write(items[i:i + _CHUNK])
                if progress:
                    progress(min(i + _CHUNK, len(items)), len(items))
            ptr = w.commit(meta, views, rewind=rewind)
        except BaseException:
            try:
                w.abort()
            except Exception:  # the store may be the thing that failed; GC cleans up on the next run
                pass
            raise
        written, removed = len(items), 0
    return MaterializeResult(
        feature_group=spec.name, mode=meta["mode"],
        input_rows=table_rows if input_rows is None else input_rows, written=written, deleted=removed,
        version=ptr.version, gen=ptr.gen, seconds=time.perf_counter() - t0, now=now.isoformat(),
    )


def check_range(start: datetime | None, end: datetime) -> None:
    """A materialization range [start, end] must be naive UTC and not inverted."""
    for name, t in (("start", start), ("end", end)):
        if t is not None and t.tzinfo is not None:
            raise FeatureStoreError(f"materialize: {name} must be a naive UTC datetime",
                                    fix="use fs_cli.timeutil.parse_timestamp")
    if start is not None and start > end:
        raise FeatureStoreError(f"materialize: the start {start.isoformat(sep=' ')} is after the end "
                                f"{end.isoformat(sep=' ')}", fix="give --start at or before --end")


def publish_views(store: OnlineStore, views: dict[str, FVSpec]) -> None:
    store.publish_views(views)


def keys_of(spec: FGSpec, table: pa.Table, columns: Sequence[str] | None = None) -> list[str]:
    """Encoded entity keys of every row of `table` (e.g. the rows a commit touched)."""
    return encode_keys(spec, table, columns).to_pylist()
