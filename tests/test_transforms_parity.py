"""Offline (SQL) and online (Python) application of fitted transformations agree, row for row.

Hypothesis generates a train set and rows to transform (NULLs, NaN, +-inf, unseen categories, values far outside
the fitted range, extreme magnitudes); stats are fitted in SQL on the train rows, the rendered SQL transforms the
rows in DuckDB, `apply_row` transforms them in Python, and every output must agree to 1e-12 relative (categories
and codes exactly). The same macros rendered for Spark, read as Spark SQL (sqlglot) and run in DuckDB, give the very
values of the DuckDB rendering (Spark itself is not started here). One run against a real Postgres checks the SQL
rendered for Postgres there.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from services import pg_connect

from fs_cli.transforms import apply_row, fit, render_select, transform_dataframe

TYPES = {"id": "bigint", "x": "double", "n": "bigint", "s": "varchar", "split": "varchar"}
CATS = ["gold", "go'ld", "Ünïcode ✓", "", " ", "a b", "GOLD", "platinum"]


def declarations(lo: float, hi: float, bounds: list[float], const: float) -> list[dict[str, Any]]:
    return [
        {"feature": "x", "fn": "impute", "args": {"strategy": "median"}},
        {"feature": "x", "fn": "standard_scaler"},
        {"feature": "x", "fn": "clip", "args": {"min": lo, "max": hi}, "output": "x_log"},
        {"feature": "x", "fn": "log1p", "output": "x_log"},
        {"feature": "x", "fn": "min_max_scaler", "output": "x_mm"},
        {"feature": "x", "fn": "robust_scaler", "output": "x_rb"},
        {"feature": "x", "fn": "bucketize", "args": {"num_buckets": 4}, "output": "x_q"},
        {"feature": "x", "fn": "bucketize", "args": {"boundaries": bounds}, "output": "x_b"},
        {"feature": "x", "fn": "one_hot", "output": "x_b"},
        {"feature": "x", "fn": "impute", "args": {"strategy": "constant", "value": const}, "output": "x_imp"},
        {"feature": "x", "fn": "log1p", "output": "x_l1"},
        {"feature": "n", "fn": "standard_scaler", "output": "n_std"},
        {"feature": "n", "fn": "label_encode", "output": "n_code"},
        {"feature": "n", "fn": "standard_scaler", "output": "n_code"},
        {"feature": "n", "fn": "impute", "args": {"strategy": "mean"}, "output": "n_mean"},
        {"feature": "n", "fn": "impute", "args": {"strategy": "most_frequent"}, "output": "n_mf"},
        {"feature": "s", "fn": "impute", "args": {"strategy": "most_frequent"}},
        {"feature": "s", "fn": "one_hot"},
        {"feature": "s", "fn": "label_encode", "args": {"max_categories": 3}, "output": "s_code"},
        {"feature": "s", "fn": "one_hot", "args": {"min_frequency": 2}, "output": "s_oh"},
        {"feature": "s", "fn": "impute", "args": {"strategy": "constant", "value": "n/a"}, "output": "s_imp"},
        {"feature": "s", "fn": "label_encode", "output": "s_imp"},
    ]


moderate = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e150, max_value=1e150)
anything = st.floats(allow_nan=True, allow_infinity=True)  # apply rows: every double, incl. 1e308, NaN, inf
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
small_ints = st.integers(min_value=-5, max_value=5)
unseen = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)  # incl. NUL and quotes


def rows(x: st.SearchStrategy, n: st.SearchStrategy, s: st.SearchStrategy, min_size: int, max_size: int):
    return st.lists(st.tuples(st.none() | x, st.none() | n, st.none() | s), min_size=min_size, max_size=max_size)


def table(data: list[tuple], split: str) -> pa.Table:
    return pa.table({
        "id": pa.array(range(len(data)), pa.int64()),
        "x": pa.array([r[0] for r in data], pa.float64()),
        "n": pa.array([r[1] for r in data], pa.int64()),
        "s": pa.array([r[2] for r in data], pa.string()),
        "split": pa.array([split] * len(data), pa.string()),
    })


def close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    return abs(a - b) <= 1e-12 * max(abs(a), abs(b))


def check_parity(sql_rows: list[dict], py_rows: list[dict]) -> None:
    assert len(sql_rows) == len(py_rows)
    for srow, prow in zip(sql_rows, py_rows, strict=True):
        assert list(srow) == list(prow), "column order differs between the SQL and Python paths"
        for k in srow:
            assert close(srow[k], prow[k]), f"{k}: sql={srow[k]!r} python={prow[k]!r} (row {srow})"
            if isinstance(srow[k], int) or isinstance(prow[k], int):
                assert type(srow[k]) is type(prow[k]), (k, srow[k], prow[k])


def sql_apply(con: duckdb.DuckDBPyConnection, relation: str, stats: dict) -> list[dict]:
    return _rows(con.execute(render_select(relation, stats)))


def spark_sql_apply(con: duckdb.DuckDBPyConnection, relation: str, stats: dict) -> list[dict]:
    """The SQL rendered for Spark, parsed as Spark SQL and translated to DuckDB's dialect by sqlglot, run here."""
    spark = render_select(f"`{relation}`", stats, engine="spark")
    return _rows(con.execute(sqlglot.transpile(spark, read="spark", write="duckdb")[0]))


