"""Smoke size of the point-in-time benchmark: bench/pit.py (the product path: dbt sources over Parquet,
meta.fs-declared feature groups, fs_point_in_time_join, table model, export) gives, row for row and in spine
order, what the hand-written DuckDB floor queries of bench/pit_compare.py give."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_pit_bench_matches_floors_at_smoke_size(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    subprocess.run([sys.executable, str(REPO / "bench" / "gen_data.py"), str(data), "50", "3000", "2000", "3"],
                   check=True, capture_output=True)
    out = tmp_path / "ours.parquet"
    pit = _load("pit")
    monkeypatch.setattr(sys, "argv", ["pit.py", "--data", str(data), "--ttl-days", "20", "--out", str(out),
                                      "--size-label", "smoke"])
    pit.main()
    printed = capsys.readouterr().out
    assert "[smoke] join step" in printed and "total command" in printed

    ours = pq.read_table(out)
    assert ours.column_names == pit.OUTPUT_COLUMNS
    spine = pq.read_table(data / "spine.parquet")
    assert ours.select(spine.column_names).cast(spine.schema).equals(spine)  # every spine row once, in order
    compare = _load("pit_compare")
    con = duckdb.connect()
    for variant in ("qualify", "struct"):
        floor = con.sql(compare.floor_sql(data.resolve(), 20, variant)).to_arrow_table()
        assert ours.cast(floor.schema).equals(floor), variant
    assert ours.column("tx_amount_7d").null_count < ours.num_rows  # the join found something
