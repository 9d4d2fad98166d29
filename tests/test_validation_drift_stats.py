"""Drift statistics (macros/drift) against scipy/numpy oracles, on DuckDB and on the real Postgres server."""

from __future__ import annotations

import uuid
import warnings

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from fs_cli.validation.drift import column_drift

EPS = 1e-4


# -- oracles ---------------------------------------------------------------------------------------------------
def psi_oracle(ref: np.ndarray, cur: np.ndarray, bins: int = 10) -> float:
    edges = np.unique(np.quantile(ref, [i / bins for i in range(1, bins)], method="inverted_cdf"))  # percentile_disc
    k = len(edges) + 1
    pr = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=k) / len(ref)
    pc = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=k) / len(cur)
    present = (pr > 0) | (pc > 0)  # bins empty on both sides contribute nothing
    pr, pc = np.where(pr == 0, EPS, pr)[present], np.where(pc == 0, EPS, pc)[present]
    return float(np.sum((pc - pr) * np.log(pc / pr)))


def _ks(r: np.ndarray, c: np.ndarray) -> float:
    with warnings.catch_warnings():  # only the statistic is compared; the p-value method does not matter
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(sps.ks_2samp(r, c).statistic)


def numeric_oracle(ref: np.ndarray, cur: np.ndarray) -> dict[str, float]:
    r, c = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    w = sps.wasserstein_distance(r, c)
    sd = np.std(r)
    return {
        "missing_change": np.isnan(cur).mean() - np.isnan(ref).mean(),
        "psi": psi_oracle(r, c),
        "ks_d": _ks(r, c),
        "wasserstein": w,
        "wasserstein_norm": w / (sd if sd > 0 else 1.0),
    }


def categorical_oracle(ref: list, cur: list) -> dict[str, float]:
    r = [x for x in ref if x is not None]
    c = [x for x in cur if x is not None]
    cats = sorted(set(r) | set(c))
    nr = np.array([r.count(k) for k in cats], dtype=float)
    nc = np.array([c.count(k) for k in cats], dtype=float)
    out: dict[str, float] = {
        "missing_change": (len(cur) - len(c)) / len(cur) - (len(ref) - len(r)) / len(ref),
        "jensen_shannon": float(jensenshannon(nr / nr.sum(), nc / nc.sum(), base=2) ** 2),
        "new_categories": int(((nr == 0) & (nc > 0)).sum()),
    }
    if len(cats) > 1:
        chi2 = sps.chi2_contingency(np.vstack([nr, nc]), correction=False).statistic
    else:
        chi2 = 0.0
    out["chi_square"] = chi2
    out["chi_square_dof"] = len(cats) - 1
    out["cramers_v"] = float(np.sqrt(chi2 / (nr.sum() + nc.sum())))
    return out


def assert_close(got: dict, want: dict) -> None:
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-6, abs=1e-9), (k, got[k], v)


# -- loading samples ---------------------------------------------------------------------------------------
def load_duckdb(con, ref, cur, sqltype: str) -> None:
    for name, vals in (("ref", ref), ("cur", cur)):
        con.execute(f"create or replace temp table {name} (x {sqltype})")
        if len(vals):
            con.executemany(f"insert into {name} values (?)", [[_py(v)] for v in vals])


def _py(v):
    if v is None:
        return None
    if isinstance(v, float | np.floating) and np.isnan(v):
        return None
    return v.item() if isinstance(v, np.generic) else v


@pytest.fixture(scope="module")
def duck():
    con = duckdb.connect()
    yield con
    con.close()


@pytest.fixture(scope="module")
def pg():
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        con = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", connect_timeout=3)
    except psycopg2.OperationalError as e:
        pytest.skip(f"Postgres on 127.0.0.1:5432 unreachable: {e}")
    con.autocommit = True
    schema = f"fs_test_drift_{uuid.uuid4().hex[:8]}"
    with con.cursor() as cur:
        cur.execute(f'create schema "{schema}"')
        cur.execute(f'set search_path to "{schema}"')
    yield con, schema
    with con.cursor() as cur:
        cur.execute(f'drop schema "{schema}" cascade')
    con.close()


def load_pg(pg, ref, cur, sqltype: str) -> None:
    con, schema = pg
    with con.cursor() as c:
        for name, vals in (("ref", ref), ("cur", cur)):
            c.execute(f'drop table if exists "{schema}".{name}')
            c.execute(f'create table "{schema}".{name} (x {sqltype})')
            if len(vals):
                c.executemany(f'insert into "{schema}".{name} values (%s)', [[_py(v)] for v in vals])


# -- cases -------------------------------------------------------------------------------------------------
RNG = np.random.default_rng(7)
NUMERIC_CASES = {
    "same": (RNG.normal(0, 1, 400), RNG.normal(0, 1, 300)),
    "shifted": (RNG.normal(0, 1, 400), RNG.normal(1.5, 1, 300)),
    "scaled_lognormal": (RNG.lognormal(3, 1, 500), RNG.lognormal(3, 1.6, 200)),
    "discrete_ties": (RNG.integers(0, 4, 300).astype(float), RNG.integers(0, 6, 250).astype(float)),
    "with_nulls": (np.where(RNG.random(300) < 0.1, np.nan, RNG.normal(5, 2, 300)),
                   np.where(RNG.random(200) < 0.4, np.nan, RNG.normal(5, 2, 200))),
    "constant_reference": (np.full(50, 3.0), RNG.normal(3, 1, 60)),
}
CATEGORICAL_CASES = {
    "same": (list(RNG.choice(["a", "b", "c"], 300)), list(RNG.choice(["a", "b", "c"], 200))),
    "shifted": (list(RNG.choice(["a", "b", "c"], 300, p=[0.7, 0.2, 0.1])),
                list(RNG.choice(["a", "b", "c", "d"], 200, p=[0.2, 0.2, 0.3, 0.3]))),
    "with_nulls": ([None] * 10 + list(RNG.choice(["x", "y"], 90)), [None] * 50 + list(RNG.choice(["x", "y"], 50))),
}


