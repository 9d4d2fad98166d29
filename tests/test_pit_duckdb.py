"""fs_point_in_time_join on DuckDB, proven against a brute-force oracle on hypothesis-generated data.

dbt renders the macro once (one in-process `dbt compile` for the whole module); each example then loads its
own rows into the tables the compiled SQL reads and runs that SQL directly. Both the DuckDB implementation
(ASOF JOIN) and the default one (window functions, the Postgres path) are checked here.
"""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from pit_oracle import (
    DEFAULT_IMPL_VARIANTS,
    OUTPUT_COLUMNS,
    STEP,
    T0,
    VARIANTS,
    Variant,
    check,
    dbt_compile,
    fg_a_rows,
    fg_b_rows,
    oracle,
    spine_rows,
    write_project,
)

DDL = {
    "spine": "k1 bigint, k2 varchar, ts timestamp, label bigint",
    "fg_a": "k1 bigint, et timestamp, cr timestamp, x double, y varchar",
    "fg_b": "id bigint, region varchar, t timestamp, z double",
}

FG_OK = "{'name': 'a', 'relation': source('pit', 'fg_a'), 'join_keys': {'k1': 'k1'}, 'event_time': 'et', 'features': ['x']}"
EXTRA_MODELS = {
    "ttl_values": "select {{ fs_ttl_seconds('2d') }} as d, {{ fs_ttl_seconds('12h') }} as h,"
    " {{ fs_ttl_seconds('30m') }} as m, {{ fs_ttl_seconds('90s') }} as s, {{ fs_ttl_seconds(3600) }} as i,"
    " {{ fs_ttl_seconds(none) }} as n, {{ fs_ttl_seconds(0) }} as z, {{ fs_ttl_seconds('45') }} as bare\n",
    "bad_ttl_unit": "select {{ fs_ttl_seconds('2 weeks') }}\n",
    "bad_ttl_negative": "select {{ fs_ttl_seconds(-5) }}\n",
    "bad_ttl_type": "select {{ fs_ttl_seconds(1.5) }}\n",
    "bad_clash": "{{ fs_point_in_time_join(source('pit', 'spine'), [" + FG_OK + ", " + FG_OK.replace("'a'", "'a2'")
    + "], 'ts') }}\n",
    "bad_clash_spine": "{{ fs_point_in_time_join(source('pit', 'spine'), [" + FG_OK.replace("['x']", "['k2']")
    + "], 'ts', spine_columns=['k1', 'k2']) }}\n",
    "bad_no_event_time": "{{ fs_point_in_time_join(source('pit', 'spine'), [" + FG_OK.replace("'event_time': 'et', ", "")
    + "], 'ts') }}\n",
    "bad_fg_ttl": "{{ fs_point_in_time_join(source('pit', 'spine'), [" + FG_OK.replace("'features'", "'ttl': '3 days', 'features'")
    + "], 'ts') }}\n",
    "bad_inclusive": "{{ fs_point_in_time_join(source('pit', 'spine'), [" + FG_OK + "], 'ts', inclusive='yes') }}\n",
    "bad_unknown_field": "{{ fs_point_in_time_join(source('pit', 'spine'), [" + FG_OK.replace("'features'", "'feature_list': [], 'features'")
    + "], 'ts') }}\n",
    "spine_subset_": "{{ fs_point_in_time_join(source('pit', 'spine'), [" + FG_OK.replace("'features'", "'ttl': '1h', 'features'")
    + "], 'ts', spine_columns=['label', 'ts']) }}\n",
}


# A bad declaration fails while dbt parses the project; the test models defer rendering to compile time so that
# each failure is reported on its own node (dependencies declared up front for dbt's parser).
EXTRA_MODELS = {
    name: sql if not name.startswith("bad_") else (
        "-- depends_on: {{ source('pit', 'spine') }} {{ source('pit', 'fg_a') }}\n"
        "{% if execute %}" + sql + "{% endif %}\n"
    )
    for name, sql in EXTRA_MODELS.items()
}
EXTRA_MODELS["spine_subset"] = EXTRA_MODELS.pop("spine_subset_")


