"""One run, same data: our macro through dbt (bench/pit.py), a hand-written DuckDB ASOF query (the floor), and
Feast's DuckDB offline store (bench/pit_feast.py in bench/.feast-venv). Checks all three give identical results
(ours and the floor row for row in spine order; Feast's after sorting) and reports times, ratios and peak memory.

usage: python bench/pit_compare.py --data DIR --ttl-days N [--size-label medium] [--repeat 3] [--no-feast]
Each contender runs in its own process (peak RSS from wait4); with --repeat the best time of each is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
FEAST_PY = BENCH / ".feast-venv" / "bin" / "python"
OUR_PY = REPO / ".venv" / "bin" / "python"
FEATURE_GROUPS = {
    "fg_customer_tx": ["tx_amount_7d", "tx_count_7d", "avg_basket"],
    "fg_customer_profile": ["credit_score", "tenure_days", "risk_ratio"],
}
OUTPUT_COLUMNS = ["customer_id", "event_timestamp", "label"] + [f for fs in FEATURE_GROUPS.values() for f in fs]


def floor_sql(data: Path, ttl_days: int, variant: str = "qualify") -> str:
    """The hand-written query a DuckDB expert would write for this data: one ASOF LEFT JOIN per group, TTL as a
    CASE on the matched row, spine order kept. Created-time ties are settled either the obvious way (QUALIFY
    row_number() = 1 first) or with the struct-key trick the macro uses (variant "struct")."""
    ctes = [f"spine as (select *, row_number() over () as rid from read_parquet('{data / 'spine.parquet'}'))"]
    sel, joins = ["s.customer_id", "s.event_timestamp", "s.label"], []
    for name, feats in FEATURE_GROUPS.items():
        cols = ", ".join(feats)
        src = f"read_parquet('{data / (name + '.parquet')}')"
        if variant == "qualify":
            ctes.append(f"{name} as (select customer_id, event_time, {cols} from {src}"
                        f" qualify row_number() over (partition by customer_id, event_time order by created desc) = 1)")
            cond = f"s.event_timestamp >= {name}.event_time"
        else:
            ctes.append(f"{name} as (select customer_id, event_time, {{'t': event_time, 'c': created}} as o, {cols} from {src})")
            cond = f"{{'t': s.event_timestamp, 'c': 'infinity'::timestamp}} >= {name}.o"
        joins.append(f"asof left join {name} on s.customer_id = {name}.customer_id and {cond}")
        for f in feats:
            sel.append(f"case when {name}.event_time >= s.event_timestamp - interval {ttl_days} day then {name}.{f} end as {f}"
                       if ttl_days else f"{name}.{f}")
    return ("with " + ",\n".join(ctes) + "\nselect " + ", ".join(sel) + "\nfrom spine s\n" + "\n".join(joins)
            + "\norder by s.rid")


def run_floor(data: Path, ttl_days: int, out: Path, threads: int, variant: str) -> None:
    """Child-process mode: the floor query materialized as a table in a DuckDB file (as the dbt model is), then
    exported like bench/pit.py does."""
    t_start = time.perf_counter()
    import tempfile

    import duckdb

    with tempfile.TemporaryDirectory(prefix="fs_pit_floor_") as tmp:
        con = duckdb.connect(str(Path(tmp) / "floor.duckdb"), config={"threads": threads})
        t0, c0 = time.perf_counter(), time.process_time()
        con.execute("create table floor as " + floor_sql(data, ttl_days, variant))
        join_s, join_cpu_s = time.perf_counter() - t0, time.process_time() - c0
        con.execute(f"copy floor to '{out}' (format parquet)")
        rows = con.execute("select count(*) from floor").fetchall()[0][0]
        con.close()
    print(json.dumps({"rows": rows, "join_s": join_s, "join_cpu_s": join_cpu_s,
                      "total_s": time.perf_counter() - t_start}))


def run_measured(cmd: list[str]) -> dict:
    """Run one contender in its own process; its JSON line plus wall time and its own peak RSS (from wait4)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    # Drain the pipes in threads so a chatty child cannot block, then reap it ourselves to get its rusage.
    chunks: dict[str, str] = {}

    def drain(name: str, stream) -> None:
        chunks[name] = stream.read()

    threads = [threading.Thread(target=drain, args=(n, s)) for n, s in (("out", p.stdout), ("err", p.stderr))]
    for t in threads:
        t.start()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    for t in threads:
        t.join()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"error: {' '.join(map(str, cmd))} failed ({p.returncode}):\n{chunks.get('err', '')[-3000:]}")
    res = json.loads(chunks["out"].strip().splitlines()[-1])
    res["wall_s"] = wall
    res["peak_rss_mib"] = usage.ru_maxrss / 1024  # Linux: KiB
    # CPU seconds of the whole command: robust to a busy machine, where wall times of every contender inflate.
    res["cpu_s"] = usage.ru_utime + usage.ru_stime
    return res


