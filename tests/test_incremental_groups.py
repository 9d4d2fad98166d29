"""Incremental feature groups (issue 13, item 1; README "Incremental feature groups"): a dbt `incremental` model
(delete+insert on its key) that reads only the rows ingested since its last build, published by a snapshot whose
change detection looks at the ingestion column only (`strategy: check`, `check_cols: [ingested_at]`). Commit counts
are exact (inserted / updated per key) and time travel works as for table groups (commit time = publish time).

The publish reads only the batch ingested after the published watermark (fs_cli/pipeline.py `_incremental_batch`,
macros/publish/publish_batch.sql): the gate audits the batch, the snapshot reads it, and the result equals what a
table group publishes over the same data."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
import pytest
from conftest import ENGINES, copy_project, drop_demo_models, preparsed, use_engine
from services import pg_database

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


def write_rows(project: Path, rows: list[tuple], seed: str = "test_items") -> None:
    lines = ["item_id,event_time,value,ingested_at"] + [",".join(map(str, r)) for r in rows]
    (project / "seeds" / f"{seed}.csv").write_text("\n".join(lines) + "\n")


def add_entity_item(d: Path) -> None:
    text = (d / "dbt_project.yml").read_text()
    (d / "dbt_project.yml").write_text(text.replace(
        "  fs_entities:\n", "  fs_entities:\n    item:\n      join_keys: [item_id]\n"))


def as_rows(df: pd.DataFrame) -> list[tuple]:
    return sorted((int(r.item_id), r.event_time.strftime("%Y-%m-%d %H:%M:%S"), float(r.value)) for r in df.itertuples())


def latest(rows: list[tuple]) -> list[tuple]:
    """The oracle: per key, the row of the latest ingestion."""
    best: dict = {}
    for item, et, value, ing in rows:
        if (item, et) not in best or ing > best[(item, et)][1]:
            best[(item, et)] = (value, ing)
    return sorted((k[0], k[1], v[0]) for k, v in best.items())


def run_counting_audited_rows(fs: FeatureStore, select: tuple[str, ...] = ()) -> tuple[RunReport, dict[str, int]]:
    """`fs run` (no materialization: FeatureStore.run(materialize=False) composes the same check and post-publish
    step) with one more candidate check that counts the rows of each audited copy: what the gate audits and the
    snapshot publishes from."""
    from fs_cli.validation import pipeline_check, post_publish_link

    audited: dict[str, int] = {}

    def count_rows(project, wh, fg):
        audited[fg.name] = int(wh.scalar(f"select count(*) from {fg.relation}"))
        return [], []

    report = run_pipeline(fs.project, select=select, checks=[pipeline_check, count_rows],
                          post_publish=[post_publish_link])
    return report, audited


def versions(fs: FeatureStore, name: str) -> list[tuple]:
    """Every version the snapshot of `name` holds: (key, value, ingested_at, commit id that wrote it, commit id that
    closed it or None, deleted, dbt_scd_id). The scd id too: the batch route's staging and merge do not read it (they
    carry a row locator or match the key instead, macros/publish/publish_batch.sql), and must leave every version's
    id as dbt's own snapshot of the whole table writes it."""
    commit_of = {c.commit_time: c.commit_id for c in fs.commits(name)}
    fg = fs.catalog.fg(name)
    with fs.project.warehouse(read_only=True) as wh:
        rows = wh.fetchall(f"select item_id, event_time, value, ingested_at, dbt_valid_from, dbt_valid_to, "
                           f"coalesce(dbt_is_deleted, 'False'), dbt_scd_id from {fg.snapshot_relation}")
    return sorted((int(i), str(et), float(v), str(ing), commit_of[vf], commit_of.get(vt), dl == "True", scd)
                  for i, et, v, ing, vf, vt, dl, scd in rows)


T4 = "2026-02-04 00:00:00"
# Batch 3: item 3 re-ingested with its value, a correction of item 7, a new item 10; batch 4: item 1 again, item 10.
B3 = [(3, "2026-01-03 00:00:00", 3.0, T3), (7, "2026-01-07 00:00:00", 70.0, T3), (10, "2026-01-10 00:00:00", 10.0, T3)]
B4 = [(1, "2026-01-01 00:00:00", 100.0, T4), (10, "2026-01-10 00:00:00", 11.0, T4)]
# The strict-policy scenario: a batch with a row out of the declared range, then the batch that fixes it.
BAD = [(2, "2026-01-02 00:00:00", -5.0, T2), (7, "2026-01-07 00:00:00", 7.0, T2)]
FIXED = [(2, "2026-01-02 00:00:00", 20.0, T3), (8, "2026-01-08 00:00:00", 8.0, T3)]
# The replaced-source scenario's last batch: the source now holds only item 3, re-ingested with the same value.
ONLY_B3 = [(3, "2026-01-03 00:00:00", 3.0, T3)]

