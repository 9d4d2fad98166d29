"""Feast's DuckDB offline store on the benchmark layout: the comparison point for bench/pit.py.

Runs in its own venv (Feast pins other versions than this project):
    python3 -m venv bench/.feast-venv && bench/.feast-venv/bin/pip install "feast[duckdb]"
    bench/.feast-venv/bin/python bench/pit_feast.py --data DIR --ttl-days N --out OUT.parquet

Times get_historical_features(...).to_df() (the spine is read into pandas before, since Feast takes the entity
dataframe in memory), then writes the result (timestamps as naive UTC) and a last JSON line.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402
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
    args = ap.parse_args()
    data = args.data.resolve()

    import pandas as pd
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    repo = Path(tempfile.mkdtemp(prefix="fs_feast_bench_"))
    (repo / "feature_store.yaml").write_text(
        textwrap.dedent(
            f"""\
            project: pit_bench
            registry: {repo / 'registry.db'}
            provider: local
            offline_store:
              type: duckdb
            online_store:
              type: sqlite
              path: {repo / 'online.db'}
            entity_key_serialization_version: 3
            """
        )
    )
    store = FeatureStore(repo_path=str(repo))
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    views = []
    for name, feats in FEATURE_GROUPS.items():
        src = FileSource(name=f"{name}_src", path=str(data / f"{name}.parquet"), timestamp_field="event_time",
                         created_timestamp_column="created")
        views.append(FeatureView(
            name=name, entities=[customer], source=src, online=False,
            ttl=timedelta(days=args.ttl_days) if args.ttl_days else timedelta(0),
            schema=[Field(name=f, dtype=Float64) for f in feats],
        ))
    store.apply([customer, *views])
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


if __name__ == "__main__":
    main()
