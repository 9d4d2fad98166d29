"""Point-in-time training set through the product's path, on the benchmark layout (bench/gen_data.py).

usage: python bench/pit.py --data DIR --ttl-days N --out OUT.parquet [--size-label small] [--keep-project DIR]
                           [--target duckdb|postgres|spark] [--pg-database DB] [--threads N]

A bench project (named feature_store, using this repo's macros/) declares the Parquet files as dbt sources, the two
feature groups as view models with their `config.meta.fs` (entity, event_time, created_time, ttl), and a table model
whose body reads that metadata from the graph and calls fs_point_in_time_join. It lives on between runs in
bench/.pit-project/<target>/ (or --keep-project DIR; gitignored), its files rewritten only when their text changes.

The run is what `fs training-dataset create` does (fs_cli/training/build.py `compile_feature_view` and `build`):
the models' SQL is compiled by dbt once per project state and kept under a key of everything that determines it
(fs_cli/manifest_cache.py `compiled_key`: the project's files with sizes and mtimes, macros included, the profile,
target, vars, FS_/DBT_/PG environment and the installed dbt versions; plus this bench's inputs: the text of every file
it writes, the data directory, the TTL, and the columns of the three input relations as the warehouse holds them, which
the macro reads while compiling). A later run with the same key starts no dbt at all: it opens fs's warehouse layer
(`Project.warehouse()`), creates the two views and runs `create table ... as <compiled SQL>` itself, then exports to
Parquet: customer_id, event_timestamp, label and the six features, in spine order. Any other input (another TTL, data
directory, target, database, an edited macro, another dbt) misses the cache and dbt compiles again.

Prints whether dbt compiled or the cache served the SQL, the join step (the CREATE TABLE ... AS of the training set),
the compile, the export, the whole command (interpreter start-up excluded, dbt's start-up and parse included when it
runs) and the overhead (whole command - join step - Postgres data load), and a last JSON line.

--target postgres runs the same project through dbt-postgres (the default, window-function implementation of the
macro) on the Postgres server of bench/pg_bench.py: the Parquet files are loaded into a fresh database (dropped at
the end; with --pg-database DB, a database already loaded by `bench/pg_bench.py load` is used and only this run's
schema is dropped), the training set is a table there, exported back to Parquet with COPY. The compiled SQL names the
database, so only --pg-database runs can be served from the cache (a fresh database is a new key). On Postgres the join
runs in server processes: "server CPU" is the CPU of the processes serving the bench database (backends and their
parallel workers) during the join, sampled from /proc (pg_bench.DatabaseCpuClock).

--target spark runs it on fs's in-process Spark session (fs_cli/warehouse/spark.py `session`, started from the bench
profile's server_side_parameters = the project's `spark` target settings, bench/spark_conf.py: local[2], UTC, Delta;
driver memory 4g; metastore and tables under <bench project>/.fs/spark): the Parquet files are external tables read in
place, the training set is a Delta table, exported to Parquet through Arrow. The join runs in Spark's JVM, a child of
this process that rusage does not see: CPU and peak memory are sampled from /proc over the process tree
(bench/proc_tree.py).

Time zones are pinned to UTC in every profile this writes (DuckDB `settings: {TimeZone: UTC}`; Postgres: PGTZ and
the connection options) and in fs's warehouse sessions, so the machine's TZ cannot shift a comparison of naive and
tz-aware timestamps.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))  # bench/pg_bench.py
sys.path.insert(1, str(REPO))  # fs_cli, when run as a script from elsewhere
DEFAULT_PROJECTS = BENCH / ".pit-project"  # <target>/ below; gitignored
MODEL = "training_set"
PG_SCHEMA = "fs_pit_ours"  # stable: the compiled SQL names the feature-group views' schema
SPARK_SCHEMA = "bench_out"
#: Settings of the caller's environment that would point fs at another project, warehouse file or target.
_REDIRECTING_ENV = ("FS_PROJECT_DIR", "FS_PROFILES_DIR", "FS_TARGET", "FS_DUCKDB_PATH", "FS_SPARK_DIR", "DBT_TARGET")
FEATURE_GROUPS = {
    "fg_customer_tx": ["tx_amount_7d", "tx_count_7d", "avg_basket"],
    "fg_customer_profile": ["credit_score", "tenure_days", "risk_ratio"],
}
INPUT_TABLES = ["spine", *FEATURE_GROUPS]
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


def duckdb_path(root: Path) -> Path:
    """Where fs keeps a project's DuckDB file (fs_cli/project.py): the profile says the same, so dbt and fs agree."""
    return root / ".fs" / "feature_store.duckdb"


def spark_scratch(root: Path) -> Path:
    """fs's Spark directory of a project (fs_cli/warehouse/spark.py `spark_dir`): metastore, tables, scratch."""
    return root / ".fs" / "spark"


