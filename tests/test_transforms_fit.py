"""Fitting: statistics come from the train split only, with the documented definitions (numpy as the oracle)."""

from __future__ import annotations

import json
import math

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fs_cli.errors import FeatureStoreError
from fs_cli.transforms import fit

DECLS = [
    {"feature": "x", "fn": "standard_scaler"},
    {"feature": "x", "fn": "robust_scaler", "output": "x_rb"},
    {"feature": "x", "fn": "min_max_scaler", "output": "x_mm"},
    {"feature": "x", "fn": "bucketize", "args": {"num_buckets": 4}, "output": "x_q"},
    {"feature": "x", "fn": "impute", "args": {"strategy": "median"}, "output": "x_med"},
    {"feature": "s", "fn": "one_hot"},
    {"feature": "s", "fn": "label_encode", "args": {"max_categories": 2}, "output": "s_code"},
    {"feature": "s", "fn": "impute", "args": {"strategy": "most_frequent"}, "output": "s_mf"},
]

values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
cats = st.sampled_from(["a", "b", "c", "B", "é"])


def relation(train: list[tuple], test: list[tuple]) -> pa.Table:
    rows = [(*r, "train") for r in train] + [(*r, "test") for r in test]
    return pa.table({
        "x": pa.array([r[0] for r in rows], pa.float64()),
        "s": pa.array([r[1] for r in rows], pa.string()),
        "split": pa.array([r[2] for r in rows], pa.string()),
    })


def quantile(xs: list[float], p: float) -> float:
    return float(np.quantile(np.array(xs), p, method="linear"))


def params(stats: dict, output: str) -> dict:
    return next(c for c in stats["chains"] if c["output"] == output)["steps"][0]["params"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    train=st.lists(st.tuples(values | st.none(), cats | st.none()), min_size=1, max_size=30).filter(
        lambda t: any(x is not None for x, _ in t) and any(s is not None for _, s in t)),
    test_a=st.lists(st.tuples(st.floats(allow_nan=True) | st.none(), st.text(max_size=3) | st.none()), max_size=20),
    test_b=st.lists(st.tuples(st.floats(allow_nan=True) | st.none(), st.text(max_size=3) | st.none()), max_size=20),
)
def test_stats_come_from_train_rows_only_and_match_the_oracle(train, test_a, test_b):
    with duckdb.connect() as con:
        con.register("a", relation(train, test_a))
        con.register("b", relation(train, test_b))
        stats_a, stats_b = fit(con, "a", DECLS), fit(con, "b", DECLS)
    # leakage: any change to test rows leaves every statistic (and the fingerprint) unchanged
    strip = ("fitted_on",)
    assert {k: v for k, v in stats_a.items() if k not in strip and k != "fingerprint"} == \
           {k: v for k, v in stats_b.items() if k not in strip and k != "fingerprint"}
    assert stats_a["fingerprint"] == fit_fingerprint_without_relation(stats_a, stats_b)

    xs = [x for x, _ in train if x is not None]
    ss = [s for _, s in train if s is not None]
    rel = 1e-9  # avg/stddev accumulate differently from numpy; the SQL value is the one stored and used

    def near(a: float, b: float) -> bool:
        return math.isclose(a, b, rel_tol=rel, abs_tol=1e-6)

    p = params(stats_a, "x")
    assert p["count"] == len(xs) and near(p["mean"], float(np.mean(xs)))
    assert near(p["std"], float(np.std(xs)))  # population std (ddof=0)
    assert p["scale"] == (p["std"] if p["std"] > 0 else 1.0)
    p = params(stats_a, "x_rb")
    for key, q in (("median", 0.5), ("q25", 0.25), ("q75", 0.75)):
        assert near(p[key], quantile(xs, q)), key
    p = params(stats_a, "x_mm")
    assert (p["min"], p["max"]) == (min(xs), max(xs))
    p = params(stats_a, "x_q")
    assert all(near(b, e) for b, e in zip(p["boundaries"], sorted({quantile(xs, i / 4) for i in (1, 2, 3)}),
                                          strict=False))
    assert near(params(stats_a, "x_med")["fill"], quantile(xs, 0.5))
    assert params(stats_a, "s")["categories"] == sorted(set(ss))
    counts = {c: ss.count(c) for c in set(ss)}
    top2 = sorted(sorted(counts, key=lambda c: (-counts[c], c))[:2])
    assert params(stats_a, "s_code")["categories"] == top2
    assert params(stats_a, "s_mf")["fill"] == min(counts, key=lambda c: (-counts[c], c))
    json.dumps(stats_a, allow_nan=False)  # storable as strict JSON


def fit_fingerprint_without_relation(a: dict, b: dict) -> str:
    """Both fits read the same train rows from differently named relations: only fitted_on.relation differs."""
    from fs_cli.transforms import fingerprint

    b2 = dict(b, fitted_on=a["fitted_on"])
    return fingerprint(b2)


def test_chained_steps_fit_on_the_previous_steps_output():
    con = duckdb.connect()
    con.register("t", relation([(None, "a"), (1.0, "a"), (2.0, None), (9.0, "b")], [(1e9, "z")]))
    stats = fit(con, "t", [
        {"feature": "x", "fn": "impute", "args": {"strategy": "constant", "value": 0}},
        {"feature": "x", "fn": "standard_scaler"},
    ])
    sc = stats["chains"][0]["steps"][1]["params"]
    assert sc["count"] == 4 and sc["mean"] == 3.0  # mean of {0, 1, 2, 9}: the imputed train values
    assert math.isclose(sc["std"], float(np.std([0, 1, 2, 9])), rel_tol=1e-12)


def test_non_finite_train_values_are_ignored_and_empty_train_fails_clearly():
    con = duckdb.connect()
    con.register("t", relation([(float("nan"), "a"), (float("inf"), "a"), (2.0, "a"), (4.0, "b")], []))
    p = fit(con, "t", [{"feature": "x", "fn": "standard_scaler"}])["chains"][0]["steps"][0]["params"]
    assert (p["count"], p["mean"], p["std"]) == (2, 3.0, 1.0)
    con.register("e", relation([(None, "a")], [(1.0, "b")]))
    with pytest.raises(FeatureStoreError, match="no non-NULL .* value in the train split"):
        fit(con, "e", [{"feature": "x", "fn": "standard_scaler"}])
    with pytest.raises(FeatureStoreError, match="no split column 'fold'"):
        fit(con, "t", [{"feature": "x", "fn": "standard_scaler"}], split_column="fold")
