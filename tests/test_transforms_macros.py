"""The dbt macros. fs_apply_transformations is the one definition of the transformations' SQL: dbt compiles it to
exactly the text fs_cli renders from the same files (fs_cli/transforms/macros.py), for the target's engine; rendered
for Spark it quotes with backticks and is valid Spark SQL. fs_on_demand_columns renders the SQL of the Python
on-demand renderer. The feature-function macros compute the expected values on DuckDB and on a real Postgres."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import duckdb
import pytest
import sqlglot
from conftest import copy_project
from services import pg_connect

from fs_cli.errors import FeatureStoreError
from fs_cli.transforms import TransformSQL, fit, parse_on_demand, render_on_demand_columns, render_select

DECLS = [
    {"feature": "x", "fn": "impute", "args": {"strategy": "median"}},
    {"feature": "x", "fn": "standard_scaler"},
    {"feature": "x", "fn": "clip", "args": {"min": 0, "max": 1e6}, "output": "x_clip"},
    {"feature": "x", "fn": "log1p", "output": "x_clip"},
    {"feature": "x", "fn": "min_max_scaler", "output": "x_mm"},
    {"feature": "x", "fn": "robust_scaler", "output": "x_rb"},
    {"feature": "x", "fn": "bucketize", "args": {"num_buckets": 3}, "output": "x_q"},
    {"feature": "x", "fn": "bucketize", "args": {"boundaries": [1, 10]}, "output": "x_b"},
    {"feature": "x", "fn": "one_hot", "output": "x_b"},
    {"feature": "n", "fn": "label_encode", "output": "n_code"},
    {"feature": "s", "fn": "impute", "args": {"strategy": "constant", "value": "it's \"unknown\""}},
    {"feature": "s", "fn": "one_hot"},
    {"feature": "s", "fn": "label_encode", "output": "s_code"},
]
OD = [{"name": "ratio", "expr": "x / nullif(n, 0)", "inputs": ["x", "n"]},
      {"name": "tag", "expr": "upper(s) || '!'", "inputs": ["s"]}]


@pytest.fixture(scope="module")
def dbt_project(tmp_path_factory):
    """A project copy with its own DuckDB file and Postgres schema; a function running dbt in-process on it."""
    from dbt.cli.main import dbtRunner

    d = copy_project(tmp_path_factory.mktemp("tf_macros") / "proj")
    (d / "target").mkdir(exist_ok=True)
    # Restored however the fixture ends (a failure while preparing the fixtures must not leak this module's
    # warehouse into every later test of the worker).
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FS_DUCKDB_PATH", str(d / "target" / "w.duckdb"))
        env.setenv("FS_PG_SCHEMA", f"fs_tf_{uuid.uuid4().hex[:10]}")  # dbt show creates nothing in it

        fixtures = _fixtures()  # the same --vars on every call keep dbt's partial parsing valid (a change re-parses)

        def run(*args: str, target: str = "duckdb"):
            cmd = [args[0], "--project-dir", str(d), "--profiles-dir", str(d), "--target", target, "--quiet",
                   "--target-path", str(d / f"target_{target}"), "--log-path", str(d / "logs"), *args[1:],
                   "--vars", json.dumps(fixtures["vars"])]
            return dbtRunner().invoke(cmd), fixtures

        yield run


def _fixtures() -> dict:
    con = duckdb.connect()
    con.execute("create table t as select * from (values (1.5, 1, 'go''ld'), (null, 2, null), (30.0, 2, 'Ünï'), "
                "(7.25, null, 'b')) v(x, n, s)")
    stats = fit(con, '"t"', DECLS, split_column=None)
    ods = parse_on_demand(OD, {"x": "double", "n": "bigint", "s": "varchar"})
    con.execute("create table t1 as select 1.0 as x")
    stats1 = fit(con, '"t1"', [{"feature": "x", "fn": "standard_scaler"}], split_column=None)
    return {"con": con, "stats": stats, "ods": ods, "vars": {
        "decls": DECLS, "stats": stats, "od": [o.to_dict() for o in ods],
        "other_decls": [{"feature": "x", "fn": "min_max_scaler"}], "stats1": stats1}}


def test_dbt_compiles_the_macro_to_the_sql_fs_cli_renders(dbt_project):
    """dbt's own Jinja context (real adapter.dispatch, return, namespaces) and fs_cli's plain-Jinja rendering of
    the same macro files give the same text; a change to apply.sql changes both."""
    inline = ("{{ fs_apply_transformations('\"t\"', var('decls'), var('stats')) }}\n-- on demand\n"
              "{{ fs_on_demand_columns(var('od')) }}")
    res, fx = dbt_project("compile", "--inline", inline)
    stats, ods, con = fx["stats"], fx["ods"], fx["con"]
    assert res.success, res.exception
    compiled = res.result.results[0].node.compiled_code
    rendered = render_select('"t"', stats, declarations=DECLS, engine="duckdb")
    assert compiled.strip() == rendered + "\n-- on demand\n" + ",\n    ".join(render_on_demand_columns(ods))
    assert "cast('7.25' as double precision)" in rendered and "ln(1 + " in rendered  # the macro's arithmetic
    out = con.sql(rendered)
    assert out.columns == ["x", "n", "s__b", "s__go_ld", "s__it_s_unknown", "s__n", "s__unseen", "x_clip", "x_mm",
                           "x_rb", "x_q", "x_b__1", "x_b__2", "x_b__unseen", "n_code", "s_code"]
    assert len(out.fetchall()) == 4


def test_rendered_for_spark_the_sql_quotes_with_backticks_and_is_spark_sql():
    """Issue 11: identifiers are backticked, types are Spark's, literals escaped Spark's way; sqlglot parses the
    text as Spark SQL and, translated to DuckDB, it computes exactly the DuckDB rendering's values."""
    fx = _fixtures()
    stats, con = fx["stats"], fx["con"]
    spark = render_select("`t`", stats, engine="spark")
    names = [*stats["input_columns"], *(o for c in stats["chains"] for o in c["outputs"])]
    for name in names:
        assert f"`{name}`" in spark and f'"{name}"' not in spark, name
    assert "double precision" not in spark and "as double)" in spark and "as string)" in spark
    assert r"'go\'ld'" in spark and "'it\\'s \"unknown\"'" in spark  # Spark reads '' as two literals
    tree = sqlglot.parse_one(spark, read="spark")
    assert all(i.quoted for i in tree.find_all(sqlglot.exp.Identifier))
    as_duckdb = sqlglot.transpile(spark, read="spark", write="duckdb")[0]
    assert con.sql(as_duckdb).fetchall() == con.sql(render_select('"t"', stats)).fetchall()
    # fitting renders its per-step SQL from the same macros: Spark spelling there too
    x = next(c for c in stats["chains"] if c["output"] == "x")
    operand, reads_text = TransformSQL("spark").step_operand(x, 1)
    assert operand.startswith("coalesce(nullif(cast(`x` as double), cast('NaN' as double))") and not reads_text
    assert TransformSQL("spark").finite("`v`") == \
        "(case when `v` > cast('-Infinity' as double) and `v` < cast('Infinity' as double) then `v` end)"


