"""Drift statistics (macros/drift) against scipy/numpy oracles, on every engine (DuckDB, the real Postgres server)
through the Warehouse layer; samples are loaded with `wh.write_arrow`."""

from __future__ import annotations

import warnings
from contextlib import ExitStack

import numpy as np
import pyarrow as pa
import pytest
from conftest import ENGINES, REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon
from services import PG, pg_connect, pg_database

from fs_cli.errors import FeatureStoreError
from fs_cli.transforms.macros import render_macro
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


# -- loading samples into the warehouse under test -----------------------------------------------------------
SCHEMA = "fs_drift_test"
MACROS = REPO / "macros"


def _py(v):
    if v is None:
        return None
    if isinstance(v, float | np.floating) and np.isnan(v):
        return None
    return v.item() if isinstance(v, np.generic) else v


@pytest.fixture(scope="module", params=ENGINES)
def engine(request) -> str:
    """Module-scoped twin of conftest's `engine`: one warehouse per engine for the whole module."""
    if request.param == "postgres":
        pg_connect().close()  # skip (laptop) or fail (CI) when the server is missing
    return request.param


@pytest.fixture(scope="module")
def wh(engine, tmp_path_factory):
    """An empty Warehouse of `engine` (DuckDB: a fresh file; Postgres: a fresh database) with schema SCHEMA."""
    with ExitStack() as stack:
        if engine == "postgres":
            from fs_cli.warehouse.postgres import PostgresWarehouse

            db = stack.enter_context(pg_database())
            w = PostgresWarehouse({**PG, "dbname": db})
        else:
            from fs_cli.warehouse.duckdb import DuckDBWarehouse

            w = DuckDBWarehouse(tmp_path_factory.mktemp("drift") / "drift.duckdb")
        stack.callback(w.close)
        w.ensure_schema(SCHEMA)
        yield w


ARROW_TYPES = {"double": pa.float64(), "text": pa.string(), "bigint": pa.int64()}


def load(wh, ref, cur, logical: str) -> tuple[str, str]:
    """Write the two samples as tables ref and cur (column x) with `wh.write_arrow`; returns their relations."""
    rels = []
    for name, vals in (("ref", ref), ("cur", cur)):
        rel = wh.relation(SCHEMA, name)
        wh.write_arrow(rel, pa.table({"x": pa.array([_py(v) for v in vals], type=ARROW_TYPES[logical])}),
                       mode="replace")
        rels.append(rel)
    return rels[0], rels[1]


def drift(wh, ref, cur, logical: str, numeric: bool) -> dict:
    r, c = load(wh, ref, cur, logical)
    return column_drift(wh, r, c, "x", numeric=numeric, macro_dir=MACROS)


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
def test_numeric(wh, case):
    ref, cur = NUMERIC_CASES[case]
    assert_close(drift(wh, ref, cur, "double", numeric=True), numeric_oracle(ref, cur))


@pytest.mark.parametrize("case", CATEGORICAL_CASES)
def test_categorical(wh, case):
    ref, cur = CATEGORICAL_CASES[case]
    assert_close(drift(wh, ref, cur, "text", numeric=False), categorical_oracle(ref, cur))


def test_integer_column(wh):
    """Integer division must not truncate shares (Postgres divides integers as integers)."""
    ref, cur = np.arange(1, 41), np.arange(10, 61)
    got = drift(wh, ref.tolist(), cur.tolist(), "bigint", numeric=True)
    assert_close(got, numeric_oracle(ref.astype(float), cur.astype(float)))


def test_empty_sample_gives_nulls(wh):
    got = drift(wh, [1.0, 2.0], [], "double", numeric=True)
    assert got["psi"] is None and got["ks_d"] is None and got["n_cur"] == 0