#: The groups of the module's project, one scenario each (they run side by side in the same `fs run`s: dbt's start,
#: parse, build and snapshot are paid once per run for all of them; each reads its own seed).
APPEND = "fg_test_items"  # incremental, append-only source test_items: compared with TABLE over the same seed
TABLE = "fg_test_items_full"  # a table group over test_items
REPLACED = "fg_replaced_items"  # incremental, seed replaced_items: exact commits, a source replaced by its new batch
BLOCKED = "fg_bad_items"  # incremental, seed bad_items: a bad row in a later batch is blocked (strict policy)
#: What each seed holds at each of the module's five runs (None: unchanged).
SEEDS = {
    "test_items": [V1, V1 + B2, V1 + B2 + B3, V1 + B2 + B3 + B4, None],
    "replaced_items": [V1, V1 + B2, None, ONLY_B3, None],
    "bad_items": [V1, V1 + BAD, V1 + BAD + FIXED, None, None],
}


def _group_ok(report: RunReport, name: str) -> bool:
    """What `report.ok` says for one group (the module's runs hold several groups; one of them is blocked once)."""
    return not report.other_failures and report.outcomes[name].status in ("ok", "warn")


def _make_project(d: Path) -> Path:
    """The repo's project without the demo's models (nor its monitoring views): the four groups of the module."""
    drop_demo_models(d)
    shutil.rmtree(d / "models" / "monitoring")  # views over the online logs: nothing here reads them
    fgs = d / "models" / "feature_groups"
    for name, seed in ((APPEND, "test_items"), (REPLACED, "replaced_items"), (BLOCKED, "bad_items")):
        (fgs / f"{name}.sql").write_text(MODEL.replace("ref('test_items')", f"ref('{seed}')"))
        (fgs / f"_{name}.yml").write_text(FG_YAML.replace("fg_test_items", name))
        (d / "snapshots" / f"{name}.yml").write_text(SNAPSHOT_YAML.replace("fg_test_items", name))
    (fgs / f"{TABLE}.sql").write_text(TABLE_MODEL)
    (fgs / f"_{TABLE}.yml").write_text(
        FG_YAML.replace("fg_test_items", TABLE).replace("built incrementally", "recomputed in full"))
    (d / "snapshots" / f"{TABLE}.yml").write_text(TABLE_SNAPSHOT_YAML)
    add_entity_item(d)
    return preparsed(d)


@pytest.fixture(scope="module", params=ENGINES)
def timeline(request, tmp_path_factory) -> Iterator[dict]:
    """One project per engine and five runs shared by the module's scenarios (each test asserts its own group's
    story): what each run reported and audited, and what the tests read between runs, as it was at that moment."""
    engine = request.param
    with ExitStack() as stack:
        db = stack.enter_context(pg_database()) if engine == "postgres" else None
        d = _make_project(use_engine(copy_project(tmp_path_factory.mktemp(f"incr_{engine}") / "proj",
                                                  with_seeds=False), engine, db))
        yield {"engine": engine, **run_timeline(FeatureStore(d), d, run_counting_audited_rows)}


