"""Smoke size of the point-in-time benchmark: bench/pit.py (the product path: dbt sources, meta.fs-declared feature
groups, fs_point_in_time_join compiled by dbt once per project state and cached, run through fs's warehouse layer,
export) gives, row for row and in spine order, what the hand-written floor queries of bench/pit_compare.py give, on
DuckDB and on Postgres (--target postgres: its own database, loaded from the Parquet files and dropped afterwards),
whatever the machine's time zone; and its compiled-SQL cache serves a run only the SQL compiled for that run's inputs
(another TTL, data directory or spine schema compiles again)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from services import pg_connect

REPO = Path(__file__).resolve().parent.parent
TTL_DAYS = 20


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _generate(out: Path, seed: int) -> Path:
    subprocess.run([sys.executable, str(REPO / "bench" / "gen_data.py"), str(out), "50", "3000", "2000", str(seed)],
                   check=True, capture_output=True)
    return out.resolve()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return _generate(tmp_path_factory.mktemp("pit_bench") / "data", 3)


def _floors(data: Path, ttl_days: int) -> dict[str, pa.Table]:
    """The independent oracle: the hand-written DuckDB ASOF queries, straight on the Parquet files."""
    compare = _load("pit_compare")
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    return {v: con.sql(compare.floor_sql(data, ttl_days, v)).to_arrow_table() for v in ("qualify", "struct")}


@pytest.fixture(scope="module")
def duckdb_floors(data) -> dict[str, pa.Table]:
    return _floors(data, TTL_DAYS)


def _run_pit(pit, monkeypatch, capsys, data: Path, out: Path, project: Path, *extra: str,
             ttl_days: int = TTL_DAYS) -> tuple[dict, str]:
    """pit.main in-process (its bench project in `project`, never the repo's bench/.pit-project); its JSON line and
    its printed lines."""
    monkeypatch.setenv("PGTZ", "UTC")  # pit.main pins it; restored afterwards
    monkeypatch.setattr(sys, "argv", ["pit.py", "--data", str(data), "--ttl-days", str(ttl_days), "--out", str(out),
                                      "--size-label", "smoke", "--keep-project", str(project), *extra])
    pit.main()
    printed = capsys.readouterr().out
    return json.loads(printed.strip().splitlines()[-1]), printed


def _check_contract(ours: pa.Table, data: Path, floors: dict[str, pa.Table], pit) -> None:
    assert ours.column_names == pit.OUTPUT_COLUMNS
    spine = pq.read_table(data / "spine.parquet")
    assert ours.select(spine.column_names).cast(spine.schema).equals(spine)  # every spine row once, in order
    for variant, floor in floors.items():
        assert ours.cast(floor.schema).equals(floor), variant
    assert ours.column("tx_amount_7d").null_count < ours.num_rows  # the join found something
    assert ours.column("tx_amount_7d").null_count > 0  # and the TTL cut something


def test_pit_bench_matches_floors_at_smoke_size(data, duckdb_floors, tmp_path, monkeypatch, capsys):
    """The first run compiles through dbt, the second is served from the cache (no dbt): both match the floors."""
    pit = _load("pit")
    project = tmp_path / "project"
    first, printed = _run_pit(pit, monkeypatch, capsys, data, tmp_path / "ours.parquet", project)
    assert "[smoke] join step" in printed and "total command" in printed and "overhead" in printed
    assert first["compiled"] == "dbt"
    _check_contract(pq.read_table(tmp_path / "ours.parquet"), data, duckdb_floors, pit)

    again, printed = _run_pit(pit, monkeypatch, capsys, data, tmp_path / "again.parquet", project)
    assert again["compiled"] == "cached" and "from the cache (no dbt)" in printed
    _check_contract(pq.read_table(tmp_path / "again.parquet"), data, duckdb_floors, pit)


def test_pit_bench_cache_never_serves_sql_compiled_for_other_inputs(data, tmp_path, monkeypatch, capsys):
    """Each changed input compiles again and the result is the floor of the new inputs, also when going back to
    inputs compiled before; an unchanged run after that is served from the cache."""
    pit = _load("pit")
    project = tmp_path / "project"

    def run(name: str, data_dir: Path, ttl_days: int) -> tuple[str, pa.Table]:
        res, _ = _run_pit(pit, monkeypatch, capsys, data_dir, tmp_path / f"{name}.parquet", project, ttl_days=ttl_days)
        return res["compiled"], pq.read_table(tmp_path / f"{name}.parquet")

    compiled, _ = run("base", data, TTL_DAYS)
    assert compiled == "dbt"

    compiled, ours = run("ttl", data, 2)  # another TTL: the macro's interval literal differs
    assert compiled == "dbt"
    _check_contract(ours, data, _floors(data, 2), pit)

    other = _generate(tmp_path / "other", 11)  # another data directory: the sources' read_parquet paths differ
    compiled, ours = run("data", other, TTL_DAYS)
    assert compiled == "dbt"
    _check_contract(ours, other, _floors(other, TTL_DAYS), pit)

    # The same directory, the spine rewritten with one more column: the macro read the spine's columns while
    # compiling, so the cached SQL (which would drop the column) must not be served.
    spine = pq.read_table(other / "spine.parquet")
    wide = spine.append_column("weight", pa.array([float(i) for i in range(spine.num_rows)]))
    pq.write_table(wide, other / "spine.parquet")
    compiled, ours = run("wide", other, TTL_DAYS)
    assert compiled == "dbt" and ours.column_names[: len(pit.OUTPUT_COLUMNS)] == pit.OUTPUT_COLUMNS
    pq.write_table(spine, other / "spine.parquet")

    # Back to inputs compiled before: their files are rewritten (new mtimes, so dbt compiles again; the key never
    # trusts an edit it cannot see) and the result is theirs, not the last run's.
    compiled, ours = run("back", data, 2)
    assert compiled == "dbt"
    _check_contract(ours, data, _floors(data, 2), pit)
    compiled, ours = run("back_again", data, 2)
    assert compiled == "cached"
    _check_contract(ours, data, _floors(data, 2), pit)


def _databases(con, prefix: str) -> set[str]:
    with con.cursor() as cur:
        cur.execute("select datname from pg_database where datname like %s", (prefix + "%",))
        return {r[0] for r in cur.fetchall()}


def test_pit_bench_postgres_target_matches_floors(data, duckdb_floors, tmp_path, monkeypatch, capsys):
    admin = pg_connect()  # fails in CI (skips on a laptop) when Postgres is missing
    pit, compare = _load("pit"), _load("pit_compare")
    import pg_bench  # bench/ is on sys.path once pit is loaded

    before = _databases(admin, "fs_pit_bench_")
    out = tmp_path / "ours_pg.parquet"
    project = tmp_path / "project"
    res, printed = _run_pit(pit, monkeypatch, capsys, data, out, project, "--target", "postgres")
    assert "[smoke] join step (create table as fs_point_in_time_join's SQL, postgres)" in printed
    assert res["compiled"] == "dbt"  # a fresh database is a new key: the compiled SQL names it
    assert "load Parquet into Postgres" in printed
    ours = pq.read_table(out)
    _check_contract(ours, data, duckdb_floors, pit)
    assert _databases(admin, "fs_pit_bench_") <= before, "the bench left its database behind"

    # The Postgres floors of pit_compare give the same rows on the same server.
    with pg_bench.database() as db:
        pg_bench.load_parquet(db, data)
        for variant in ("maxrow", "islands", "range"):
            floor_out = tmp_path / f"floor_{variant}.parquet"
            compare.run_pg_floor(db, TTL_DAYS, floor_out, variant)
            assert pq.read_table(floor_out).equals(ours), variant

        # An existing database (--pg-database): compiled once, then served from the cache, same rows; the run's
        # schema is dropped after each run, the loaded data stays.
        for expected in ("dbt", "cached"):
            again = tmp_path / f"ours_pg_{expected}.parquet"
            res, _ = _run_pit(pit, monkeypatch, capsys, data, again, project, "--target", "postgres",
                              "--pg-database", db)
            assert res["compiled"] == expected
            assert pq.read_table(again).equals(ours), expected
        con = pg_bench.connect(db)
        with con.cursor() as cur:
            cur.execute("select count(*) from information_schema.schemata where schema_name = %s", (pit.PG_SCHEMA,))
            assert cur.fetchone()[0] == 0
        con.close()
    admin.close()


@pytest.mark.parametrize("target", ["duckdb", "postgres"])
def test_pit_bench_pins_utc_whatever_the_machine_tz(target, data, duckdb_floors, tmp_path):
    """A tz-aware spine against naive (UTC) features, on a machine in New York: the profiles pin UTC, so the
    result is the naive-UTC one."""
    if target == "postgres":
        pg_connect().close()
    aware = tmp_path / "aware"
    aware.mkdir()
    for name in ("fg_customer_tx", "fg_customer_profile"):
        (aware / f"{name}.parquet").symlink_to(data / f"{name}.parquet")
    spine = pq.read_table(data / "spine.parquet")
    i = spine.schema.get_field_index("event_timestamp")
    pq.write_table(spine.set_column(i, pa.field("event_timestamp", pa.timestamp("us", tz="UTC")),
                                    spine.column(i).cast(pa.timestamp("us", tz="UTC"))), aware / "spine.parquet")
    out = tmp_path / "ours.parquet"
    env = {**os.environ, "TZ": "America/New_York", "PGTZ": "America/New_York"}
    subprocess.run([str(REPO / ".venv" / "bin" / "python"), str(REPO / "bench" / "pit.py"), "--data", str(aware),
                    "--ttl-days", str(TTL_DAYS), "--out", str(out), "--target", target,
                    "--keep-project", str(tmp_path / "project")],
                   check=True, capture_output=True, env=env, cwd=REPO)
    ours = pq.read_table(out)
    ts = ours.column("event_timestamp")
    if ts.type.tz is not None:  # DuckDB keeps the spine's TIMESTAMPTZ; compare as naive UTC
        ours = ours.set_column(1, pa.field("event_timestamp", pa.timestamp("us")), ts.cast(pa.timestamp("us")))
    floor = duckdb_floors["struct"]
    assert ours.cast(floor.schema).equals(floor)
