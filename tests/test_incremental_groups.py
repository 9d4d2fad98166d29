"""Incremental feature groups (issue 13, item 1; README "Incremental feature groups"): a dbt `incremental` model
(delete+insert on its key) that reads only the rows ingested since its last build, published by a snapshot whose
change detection looks at the ingestion column only (`strategy: check`, `check_cols: [ingested_at]`). Commit counts
are exact (inserted / updated per key) and time travel works as for table groups (commit time = publish time).

The publish reads only the batch ingested after the published watermark (fs_cli/pipeline.py `_incremental_batch`,
macros/publish/publish_batch.sql): the gate audits the batch, the snapshot reads it, and the result equals what a
table group publishes over the same data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import drop_demo_models

from fs_cli import FeatureStore
from fs_cli.pipeline import RunReport, run_pipeline

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
        fs: {entities: [item], event_time: event_time, online: false, ttl: null, owner: tests, policy: strict,
             expectations: {min_rows: 5}}  # a dataset check: on the first publish only (later batches are smaller)
    columns:
      - {name: item_id, data_type: bigint, description: the item}
      - {name: event_time, data_type: timestamp, description: when}
      - {name: value, data_type: double, description: a value, config: {meta: {fs: {range: [0, 1000]}}}}
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


#: A table group over the same source: per key the latest ingestion, recomputed from the whole source every run.
TABLE_MODEL = """
with ranked as (
    select cast(item_id as bigint) as item_id, cast(event_time as timestamp) as event_time,
           cast(value as double precision) as value, cast(ingested_at as timestamp) as ingested_at,
           row_number() over (partition by item_id, event_time order by ingested_at desc) as fs_rank
    from {{ ref('test_items') }}
)
select item_id, event_time, value, ingested_at from ranked where fs_rank = 1
"""

TABLE_SNAPSHOT_YAML = """
snapshots:
  - name: fg_test_items_full_snapshot
    relation: ref('fg_test_items_full')
    config:
      unique_key: [item_id, event_time]