def run_timeline(fs: FeatureStore, d: Path, run) -> dict:
    """The module's five runs (`run(fs)` -> (report, audited rows per group)), with what the tests read between
    them. tests/test_spark.py runs the same timeline on Spark and asserts it with this module's tests."""
    runs: list[tuple[RunReport, dict[str, int]]] = []
    seen: dict[str, object] = {}
    for i in range(5):
        for seed, states in SEEDS.items():
            if states[i] is not None:
                write_rows(d, states[i], seed)
        if i == 0:  # the declaration (incremental model, check on ingested_at) is accepted
            seen["declared"] = fs.catalog.fg(REPLACED)
        if i == 2:  # an old row vanishes from the candidate behind fs's back: not the snapshot's business
            with fs.project.warehouse() as wh:
                wh.execute(f"delete from {fs.catalog.fg(BLOCKED).relation} where item_id = 5")
        runs.append(run(fs))
        if i == 1:
            seen["blocked_commits"] = [c.commit_id for c in fs.commits(BLOCKED)]
            seen["blocked_read"] = as_rows(fs.read(BLOCKED))
        if i == 2:
            seen["replaced_log"] = fs.commits(REPLACED)
            seen["replaced_read"] = as_rows(fs.read(REPLACED))
            seen["blocked_last"] = fs.commits(BLOCKED)[-1]
            seen["blocked_read_fixed"] = as_rows(fs.read(BLOCKED))
        if i == 3:
            seen["replaced_last"] = fs.commits(REPLACED)[-1]
            seen["replaced_read_b3"] = as_rows(fs.read(REPLACED))
    return {"fs": fs, "runs": runs, **seen}


def test_incremental_group_publishes_exact_commits(timeline):
    fs, runs, name = timeline["fs"], timeline["runs"], REPLACED
    assert timeline["declared"]
    assert _group_ok(runs[0][0], name), runs[0][0].to_dict()
    assert _group_ok(runs[1][0], name), runs[1][0].to_dict()
    r3 = runs[2][0]  # nothing new ingested: no commit
    assert _group_ok(r3, name) and r3.outcomes[name].commit is None, r3.to_dict()

    log = timeline["replaced_log"]
    assert [(c.commit_id, c.inserted, c.updated, c.deleted, c.rows) for c in log] == [(1, 6, 0, 0, 6), (2, 3, 2, 0, 9)]
    assert as_rows(fs.read(name, commit=1)) == latest(V1)
    assert timeline["replaced_read"] == latest(V1 + B2)
    between = log[0].commit_time + (log[1].commit_time - log[0].commit_time) / 2
    assert as_rows(fs.read(name, as_of=between)) == latest(V1)

    # The candidate is incremental: it reads only the new batch, here the whole source (a table model would publish
    # 8 deletes), and a re-ingested item 3 with the same value is an update (the ingestion column is the marker).
    assert _group_ok(runs[3][0], name), runs[3][0].to_dict()
    c3 = timeline["replaced_last"]
    assert (c3.commit_id, c3.inserted, c3.updated, c3.deleted, c3.rows) == (3, 0, 1, 0, 9)
    assert timeline["replaced_read_b3"] == latest(V1 + B2 + ONLY_B3)


def test_incremental_publish_equals_a_table_group_and_reads_only_the_batch(timeline):
    """Over an append-only source, the incremental group (published from its batch) and a table group (published from
    its whole table) write the same versions in the same commits; each incremental audit holds exactly the batch."""
    fs, runs = timeline["fs"], timeline["runs"]
    source: list[tuple] = []
    for (report, audited), batch in zip(runs[:4], (V1, B2, B3, B4), strict=True):
        source += batch
        assert _group_ok(report, APPEND) and _group_ok(report, TABLE), report.to_dict()
        assert audited[APPEND] == len(batch)  # the batch: rows ingested after the published watermark
        assert audited[TABLE] == len(latest(source))  # a table group audits its whole table
    report, audited = runs[4]  # nothing new: the incremental group is not even audited
    assert _group_ok(report, APPEND) and report.outcomes[APPEND].commit is None
    assert APPEND not in audited and report.outcomes[TABLE].commit is None

    incremental, table = fs.commits(APPEND), fs.commits(TABLE)
    counts = [(c.commit_id, c.inserted, c.updated, c.deleted, c.rows) for c in incremental]
    assert counts == [(c.commit_id, c.inserted, c.updated, c.deleted, c.rows) for c in table]
    assert counts == [(1, 6, 0, 0, 6), (2, 3, 2, 0, 9), (3, 1, 2, 0, 10), (4, 0, 2, 0, 10)]
    assert [c.commit_time for c in incremental] == [c.commit_time for c in table]
    assert versions(fs, APPEND) == versions(fs, TABLE)
    for c in incremental:  # time travel: every commit reads what the oracle says
        upto = [r for r in source if r[3] <= (T1, T2, T3, T4)[c.commit_id - 1]]
        assert as_rows(fs.read(APPEND, commit=c.commit_id)) == latest(upto)
        assert as_rows(fs.read(TABLE, commit=c.commit_id)) == latest(upto)


