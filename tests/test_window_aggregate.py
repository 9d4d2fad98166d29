"""fs_window_aggregate (macros/features/window_aggregate.sql) against a brute-force Python reference.

The macro is rendered once per engine and configuration through one `dbt compile --inline` (dbt costs seconds per
invocation); the compiled SQL then runs on many hypothesis-generated event tables (ties, NULL values and keys, empty
windows, events exactly on both window boundaries) directly on DuckDB and on a Postgres schema of its own."""

from __future__ import annotations

import json
import os
import re
import uuid
from datetime import datetime, timedelta

import duckdb
import pytest
from conftest import copy_project, drop_demo_models
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BASE = datetime(2026, 1, 1)
STEP = timedelta(minutes=15)  # every event time is a multiple of 15 minutes: windows end exactly on events

AGGS = [
    {"name": "n_events_1h", "function": "count", "window": "1h"},
    {"name": "n_values_2h", "function": "count", "column": "v", "window": "2h"},
    {"name": "sum_30m", "function": "sum", "column": "v", "window": "30m"},
    {"name": "sum_1d_or_0", "function": "sum", "column": "v", "window": "1d", "default": 0},
    {"name": "mean_2h", "function": "mean", "column": "v", "window": "2h"},
    {"name": "min_1d", "function": "min", "column": "v", "window": "1d"},
    {"name": "max_45m", "function": "max", "column": "v", "window": "45m"},
    {"name": "distinct_2h", "function": "count_distinct", "column": "v", "window": "2h"},
    {"name": "last_1h", "function": "last", "column": "v", "window": "1h"},
    {"name": "last_1d", "function": "last", "column": "v", "window": "1d"},
]
SECONDS = {"m": 60, "h": 3600, "d": 86400}

#: name -> keyword arguments of the macro besides relation/entity/timestamp/aggregations.
CONFIGS = {
    "events": {"at": "events"},
    "events_lag_left": {"at": "events", "lag": "30m", "closed": "left"},
    "grid_1h": {"at": "1h"},
    "grid_30m_lag_left": {"at": "30m", "lag": "1h", "closed": "left"},
}


def seconds(d: str) -> int:
    m = re.fullmatch(r"(\d+)([mhd])", d)
    return int(m.group(1)) * SECONDS[m.group(2)]


def inline_sql() -> str:
    """Every configuration in one inline query, each between markers (one dbt invocation renders them all)."""
    parts = []
    for name, kw in CONFIGS.items():
        args = ", ".join(f"{k}={json.dumps(v)}" for k, v in kw.items())
        parts.append(f"-- @@{name}\n{{{{ fs_window_aggregate('ev', 'k', 'ts', var('aggs'), {args}) }}}}\n-- @@end")
    return "\n".join(parts)


def split_rendered(compiled: str) -> dict[str, str]:
    return dict(re.findall(r"-- @@(\w+)\n(.*?)\n-- @@end", compiled, flags=re.S))


# ---------------------------------------------------------------------------------------------- reference (the spec)
def reference(events: list[tuple], at: str = "events", lag: str | None = None, closed: str = "right") -> dict:
    """Brute force: {(k, t): {agg name: value}} straight from the documented semantics."""
    evs = [(k, ts, v) for k, ts, v in events if k is not None and ts is not None]
    if not evs:
        return {}
    lag_td = timedelta(seconds=seconds(lag)) if lag else timedelta(0)
    longest = timedelta(seconds=max(seconds(a["window"]) for a in AGGS))

    def inside(ts, t, w):
        u = t - lag_td
        return (u - w < ts <= u) if closed == "right" else (u - w <= ts < u)

    if at == "events":
        points = {(k, ts) for k, ts, _ in evs}
    else:
        step = timedelta(seconds=seconds(at))
        latest = max(ts for _, ts, _ in evs)
        t = datetime.combine(min(ts for _, ts, _ in evs).date(), datetime.min.time())
        grid = []
        while True:  # up to the first point whose window sees the latest event
            grid.append(t)
            if inside(latest, t, longest) or (closed == "right" and latest <= t - lag_td) or \
                    (closed == "left" and latest < t - lag_td):
                break
            t += step
        points = {(k, t) for t in grid for k in {e[0] for e in evs}
                  if any(ek == k and inside(ts, t, longest) for ek, ts, _ in evs)}
    out = {}
    for k, t in points:
        row = {}
        for a in AGGS:
            w = timedelta(seconds=seconds(a["window"]))
            win = [(ts, v) for ek, ts, v in evs if ek == k and inside(ts, t, w)]
            vals = [v for _, v in win if v is not None]
            fn = a["function"]
            if fn == "count":
                val = len(win) if a.get("column", "*") == "*" else len(vals)
            elif fn == "count_distinct":
                val = len(set(vals))
            elif not vals:
                val = None
            elif fn == "sum":
                val = sum(vals)
            elif fn == "mean":
                val = sum(vals) / len(vals)
            elif fn == "min":
                val = min(vals)
            elif fn == "max":
                val = max(vals)
            else:  # last: latest time with a value; ties -> the largest value
                last_ts = max(ts for ts, v in win if v is not None)
                val = max(v for ts, v in win if ts == last_ts and v is not None)
            if val is None and a.get("default") is not None:
                val = a["default"]
            row[a["name"]] = val
        out[(k, t)] = row
    return out