@pytest.fixture(scope="module")
def pit(tmp_path_factory):
    root = tmp_path_factory.mktemp("pit_duckdb")
    db = root / "pit.duckdb"
    con = duckdb.connect(str(db))
    for name, cols in DDL.items():
        con.execute(f"create table {name} ({cols})")
    con.close()
    profile = (
        "pit_test:\n  target: duckdb\n  outputs:\n"
        f"    duckdb: {{type: duckdb, path: '{db}', schema: main, threads: 1}}\n"
    )
    write_project(root, profile, VARIANTS + DEFAULT_IMPL_VARIANTS, EXTRA_MODELS)
    results = dbt_compile(root, "duckdb", "main")
    con = duckdb.connect(str(db))
    yield results, con
    con.close()


def load(con: duckdb.DuckDBPyConnection, spine, fg_a, fg_b) -> None:
    for name, rows in (("spine", spine), ("fg_a", fg_a), ("fg_b", fg_b)):
        con.execute(f"delete from {name}")
        if rows:  # one multi-row statement: DuckDB's executemany costs ~1 ms a row
            marks = "(" + ", ".join("?" * len(rows[0])) + ")"
            con.execute(f"insert into {name} values " + ", ".join([marks] * len(rows)), [v for r in rows for v in r])


def run(pit, v: Variant) -> list[tuple]:
    results, con = pit
    r = results[v.name]
    assert r.status == "success", r.message
    return con.execute(r.node.compiled_code).fetchall()


ALL = VARIANTS + DEFAULT_IMPL_VARIANTS


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spine=spine_rows, fg_a=fg_a_rows, fg_b=fg_b_rows)
def test_matches_oracle(pit, spine, fg_a, fg_b):
    load(pit[1], spine, fg_a, fg_b)
    for v in ALL:
        check(run(pit, v), oracle(spine, fg_a, fg_b, v), v)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spine=spine_rows, fg_a=fg_a_rows, fg_b=fg_b_rows)
def test_no_future_value_leaks(pit, spine, fg_a, fg_b):
    """Each feature row carries its own event time as the value: no output may be later than its spine time."""
    fg_a = [(k, et, cr, None if et is None else (et - T0) / STEP, y) for k, et, cr, _x, y in fg_a]
    fg_b = [(i, r, t, None if t is None else (t - T0) / STEP) for i, r, t, _z in fg_b]
    load(pit[1], spine, fg_a, fg_b)
    for v in ALL:
        for row in run(pit, v):
            ts = row[2]
            for value in (row[4], row[6]):
                if value is not None:
                    seen = T0 + value * STEP
                    assert (seen <= ts) if v.inclusive else (seen < ts), (v.name, row)


def test_boundaries_inclusive_strict_and_ttl(pit):
    ts = T0 + 4 * STEP  # two hours after T0: exactly the 2h TTL of fg_a in the first two variants
    spine = [(1, "eu", ts, 1), (2, "eu", ts, 0), (3, "eu", ts, 0), (9, "eu", ts, 1)]
    fg_a = [
        (1, ts, T0, 10.0, "now"),             # at the spine time: only when inclusive
        (1, T0, T0, 0.0, "edge"),             # exactly ts - ttl: inside the TTL
        (2, T0 - STEP, T0, 5.0, "too_old"),   # 2.5 h before: outside the 2 h TTL
        (3, ts + STEP, T0, 7.0, "future"),    # only a future row: never visible
    ]
    load(pit[1], spine, fg_a, [])
    incl = {v.name: v for v in ALL}
    got = run(pit, incl["pit_incl_a2h"])
    assert [r[4:6] for r in got] == [(10.0, "now"), (None, None), (None, None), (None, None)]
    got = run(pit, incl["pit_strict_a2h_b1h"])
    assert [r[4:6] for r in got] == [(0.0, "edge"), (None, None), (None, None), (None, None)]
    got = run(pit, incl["pit_strict_unlimited"])  # no TTL: the old row is found
    assert [r[4:6] for r in got] == [(0.0, "edge"), (5.0, "too_old"), (None, None), (None, None)]