def profile_yml(root: Path, threads: int, target: str, pg: dict | None) -> str:
    """The bench profile, TimeZone pinned to UTC on every target (with TZ=America/New_York and no setting, a
    tz-aware spine against naive features was shifted by the machine's offset)."""
    if target == "duckdb":
        return (f"pit_bench:\n  target: duckdb\n  outputs:\n    duckdb: {{type: duckdb, path: '{duckdb_path(root)}',"
                f" schema: main, threads: {threads}, settings: {{TimeZone: UTC}}}}\n")
    if target == "spark":  # dbt-spark's session method reuses the session fs starts from the same params
        from spark_conf import spark_params

        params = json.dumps(spark_params(spark_scratch(root)))
        return (f"pit_bench:\n  target: spark\n  outputs:\n    spark: {{type: spark, method: session, host: NA,"
                f" schema: {SPARK_SCHEMA}, threads: 1, server_side_parameters: {params}}}\n")
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


def project_texts(root: Path, data: Path, ttl_days: int, threads: int, target: str = "duckdb",
                  pg: dict | None = None) -> dict[Path, str]:
    """Every file of the bench project, by path."""
    fg_names = list(FEATURE_GROUPS)
    texts = {
        root / "dbt_project.yml": textwrap.dedent(
            f"""\
            name: feature_store
            version: "0.1.0"
            config-version: 2
            profile: pit_bench
            model-paths: ["models"]
            macro-paths: ["{REPO / 'macros'}"]
            flags: {{send_anonymous_usage_stats: false}}
            vars:
              fs_entities: {{customer: {{join_keys: [customer_id]}}}}
              bench_feature_groups: {json.dumps(fg_names)}
            models:
              feature_store:
                feature_groups: {{+materialized: view}}
                {"+file_format: delta" if target == "spark" else ""}
            """
        ),
        root / "profiles.yml": profile_yml(root, threads, target, pg),
        root / "models" / "_sources.yml": sources_yml(data, target, INPUT_TABLES),
        root / "models" / f"{MODEL}.sql": TRAINING_SET_SQL,
    }
    fg_yml = ["version: 2", "models:"]
    for name, feats in FEATURE_GROUPS.items():
        texts[root / "models" / "feature_groups" / f"{name}.sql"] = f"select * from {{{{ source('bench', '{name}') }}}}\n"
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
    texts[root / "models" / "feature_groups" / "_feature_groups.yml"] = "\n".join(fg_yml) + "\n"
    return texts


def write_project(root: Path, data: Path, ttl_days: int, threads: int, target: str = "duckdb",
                  pg: dict | None = None) -> str:
    """Write the bench project, touching only files whose text changed (the cache key holds their mtimes: an
    unchanged file keeps its mtime, so an unchanged project keeps its key). Returns a digest of all the texts."""
    texts = project_texts(root, data, ttl_days, threads, target, pg)
    for path, text in texts.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
    return hashlib.sha256(json.dumps({str(p): t for p, t in sorted(texts.items())}).encode()).hexdigest()


def open_project(root: Path, target: str):
    """The bench project as fs sees it (fs_cli/project.py): its dbt runner, manifest cache and warehouse layer."""
    from fs_cli.project import Project

    return Project(root, target=target)


def parquet_columns(data: Path) -> dict[str, list[list[str]]]:
    """The columns (name, type) of the three Parquet files, read from their footers: what DuckDB and Spark see."""
    import pyarrow.parquet as pq

    return {t: [[f.name, str(f.type)] for f in pq.read_schema(data / f"{t}.parquet")] for t in INPUT_TABLES}


def compile_models(project, inputs: dict[str, Any]) -> tuple[list[dict[str, str]], str]:
    """The bench models compiled as `fs training-dataset create` compiles a feature view: from the cache when the key
    (manifest_cache.compiled_key of the project, plus the bench's `inputs`) was compiled before, else by `dbt compile`
    (stored under that key). Returns [{name, relation, schema, materialized, sql}] (the feature-group views, then the
    training set) and how it was obtained: "cached" or "dbt"."""
    from fs_cli import manifest_cache

    key = manifest_cache.compiled_key(project, MODEL, inputs)
    cached = manifest_cache.cached_compiled(project, key)
    if cached is not None:
        return json.loads(cached), "cached"
    res = project.dbt(["compile", "--log-level", "none"])
    if not res.success:
        why = res.exception or [r.message for r in res.results if r.message]
        raise SystemExit(f"error: dbt compile failed: {why}")
    nodes = [{"name": r.node.name, "relation": r.node.relation_name, "schema": r.node.schema,
              "materialized": r.node.config.materialized, "sql": r.node.compiled_code.strip().rstrip(";")}
             for r in res.results if r.node.resource_type == "model"]
    nodes.sort(key=lambda n: n["name"] == MODEL)  # the views it reads first
    if sorted(n["name"] for n in nodes) != sorted([*FEATURE_GROUPS, MODEL]):
        raise SystemExit(f"error: dbt compiled {[n['name'] for n in nodes]}, expected {[*FEATURE_GROUPS, MODEL]}")
    manifest_cache.store_compiled(project, key, json.dumps(nodes))
    return nodes, "dbt"


