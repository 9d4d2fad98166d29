"""Point-in-time training set through the real product path, on the benchmark layout (bench/gen_data.py).

usage: python bench/pit.py --data DIR --ttl-days N --out OUT.parquet [--size-label small] [--keep-project DIR]
                           [--target duckdb|postgres|spark] [--pg-database DB]

A throw-away dbt project (named feature_store, using this repo's macros/) declares the Parquet files as dbt
sources, the two feature groups as models with their `config.meta.fs` (entity, event_time, created_time,
ttl), and a table model whose body reads that metadata from the graph and calls fs_point_in_time_join. dbt
runs in-process; the table is then exported to Parquet: customer_id, event_timestamp, label and the six
features, in spine order. Prints the join step (dbt's execution time of the table model), the export and the
whole command (interpreter start-up excluded, dbt start-up and parsing included), and a last JSON line.

--target postgres runs the same project through dbt-postgres (the default, window-function implementation of the
macro) on the Postgres server of bench/pg_bench.py: the Parquet files are loaded into a fresh database (dropped at
the end; with --pg-database DB, a database already loaded by `bench/pg_bench.py load` is used and only this run's
schema is dropped), the training set is a table there, exported back to Parquet with COPY. On Postgres the join
runs in server processes: "server CPU" is the CPU of the processes serving the bench database (backends and their
parallel workers) during the join, sampled from /proc (pg_bench.DatabaseCpuClock).

--target spark runs it through dbt-spark's session method on a local Spark started from the project's `spark` target
settings (bench/spark_conf.py: local[2], UTC, Delta; driver memory 4g): the Parquet files are external tables read
in place, the training set is a Delta table, exported to Parquet through Arrow. The join runs in Spark's JVM, a child
of this process that rusage does not see: CPU and peak memory are sampled from /proc over the process tree
(bench/proc_tree.py).

Time zones are pinned to UTC in every profile this writes (DuckDB `settings: {TimeZone: UTC}`; Postgres: PGTZ and
the connection options), so the machine's TZ cannot shift a comparison of naive and tz-aware timestamps.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))  # bench/pg_bench.py
FEATURE_GROUPS = {
    "fg_customer_tx": ["tx_amount_7d", "tx_count_7d", "avg_basket"],
    "fg_customer_profile": ["credit_score", "tenure_days", "risk_ratio"],
}
OUTPUT_COLUMNS = ["customer_id", "event_timestamp", "label"] + [f for fs in FEATURE_GROUPS.values() for f in fs]

# The model body: feature groups come from their meta.fs declarations, not from this file.
TRAINING_SET_SQL = """\
{{ config(materialized='table') }}
{%- set fgs = [] -%}
{%- for name in var('bench_feature_groups') -%}
    {%- set relation = ref(name) -%}
    {%- if execute -%}
        {%- set node = graph.nodes['model.feature_store.' ~ name] -%}
        {%- set fs = node.config.meta.fs -%}
        {%- set keys = [] -%}
        {%- for entity in fs.entities -%}
            {%- for k in var('fs_entities')[entity].join_keys -%}{%- do keys.append(k) -%}{%- endfor -%}
        {%- endfor -%}
        {%- set not_features = keys + [fs.event_time, fs.created_time] -%}
        {%- do fgs.append({
            'name': name, 'relation': relation, 'join_keys': keys, 'event_time': fs.event_time,
            'created_time': fs.created_time, 'ttl': fs.ttl,
            'features': node.columns.keys() | reject('in', not_features) | list}) -%}
    {%- endif -%}
{%- endfor -%}
{%- if execute -%}
{{ fs_point_in_time_join(source('bench', 'spine'), fgs, 'event_timestamp') }}
{%- else -%}
select 1
{%- endif %}
"""


def profile_yml(root: Path, threads: int, target: str, pg: dict | None) -> str:
    """The throw-away profile, TimeZone pinned to UTC on both targets (with TZ=America/New_York and no setting, a
    tz-aware spine against naive features was shifted by the machine's offset)."""
    if target == "duckdb":
        return (f"pit_bench:\n  target: duckdb\n  outputs:\n    duckdb: {{type: duckdb, path: '{root / 'bench.duckdb'}',"
                f" schema: main, threads: {threads}, settings: {{TimeZone: UTC}}}}\n")
    if target == "spark":  # dbt-spark's session method reuses the session run_spark starts from the same params
        from spark_conf import spark_params

        params = json.dumps(spark_params(root / "spark"))
        return (f"pit_bench:\n  target: spark\n  outputs:\n    spark: {{type: spark, method: session, host: NA,"
                f" schema: bench_out, threads: 1, server_side_parameters: {params}}}\n")
    # dbt-postgres has no session-settings field: libpq applies PGTZ=UTC (pinned by main) when it connects.
    return (f"pit_bench:\n  target: postgres\n  outputs:\n    postgres: {{type: postgres, host: '{pg['host']}',"
            f" port: {pg['port']}, user: '{pg['user']}', password: '{os.environ.get('PGPASSWORD', '')}',"
            f" dbname: '{pg['dbname']}', schema: '{pg['schema']}', threads: {threads}}}\n")


def sources_yml(data: Path, target: str, tables: list[str]) -> str:
    """DuckDB reads the Parquet files in place; on Postgres they were loaded into pg_bench.DATA_SCHEMA; on Spark they
    are external Parquet tables of schema `bench` (run_spark)."""
    src = ["version: 2", "sources:", "  - name: bench"]
    if target == "spark":
        src.append("    schema: bench")
    if target == "postgres":
        from pg_bench import DATA_SCHEMA

        src.append(f"    schema: {DATA_SCHEMA}")
    src.append("    tables:")
    for t in tables:
        src.append(f"      - name: {t}")
        if target == "duckdb":
            src.append(f"        meta: {{external_location: \"read_parquet('{data / (t + '.parquet')}')\"}}")
    return "\n".join(src) + "\n"


def write_project(root: Path, data: Path, ttl_days: int, threads: int, target: str = "duckdb",
                  pg: dict | None = None) -> Path:
    (root / "models" / "feature_groups").mkdir(parents=True, exist_ok=True)
    fg_names = list(FEATURE_GROUPS)
    (root / "dbt_project.yml").write_text(
        textwrap.dedent(
            f"""\
            name: feature_store
            version: "0.1.0"
            config-version: 2
            profile: pit_bench
            model-paths: ["models"]
            macro-paths: ["{REPO / 'macros'}"]
            flags: {{send_anonymous_usage_stats: false, partial_parse: false}}
            vars:
              fs_entities: {{customer: {{join_keys: [customer_id]}}}}
              bench_feature_groups: {json.dumps(fg_names)}
            models:
              feature_store:
                feature_groups: {{+materialized: view}}
                {"+file_format: delta" if target == "spark" else ""}
            """
        )
    )
    (root / "profiles.yml").write_text(profile_yml(root, threads, target, pg))
    (root / "models" / "_sources.yml").write_text(sources_yml(data, target, ["spine", *fg_names]))
    fg_yml = ["version: 2", "models:"]
    for name, feats in FEATURE_GROUPS.items():
        (root / "models" / "feature_groups" / f"{name}.sql").write_text(f"select * from {{{{ source('bench', '{name}') }}}}\n")
        fg_yml += [
            f"  - name: {name}",
            "    config:",
            "      meta:",
            "        fs:",
            "          entities: [customer]",
            "          event_time: event_time",
            "          created_time: created",
            f"          ttl: {ttl_days}d",
            "          online: false",
            "    columns:",
            "      - {name: customer_id, data_type: bigint}",
            "      - {name: event_time, data_type: timestamp}",
            "      - {name: created, data_type: timestamp}",
            *[f"      - {{name: {f}, data_type: double}}" for f in feats],
        ]
    (root / "models" / "feature_groups" / "_feature_groups.yml").write_text("\n".join(fg_yml) + "\n")
    (root / "models" / "training_set.sql").write_text(TRAINING_SET_SQL)
    return root


def run_dbt(root: Path, cpu_clock) -> tuple[float, float, float]:
    """dbt run in-process; (join step s, join CPU s by cpu_clock, whole dbt run s)."""
    from dbt.cli.main import dbtRunner

    # CPU seconds of the join step, from dbt's node events: on a busy machine wall times inflate, CPU less so.
    cpu_marks: dict[str, float] = {}

    def on_event(e) -> None:
        if e.info.name in ("NodeStart", "NodeFinished"):
            if getattr(e.data.node_info, "node_name", "") == "training_set":
                cpu_marks[e.info.name] = cpu_clock()

    t_dbt = time.perf_counter()
    res = dbtRunner(callbacks=[on_event]).invoke(
        ["run", "--project-dir", str(root), "--profiles-dir", str(root), "--quiet"]
    )
    dbt_s = time.perf_counter() - t_dbt
    join_cpu_s = cpu_marks.get("NodeFinished", 0.0) - cpu_marks.get("NodeStart", 0.0)
    if not res.success:
        raise SystemExit(f"error: dbt run failed: {res.exception or [r.message for r in res.result.results]}")
    join_s = next(r.execution_time for r in res.result.results if r.node.name == "training_set")
    return join_s, join_cpu_s, dbt_s


def run_duckdb(args, data: Path, root: Path) -> dict:
    write_project(root, data, args.ttl_days, args.threads)
    join_s, join_cpu_s, dbt_s = run_dbt(root, time.process_time)

    import duckdb

    t_exp = time.perf_counter()
    con = duckdb.connect(str(root / "bench.duckdb"))
    con.execute("set TimeZone = 'UTC'")  # as the profile: the machine's TZ must not shift timestamps
    cols = ", ".join(f'"{c}"' for c in OUTPUT_COLUMNS)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # The table was written in spine order (the model ends with ORDER BY) and DuckDB keeps insertion order.
    con.execute(f"copy (select {cols} from training_set) to '{args.out.resolve()}' (format parquet)")
    rows = con.execute("select count(*) from training_set").fetchall()[0][0]
    con.close()
    return {"rows": rows, "join_s": join_s, "join_cpu_s": join_cpu_s, "dbt_s": dbt_s,
            "export_s": time.perf_counter() - t_exp}


def run_postgres(args, data: Path, root: Path) -> dict:
    import pg_bench

    out: dict = {}
    with pg_bench.database(args.pg_database) as dbname:
        if not args.pg_database:
            t_load = time.perf_counter()
            pg_bench.load_parquet(dbname, data)
            out["load_s"] = time.perf_counter() - t_load
        schema = f"fs_pit_ours_{uuid.uuid4().hex[:8]}"
        try:
            write_project(root, data, args.ttl_days, args.threads, "postgres",
                          {**pg_bench.server(), "dbname": dbname, "schema": schema})
            with pg_bench.DatabaseCpuClock(dbname) as clock:
                join_s, join_cpu_s, dbt_s = run_dbt(root, clock.read)
            t_exp = time.perf_counter()
            # CREATE TABLE AS ... ORDER BY wrote the heap in spine order; export_parquet reads it back in heap order.
            rows = pg_bench.export_parquet(dbname, f'"{schema}".training_set', OUTPUT_COLUMNS, args.out.resolve())
            out.update(rows=rows, join_s=join_s, join_cpu_s=join_cpu_s, dbt_s=dbt_s,
                       export_s=time.perf_counter() - t_exp)
        finally:
            if args.pg_database:
                con = pg_bench.connect(dbname)
                with con.cursor() as cur:
                    cur.execute(f'drop schema if exists "{schema}" cascade')
                con.close()
    return out


def run_spark(args, data: Path, root: Path) -> dict:
    """Spark (local[2], the project's spark target settings): the Parquet files are external tables read in place,
    the training set is a Delta table written by dbt-spark; CPU and memory are those of Python + the JVM."""
    from proc_tree import TreeSampler
    from spark_conf import spark_params

    out: dict = {}
    with TreeSampler() as sampler:
        write_project(root, data, args.ttl_days, args.threads, "spark")
        from pyspark.sql import SparkSession

        t_start = time.perf_counter()
        builder = SparkSession.builder.enableHiveSupport()
        for k, v in spark_params(root / "spark").items():
            builder = builder.config(k, v)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        spark.sql("create schema if not exists bench")
        for t in ["spine", *FEATURE_GROUPS]:
            spark.sql(f"create table bench.{t} using parquet location '{data / (t + '.parquet')}'")
        out["spark_start_s"] = time.perf_counter() - t_start
        join_s, join_cpu_s, dbt_s = run_dbt(root, sampler.cpu)
        t_exp = time.perf_counter()
        import pyarrow.parquet as pq

        table = spark.table("bench_out.training_set").select(*OUTPUT_COLUMNS).toArrow()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, args.out.resolve())
        out.update(rows=table.num_rows, join_s=join_s, join_cpu_s=join_cpu_s, dbt_s=dbt_s,
                   export_s=time.perf_counter() - t_exp)
        spark.stop()
    out.update(tree_cpu_s=sampler.cpu(), tree_peak_rss_mib=sampler.peak_rss_mib)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path, help="directory written by bench/gen_data.py")
    ap.add_argument("--ttl-days", required=True, type=int, help="TTL of both feature groups, in days (0 = unlimited)")
    ap.add_argument("--out", required=True, type=Path, help="Parquet file to write")
    ap.add_argument("--size-label", default="", help="a name for this data size, echoed in the output")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--keep-project", type=Path, help="build the dbt project here and keep it (default: a temp dir)")
    ap.add_argument("--target", choices=["duckdb", "postgres", "spark"], default="duckdb")
    ap.add_argument("--pg-database", help="postgres: use this database, already loaded by `bench/pg_bench.py load`"
                                          " (default: a fresh database, loaded here and dropped at the end)")
    args = ap.parse_args()
    data = args.data.resolve()
    for t in ["spine", *FEATURE_GROUPS]:
        if not (data / f"{t}.parquet").is_file():
            raise SystemExit(f"error: {data / (t + '.parquet')} is missing; generate it with bench/gen_data.py DIR ...")
    os.environ["PGTZ"] = "UTC"  # every libpq connection of this process (dbt-postgres, psycopg2)

    root = args.keep_project.resolve() if args.keep_project else Path(tempfile.mkdtemp(prefix="fs_pit_bench_"))
    try:
        if args.keep_project and root.exists():
            shutil.rmtree(root)
        res = {"postgres": run_postgres, "spark": run_spark, "duckdb": run_duckdb}[args.target](args, data, root)
    finally:
        if not args.keep_project:
            shutil.rmtree(root, ignore_errors=True)
    total_s = time.perf_counter() - T_START
    label = f"[{args.size_label}] " if args.size_label else ""
    cpu_what = {"postgres": "server CPU", "spark": "CPU of Python + JVM"}.get(args.target, "CPU")
    print(f"{label}rows: {res['rows']}")
    print(f"{label}join step (dbt table model with fs_point_in_time_join, {args.target}): {res['join_s']:.3f} s"
          f" ({cpu_what} {res['join_cpu_s']:.3f} s)")
    if "load_s" in res:
        print(f"{label}load Parquet into Postgres: {res['load_s']:.3f} s")
    print(f"{label}dbt run (start-up, parse, views, join): {res['dbt_s']:.3f} s; export to Parquet: {res['export_s']:.3f} s")
    print(f"{label}total command: {total_s:.3f} s")
    print(json.dumps({"size": args.size_label, "target": args.target, **res, "total_s": total_s}))


if __name__ == "__main__":
    main()
