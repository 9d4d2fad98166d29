"""Publish cost of a feature group: the table route vs the incremental route, same data, same run (DuckDB, Postgres).

A throw-away project (this repo's dbt_project.yml, profiles.yml and macros/) holds two feature groups over one seeded
source table `bench_raw.items` (item_id, event_time, value, ingested_at; N rows):
  fg_bench_table  a table model: the whole source, snapshot `check_cols: all` (the default route)
  fg_bench_incr   a dbt incremental model (delete+insert on the key) reading rows ingested after max(ingested_at) of
                  itself, snapshot `check_cols: [ingested_at]`: published from its batch (README "Incremental
                  feature groups"); with dbt-postgres' `indexes` on ingested_at and the key (the README's advice
                  for Postgres; dbt-duckdb ignores them)
Both are published once (not measured). Then, per change fraction (0.1%, 1%, 10% by default), the source gets that
many changed rows (half corrections of existing keys, half new keys; one new ingestion time) and each group is run
on its own (`fs run --select <group>`, no materialization): build, then the publish = audit (copy + the validation
gate: Soda contract, drift, PII) + snapshot + commit log. The publish is timed from the end of the build to the end
of the run: wall clock and the process's CPU time (dbt and DuckDB run in this process), and of the gate's drift
check within it. Before timing, each route's
result is checked: both groups publish the same rows and the same commit counts.

    .venv/bin/python bench/publish.py                  # 10M rows
    .venv/bin/python bench/publish.py --rows 1000000   # quicker
    .venv/bin/python bench/publish.py --rows 20000 --fractions 0.01   # smoke
    .venv/bin/python bench/publish.py --max-reference-rows 200000     # drift against a sample of the reference
    .venv/bin/python bench/publish.py --target postgres --rows 1000000   # on Postgres (a fresh database, dropped)

Everything runs in this process (dbt in-process, DuckDB embedded or a Postgres client): it starts no other process;
the project lives in a temporary directory removed at the end (--keep keeps it), and a Postgres database made for
the run is dropped at the end, also on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("SODA_CORE_TELEMETRY_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
for _var in ("FS_DUCKDB_PATH", "FS_PROJECT_DIR", "FS_TARGET", "FS_ONLINE_STORE", "FS_PROFILES_DIR"):
    os.environ.pop(_var, None)

SOURCE = "bench_raw.items"
T0 = "2026-01-01 00:00:00"

INCREMENTAL_MODEL = f"""
{{{{ config(materialized='incremental', unique_key=['item_id', 'event_time'], incremental_strategy='delete+insert',
           indexes=[{{'columns': ['ingested_at']}}, {{'columns': ['item_id', 'event_time']}}]) }}}}
select item_id, event_time, value, ingested_at from {SOURCE}
{{% if is_incremental() %}} where ingested_at > (select max(ingested_at) from {{{{ this }}}}) {{% endif %}}
"""
TABLE_MODEL = f"select item_id, event_time, value, ingested_at from {SOURCE}"

GROUP_YAML = """
  - name: {name}
    description: bench group ({route} route)
    config:
      meta:
        fs: {{entities: [item], event_time: event_time, online: false, ttl: null, owner: bench, policy: strict{drift}}}
    columns:
      - {{name: item_id, data_type: bigint, description: the item}}
      - {{name: event_time, data_type: timestamp, description: when}}
      - {{name: value, data_type: double, description: a value, config: {{meta: {{fs: {{range: [0, 1000000]}}}}}}}}
      - {{name: ingested_at, data_type: timestamp, description: ingestion time}}
"""
SNAPSHOTS_YAML = """
snapshots:
  - name: fg_bench_table_snapshot
    relation: ref('fg_bench_table')
    config: {unique_key: [item_id, event_time]}
  - name: fg_bench_incr_snapshot
    relation: ref('fg_bench_incr')
    config: {unique_key: [item_id, event_time], check_cols: [ingested_at]}