def test_macros_come_from_the_project_dir(wh, tmp_path):
    """The statistics are rendered from the macro files of the directory given (the project being run), with the
    engine's dispatch: a project-local override of a dispatched macro wins for that engine only."""
    local = tmp_path / "macros"
    (local / "drift").mkdir(parents=True)
    text = (MACROS / "drift" / "drift_statistics.sql").read_text()
    # this project's fs_log2 doubles every Jensen-Shannon term, only on the engine under test
    text = text.replace("{% macro fs_log2(expr) %}(ln({{ expr }}) / ln(2.0)){% endmacro %}",
                        "{% macro fs_log2(expr) %}{{ return(adapter.dispatch('fs_log2', 'feature_store')(expr)) }}"
                        "{% endmacro %}\n{% macro default__fs_log2(expr) %}(ln({{ expr }}) / ln(2.0)){% endmacro %}"
                        f"\n{{% macro {wh.engine}__fs_log2(expr) %}}(2 * ln({{{{ expr }}}}) / ln(2.0)){{% endmacro %}}")
    (local / "drift" / "drift_statistics.sql").write_text(text)
    ref, cur = CATEGORICAL_CASES["shifted"]
    r, c = load(wh, ref, cur, "text")
    want = categorical_oracle(ref, cur)["jensen_shannon"]
    assert column_drift(wh, r, c, "x", numeric=False, macro_dir=MACROS)["jensen_shannon"] == pytest.approx(want)
    assert column_drift(wh, r, c, "x", numeric=False, macro_dir=local)["jensen_shannon"] == pytest.approx(2 * want)
    other = "postgres" if wh.engine == "duckdb" else "duckdb"
    sql = render_macro(local, other, "fs_jensen_shannon", "a", "b", "x")
    assert "2 * ln(" not in sql and "ln(" in sql, "another engine gets default__fs_log2"
    with pytest.raises(FeatureStoreError, match="no macro fs_numeric_drift"):
        column_drift(wh, r, c, "x", numeric=True, macro_dir=tmp_path / "nowhere")


finite = st.floats(-1e6, 1e6, allow_nan=False, width=32)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(finite, min_size=1, max_size=40), st.lists(finite, min_size=1, max_size=40))
def test_numeric_property(wh, ref, cur):
    got = drift(wh, ref, cur, "double", numeric=True)
    want = numeric_oracle(np.array(ref, dtype=float), np.array(cur, dtype=float))
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-6, abs=1e-6), (k, got[k], v)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["a", "b", "c", "d", None]), min_size=1, max_size=40).filter(lambda v: any(v)),
       st.lists(st.sampled_from(["a", "b", "c", "e", None]), min_size=1, max_size=40).filter(lambda v: any(v)))
def test_categorical_property(wh, ref, cur):
    assert_close(drift(wh, ref, cur, "text", numeric=False), categorical_oracle(ref, cur))


# -- correlation limits (fs_cli/validation/correlation.py) ---------------------------------------------------------
def _corr_data(n: int = 300):
    rng = np.random.default_rng(11)
    label = (rng.random(n) < 0.3).astype(float)
    a = rng.normal(0, 1, n)
    b = a * 2 + rng.normal(0, 0.05, n)  # redundant with a
    leak = label + rng.normal(0, 0.05, n)  # computed from the label
    c = rng.normal(0, 1, n)
    return {"label": label, "a": a, "b": b, "leak": leak, "c": c}


def test_correlation_checks_against_numpy(wh):
    from fs_cli.validation.correlation import correlation_checks, correlations

    data = _corr_data()
    rel = wh.relation(SCHEMA, "fv")
    wh.write_arrow(rel, pa.table({k: pa.array(v, pa.float64()) for k, v in data.items()}), mode="replace")
    feats = ["a", "b", "leak", "c"]
    got = correlations(wh, rel, feats, "label")
    for (x, y), v in got.items():
        assert v == pytest.approx(np.corrcoef(data[x], data[y])[0, 1], abs=1e-9), (x, y)
    res = {r.check: r for r in correlation_checks(wh, rel, feats, "label")}
    assert res["correlation:leak~label"].outcome == "fail"
    assert res["correlation:a~label"].outcome == "pass"
    pair = res["correlation:pairwise"]
    assert pair.outcome == "fail" and [(s["a"], s["b"]) for s in pair.samples] == [("a", "b")]
    assert pair.metrics["pairs_checked"] == 6