def _rows(cur: duckdb.DuckDBPyConnection) -> list[dict]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def py_apply(data: list[tuple], stats: dict) -> list[dict]:
    return [apply_row({"id": i, "x": r[0], "n": r[1], "s": r[2], "split": "test"}, stats) for i, r in enumerate(data)]


@settings(max_examples=45, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    first=st.tuples(finite, ints, st.sampled_from(CATS)),
    train=rows(finite | moderate, small_ints | ints, st.sampled_from(CATS), 0, 25),
    test=rows(anything | moderate, ints | small_ints, st.sampled_from(CATS) | unseen, 1, 25),
    clip=st.tuples(moderate, moderate).map(sorted),
    bounds=st.lists(moderate, min_size=1, max_size=5, unique=True).map(sorted),
    const=moderate,
)
def test_sql_and_python_paths_agree(first, train, test, clip, bounds, const):
    decls = declarations(clip[0], clip[1], bounds, const)
    with duckdb.connect() as con:
        con.register("train_in", table([first, *train], "train"))
        con.register("test_in", table(test, "test"))
        stats = fit(con, "train_in", decls, split_column="split", train_value="train")
        sql_rows = sql_apply(con, "test_in", stats)
        check_parity(sql_rows, py_apply(test, stats))
        assert spark_sql_apply(con, "test_in", stats) == sql_rows


def test_documented_semantics_on_known_values():
    """NULL, unseen and out-of-range behaviour, spelled out once on a tiny table."""
    con = duckdb.connect()
    con.register("t", table([(1.0, 1, "gold"), (3.0, 2, "standard"), (None, None, None)], "train"))
    decls = [
        {"feature": "x", "fn": "standard_scaler"},
        {"feature": "s", "fn": "one_hot"},
        {"feature": "s", "fn": "label_encode", "output": "s_code"},
        {"feature": "n", "fn": "bucketize", "args": {"boundaries": [2]}, "output": "n_b"},
        {"feature": "n", "fn": "min_max_scaler"},
    ]
    stats = fit(con, "t", decls)
    sc = stats["chains"][0]["steps"][0]["params"]
    assert (sc["mean"], sc["std"], sc["count"]) == (2.0, 1.0, 2)  # population std of {1, 3}
    out = apply_row({"id": 0, "x": 7.0, "n": 10, "s": "platinum", "split": "test"}, stats)
    assert out == {"id": 0, "x": 5.0, "n": 9.0, "s__gold": 0, "s__standard": 0, "s__unseen": 1, "split": "test",
                   "s_code": 2, "n_b": 1}
    out = apply_row({"id": 0, "x": None, "n": None, "s": None, "split": "test"}, stats)
    assert out == {"id": 0, "x": None, "n": None, "s__gold": 0, "s__standard": 0, "s__unseen": 0, "split": "test",
                   "s_code": None, "n_b": None}
    assert apply_row({"id": 0, "x": float("nan"), "n": 1, "s": "gold", "split": "x"}, stats)["x"] is None
    # batch scoring of a DataFrame goes through the same SQL
    df = transform_dataframe(table([(7.0, 10, "platinum")], "test").to_pandas(), stats)
    assert list(df.columns) == ["id", "x", "n", "s__gold", "s__standard", "s__unseen", "split", "s_code", "n_b"]
    assert df.iloc[0]["x"] == 5.0 and df.iloc[0]["s__unseen"] == 1


