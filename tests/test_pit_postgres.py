"""fs_point_in_time_join on the real Postgres server (default implementation via dbt-postgres), against the oracle.

One in-process dbt invocation renders the macro for the module (in a schema of its own, dropped afterwards);
each hypothesis example then reloads the tables and runs the compiled SQL through psycopg2.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from pit_oracle import (
    OUTPUT_COLUMNS,
    STEP,
    T0,
    VARIANTS,
    check,
    dbt_compile,
    fg_a_rows,
    fg_b_rows,
    oracle,
    spine_rows,
    write_project,
)
from services import missing

psycopg2 = pytest.importorskip("psycopg2")
from psycopg2.extras import execute_values  # noqa: E402

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}
DDL = {
    "spine": "k1 bigint, k2 varchar, ts timestamp, label bigint",
    "fg_a": "k1 bigint, et timestamp, cr timestamp, x double precision, y varchar",
    "fg_b": "id bigint, region varchar, t timestamp, z double precision",
}


def _connect():
    try:
        return psycopg2.connect(connect_timeout=3, **PG)
    except psycopg2.OperationalError as e:
        missing("Postgres", f"{PG['host']}:{PG['port']}: {e}")


@pytest.fixture(scope="module")
def pit(tmp_path_factory):
    con = _connect()
    con.autocommit = True
    schema = f"fs_pit_test_{uuid.uuid4().hex[:10]}"
    cur = con.cursor()
    cur.execute(f'create schema "{schema}"')
    try:
        for name, cols in DDL.items():
            cur.execute(f'create table "{schema}".{name} ({cols})')
        root = tmp_path_factory.mktemp("pit_pg")
        profile = (
            "pit_test:\n  target: postgres\n  outputs:\n"
            f"    postgres: {{type: postgres, host: {PG['host']}, port: {PG['port']}, user: {PG['user']},"
            f" password: '', dbname: {PG['dbname']}, schema: {schema}, threads: 1}}\n"
        )
        write_project(root, profile, VARIANTS, {})
        results = dbt_compile(root, "postgres", schema)
        cur.execute(f'set search_path to "{schema}"')
        yield results, cur
    finally:
        cur.execute(f'drop schema if exists "{schema}" cascade')
        con.close()


def load(cur, spine, fg_a, fg_b) -> None:
    for name, rows in (("spine", spine), ("fg_a", fg_a), ("fg_b", fg_b)):
        cur.execute(f"truncate {name}")
        if rows:
            execute_values(cur, f"insert into {name} values %s", rows)


def run(pit, v) -> list[tuple]:
    results, cur = pit
    r = results[v.name]
    assert r.status == "success", r.message
    cur.execute(r.node.compiled_code)
    return cur.fetchall()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spine=spine_rows, fg_a=fg_a_rows, fg_b=fg_b_rows)
def test_matches_oracle_on_postgres(pit, spine, fg_a, fg_b):
    load(pit[1], spine, fg_a, fg_b)
    for v in VARIANTS:
        check(run(pit, v), oracle(spine, fg_a, fg_b, v), v)


def test_boundaries_and_columns_on_postgres(pit):
    ts = T0 + 4 * STEP
    spine = [(1, "eu", ts, 1), (2, "eu", ts, 0), (3, "eu", ts, 0), (1, "eu", ts, 1)]
    fg_a = [(1, ts, T0, 10.0, "now"), (1, T0, T0, 0.0, "edge"), (2, T0 - STEP, T0, 5.0, "too_old"),
            (3, ts + STEP, T0, 7.0, "future")]
    load(pit[1], spine, fg_a, [])
    by_name = {v.name: v for v in VARIANTS}
    got = run(pit, by_name["pit_incl_a2h"])
    assert [d[0] for d in pit[1].description] == OUTPUT_COLUMNS
    assert [r[4:6] for r in got] == [(10.0, "now"), (None, None), (None, None), (10.0, "now")]
    got = run(pit, by_name["pit_strict_a2h_b1h"])
    assert [r[4:6] for r in got] == [(0.0, "edge"), (None, None), (None, None), (0.0, "edge")]
    got = run(pit, by_name["pit_strict_unlimited"])
    assert [r[4:6] for r in got] == [(0.0, "edge"), (5.0, "too_old"), (None, None), (0.0, "edge")]