def cache_inputs(data: Path, ttl_days: int, target: str, project_digest: str, columns: dict) -> dict[str, Any]:
    """What the compiled SQL depends on beyond manifest_cache.compiled_key's project state: the text of the files this
    bench writes (the key's mtimes could repeat within a clock tick), the data directory and TTL (also in those texts),
    and the input relations' columns (the macro reads the spine's columns from the warehouse while compiling)."""
    return {"bench": "pit", "target": target, "data": str(data), "ttl_days": ttl_days,
            "project_texts": project_digest, "input_columns": columns}


def materialize(wh, nodes: list[dict[str, str]], cpu_clock: Callable[[], float]) -> tuple[str, float, float]:
    """What dbt run did, on fs's warehouse session: the feature-group views, then the training set as
    `create table ... as <compiled SQL>`. Returns (the table's relation, join step s, join CPU s by cpu_clock)."""
    *views, table = nodes
    for schema in dict.fromkeys(n["schema"] for n in nodes):
        wh.ensure_schema(schema)
    wh.drop_table(table["relation"])
    for v in views:
        wh.execute(f"drop view if exists {v['relation']}")
        wh.execute(f"create view {v['relation']} as\n{v['sql']}")
    t0, c0 = time.perf_counter(), cpu_clock()
    wh.execute(f"create table {table['relation']} as\n{table['sql']}")
    return table["relation"], time.perf_counter() - t0, cpu_clock() - c0


def run_duckdb(args, data: Path, root: Path) -> dict:
    digest = write_project(root, data, args.ttl_days, args.threads)
    project = open_project(root, "duckdb")
    t_compile = time.perf_counter()
    nodes, compiled = compile_models(project, cache_inputs(data, args.ttl_days, "duckdb", digest,
                                                           parquet_columns(data)))
    compile_s = time.perf_counter() - t_compile
    with project.warehouse() as wh:  # SET TimeZone = 'UTC' (fs_cli/warehouse/duckdb.py)
        relation, join_s, join_cpu_s = materialize(wh, nodes, time.process_time)
        t_exp = time.perf_counter()
        cols = ", ".join(wh.quote(c) for c in OUTPUT_COLUMNS)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        # The table was written in spine order (the model ends with ORDER BY) and DuckDB keeps insertion order.
        wh.execute(f"copy (select {cols} from {relation}) to '{args.out.resolve()}' (format parquet)")
        rows = wh.scalar(f"select count(*) from {relation}")
    return {"rows": rows, "compiled": compiled, "compile_s": compile_s, "join_s": join_s, "join_cpu_s": join_cpu_s,
            "export_s": time.perf_counter() - t_exp}


def postgres_columns(project) -> dict[str, list[list[str]]]:
    """The columns (name, type) of the loaded input tables, as the database holds them (--pg-database may have been
    loaded from other files than --data)."""
    from pg_bench import DATA_SCHEMA

    with project.warehouse(read_only=True) as wh:
        return {t: [list(c) for c in wh.describe(wh.relation(DATA_SCHEMA, t))] for t in INPUT_TABLES}


def run_postgres(args, data: Path, root: Path) -> dict:
    import pg_bench

    out: dict = {}
    with pg_bench.database(args.pg_database) as dbname:
        if not args.pg_database:
            t_load = time.perf_counter()
            pg_bench.load_parquet(dbname, data)
            out["load_s"] = time.perf_counter() - t_load
        try:
            digest = write_project(root, data, args.ttl_days, args.threads, "postgres",
                                   {**pg_bench.server(), "dbname": dbname, "schema": PG_SCHEMA})
            project = open_project(root, "postgres")
            t_compile = time.perf_counter()
            nodes, compiled = compile_models(project, cache_inputs(data, args.ttl_days, "postgres", digest,
                                                                   postgres_columns(project)))
            compile_s = time.perf_counter() - t_compile
            with project.warehouse() as wh, pg_bench.DatabaseCpuClock(dbname) as clock:
                relation, join_s, join_cpu_s = materialize(wh, nodes, clock.read)
            t_exp = time.perf_counter()
            # CREATE TABLE AS ... ORDER BY wrote the heap in spine order; export_parquet reads it back in heap order.
            rows = pg_bench.export_parquet(dbname, relation, OUTPUT_COLUMNS, args.out.resolve())
            out.update(rows=rows, compiled=compiled, compile_s=compile_s, join_s=join_s, join_cpu_s=join_cpu_s,
                       export_s=time.perf_counter() - t_exp)
        finally:
            if args.pg_database:  # the loaded database stays; this run's views and table go
                con = pg_bench.connect(dbname)
                with con.cursor() as cur:
                    cur.execute(f'drop schema if exists "{PG_SCHEMA}" cascade')
                con.close()
    return out