def test_created_time_breaks_ties_and_duplicates_stay(pit):
    ts = T0 + 4 * STEP
    spine = [(1, "eu", ts, 1), (1, "eu", ts, 1), (None, "eu", ts, 0)]
    fg_a = [(1, ts, T0 + STEP, 1.0, "older"), (1, ts, T0 + 2 * STEP, 2.0, "newest"), (1, ts, None, 3.0, "unknown"),
            (None, ts, T0 + 3 * STEP, 4.0, "null key")]
    load(pit[1], spine, fg_a, [])
    for v in ALL:
        if v.inclusive:
            got = run(pit, v)
            assert [r[:6] for r in got] == [(1, "eu", ts, 1, 2.0, "newest")] * 2 + [(None, "eu", ts, 0, None, None)]


def test_output_columns_and_spine_order(pit):
    results, con = pit
    load(con, [(3, "us", T0, 0), (1, "eu", T0, 1)], [], [])
    for v in ALL:
        cur = con.execute(results[v.name].node.compiled_code)
        assert [d[0] for d in cur.description] == OUTPUT_COLUMNS, v.name
        cur.fetchall()
    # a spine large enough for parallel scans keeps its order
    con.execute("delete from spine")
    con.execute("insert into spine select (i * 7919) % 1000, 'eu', timestamp '2024-03-01' + to_seconds((i * 104729) % 86400), i"
                " from range(300000) t(i)")
    con.execute("insert into fg_a select i % 1000, timestamp '2024-03-01' + to_seconds((i * 31) % 86400), null, i, 'v'"
                " from range(300000) t(i)")
    for v in ALL[:2]:
        labels = [r[3] for r in run(pit, v)]
        assert labels == list(range(300000)), v.name


def test_spine_columns_selects_and_orders_spine_output(pit):
    results, con = pit
    load(con, [(1, "eu", T0 + STEP, 1)], [(1, T0, None, 1.5, "a")], [])
    cur = con.execute(results["spine_subset"].node.compiled_code)
    assert [d[0] for d in cur.description] == ["label", "ts", "x"]
    assert cur.fetchall() == [(1, T0 + STEP, 1.5)]


def test_ttl_seconds_parsing(pit):
    results, con = pit
    row = con.execute(results["ttl_values"].node.compiled_code).fetchall()[0]
    assert row == (2 * 86400, 12 * 3600, 30 * 60, 90, 3600, 0, 0, 45)


@pytest.mark.parametrize(
    "model, words",
    [
        ("bad_ttl_unit", ["invalid ttl '2 weeks'", "'2d'"]),
        ("bad_ttl_negative", ["invalid ttl -5", "negative"]),
        ("bad_ttl_type", ["invalid ttl 1.5"]),
        ("bad_clash", ["output column 'x' clashes", "feature group 'a'", "prefix"]),
        ("bad_clash_spine", ["output column 'k2' clashes", "the spine"]),
        ("bad_no_event_time", ["feature group #1 'a' has no 'event_time'"]),
        ("bad_fg_ttl", ["invalid ttl '3 days'"]),
        ("bad_inclusive", ["inclusive must be true", "'yes'"]),
        ("bad_unknown_field", ["unknown field 'feature_list'"]),
    ],
)
def test_bad_declarations_fail_at_compile_time_naming_the_problem(pit, model, words):
    r = pit[0][model]
    assert r.status == "error"
    for w in words:
        assert w in r.message, (w, r.message)

