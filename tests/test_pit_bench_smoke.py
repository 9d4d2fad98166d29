"""Smoke size of the point-in-time benchmark: bench/pit.py (the product path: dbt sources, meta.fs-declared feature
groups, fs_point_in_time_join, table model, export) gives, row for row and in spine order, what the hand-written
floor queries of bench/pit_compare.py give, on DuckDB and on Postgres (--target postgres: its own database, loaded
from the Parquet files and dropped afterwards), whatever the machine's time zone."""

from __future__ import annotations

import importlib.util
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


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pit_bench") / "data"
    subprocess.run([sys.executable, str(REPO / "bench" / "gen_data.py"), str(out), "50", "3000", "2000", "3"],
                   check=True, capture_output=True)
    return out.resolve()


@pytest.fixture(scope="module")
def duckdb_floors(data) -> dict[str, pa.Table]:
    """The independent oracle: the hand-written DuckDB ASOF queries, straight on the Parquet files."""
    compare = _load("pit_compare")
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    return {v: con.sql(compare.floor_sql(data, TTL_DAYS, v)).to_arrow_table() for v in ("qualify", "struct")}


def _check_contract(ours: pa.Table, data: Path, floors: dict[str, pa.Table], pit) -> None:
    assert ours.column_names == pit.OUTPUT_COLUMNS
    spine = pq.read_table(data / "spine.parquet")
    assert ours.select(spine.column_names).cast(spine.schema).equals(spine)  # every spine row once, in order
    for variant, floor in floors.items():
        assert ours.cast(floor.schema).equals(floor), variant
    assert ours.column("tx_amount_7d").null_count < ours.num_rows  # the join found something
    assert ours.column("tx_amount_7d").null_count > 0  # and the TTL cut something


def test_pit_bench_matches_floors_at_smoke_size(data, duckdb_floors, tmp_path, monkeypatch, capsys):
    out = tmp_path / "ours.parquet"
    pit = _load("pit")
    monkeypatch.setenv("PGTZ", "UTC")  # pit.main pins it; restored afterwards
    monkeypatch.setattr(sys, "argv", ["pit.py", "--data", str(data), "--ttl-days", str(TTL_DAYS), "--out", str(out),
                                      "--size-label", "smoke"])
    pit.main()
    printed = capsys.readouterr().out
    assert "[smoke] join step" in printed and "total command" in printed
    _check_contract(pq.read_table(out), data, duckdb_floors, pit)


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
    monkeypatch.setenv("PGTZ", "UTC")
    monkeypatch.setattr(sys, "argv", ["pit.py", "--data", str(data), "--ttl-days", str(TTL_DAYS), "--out", str(out),
                                      "--size-label", "smoke", "--target", "postgres"])
    pit.main()
    printed = capsys.readouterr().out
    assert "[smoke] join step (dbt table model with fs_point_in_time_join, postgres)" in printed
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
                    "--ttl-days", str(TTL_DAYS), "--out", str(out), "--target", target],
                   check=True, capture_output=True, env=env, cwd=REPO)
    ours = pq.read_table(out)
    ts = ours.column("event_timestamp")
    if ts.type.tz is not None:  # DuckDB keeps the spine's TIMESTAMPTZ; compare as naive UTC
        ours = ours.set_column(1, pa.field("event_timestamp", pa.timestamp("us")), ts.cast(pa.timestamp("us")))
    floor = duckdb_floors["struct"]
    assert ours.cast(floor.schema).equals(floor)