"""


def make_project(d: Path, max_reference_rows: int | None = None) -> Path:
    for f in ("dbt_project.yml", "profiles.yml"):
        shutil.copy(ROOT / f, d / f)
    shutil.copytree(ROOT / "macros", d / "macros")
    (d / "models" / "feature_groups").mkdir(parents=True)
    (d / "snapshots").mkdir()
    (d / "seeds").mkdir()
    fg = d / "models" / "feature_groups"
    (fg / "fg_bench_incr.sql").write_text(INCREMENTAL_MODEL)
    (fg / "fg_bench_table.sql").write_text(TABLE_MODEL)
    drift = "" if max_reference_rows is None else f", drift: {{max_reference_rows: {max_reference_rows}}}"
    (fg / "_bench.yml").write_text(
        "version: 2\nmodels:" + GROUP_YAML.format(name="fg_bench_table", route="table", drift=drift)
        + GROUP_YAML.format(name="fg_bench_incr", route="incremental", drift=drift))
    (d / "snapshots" / "bench.yml").write_text(SNAPSHOTS_YAML)
    text = (d / "dbt_project.yml").read_text()
    (d / "dbt_project.yml").write_text(text.replace(
        "  fs_entities:\n", "  fs_entities:\n    item:\n      join_keys: [item_id]\n"))
    return d


# The engine's SQL for the seeded data: a 64-bit hash of integers, seconds/hours as an interval, a row generator.
# The values differ between engines; a run compares the two routes on one engine.
def _pg_hash(x: str, *salt: int) -> str:
    """Postgres: hashint8extended of `x` seeded by the salt (made non-negative, as DuckDB's hash is unsigned)."""
    seed = int.from_bytes(hashlib.blake2b(repr(salt).encode(), digest_size=7).digest(), "big")
    return f"(hashint8extended({x}, {seed}) & 9223372036854775807)"


DIALECT = {
    "duckdb": {"hash": lambda *a: f"hash({', '.join(map(str, a))})", "secs": "to_seconds({})", "hours": "to_hours({})",
               "rows": "range({n}) t(i)", "double": "double"},
    "postgres": {"hash": _pg_hash, "secs": "make_interval(secs => {})", "hours": "make_interval(hours => {})",
                 "rows": "generate_series(0, {n} - 1) t(i)", "double": "double precision"},
}


def seed_source(fs, rows: int, seed: int) -> None:
    """N rows, deterministic in (row, seed): item i, an event time spread over 30 days, a value in [0, 1000)."""
    d = DIALECT[fs.project.engine]
    with fs.project.warehouse() as wh:
        wh.ensure_schema("bench_raw")
        wh.execute(f"drop table if exists {SOURCE}")
        wh.execute(f"""
            create table {SOURCE} as
            select cast(i as bigint) as item_id,
                   cast('{T0}' as timestamp) - {d['secs'].format(f"cast({d['hash']('i', seed)} % (30 * 86400) as bigint)")}
                       as event_time,
                   cast({d['hash']('i', seed, 1)} % 1000000 as {d['double']}) / 1000 as value,
                   cast('{T0}' as timestamp) as ingested_at
            from {d['rows'].format(n=rows)}""")
        if fs.project.engine == "postgres":
            wh.execute(f"analyze {SOURCE}")


def change_source(fs, rows: int, fraction: float, step: int, seed: int) -> int:
    """`fraction` of N rows changed at ingestion time T0 + step hours: half corrections of existing keys (a new
    value), half new keys. Returns the number of changed rows."""
    changed = max(2, int(rows * fraction))
    d = DIALECT[fs.project.engine]
    ingested = f"cast('{T0}' as timestamp) + {d['hours'].format(step)}"
    with fs.project.warehouse() as wh:
        n_items = int(wh.scalar(f"select count(*) from {SOURCE}"))
        updates, inserts = changed // 2, changed - changed // 2
        # Corrections: a deterministic pseudo-random set of existing items (the modulus picks every k-th row).
        stride = max(1, n_items // updates)
        wh.execute(f"""
            update {SOURCE} set value = cast({d['hash']('item_id', seed, step)} % 1000000 as {d['double']}) / 1000,
                               ingested_at = {ingested}
            where (item_id + {step}) % {stride} = 0 and item_id < {updates * stride}""")
        wh.execute(f"""
            insert into {SOURCE}
            select cast({n_items} + i as bigint),
                   cast('{T0}' as timestamp)
                       - {d['secs'].format(f"cast({d['hash']('i', seed, step)} % (30 * 86400) as bigint)")},
                   cast({d['hash']('i', seed, step, 2)} % 1000000 as {d['double']}) / 1000, {ingested}
            from {d['rows'].format(n=inserts)}""")
        return int(wh.scalar(f"select count(*) from {SOURCE} where ingested_at = {ingested}"))


class SqlTimes:
    """Wall and CPU of every SQL statement run on DuckDB (dbt's cursor and fs's Warehouse) while active: where a
    publish's time goes, statement by statement (`--sql-times`)."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, float, str, str]] = []  # wall, CPU, who (dbt | fs), SQL

    def _wrap(self, owner, name: str, who: str):
        original = getattr(owner, name)
        rows = self.rows

        def timed(this, sql, *args, **kwargs):
            w, c = time.perf_counter(), time.process_time()
            try:
                return original(this, sql, *args, **kwargs)
            finally:
                rows.append((time.perf_counter() - w, time.process_time() - c, who, " ".join(str(sql).split())))

        setattr(owner, name, timed)
        return owner, name, original

    def __enter__(self):
        from dbt.adapters.duckdb.environments.local import DuckDBCursorWrapper

        from fs_cli.warehouse.duckdb import DuckDBWarehouse

        self._patched = [self._wrap(DuckDBCursorWrapper, "execute", "dbt"),
                         self._wrap(DuckDBWarehouse, "execute", "fs"), self._wrap(DuckDBWarehouse, "arrow", "fs")]
        return self

    def __exit__(self, *exc) -> None:
        for owner, name, original in self._patched:
            setattr(owner, name, original)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as f:
            for w, c, who, sql in sorted(self.rows, key=lambda r: -r[1]):
                f.write(f"{w:8.3f}s {c:8.3f}s {who:3} {sql[:6000]}\n")


def timed_run(fs, group: str, profile: Path | None = None, sql_times: Path | None = None,
              server_cpu=lambda: 0.0) -> dict:
    """`fs run --select group` without materialization; wall and CPU of the publish (after the build) and of the run.
    `profile`: write the run's cProfile stats there (pstats format; the timings then include the profiler's cost).
    `server_cpu`: CPU seconds of the database server so far (Postgres: its processes serving the bench database),
    added to this process's."""
    from fs_cli.pipeline import run_pipeline
    from fs_cli.validation import drift, pipeline_check, post_publish_link

    def cpu() -> float:
        return time.process_time() + server_cpu()

    marks: dict[str, tuple[float, float]] = {}
    in_drift = [0.0, 0.0]  # wall, CPU spent in the gate's drift check (part of the publish)
    drift_check = drift.feature_group_drift

    def timed_drift(*args, **kwargs):
        w, c = time.perf_counter(), cpu()
        try:
            return drift_check(*args, **kwargs)
        finally:
            in_drift[0] += time.perf_counter() - w
            in_drift[1] += cpu() - c

    def progress(message: str, done: int, total: int | None = None) -> None:
        if not message.startswith("build") and "publish_start" not in marks:
            marks["publish_start"] = (time.perf_counter(), cpu())

    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    statements = SqlTimes() if sql_times is not None else None
    start = (time.perf_counter(), cpu())
    drift.feature_group_drift = timed_drift  # the gate calls it through the module
    try:
        if statements is not None:
            statements.__enter__()
        report = run_pipeline(fs.project, select=(group,), progress=progress, checks=[pipeline_check],
                              post_publish=[post_publish_link])
    finally:
        drift.feature_group_drift = drift_check
        if statements is not None:
            statements.__exit__()
            statements.write(sql_times)
    end = (time.perf_counter(), cpu())
    if profiler is not None:
        profiler.disable()
        profile.parent.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(profile)
    if not report.ok:
        raise SystemExit(f"{group}: run failed: {json.dumps(report.to_dict(), default=str)[:2000]}")
    p0 = marks.get("publish_start", end)
    commit = report.outcomes[group].commit
    return {"publish_wall": end[0] - p0[0], "publish_cpu": end[1] - p0[1],
            "run_wall": end[0] - start[0], "run_cpu": end[1] - start[1],
            "drift_wall": in_drift[0], "drift_cpu": in_drift[1],
            "commit": None if commit is None else (commit.inserted, commit.updated, commit.deleted, commit.rows)}


def same_published_rows(fs) -> bool:
    with fs.project.warehouse(read_only=True) as wh:
        rels = [fs.catalog.fg(g).snapshot_relation for g in ("fg_bench_table", "fg_bench_incr")]
        cols = "item_id, event_time, value, ingested_at"
        live = "dbt_valid_to is null and coalesce(dbt_is_deleted, 'False') <> 'True'"
        diff = wh.scalar(f"select count(*) from ((select {cols} from {rels[0]} where {live} except all "
                         f"select {cols} from {rels[1]} where {live}) union all (select {cols} from {rels[1]} "
                         f"where {live} except all select {cols} from {rels[0]} where {live})) d")
    return diff == 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--fractions", default="0.001,0.01,0.1", help="comma-separated changed fractions")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--results", type=Path, help="write the results as JSON here")
    ap.add_argument("--keep", action="store_true", help="keep the throw-away project")
    ap.add_argument("--profile", type=Path, metavar="DIR",
                    help="write cProfile stats of each incremental publish to DIR/incr-<fraction>.pstats")
    ap.add_argument("--sql-times", type=Path, metavar="DIR",
                    help="write each incremental run's SQL statements, by CPU time, to DIR/incr-<fraction>.sql.txt")
    ap.add_argument("--max-reference-rows", type=int, metavar="N",
                    help="declare `drift: {max_reference_rows: N}` on both groups (a hash sample of ~N reference "
                         "rows instead of the exact reference)")
    ap.add_argument("--target", choices=("duckdb", "postgres"), default="duckdb",
                    help="postgres: a fresh database on FS_BENCH_PG_HOST:FS_BENCH_PG_PORT (default 127.0.0.1:5432, "
                         "user postgres), dropped at the end; CPU = this process + the server processes serving it")
    args = ap.parse_args()
    if args.sql_times and args.target != "duckdb":
        ap.error("--sql-times records DuckDB's statements only")
    if args.target == "postgres":
        import pg_bench

        pg_bench.pin_utc_env()
        with pg_bench.database() as db, pg_bench.DatabaseCpuClock(db) as clock:
            server = pg_bench.server()
            os.environ.update({"FS_TARGET": "postgres", "FS_PG_DATABASE": db, "FS_PG_HOST": server["host"],
                               "FS_PG_PORT": str(server["port"]), "FS_PG_USER": server["user"]})
            run_bench(args, clock.read)
    else:
        run_bench(args, lambda: 0.0)