"""


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


def run_counting_audited_rows(fs: FeatureStore) -> tuple[RunReport, dict[str, int]]:
    """`fs run` (no materialization) with one more candidate check that counts the rows of each audited copy: what
    the gate audits and the snapshot publishes from."""
    from fs_cli.validation import pipeline_check, post_publish_link

    audited: dict[str, int] = {}

    def count_rows(project, wh, fg):
        audited[fg.name] = int(wh.scalar(f"select count(*) from {fg.relation}"))
        return [], []

    report = run_pipeline(fs.project, checks=[pipeline_check, count_rows], post_publish=[post_publish_link])
    return report, audited


def versions(fs: FeatureStore, name: str) -> list[tuple]:
    """Every version the snapshot of `name` holds: (key, value, ingested_at, commit id that wrote it, commit id that
    closed it or None, deleted)."""
    commit_of = {c.commit_time: c.commit_id for c in fs.commits(name)}
    fg = fs.catalog.fg(name)
    with fs.project.warehouse(read_only=True) as wh:
        rows = wh.fetchall(f"select item_id, event_time, value, ingested_at, dbt_valid_from, dbt_valid_to, "
                           f"coalesce(dbt_is_deleted, 'False') from {fg.snapshot_relation}")
    return sorted((int(i), str(et), float(v), str(ing), commit_of[vf], commit_of.get(vt), dl == "True")
                  for i, et, v, ing, vf, vt, dl in rows)


T4 = "2026-02-04 00:00:00"
# Batch 3: item 3 re-ingested with its value, a correction of item 7, a new item 10; batch 4: item 1 again, item 10.
B3 = [(3, "2026-01-03 00:00:00", 3.0, T3), (7, "2026-01-07 00:00:00", 70.0, T3), (10, "2026-01-10 00:00:00", 10.0, T3)]
B4 = [(1, "2026-01-01 00:00:00", 100.0, T4), (10, "2026-01-10 00:00:00", 11.0, T4)]


def test_incremental_publish_equals_a_table_group_and_reads_only_the_batch(incremental_project: Path):
    """Over an append-only source, the incremental group (published from its batch) and a table group (published from
    its whole table) write the same versions in the same commits; each incremental audit holds exactly the batch."""
    d = incremental_project
    (d / "models" / "feature_groups" / "fg_test_items_full.sql").write_text(TABLE_MODEL)
    (d / "models" / "feature_groups" / "_test_items_full.yml").write_text(
        FG_YAML.replace("fg_test_items", "fg_test_items_full").replace("built incrementally", "recomputed in full"))
    (d / "snapshots" / "test_items_full.yml").write_text(TABLE_SNAPSHOT_YAML)
    fs = FeatureStore(d)
    source: list[tuple] = []
    for batch in (V1, B2, B3, B4):
        source += batch
        write_rows(d, source)
        report, audited = run_counting_audited_rows(fs)
        assert report.ok, report.to_dict()
        assert audited["fg_test_items"] == len(batch)  # the batch: rows ingested after the published watermark
        assert audited["fg_test_items_full"] == len(latest(source))  # a table group audits its whole table
    report, audited = run_counting_audited_rows(fs)  # nothing new: the incremental group is not even audited
    assert report.ok and report.outcomes["fg_test_items"].commit is None
    assert "fg_test_items" not in audited and report.outcomes["fg_test_items_full"].commit is None

    incremental, table = fs.commits("fg_test_items"), fs.commits("fg_test_items_full")
    counts = [(c.commit_id, c.inserted, c.updated, c.deleted, c.rows) for c in incremental]
    assert counts == [(c.commit_id, c.inserted, c.updated, c.deleted, c.rows) for c in table]
    assert counts == [(1, 6, 0, 0, 6), (2, 3, 2, 0, 9), (3, 1, 2, 0, 10), (4, 0, 2, 0, 10)]
    assert [c.commit_time for c in incremental] == [c.commit_time for c in table]
    assert versions(fs, "fg_test_items") == versions(fs, "fg_test_items_full")
    for c in incremental:  # time travel: every commit reads what the oracle says
        upto = [r for r in source if r[3] <= (T1, T2, T3, T4)[c.commit_id - 1]]
        assert as_rows(fs.read("fg_test_items", commit=c.commit_id)) == latest(upto)
        assert as_rows(fs.read("fg_test_items_full", commit=c.commit_id)) == latest(upto)


def test_a_bad_row_in_a_later_batch_is_blocked(incremental_project: Path):
    """Strict policy: a batch with a row out of its declared range is not published; the next batch that fixes the
    row (a later ingestion of its key) is published together with the blocked batch's good rows. The snapshot reads
    only the batch: a row removed from the candidate behind fs's back is not recorded as a deletion."""
    d = incremental_project
    fs = FeatureStore(d)
    write_rows(d, V1)
    assert fs.run(materialize=False).ok
    bad = [(2, "2026-01-02 00:00:00", -5.0, T2), (7, "2026-01-07 00:00:00", 7.0, T2)]
    write_rows(d, V1 + bad)
    report, audited = run_counting_audited_rows(fs)
    o = report.outcomes["fg_test_items"]
    assert not report.ok and o.status == "blocked" and not o.published, o.to_dict()
    assert any("value" in f and "range" in f for f in o.failures), o.failures
    assert audited["fg_test_items"] == 2
    assert [c.commit_id for c in fs.commits("fg_test_items")] == [1]
    assert as_rows(fs.read("fg_test_items")) == latest(V1)

    fixed = [(2, "2026-01-02 00:00:00", 20.0, T3), (8, "2026-01-08 00:00:00", 8.0, T3)]
    write_rows(d, V1 + bad + fixed)
    fg = fs.catalog.fg("fg_test_items")
    with fs.project.warehouse() as wh:  # an old row vanishes from the candidate: not the snapshot's business
        wh.execute(f"delete from {fg.relation} where item_id = 5")
    report, audited = run_counting_audited_rows(fs)
    assert report.ok, report.to_dict()
    assert audited["fg_test_items"] == 3  # items 2 (fixed), 7 (blocked before, good) and 8: the batch since T1
    c = fs.commits("fg_test_items")[-1]
    assert (c.commit_id, c.inserted, c.updated, c.deleted, c.rows) == (2, 2, 1, 0, 8)
    assert as_rows(fs.read("fg_test_items")) == latest(V1 + [bad[1]] + fixed)


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