def test_fs_cli_raises_the_macros_errors():
    """The macro's compile errors reach Python callers as FeatureStoreError (a stale training dataset, a relation
    without a transformed column)."""
    fx = _fixtures()
    with pytest.raises(FeatureStoreError, match="other transformation declarations"):
        render_select('"t1"', fx["vars"]["stats1"], declarations=fx["vars"]["other_decls"])
    with pytest.raises(FeatureStoreError, match="input column x missing"):
        render_select('"t"', fx["stats"], columns=["n", "s"])


def _error(res) -> str:
    """dbt wraps compile errors of an inline query; the cause carries the macro's message."""
    e, parts = res.exception, []
    while e is not None:
        parts.append(str(e))
        e = e.__cause__ or e.__context__
    return "\n".join(parts)


def test_macro_rejects_stats_fitted_for_other_declarations(dbt_project):
    res, _ = dbt_project("compile", "--inline",
                         "{{ fs_apply_transformations('t1', var('other_decls'), var('stats1')) }}")
    assert not res.success and "other transformation declarations" in _error(res)


FEATURES_SQL = """
select
    {{ fs_ratio('10', '4') }} as r,
    {{ fs_ratio('1', '0') }} as r_zero,
    {{ fs_ratio('1', 'null', '-1') }} as r_default,
    {{ fs_seconds_since("timestamp '2026-01-01 00:00:00'", "timestamp '2026-01-01 01:30:05.5'") }} as secs,
    {{ fs_bucketize('-3', [10, 20.5]) }} as b0,
    {{ fs_bucketize('10', [10, 20.5]) }} as b1,
    {{ fs_bucketize('25', [10, 20.5]) }} as b2,
    {{ fs_bucketize('cast(null as integer)', [10, 20.5]) }} as b_null,
    {% for p in ['year', 'quarter', 'month', 'day_of_month', 'day_of_year', 'day_of_week', 'iso_week', 'hour',
                 'minute', 'is_weekend'] -%}
    {{ fs_date_part(p, "timestamp '2026-01-04 10:11:12'") }} as {{ p }}{{ ',' if not loop.last }}
    {% endfor %}
"""
EXPECTED = {"r": 2.5, "r_zero": None, "r_default": -1, "secs": 5405.5, "b0": 0, "b1": 1, "b2": 2, "b_null": None,
            "year": 2026, "quarter": 1, "month": 1, "day_of_month": 4, "day_of_year": 4,
            "day_of_week": 7, "iso_week": 1, "hour": 10, "minute": 11, "is_weekend": 1}  # 2026-01-04 is a Sunday


def _show(dbt_project, target: str) -> dict:
    res, _ = dbt_project("show", "--inline", FEATURES_SQL, target=target)
    assert res.success, res.exception
    table = res.result.results[0].agate_table
    return {k: (None if v is None else float(v)) for k, v in zip(table.column_names, table.rows[0], strict=True)}


def test_feature_functions_on_duckdb(dbt_project):
    assert _show(dbt_project, "duckdb") == EXPECTED


def test_feature_functions_on_postgres(dbt_project):
    pg_connect("test").close()  # skip (laptop) or fail (CI) when the server is missing
    assert _show(dbt_project, "postgres") == EXPECTED


def test_feature_function_bad_arguments_fail_at_compile(dbt_project):
    res, _ = dbt_project("compile", "--inline", "select {{ fs_date_part('weekday', 'ts') }}")
    assert not res.success and "unknown part 'weekday'" in _error(res)


def test_macros_are_documented():
    import yaml

    root = Path(__file__).resolve().parent.parent / "macros"
    for sub, doc in (("features", "_features.yml"), ("transforms", "_transforms.yml")):
        documented = {m["name"] for m in yaml.safe_load((root / sub / doc).read_text())["macros"]}
        defined = set()
        for f in (root / sub).glob("*.sql"):
            for line in f.read_text().splitlines():
                if line.startswith("{% macro ") and "__" not in line.split("(")[0]:
                    name = line.split("{% macro ")[1].split("(")[0]
                    if not name.startswith("fs_tf_"):  # private helpers of fs_apply_transformations
                        defined.add(name)
        assert defined <= documented, f"undocumented macros in macros/{sub}: {sorted(defined - documented)}"