def run_bench(args, server_cpu) -> None:
    from fs_cli import FeatureStore

    tmp = Path(tempfile.mkdtemp(prefix="fs_publish_bench_"))
    try:
        fs = FeatureStore(make_project(tmp, args.max_reference_rows))
        assert fs.project.engine == args.target, (fs.project.engine, args.target)
        t = time.perf_counter()
        seed_source(fs, args.rows, args.seed)
        print(f"source: {args.rows:,} rows seeded in {time.perf_counter() - t:.1f}s", file=sys.stderr)
        for group in ("fg_bench_table", "fg_bench_incr"):  # the first publish: the whole table on both routes
            first = timed_run(fs, group, server_cpu=server_cpu)
            print(f"first publish {group}: {first}", file=sys.stderr)
        results = []
        for step, fraction in enumerate(float(f) for f in args.fractions.split(",")):
            changed = change_source(fs, args.rows, fraction, step + 1, args.seed)
            table = timed_run(fs, "fg_bench_table", server_cpu=server_cpu)
            incr = timed_run(fs, "fg_bench_incr",
                             None if args.profile is None else args.profile / f"incr-{fraction:g}.pstats",
                             None if args.sql_times is None else args.sql_times / f"incr-{fraction:g}.sql.txt",
                             server_cpu=server_cpu)
            if table["commit"] != incr["commit"] or not same_published_rows(fs):
                raise SystemExit(f"routes disagree at {fraction}: table {table['commit']}, incremental {incr['commit']}")
            results.append({"rows": args.rows, "fraction": fraction, "changed": changed, "table": table,
                            "incremental": incr, "max_reference_rows": args.max_reference_rows,
                            "target": args.target})
            print(f"{fraction:.1%} done: commit {incr['commit']}", file=sys.stderr)
        print_table(results)
        if args.results:
            args.results.parent.mkdir(parents=True, exist_ok=True)
            args.results.write_text(json.dumps(results, indent=2))
    finally:
        if args.keep:
            print(f"project kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def print_table(results: list[dict]) -> None:
    print(f"{'rows':>11} {'changed':>8} {'rows chg':>9} | {'table wall':>10} {'cpu':>7} | {'incr wall':>9} {'cpu':>7} |"
          f" {'wall ratio':>10} {'cpu ratio':>9} | {'incr drift cpu':>14}")
    for r in results:
        t, i = r["table"], r["incremental"]
        print(f"{r['rows']:>11,} {r['fraction']:>8.1%} {r['changed']:>9,} | {t['publish_wall']:>9.2f}s "
              f"{t['publish_cpu']:>6.2f}s | {i['publish_wall']:>8.2f}s {i['publish_cpu']:>6.2f}s | "
              f"{t['publish_wall'] / i['publish_wall']:>9.1f}x {t['publish_cpu'] / max(i['publish_cpu'], 1e-9):>8.1f}x |"
              f" {i['drift_cpu']:>13.2f}s")


if __name__ == "__main__":
    main()