def as_dict(columns: list[str], rows: list[tuple]) -> dict:
    out = {}
    for r in rows:
        rec = dict(zip(columns, r, strict=True))
        key = (rec.pop("k"), rec.pop("feature_time"))
        assert key not in out, f"two rows for {key}"
        out[key] = {n: (float(v) if v is not None and n.startswith("mean") else
                        (int(v) if v is not None else None)) for n, v in rec.items()}
    return out


def assert_same(got: dict, want: dict) -> None:
    assert set(got) == set(want), (sorted(set(got) - set(want))[:5], sorted(set(want) - set(got))[:5])
    for key, row in want.items():
        for name, value in row.items():
            if name.startswith("mean") and value is not None and got[key][name] is not None:
                assert got[key][name] == pytest.approx(value, rel=1e-12), (key, name)
            else:
                assert got[key][name] == value, (key, name, got[key], row)


# -------------------------------------------------------------------------------------------------- engines
@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """{engine: {config: SQL}}: the macro compiled by dbt for each engine (default dispatch on both today)."""
    from dbt.cli.main import dbtRunner

    d = drop_demo_models(copy_project(tmp_path_factory.mktemp("wa") / "proj", with_seeds=False))
    saved = {k: os.environ.get(k) for k in ("FS_DUCKDB_PATH",)}
    os.environ["FS_DUCKDB_PATH"] = str(d / "w.duckdb")
    out = {}
    try:
        for target in ("duckdb", "postgres"):
            res = dbtRunner().invoke([
                "compile", "--project-dir", str(d), "--profiles-dir", str(d), "--target", target, "--quiet",
                "--target-path", str(d / f"target_{target}"), "--log-path", str(d / "logs"),
                "--vars", json.dumps({"aggs": AGGS}), "--inline", inline_sql()])
            assert res.success, res.exception
            out[target] = split_rendered(res.result.results[0].node.compiled_code)
            assert set(out[target]) == set(CONFIGS)
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    return out


class DuckRunner:
    def __init__(self):
        self.con = duckdb.connect()

    def run(self, sql: str, events: list[tuple]) -> dict:
        self.con.execute("create or replace table ev (k integer, ts timestamp, v bigint)")
        if events:
            self.con.executemany("insert into ev values (?, ?, ?)", events)
        cur = self.con.execute(sql)
        return as_dict([c[0] for c in cur.description], cur.fetchall())


class PgRunner:
    def __init__(self):
        from services import pg_connect

        self.con = pg_connect("test")
        self.schema = f"fs_wa_{uuid.uuid4().hex[:10]}"
        with self.con.cursor() as cur:
            cur.execute(f'create schema "{self.schema}"')
            cur.execute(f'set search_path to "{self.schema}"')
            cur.execute("set timezone to 'UTC'")

    def run(self, sql: str, events: list[tuple]) -> dict:
        with self.con.cursor() as cur:
            cur.execute("drop table if exists ev")
            cur.execute("create table ev (k integer, ts timestamp, v bigint)")
            if events:
                cur.executemany("insert into ev values (%s, %s, %s)", events)
            cur.execute(sql)
            return as_dict([c.name for c in cur.description], cur.fetchall())

    def close(self):
        with self.con.cursor() as cur:
            cur.execute(f'drop schema if exists "{self.schema}" cascade')
        self.con.close()


