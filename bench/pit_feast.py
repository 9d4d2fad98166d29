"""Feast's DuckDB or Postgres offline store on the benchmark layout: the comparison point for bench/pit.py.

Runs in its own venv (Feast pins other versions than this project):
    python3 -m venv bench/.feast-venv && bench/.feast-venv/bin/pip install "feast[duckdb,postgres]==0.67.*"
    bench/.feast-venv/bin/python bench/pit_feast.py --data DIR --ttl-days N --out OUT.parquet
    bench/.feast-venv/bin/python bench/pit_feast.py --data DIR --ttl-days N --out OUT.parquet \
        --offline-store postgres --pg-database DB      # DB loaded by `bench/pg_bench.py load DIR`

DuckDB: times get_historical_features(...).to_df() (the spine is read into pandas before, since Feast takes the
entity dataframe in memory). Postgres (contrib `postgres_offline_store`): the spine is already a table of the
database, passed as SQL (`entity_select_mode: embed_query`, so Feast copies nothing); times
get_historical_features(...).to_df() (Feast's query plus fetching the rows into pandas: its only way to get the
result out) and, separately, Feast's own SQL (`to_sql()`) as CREATE TABLE AS on the server, the engine work alone.
Writes the result (timestamps as naive UTC) and a last JSON line. Sessions run with TimeZone=UTC.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from datetime import timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

FEATURE_GROUPS = {
    "fg_customer_tx": ["tx_amount_7d", "tx_count_7d", "avg_basket"],
    "fg_customer_profile": ["credit_score", "tenure_days", "risk_ratio"],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--ttl-days", required=True, type=int)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--offline-store", choices=["duckdb", "postgres", "spark"], default="duckdb")
    ap.add_argument("--pg-database", help="postgres: a database loaded by `bench/pg_bench.py load DIR`")
    args = ap.parse_args()
    data = args.data.resolve()
    os.environ["PGTZ"] = "UTC"  # libpq sessions of Feast's psycopg: naive timestamps mean UTC
    if args.offline_store == "postgres":
        if not args.pg_database:
            raise SystemExit("error: --offline-store postgres needs --pg-database (see bench/pg_bench.py load)")
        run_postgres(args, data)
        return
    if args.offline_store == "spark":
        run_spark(args, data)
        return

    import pandas as pd
    from feast import FileSource

    repo = Path(tempfile.mkdtemp(prefix="fs_feast_bench_"))
    store = apply_repo(repo, "type: duckdb", args.ttl_days, lambda name: FileSource(
        name=f"{name}_src", path=str(data / f"{name}.parquet"), timestamp_field="event_time",
        created_timestamp_column="created"))
    spine = pd.read_parquet(data / "spine.parquet")
    features = [f"{name}:{f}" for name, feats in FEATURE_GROUPS.items() for f in feats]

    t0, c0 = time.perf_counter(), time.process_time()
    df = store.get_historical_features(entity_df=spine, features=features).to_df()
    join_s, join_cpu_s = time.perf_counter() - t0, time.process_time() - c0

    ts = df["event_timestamp"]
    if getattr(ts.dt, "tz", None) is not None:
        df["event_timestamp"] = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    cols = ["customer_id", "event_timestamp", "label"] + [f for fs in FEATURE_GROUPS.values() for f in fs]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df[cols].to_parquet(args.out, index=False)
    total_s = time.perf_counter() - T_START
    print(f"feast rows: {len(df)}; get_historical_features().to_df(): {join_s:.3f} s; total command: {total_s:.3f} s")
    print(json.dumps({"rows": len(df), "join_s": join_s, "join_cpu_s": join_cpu_s, "total_s": total_s}))


def apply_repo(repo: Path, offline_store: str, ttl_days: int, source):
    """A Feast repo in `repo` with the given offline store (YAML body under `offline_store:`), the customer entity
    and one FeatureView per benchmark feature group over `source(name)`, applied; returns the FeatureStore."""
    from feast import Entity, FeatureStore, FeatureView, Field, ValueType
    from feast.types import Float64

    offline = offline_store.replace("\n", "\n  ")
    (repo / "feature_store.yaml").write_text(
        f"project: pit_bench\nregistry: {repo / 'registry.db'}\nprovider: local\n"
        f"offline_store:\n  {offline}\n"
        f"online_store:\n  type: sqlite\n  path: {repo / 'online.db'}\nentity_key_serialization_version: 3\n")
    store = FeatureStore(repo_path=str(repo))
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    views = [FeatureView(name=name, entities=[customer], source=source(name), online=False,
                         ttl=timedelta(days=ttl_days) if ttl_days else timedelta(0),
                         schema=[Field(name=f, dtype=Float64) for f in feats])
             for name, feats in FEATURE_GROUPS.items()]
    store.apply([customer, *views])
    return store


def run_spark(args, data: Path) -> None:
    """Feast's Spark offline store (contrib) on a local Spark with the project's spark target settings
    (bench/spark_conf.py), the feature groups as SparkSources over the Parquet files, the spine a temporary view over
    its Parquet file passed as SQL. The join step is Feast's job written to Parquet by Spark
    (`to_spark_df().write.parquet`), like ours writes its Delta table; the export reads it back through Arrow."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import pyarrow.parquet as pq
    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource
    from proc_tree import TreeSampler
    from pyspark.sql import SparkSession
    from spark_conf import spark_params

    repo = Path(tempfile.mkdtemp(prefix="fs_feast_bench_"))
    with TreeSampler() as sampler:
        params = spark_params(repo / "spark")
        builder = SparkSession.builder
        for k, v in params.items():
            builder = builder.config(k, v)
        spark = builder.getOrCreate()  # Feast's get_spark_session_or_start_new_with_repoconfig reuses it
        spark.sparkContext.setLogLevel("ERROR")
        store = apply_repo(repo, f"type: spark\nspark_conf: {json.dumps(params)}", args.ttl_days, lambda name: SparkSource(
            name=f"{name}_src", path=str(data / f"{name}.parquet"), file_format="parquet",
            timestamp_field="event_time", created_timestamp_column="created"))
        spark.read.parquet(str(data / "spine.parquet")).createOrReplaceTempView("bench_spine")
        features = [f"{name}:{f}" for name, feats in FEATURE_GROUPS.items() for f in feats]
        result_dir = repo / "result"

        t0, c0 = time.perf_counter(), sampler.cpu()
        job = store.get_historical_features(
            entity_df="select customer_id, event_timestamp, label from bench_spine", features=features)
        job.to_spark_df().write.mode("overwrite").parquet(str(result_dir))
        join_s, join_cpu_s = time.perf_counter() - t0, sampler.cpu() - c0

        t_exp = time.perf_counter()
        cols = ["customer_id", "event_timestamp", "label"] + [f for fs in FEATURE_GROUPS.values() for f in fs]
        table = spark.read.parquet(str(result_dir)).select(*cols).toArrow()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, args.out)
        export_s = time.perf_counter() - t_exp
        spark.stop()
    total_s = time.perf_counter() - T_START
    print(f"feast rows: {table.num_rows}; get_historical_features() written by Spark: {join_s:.3f} s;"
          f" total command: {total_s:.3f} s")
    print(json.dumps({"rows": table.num_rows, "join_s": join_s, "join_cpu_s": join_cpu_s, "export_s": export_s,
                      "total_s": total_s, "tree_cpu_s": sampler.cpu(), "tree_peak_rss_mib": sampler.peak_rss_mib}))