def _pg():
    con = pg_connect("test")  # skip (laptop) or fail (CI) when the server is missing
    con.autocommit = False  # the callers' transactions are theirs
    return con


def test_same_sql_on_postgres():
    """Fitting and applying on Postgres give the same statistics (to float rounding of avg/std) and the same
    transformed values as the Python path."""
    import random

    rnd = random.Random(7)
    train = [(rnd.choice([None, rnd.uniform(-1e3, 1e4)]), rnd.choice([None, rnd.randint(-3, 3)]),
              rnd.choice([None, *CATS])) for _ in range(60)]
    test = [*[(rnd.uniform(-1e6, 1e6), rnd.randint(-10, 10), rnd.choice(["zzz", *CATS])) for _ in range(40)],
            (None, None, None), (float("nan"), 2**62, "new'one"), (1e300, -(2**62), "gold")]
    decls = declarations(-100.0, 5000.0, [0.0, 10.0, 1000.0], 3.5)
    schema = f"fs_tf_{uuid.uuid4().hex[:10]}"
    pg = _pg()
    try:
        with pg.cursor() as cur:
            cur.execute(f'create schema "{schema}"')
            cur.execute(f'create table "{schema}".t (id bigint, x double precision, n bigint, s varchar, split varchar)')
            cur.executemany(f'insert into "{schema}".t values (%s, %s, %s, %s, %s)',
                            [(i, *r, "train") for i, r in enumerate(train)]
                            + [(1000 + i, *r, "test") for i, r in enumerate(test)])
        pg.commit()
        rel = f'"{schema}".t'
        stats_pg = fit(pg, rel, decls, types=TYPES)
        duck = duckdb.connect()
        duck.register("t", table(train, "train"))
        stats_duck = fit(duck, "t", decls)
        for a, b in zip(stats_pg["chains"], stats_duck["chains"], strict=True):
            for sa, sb in zip(a["steps"], b["steps"], strict=True):
                for k, v in sa["params"].items():
                    if isinstance(v, float):
                        assert close(v, sb["params"][k]) or abs(v - sb["params"][k]) < 1e-9 * max(1, abs(v)), (k, v)
                    elif k != "columns":
                        assert v == sb["params"][k], (a["output"], k)
        with pg.cursor() as cur:
            cur.execute(render_select(f"(select * from {rel} where split = 'test' order by id) as q", stats_pg,
                                      columns=list(TYPES), engine="postgres"))
            names = [d[0] for d in cur.description]
            sql_rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        py_rows = [apply_row({"id": 1000 + i, "x": r[0], "n": r[1], "s": r[2], "split": "test"}, stats_pg)
                   for i, r in enumerate(test)]
        check_parity(sql_rows, py_rows)
    finally:
        pg.rollback()
        with pg.cursor() as cur:
            cur.execute(f'drop schema if exists "{schema}" cascade')
        pg.commit()
        pg.close()