@pytest.fixture(scope="module")
def runners():
    made = {}

    def get(engine: str):
        if engine not in made:
            made[engine] = DuckRunner() if engine == "duckdb" else PgRunner()
        return made[engine]

    yield get
    for r in made.values():
        if isinstance(r, PgRunner):
            r.close()


# -------------------------------------------------------------------------------------------------- data
times = st.one_of(st.none(), st.integers(0, 4 * 24 * 4).map(lambda i: BASE + i * STEP))
event = st.tuples(st.one_of(st.none(), st.integers(1, 3)), times, st.one_of(st.none(), st.integers(-5, 20)))
# Many events on few times: ties on (key, time), dense windows, and events exactly w before other events.
events_lists = st.lists(event, max_size=40)
clustered = st.lists(st.tuples(st.integers(1, 2), st.integers(0, 12).map(lambda i: BASE + i * STEP),
                               st.one_of(st.none(), st.integers(0, 3))), min_size=1, max_size=25)
EXAMPLES = {"duckdb": 60, "postgres": 8}  # every Postgres example costs a round trip per configuration


@pytest.mark.parametrize("config", list(CONFIGS))
def test_matches_reference(rendered, runners, engine, config):
    runner, sql = runners(engine), rendered[engine][config]

    @settings(max_examples=EXAMPLES[engine], deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(events_lists, clustered))
    def check(events):
        assert_same(runner.run(sql, events), reference(events, **CONFIGS[config]))

    check()


def test_boundaries_by_hand(rendered, runners, engine):
    """(t - w, t] by default: the event exactly w before t is out, the event at t is in; closed='left' with a lag
    flips both ends around t - lag."""
    t0 = BASE + timedelta(hours=10)
    evs = [(1, t0 - timedelta(hours=1), 100), (1, t0 - timedelta(minutes=30), 10), (1, t0, 1)]
    right = runners(engine).run(rendered[engine]["events"], evs)
    assert right[(1, t0)]["n_events_1h"] == 2  # t0 - 1h is excluded, t0 included
    assert right[(1, t0)]["sum_30m"] == 1  # t0 - 30m excluded
    assert right[(1, t0)]["last_1h"] == 1
    left = runners(engine).run(rendered[engine]["events_lag_left"], evs)  # window [t - 30m - w, t - 30m)
    assert left[(1, t0)]["n_events_1h"] == 1  # t0 - 1h in, t0 - 30m (= the upper bound) out, t0 out
    assert left[(1, t0)]["last_1h"] == 100
    assert left[(1, t0 - timedelta(hours=1))]["n_events_1h"] == 0  # empty window: count 0, sum NULL
    assert left[(1, t0 - timedelta(hours=1))]["sum_30m"] is None
    assert left[(1, t0 - timedelta(hours=1))]["sum_1d_or_0"] == 0


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(events_lists, st.lists(st.tuples(st.integers(1, 3), st.integers(1, 96), st.integers(0, 9)), min_size=1,
                              max_size=10))
def test_no_leakage_future_events_change_no_past_row(rendered, runners, events, later):
    """Appending events strictly after every existing event changes no value of any existing evaluation point,
    in every configuration (a reference-free check: whatever the window arithmetic, the future never leaks)."""
    runner = runners("duckdb")
    evs = [e for e in events if e[0] is not None and e[1] is not None]
    if not evs:
        return
    latest = max(ts for _, ts, _ in evs)
    future = [(k, latest + timedelta(minutes=m), v) for k, m, v in later]
    for name, kw in CONFIGS.items():
        if kw["at"] != "events":
            continue  # grid rows beyond the old end appear, old ones must not change: checked below
        before = runner.run(rendered["duckdb"][name], events)
        after = runner.run(rendered["duckdb"][name], events + future)
        assert {k: after[k] for k in before} == before, name
    for name, kw in CONFIGS.items():
        if kw["at"] == "events":
            continue
        before = runner.run(rendered["duckdb"][name], events)
        after = runner.run(rendered["duckdb"][name], events + future)
        lag = timedelta(seconds=seconds(kw["lag"])) if kw.get("lag") else timedelta(0)
        # A grid point can only see events up to t - lag; the future events are all > latest.
        for key, row in before.items():
            if key[1] - lag <= latest:
                assert after[key] == row, (name, key)