def check_identical(spine: Path, ours: Path, floor: Path, feast: Path | None) -> list[str]:
    import duckdb
    import pyarrow.parquet as pq

    notes = []
    a, b = pq.read_table(ours), pq.read_table(floor)
    assert a.column_names == OUTPUT_COLUMNS, a.column_names
    assert a.equals(b), "ours and the floor differ (row for row)"
    notes.append("ours == QUALIFY floor row for row")
    s = pq.read_table(spine)
    assert a.select(s.column_names).cast(s.schema).equals(s), "spine rows lost, duplicated or reordered"
    notes.append("ours keeps every spine row once, in spine order")
    if feast is not None:
        con = duckdb.connect()
        cols = ", ".join(OUTPUT_COLUMNS)
        x, y = f"(select {cols} from read_parquet('{ours}'))", f"(select {cols} from read_parquet('{feast}'))"
        n = con.execute(f"select (select count(*) from {x}), (select count(*) from {y})").fetchall()[0]
        d1 = con.execute(f"select count(*) from ({x} except all {y})").fetchall()[0][0]
        d2 = con.execute(f"select count(*) from ({y} except all {x})").fetchall()[0][0]
        assert n[0] == n[1] and d1 == 0 and d2 == 0, f"ours vs Feast: rows {n}, only ours {d1}, only Feast {d2}"
        notes.append("ours == Feast as multisets (Feast reorders rows)")
    return notes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--ttl-days", required=True, type=int)
    ap.add_argument("--size-label", default="")
    ap.add_argument("--repeat", type=int, default=1, help="runs per contender; the best is kept")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--no-feast", action="store_true")
    ap.add_argument("--out-dir", type=Path, default=BENCH / "out")
    ap.add_argument("--results", type=Path, help="also write the JSON summary here (e.g. bench/results/pit-medium.json)")
    ap.add_argument("--floor-only", choices=["qualify", "struct"], help=argparse.SUPPRESS)  # child mode
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    data = args.data.resolve()
    if args.floor_only:
        run_floor(data, args.ttl_days, args.out, args.threads, args.floor_only)
        return

    out = args.out_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    tag = args.size_label or data.name
    files = {k: out / f"{tag}_{k}.parquet" for k in ("ours", "floor", "floor_struct", "feast")}
    contenders = {
        "ours (dbt + fs_point_in_time_join)": (
            "ours", [str(OUR_PY), str(BENCH / "pit.py"), "--data", str(data), "--ttl-days", str(args.ttl_days),
                     "--out", str(files["ours"]), "--size-label", tag, "--threads", str(args.threads)]),
        "floor: hand-written ASOF, QUALIFY": (
            "floor", [str(OUR_PY), str(Path(__file__).resolve()), "--floor-only", "qualify", "--data", str(data),
                      "--ttl-days", str(args.ttl_days), "--out", str(files["floor"]), "--threads", str(args.threads)]),
        "floor: hand-written ASOF, struct key": (
            "floor_struct", [str(OUR_PY), str(Path(__file__).resolve()), "--floor-only", "struct", "--data", str(data),
                             "--ttl-days", str(args.ttl_days), "--out", str(files["floor_struct"]),
                             "--threads", str(args.threads)]),
    }
    if not args.no_feast:
        if not FEAST_PY.exists():
            raise SystemExit(f"error: {FEAST_PY} missing; create it: python3 -m venv bench/.feast-venv && "
                             "bench/.feast-venv/bin/pip install 'feast[duckdb]'  (or pass --no-feast)")
        contenders["Feast DuckDB offline store"] = (
            "feast", [str(FEAST_PY), str(BENCH / "pit_feast.py"), "--data", str(data), "--ttl-days",
                      str(args.ttl_days), "--out", str(files["feast"])])

    best: dict[str, dict] = {}
    for rep in range(args.repeat):  # interleaved, so a noisy neighbour hurts every contender alike
        for label, (key, cmd) in contenders.items():
            r = run_measured(cmd)
            print(f"  run {rep + 1} {label}: join {r['join_s']:.3f} s (CPU {r['join_cpu_s']:.3f} s), command {r['wall_s']:.3f} s,"
                  f" command CPU {r['cpu_s']:.3f} s, peak RSS {r['peak_rss_mib']:.0f} MiB", file=sys.stderr)
            b = best.setdefault(key, {"label": label, **r})
            for m in ("join_s", "join_cpu_s", "wall_s", "total_s", "cpu_s"):
                b[m] = min(b[m], r[m])
            b["peak_rss_mib"] = max(b["peak_rss_mib"], r["peak_rss_mib"])

    notes = check_identical(data / "spine.parquet", files["ours"], files["floor"],
                            None if args.no_feast else files["feast"])
    check_identical(data / "spine.parquet", files["ours"], files["floor_struct"], None)
    notes.append("ours == struct-key floor row for row")
    o = best["ours"]
    f = min(best["floor"], best["floor_struct"], key=lambda b: b["join_cpu_s"])  # the better floor
    print(f"\n{tag}: {data}  (ttl {args.ttl_days} d, {args.threads} threads, best of {args.repeat})")
    print(f"{'contender':36} {'join s':>8} {'join CPU s':>11} {'command s':>10} {'command CPU s':>14} {'peak RSS MiB':>13}")
    for b in best.values():
        print(f"{b['label']:36} {b['join_s']:8.3f} {b['join_cpu_s']:11.3f} {b['wall_s']:10.3f} {b['cpu_s']:14.3f}"
              f" {b['peak_rss_mib']:13.0f}")
    print(f"ours / best floor ({f['label']}), join step: {o['join_s'] / f['join_s']:.2f}x wall, {o['join_cpu_s'] / f['join_cpu_s']:.2f}x CPU"
          "   (target <= 1.3x)")
    if "feast" in best:
        fe = best["feast"]
        print(f"Feast / ours, join step: {fe['join_s'] / o['join_s']:.2f}x wall, {fe['join_cpu_s'] / o['join_cpu_s']:.2f}x CPU"
              f"   (target >= 2.5x); whole command: {fe['wall_s'] / o['wall_s']:.2f}x wall, {fe['cpu_s'] / o['cpu_s']:.2f}x CPU")
    print("checks: " + "; ".join(notes))
    summary = {"size": tag, "data": str(data), "ttl_days": args.ttl_days, "threads": args.threads,
               "repeat": args.repeat, "checks": notes, "load_avg_at_end": os.getloadavg(),
               **{k: {m: round(v, 3) if isinstance(v, float) else v for m, v in b.items()} for k, b in best.items()}}
    print(json.dumps(summary))
    if args.results:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