def run_postgres(args, data: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import pg_bench  # only its stdlib parts are used here: this venv has psycopg 3, not psycopg2
    import psycopg
    from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import PostgreSQLSource

    pg = pg_bench.server()
    repo = Path(tempfile.mkdtemp(prefix="fs_feast_bench_"))
    offline = (f"type: postgres\nhost: {pg['host']}\nport: {pg['port']}\ndatabase: {args.pg_database}\n"
               f"db_schema: public\nuser: {pg['user']}\npassword: \"{os.environ.get('PGPASSWORD', '')}\"\n"
               "sslmode: disable\nentity_select_mode: embed_query")
    store = apply_repo(repo, offline, args.ttl_days, lambda name: PostgreSQLSource(
        name=f"{name}_src", table=f"{pg_bench.DATA_SCHEMA}.{name}", timestamp_field="event_time",
        created_timestamp_column="created"))
    spine_sql = f"select customer_id, event_timestamp, label from {pg_bench.DATA_SCHEMA}.spine"
    features = [f"{name}:{f}" for name, feats in FEATURE_GROUPS.items() for f in feats]

    clock = pg_bench.DatabaseCpuClock(args.pg_database).__enter__()
    t0, c0, s0 = time.perf_counter(), time.process_time(), clock.read()
    df = store.get_historical_features(entity_df=spine_sql, features=features).to_df()
    api_s, api_cpu_s, api_server_cpu_s = time.perf_counter() - t0, time.process_time() - c0, clock.read() - s0

    # The engine work alone: Feast's generated SQL materialized on the server, like our table model.
    query = store.get_historical_features(entity_df=spine_sql, features=features).to_sql()
    schema = f"fs_pit_feast_{os.getpid()}"
    with psycopg.connect(host=pg["host"], port=pg["port"], user=pg["user"], dbname=args.pg_database,
                         password=os.environ.get("PGPASSWORD") or None, autocommit=True) as con:
        con.execute(f'create schema "{schema}"')
        try:
            t1, s1 = time.perf_counter(), clock.read()
            con.execute(f'create table "{schema}".result as {query}')
            join_s, join_server_cpu_s = time.perf_counter() - t1, clock.read() - s1
            sql_rows = con.execute(f'select count(*) from "{schema}".result').fetchone()[0]
        finally:
            con.execute(f'drop schema if exists "{schema}" cascade')
            clock.__exit__(None, None, None)
    if sql_rows != len(df):
        raise SystemExit(f"error: Feast's SQL gave {sql_rows} rows on the server, to_df() {len(df)}")
    write_result(df, args.out)
    total_s = time.perf_counter() - T_START
    print(f"feast (postgres) rows: {len(df)}; get_historical_features().to_df(): {api_s:.3f} s;"
          f" its SQL as CREATE TABLE AS: {join_s:.3f} s (server CPU {join_server_cpu_s:.3f} s); total command: {total_s:.3f} s")
    print(json.dumps({"rows": len(df), "join_s": join_s, "join_cpu_s": join_server_cpu_s, "api_s": api_s,
                      "api_cpu_s": api_cpu_s, "api_server_cpu_s": api_server_cpu_s, "total_s": total_s}))


def write_result(df, out: Path) -> None:
    """Timestamps as naive UTC, the output columns of bench/pit.py."""
    ts = df["event_timestamp"]
    if getattr(ts.dt, "tz", None) is not None:
        df["event_timestamp"] = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    cols = ["customer_id", "event_timestamp", "label"] + [f for fs in FEATURE_GROUPS.values() for f in fs]
    out.parent.mkdir(parents=True, exist_ok=True)
    df[cols].to_parquet(out, index=False)


if __name__ == "__main__":
    main()
