"""The dbt macros: fs_apply_transformations / fs_on_demand_columns render exactly the SQL of the Python renderers,
and the feature-function macros compute the expected values on DuckDB and on a real Postgres (own schema)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import duckdb
import pytest
from conftest import copy_project
from services import pg_connect

from fs_cli.transforms import fit, parse_on_demand, render_on_demand_columns, render_select

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
    saved = {k: os.environ.get(k) for k in ("FS_DUCKDB_PATH", "FS_PG_SCHEMA")}
    os.environ["FS_DUCKDB_PATH"] = str(d / "target" / "w.duckdb")
    os.environ["FS_PG_SCHEMA"] = f"fs_tf_{uuid.uuid4().hex[:10]}"  # dbt show creates nothing in it

    fixtures = _fixtures()  # the same --vars on every call keep dbt's partial parsing valid (a change re-parses)

    def run(*args: str, target: str = "duckdb"):
        cmd = [args[0], "--project-dir", str(d), "--profiles-dir", str(d), "--target", target, "--quiet",
               "--target-path", str(d / f"target_{target}"), "--log-path", str(d / "logs"), *args[1:],
               "--vars", json.dumps(fixtures["vars"])]
        return dbtRunner().invoke(cmd), fixtures

    yield run
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


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


def test_macros_render_the_same_sql_as_python(dbt_project):
    inline = ("{{ fs_apply_transformations('\"t\"', var('decls'), var('stats')) }}\n-- on demand\n"
              "{{ fs_on_demand_columns(var('od')) }}")
    res, fx = dbt_project("compile", "--inline", inline)
    stats, ods, con = fx["stats"], fx["ods"], fx["con"]
    assert res.success, res.exception
    compiled = res.result.results[0].node.compiled_code
    expected = render_select('"t"', stats, declarations=DECLS) + "\n-- on demand\n" + \
        ",\n    ".join(render_on_demand_columns(ods))
    assert compiled.strip() == expected.strip()
    con.sql(render_select('"t"', stats)).fetchall()  # and it runs


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