def test_a_bad_row_in_a_later_batch_is_blocked(timeline):
    """Strict policy: a batch with a row out of its declared range is not published; the next batch that fixes the
    row (a later ingestion of its key) is published together with the blocked batch's good rows. The snapshot reads
    only the batch: a row removed from the candidate behind fs's back is not recorded as a deletion. The other
    groups of the same runs publish as usual (the block is the group's, not the run's)."""
    runs, name = timeline["runs"], BLOCKED
    assert _group_ok(runs[0][0], name), runs[0][0].to_dict()
    report, audited = runs[1]
    o = report.outcomes[name]
    assert not report.ok and o.status == "blocked" and not o.published, o.to_dict()
    assert any("value" in f and "range" in f for f in o.failures), o.failures
    assert audited[name] == 2
    assert timeline["blocked_commits"] == [1]
    assert timeline["blocked_read"] == latest(V1)
    assert [n for n, other in report.outcomes.items() if other.status not in ("ok", "warn")] == [name]

    report, audited = runs[2]  # the fix, after item 5 was deleted from the candidate
    assert _group_ok(report, name), report.to_dict()
    assert audited[name] == 3  # items 2 (fixed), 7 (blocked before, good) and 8: the batch since T1
    c = timeline["blocked_last"]
    assert (c.commit_id, c.inserted, c.updated, c.deleted, c.rows) == (2, 2, 1, 0, 8)
    assert timeline["blocked_read_fixed"] == latest(V1 + [BAD[1]] + FIXED)


def test_only_incremental_groups_may_compare_one_column(project_copy):
    """A table group whose snapshot compares only some columns would silently drop corrections: refused."""
    from fs_cli.errors import FeatureStoreError

    d = project_copy("table_check_cols", with_seeds=False, engine="duckdb")
    (d / "models" / "feature_groups" / "fg_test_items.sql").write_text(
        "select item_id, cast(event_time as timestamp) as event_time, value, ingested_at from {{ ref('test_items') }}")
    (d / "models" / "feature_groups" / "_test_items.yml").write_text(FG_YAML)
    (d / "snapshots" / "test_items.yml").write_text(SNAPSHOT_YAML)
    drop_demo_models(d)
    add_entity_item(d)
    preparsed(d)
    write_rows(d, V1)
    with pytest.raises(FeatureStoreError) as e:
        FeatureStore(d).catalog.fg("fg_test_items")
    assert "compares only ['ingested_at']" in str(e.value)
    assert "check_cols: all" in str(e.value)


def test_published_snapshots_are_indexed_for_the_batch_lookups_on_postgres(timeline):
    """macros/publish/publish_indexes.sql: on Postgres every published snapshot has an index on its unique key over the
    current versions and one on each validity column (what an incremental publish looks up: its batch's versions,
    the versions opened or closed since the last commit), an incremental group one on its ingestion column (its
    watermark); once each, whatever the number of publishes. DuckDB has
    no index its scans would use: the dispatched default makes none."""
    fs = timeline["fs"]
    with fs.project.warehouse(read_only=True) as wh:
        for name in (REPLACED, APPEND, TABLE, BLOCKED):
            fg = fs.catalog.fg(name)
            schema, table = fg.snapshot_relation.replace('"', "").split(".")[-2:]
            assert wh.scalar("select count(*) from information_schema.tables where table_schema = ? "
                             "and table_name = ?", [schema, table]) == 1  # the names below are the snapshot's
            if timeline["engine"] == "duckdb":
                assert wh.fetchall("select index_name from duckdb_indexes() where schema_name = ? and table_name = ?",
                                   [schema, table]) == []
                continue
            defs = sorted(r[0] for r in wh.fetchall(
                "select indexdef from pg_indexes where schemaname = ? and tablename = ?", [schema, table]))
            keys = ", ".join(fg.key_columns)
            incremental = name != TABLE  # its ingestion column indexed too: the watermark is max() of it
            assert len(defs) == 3 + incremental, (name, defs)
            assert any(f"({keys}) WHERE (dbt_valid_to IS NULL)" in d for d in defs), (name, defs)
            assert any(d.endswith("(dbt_valid_from)") for d in defs) and any(d.endswith("(dbt_valid_to)") for d in defs)
            assert any("(ingested_at) WHERE (dbt_valid_to IS NULL)" in d for d in defs) == incremental, (name, defs)