def run_spark(args, data: Path, root: Path) -> dict:
    """Spark (local[2], the project's spark target settings) through fs's session: the Parquet files are external
    tables read in place, the training set a Delta table (spark.sql.sources.default); CPU and memory are those of
    Python + the JVM."""
    from proc_tree import TreeSampler

    out: dict = {}
    with TreeSampler() as sampler:
        digest = write_project(root, data, args.ttl_days, args.threads, "spark")
        project = open_project(root, "spark")
        from fs_cli.warehouse.spark import session

        t_start = time.perf_counter()
        spark = session(project)  # what dbt-spark's session method and fs's SparkWarehouse both use
        spark.sql("create schema if not exists bench")
        for t in INPUT_TABLES:  # the metastore outlives the run: the tables point at this run's files
            spark.sql(f"drop table if exists bench.{t}")
            spark.sql(f"create table bench.{t} using parquet location '{data / (t + '.parquet')}'")
        out["spark_start_s"] = time.perf_counter() - t_start
        t_compile = time.perf_counter()
        nodes, compiled = compile_models(project, cache_inputs(data, args.ttl_days, "spark", digest,
                                                               parquet_columns(data)))
        compile_s = time.perf_counter() - t_compile
        with project.warehouse() as wh:
            relation, join_s, join_cpu_s = materialize(wh, nodes, sampler.cpu)
            t_exp = time.perf_counter()
            import pyarrow.parquet as pq

            table = wh.spark.table(relation).select(*OUTPUT_COLUMNS).toArrow()
            args.out.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, args.out.resolve())
        out.update(rows=table.num_rows, compiled=compiled, compile_s=compile_s, join_s=join_s,
                   join_cpu_s=join_cpu_s, export_s=time.perf_counter() - t_exp)
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
    ap.add_argument("--keep-project", type=Path,
                    help="the bench project's directory, kept between runs with its compiled-SQL cache"
                         f" (default: {DEFAULT_PROJECTS.relative_to(REPO)}/<target>)")
    ap.add_argument("--target", choices=["duckdb", "postgres", "spark"], default="duckdb")
    ap.add_argument("--pg-database", help="postgres: use this database, already loaded by `bench/pg_bench.py load`"
                                          " (default: a fresh database, loaded here and dropped at the end)")
    args = ap.parse_args()
    data = args.data.resolve()
    for t in INPUT_TABLES:
        if not (data / f"{t}.parquet").is_file():
            raise SystemExit(f"error: {data / (t + '.parquet')} is missing; generate it with bench/gen_data.py DIR ...")
    os.environ["PGTZ"] = "UTC"  # every libpq connection of this process (dbt-postgres, psycopg2)
    for name in _REDIRECTING_ENV:  # the bench project is fs's project here, on its own file and target
        os.environ.pop(name, None)

    root = (args.keep_project or DEFAULT_PROJECTS / args.target).resolve()
    res = {"postgres": run_postgres, "spark": run_spark, "duckdb": run_duckdb}[args.target](args, data, root)
    total_s = time.perf_counter() - T_START
    overhead_s = total_s - res["join_s"] - res.get("load_s", 0.0)
    label = f"[{args.size_label}] " if args.size_label else ""
    cpu_what = {"postgres": "server CPU", "spark": "CPU of Python + JVM"}.get(args.target, "CPU")
    how = ("from the cache (no dbt)" if res["compiled"] == "cached"
           else "dbt compile (start-up, parse, compile; cache was cold or the inputs changed)")
    print(f"{label}rows: {res['rows']}")
    print(f"{label}compiled SQL: {how}: {res['compile_s']:.3f} s")
    print(f"{label}join step (create table as fs_point_in_time_join's SQL, {args.target}): {res['join_s']:.3f} s"
          f" ({cpu_what} {res['join_cpu_s']:.3f} s)")
    if "load_s" in res:
        print(f"{label}load Parquet into Postgres: {res['load_s']:.3f} s")
    print(f"{label}export to Parquet: {res['export_s']:.3f} s")
    print(f"{label}total command: {total_s:.3f} s; overhead (total - join"
          f"{' - load' if 'load_s' in res else ''}): {overhead_s:.3f} s")
    print(json.dumps({"size": args.size_label, "target": args.target, **res, "total_s": total_s,
                      "overhead_s": overhead_s}))


if __name__ == "__main__":
    main()
