"""Point-in-time training set through the real product path, on the benchmark layout (bench/gen_data.py).

usage: python bench/pit.py --data DIR --ttl-days N --out OUT.parquet [--size-label small] [--keep-project DIR]

A throw-away dbt project (named feature_store, using this repo's macros/) declares the Parquet files as dbt
sources, the two feature groups as models with their `config.meta.fs` (entity, event_time, created_time,
ttl), and a table model whose body reads that metadata from the graph and calls fs_point_in_time_join. dbt
runs in-process; the table is then exported to Parquet: customer_id, event_timestamp, label and the six
features, in spine order. Prints the join step (dbt's execution time of the table model), the export and the
whole command (interpreter start-up excluded, dbt start-up and parsing included), and a last JSON line.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

REPO = Path(__file__).resolve().parent.parent
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


def write_project(root: Path, data: Path, ttl_days: int, threads: int) -> Path:
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
            """
        )
    )
    (root / "profiles.yml").write_text(
        f"pit_bench:\n  target: duckdb\n  outputs:\n    duckdb: {{type: duckdb, path: '{root / 'bench.duckdb'}',"
        f" schema: main, threads: {threads}}}\n"
    )
    tables = ["spine", *fg_names]
    src = ["version: 2", "sources:", "  - name: bench", "    tables:"]
    for t in tables:
        src += [f"      - name: {t}", f"        meta: {{external_location: \"read_parquet('{data / (t + '.parquet')}')\"}}"]
    (root / "models" / "_sources.yml").write_text("\n".join(src) + "\n")
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path, help="directory written by bench/gen_data.py")
    ap.add_argument("--ttl-days", required=True, type=int, help="TTL of both feature groups, in days (0 = unlimited)")
    ap.add_argument("--out", required=True, type=Path, help="Parquet file to write")
    ap.add_argument("--size-label", default="", help="a name for this data size, echoed in the output")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--keep-project", type=Path, help="build the dbt project here and keep it (default: a temp dir)")
    args = ap.parse_args()
    data = args.data.resolve()
    for t in ["spine", *FEATURE_GROUPS]:
        if not (data / f"{t}.parquet").is_file():
            raise SystemExit(f"error: {data / (t + '.parquet')} is missing; generate it with bench/gen_data.py DIR ...")

    root = args.keep_project.resolve() if args.keep_project else Path(tempfile.mkdtemp(prefix="fs_pit_bench_"))
    try:
        if args.keep_project and root.exists():
            shutil.rmtree(root)
        write_project(root, data, args.ttl_days, args.threads)
        from dbt.cli.main import dbtRunner

        # CPU seconds of the join step, from dbt's node events: on a busy machine wall times inflate, CPU less so.
        cpu_marks: dict[str, float] = {}

        def on_event(e) -> None:
            if e.info.name in ("NodeStart", "NodeFinished"):
                if getattr(e.data.node_info, "node_name", "") == "training_set":
                    cpu_marks[e.info.name] = time.process_time()

        t_dbt = time.perf_counter()
        res = dbtRunner(callbacks=[on_event]).invoke(
            ["run", "--project-dir", str(root), "--profiles-dir", str(root), "--quiet"]
        )
        dbt_s = time.perf_counter() - t_dbt
        join_cpu_s = cpu_marks.get("NodeFinished", 0.0) - cpu_marks.get("NodeStart", 0.0)
        if not res.success:
            raise SystemExit(f"error: dbt run failed: {res.exception or [r.message for r in res.result.results]}")
        join_s = next(r.execution_time for r in res.result.results if r.node.name == "training_set")

        import duckdb

        t_exp = time.perf_counter()
        con = duckdb.connect(str(root / "bench.duckdb"))
        cols = ", ".join(f'"{c}"' for c in OUTPUT_COLUMNS)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        # The table was written in spine order (the model ends with ORDER BY) and DuckDB keeps insertion order.
        con.execute(f"copy (select {cols} from training_set) to '{args.out.resolve()}' (format parquet)")
        rows = con.execute("select count(*) from training_set").fetchall()[0][0]
        con.close()
        export_s = time.perf_counter() - t_exp
    finally:
        if not args.keep_project:
            shutil.rmtree(root, ignore_errors=True)
    total_s = time.perf_counter() - T_START
    label = f"[{args.size_label}] " if args.size_label else ""
    print(f"{label}rows: {rows}")
    print(f"{label}join step (dbt table model with fs_point_in_time_join): {join_s:.3f} s (CPU {join_cpu_s:.3f} s)")
    print(f"{label}dbt run (start-up, parse, views, join): {dbt_s:.3f} s; export to Parquet: {export_s:.3f} s")
    print(f"{label}total command: {total_s:.3f} s")
    print(json.dumps({"size": args.size_label, "rows": rows, "join_s": join_s, "join_cpu_s": join_cpu_s, "dbt_s": dbt_s,
                      "export_s": export_s, "total_s": total_s}))


if __name__ == "__main__":
    main()
