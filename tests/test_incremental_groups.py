"""Incremental feature groups (issue 13, item 1; README "Incremental feature groups"): a dbt `incremental` model
(delete+insert on its key) that reads only the rows ingested since its last build, published by a snapshot whose
change detection looks at the ingestion column only (`strategy: check`, `check_cols: [ingested_at]`). Commit counts
are exact (inserted / updated per key) and time travel works as for table groups (commit time = publish time)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import drop_demo_models

from fs_cli import FeatureStore

MODEL = """
{{ config(materialized='incremental', unique_key=['item_id', 'event_time'], incremental_strategy='delete+insert') }}
-- Only the rows ingested since the last build; the latest ingestion of a key wins inside a batch.
with batch as (
    select cast(item_id as bigint) as item_id, cast(event_time as timestamp) as event_time,
           cast(value as double precision) as value, cast(ingested_at as timestamp) as ingested_at
    from {{ ref('test_items') }}
    {% if is_incremental() %}
    where cast(ingested_at as timestamp) > (select max(ingested_at) from {{ this }})
    {% endif %}
),
ranked as (
    select batch.*, row_number() over (partition by item_id, event_time order by ingested_at desc) as fs_rank
    from batch
)
select item_id, event_time, value, ingested_at from ranked where fs_rank = 1
"""

FG_YAML = """
version: 2
models:
  - name: fg_test_items
    description: Items, built incrementally.
    config:
      meta:
        fs: {entities: [item], event_time: event_time, online: false, ttl: null, owner: tests, policy: strict}
    columns:
      - {name: item_id, data_type: bigint, description: the item}
      - {name: event_time, data_type: timestamp, description: when}
      - {name: value, data_type: double, description: a value}
      - {name: ingested_at, data_type: timestamp, description: when the row arrived (the change marker)}
"""

SNAPSHOT_YAML = """
snapshots:
  - name: fg_test_items_snapshot
    relation: ref('fg_test_items')
    config:
      unique_key: [item_id, event_time]
      strategy: check
      check_cols: [ingested_at]
      hard_deletes: new_record
"""

T1, T2, T3 = "2026-02-01 00:00:00", "2026-02-02 00:00:00", "2026-02-03 00:00:00"
V1 = [(i, f"2026-01-0{i} 00:00:00", float(i), T1) for i in range(1, 7)]
# Batch 2: corrections of items 1 and 2 (same key, new value), three new items.
B2 = [(1, "2026-01-01 00:00:00", 10.0, T2), (2, "2026-01-02 00:00:00", 20.0, T2),
      *[(i, f"2026-01-0{i} 00:00:00", float(i), T2) for i in range(7, 10)]]


def write_rows(project: Path, rows: list[tuple]) -> None:
    lines = ["item_id,event_time,value,ingested_at"] + [",".join(map(str, r)) for r in rows]
    (project / "seeds" / "test_items.csv").write_text("\n".join(lines) + "\n")


@pytest.fixture
def incremental_project(project_copy, engine: str) -> Path:
    d = project_copy("incr", with_seeds=False, engine=engine)
    (d / "models" / "feature_groups" / "fg_test_items.sql").write_text(MODEL)
    (d / "models" / "feature_groups" / "_test_items.yml").write_text(FG_YAML)
    (d / "snapshots" / "test_items.yml").write_text(SNAPSHOT_YAML)
    drop_demo_models(d)
    text = (d / "dbt_project.yml").read_text()
    (d / "dbt_project.yml").write_text(text.replace(
        "  fs_entities:\n", "  fs_entities:\n    item:\n      join_keys: [item_id]\n"))
    return d


def as_rows(df: pd.DataFrame) -> list[tuple]:
    return sorted((int(r.item_id), r.event_time.strftime("%Y-%m-%d %H:%M:%S"), float(r.value)) for r in df.itertuples())


def latest(rows: list[tuple]) -> list[tuple]:
    """The oracle: per key, the row of the latest ingestion."""
    best: dict = {}
    for item, et, value, ing in rows:
        if (item, et) not in best or ing > best[(item, et)][1]:
            best[(item, et)] = (value, ing)
    return sorted((k[0], k[1], v[0]) for k, v in best.items())


def test_incremental_group_publishes_exact_commits(incremental_project: Path):
    d = incremental_project
    fs = FeatureStore(d)
    write_rows(d, V1)
    assert fs.catalog.fg("fg_test_items")  # the declaration (incremental model, check on ingested_at) is accepted
    assert fs.run(materialize=False).ok
    write_rows(d, V1 + B2)
    r2 = fs.run(materialize=False)
    assert r2.ok, r2.to_dict()
    r3 = fs.run(materialize=False)  # nothing new ingested: no commit
    assert r3.ok and r3.outcomes["fg_test_items"].commit is None

    log = fs.commits("fg_test_items")
    assert [(c.commit_id, c.inserted, c.updated, c.deleted, c.rows) for c in log] == [(1, 6, 0, 0, 6), (2, 3, 2, 0, 9)]
    assert as_rows(fs.read("fg_test_items", commit=1)) == latest(V1)
    assert as_rows(fs.read("fg_test_items")) == latest(V1 + B2)
    between = log[0].commit_time + (log[1].commit_time - log[0].commit_time) / 2
    assert as_rows(fs.read("fg_test_items", as_of=between)) == latest(V1)

    # The candidate is incremental: it reads only the new batch, here the whole source (a table model would publish
    # 8 deletes), and a re-ingested item 3 with the same value is an update (the ingestion column is the marker).
    b3 = [(3, "2026-01-03 00:00:00", 3.0, T3)]
    write_rows(d, b3)
    assert fs.run(materialize=False).ok
    c3 = fs.commits("fg_test_items")[-1]
    assert (c3.commit_id, c3.inserted, c3.updated, c3.deleted, c3.rows) == (3, 0, 1, 0, 9)
    assert as_rows(fs.read("fg_test_items")) == latest(V1 + B2 + b3)


def test_only_incremental_groups_may_compare_one_column(project_copy):
    """A table group whose snapshot compares only some columns would silently drop corrections: refused."""
    from fs_cli.errors import FeatureStoreError

    d = project_copy("table_check_cols", with_seeds=False, engine="duckdb")
    (d / "models" / "feature_groups" / "fg_test_items.sql").write_text(
        "select item_id, cast(event_time as timestamp) as event_time, value, ingested_at from {{ ref('test_items') }}")
    (d / "models" / "feature_groups" / "_test_items.yml").write_text(FG_YAML)
    (d / "snapshots" / "test_items.yml").write_text(SNAPSHOT_YAML)
    drop_demo_models(d)
    text = (d / "dbt_project.yml").read_text()
    (d / "dbt_project.yml").write_text(text.replace(
        "  fs_entities:\n", "  fs_entities:\n    item:\n      join_keys: [item_id]\n"))
    write_rows(d, V1)
    with pytest.raises(FeatureStoreError) as e:
        FeatureStore(d).catalog.fg("fg_test_items")
    assert "compares only ['ingested_at']" in str(e.value)
    assert "check_cols: all" in str(e.value)
