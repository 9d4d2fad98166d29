"""Materialization's vectorized Arrow path (no SQL engine) against plain Python: the latest-row rule against the
brute-force oracle, and the packed text against orjson (store.pack_row / encode_key) value by value."""

from __future__ import annotations

import importlib
import math
from datetime import UTC, date, datetime
from decimal import Decimal

import orjson
import pyarrow as pa
from online_support import NOW, SPEC, make_rows, oracle_latest

from fs_cli.online.specs import FeatureSpec, FGSpec
from fs_cli.online.store import encode_key

mat = importlib.import_module("fs_cli.online.materialize")  # the package re-exports a function of the same name


def test_latest_rows_equal_the_oracle():
    rows = make_rows(400, 6, seed=3)
    latest = mat.latest_rows(SPEC, rows, NOW)
    expected = oracle_latest(SPEC, rows, NOW)
    got = {r["customer_id"]: r for r in latest.to_pylist()}
    assert got.keys() == expected.keys()
    for k, r in got.items():
        e = expected[k]
        assert [r[f] for f in SPEC.feature_names] == [e[f] for f in SPEC.feature_names], k
        assert r["__created_us"] == int((e["created"] - datetime(1970, 1, 1)).total_seconds() * 1_000_000)


ODD_FLOATS = [3.0, -0.0, 1e20, 1e-7, float("nan"), float("inf"), None, 0.1, 1 / 3, 123456789.125]
ODD_TEXT = ['a"b', "back\\slash", "nl\nx", "ctl\x01", "é ü 中", None, "", "tab\t", "'; drop", "x"]


def _python_value(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return float(v) if isinstance(v, Decimal) else v


def test_packed_text_parses_to_what_orjson_writes():
    n = len(ODD_FLOATS)
    spec = FGSpec("odd", ("a", "b"), ("varchar", "bigint"), "t",
                  tuple(FeatureSpec(f, t) for f, t in [("f", "double"), ("s", "varchar"), ("ts", "timestamp"),
                                                       ("d", "date"), ("ok", "boolean"), ("dec", "decimal")]))
    table = pa.table({
        "a": [f"k{i % 3}" for i in range(n)], "b": pa.array(range(n), pa.int64()),
        # zoned event times (Postgres timestamptz) count as their UTC instant
        "t": pa.array([datetime(2026, 1, 1, 0, 0, i, tzinfo=UTC) for i in range(n)], pa.timestamp("us", tz="UTC")),
        "f": ODD_FLOATS, "s": ODD_TEXT,
        "ts": [datetime(2026, 1, 2, 3, 4, 5, 123000 * (i % 2)) for i in range(n)],
        "d": [date(2026, 1, i + 1) for i in range(n)], "ok": [None if i == 3 else bool(i % 2) for i in range(n)],
        "dec": pa.array([Decimal("1.50")] * n, pa.decimal128(10, 2)),
    })
    items = dict(mat.encode_rows(spec, mat.latest_rows(spec, table, datetime(2026, 2, 1))))
    assert len(items) == n
    for r in table.to_pylist():
        key = encode_key((r["a"], r["b"]))
        event_us = int((r["t"].replace(tzinfo=None) - datetime(1970, 1, 1)).total_seconds() * 1_000_000)
        python = orjson.loads(orjson.dumps([event_us, None, *(_python_value(r[f]) for f in spec.feature_names)]))
        packed = orjson.loads(items[key])
        assert packed == python, (key, items[key])
        assert all(type(a) is type(b) for a, b in zip(packed, python, strict=True)), items[key]  # 3.0 stays a float


def test_single_keys_encode_like_encode_key():
    spec = FGSpec("k", ("id",), ("bigint",), "t", (FeatureSpec("v", "double"),))
    ints = pa.table({"id": pa.array([1, -2, 30], pa.int64())})
    assert mat.keys_of(spec, ints) == [encode_key((v,)) for v in (1, -2, 30)]
    texts = pa.table({"id": ["a", "b\"c"]})
    assert mat.keys_of(spec, texts) == ["a", 'b"c']