@pytest.mark.parametrize("case", NUMERIC_CASES)
def test_numeric_duckdb(duck, case):
    ref, cur = NUMERIC_CASES[case]
    load_duckdb(duck, ref, cur, "double")
    assert_close(column_drift(duck, "ref", "cur", "x", numeric=True), numeric_oracle(ref, cur))


@pytest.mark.parametrize("case", CATEGORICAL_CASES)
def test_categorical_duckdb(duck, case):
    ref, cur = CATEGORICAL_CASES[case]
    load_duckdb(duck, ref, cur, "varchar")
    assert_close(column_drift(duck, "ref", "cur", "x", numeric=False), categorical_oracle(ref, cur))


def test_numeric_postgres(pg):
    for case in ("shifted", "discrete_ties", "with_nulls", "constant_reference"):
        ref, cur = NUMERIC_CASES[case]
        load_pg(pg, ref, cur, "double precision")
        got = column_drift(pg[0], f'"{pg[1]}".ref', f'"{pg[1]}".cur', "x", numeric=True)
        assert_close(got, numeric_oracle(ref, cur))


def test_categorical_postgres(pg):
    for case in CATEGORICAL_CASES:
        ref, cur = CATEGORICAL_CASES[case]
        load_pg(pg, ref, cur, "varchar")
        got = column_drift(pg[0], f'"{pg[1]}".ref', f'"{pg[1]}".cur', "x", numeric=False)
        assert_close(got, categorical_oracle(ref, cur))


def test_integer_column_postgres(pg):
    """Integer division must not truncate shares on Postgres."""
    ref, cur = np.arange(1, 41), np.arange(10, 61)
    load_pg(pg, ref.tolist(), cur.tolist(), "integer")
    got = column_drift(pg[0], f'"{pg[1]}".ref', f'"{pg[1]}".cur', "x", numeric=True)
    assert_close(got, numeric_oracle(ref.astype(float), cur.astype(float)))


def test_empty_sample_gives_nulls(duck):
    load_duckdb(duck, [1.0, 2.0], [], "double")
    got = column_drift(duck, "ref", "cur", "x", numeric=True)
    assert got["psi"] is None and got["ks_d"] is None and got["n_cur"] == 0


finite = st.floats(-1e6, 1e6, allow_nan=False, width=32)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(finite, min_size=1, max_size=40), st.lists(finite, min_size=1, max_size=40))
def test_numeric_property_duckdb(duck, ref, cur):
    ref_a, cur_a = np.array(ref, dtype=float), np.array(cur, dtype=float)
    load_duckdb(duck, ref, cur, "double")
    got = column_drift(duck, "ref", "cur", "x", numeric=True)
    want = numeric_oracle(ref_a, cur_a)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-6, abs=1e-6), (k, got[k], v)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["a", "b", "c", "d", None]), min_size=1, max_size=40).filter(lambda v: any(v)),
       st.lists(st.sampled_from(["a", "b", "c", "e", None]), min_size=1, max_size=40).filter(lambda v: any(v)))
def test_categorical_property_duckdb(duck, ref, cur):
    load_duckdb(duck, ref, cur, "varchar")
    assert_close(column_drift(duck, "ref", "cur", "x", numeric=False), categorical_oracle(ref, cur))


# -- correlation limits (fs_cli/validation/correlation.py) ---------------------------------------------------------
def _corr_data(n: int = 300):
    rng = np.random.default_rng(11)
    label = (rng.random(n) < 0.3).astype(float)
    a = rng.normal(0, 1, n)
    b = a * 2 + rng.normal(0, 0.05, n)  # redundant with a
    leak = label + rng.normal(0, 0.05, n)  # computed from the label
    c = rng.normal(0, 1, n)
    return {"label": label, "a": a, "b": b, "leak": leak, "c": c}


def test_correlation_checks_against_numpy(duck, pg):
    from fs_cli.validation.correlation import correlation_checks, correlations

    data = _corr_data()
    cols = list(data)
    rows = [[float(data[k][i]) for k in cols] for i in range(len(data["label"]))]
    duck.execute("create or replace temp table fv (label double, a double, b double, leak double, c double)")
    duck.executemany("insert into fv values (?, ?, ?, ?, ?)", rows)
    con, schema = pg
    with con.cursor() as cur:
        cur.execute(f'create table "{schema}".fv (label float8, a float8, b float8, leak float8, c float8)')
        cur.executemany(f'insert into "{schema}".fv values (%s, %s, %s, %s, %s)', rows)
    feats = ["a", "b", "leak", "c"]
    for connection, rel in ((duck, "fv"), (con, f'"{schema}".fv')):
        got = correlations(connection, rel, feats, "label")
        for (x, y), v in got.items():
            assert v == pytest.approx(np.corrcoef(data[x], data[y])[0, 1], abs=1e-9), (x, y)
        res = {r.check: r for r in correlation_checks(connection, rel, feats, "label")}
        assert res["correlation:leak~label"].outcome == "fail"
        assert res["correlation:a~label"].outcome == "pass"
        pair = res["correlation:pairwise"]
        assert pair.outcome == "fail" and [(s["a"], s["b"]) for s in pair.samples] == [("a", "b")]
        assert pair.metrics["pairs_checked"] == 6
