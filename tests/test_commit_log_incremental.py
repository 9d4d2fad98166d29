"""The commit log's incremental count (fs_cli/commits.py `_new_commits`: only the versions a new instant opened or
closed, totals from the previous logged commit) equals the full recount of the snapshot (`_recount_commits`).

Two oracles: real publishes (`fs run` and plain `dbt snapshot`, inserts, updates, hard deletes, a deleted key that
comes back) on both engines, and generated snapshot histories written directly (hypothesis), logged at random
points, including closes without a new version (`hard_deletes: invalidate`) and several unlogged instants at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pipeline_commits import make_items_project, write_rows

from fs_cli import FeatureStore
from fs_cli.commits import _EPOCH, _recount_commits, list_commits, sync_commits

V1 = [(1, "2026-01-01 00:00:00", 1.0), (2, "2026-01-01 00:00:00", 2.0), (3, "2026-01-01 00:00:00", 3.0),
      (4, "2026-01-02 00:00:00", 4.0)]
V2 = [(1, "2026-01-01 00:00:00", 1.0), (3, "2026-01-01 00:00:00", 30.0), (4, "2026-01-02 00:00:00", 4.0),
      (5, "2026-01-02 00:00:00", 5.0)]  # key 2 deleted, key 3 updated, key 5 inserted
V3 = [(1, "2026-01-01 00:00:00", 1.0), (2, "2026-01-01 00:00:00", 2.0), (5, "2026-01-02 00:00:00", 50.0),
      (6, "2026-01-03 00:00:00", 6.0)]  # key 2 back, keys 3 and 4 deleted, key 5 updated, key 6 inserted
V4 = [(2, "2026-01-01 00:00:00", 20.0), (6, "2026-01-03 00:00:00", 6.0), (7, "2026-01-03 00:00:00", 7.0)]


def logged(fs, name: str) -> list[tuple]:
    return [(c.commit_time, c.inserted, c.updated, c.deleted, c.rows) for c in fs.commits(name)]


def recounted(fs, name: str) -> list[tuple]:
    fg = fs.catalog.fg(name)
    with fs.project.warehouse(read_only=True) as wh:
        return [(t, int(i), int(u), int(d), int(n)) for t, i, u, d, n in _recount_commits(wh, fg, _EPOCH)]


def test_incremental_log_equals_recount_on_real_publishes(project_copy, engine: str):
    d = make_items_project(project_copy, engine)
    fs = FeatureStore(d)
    write_rows(d, V1)
    assert fs.run().ok  # the first log: the recount itself
    write_rows(d, V2)
    assert fs.run().ok  # one new instant, counted incrementally
    # Two publishes by plain dbt, then one sync: two unlogged instants counted at once from commit 2.
    write_rows(d, V3)
    assert fs.project.dbt(["build", "--quiet"]).success
    write_rows(d, V4)
    assert fs.project.dbt(["build", "--quiet"]).success
    log = logged(fs, "fg_test_items")
    assert [entry[1:] for entry in log] == [(4, 0, 0, 4), (1, 1, 1, 4), (2, 1, 2, 4), (1, 1, 2, 3)]
    assert log == recounted(fs, "fg_test_items")


# -- generated histories ---------------------------------------------------------------------------------------
T0 = datetime(2026, 1, 1)
SNAPSHOT = "fs_test_snap"

# One publish: per key, what happens to it (absent keys stay absent; present keys may stay, change or go).
actions = st.sampled_from(["keep", "keep", "update", "delete", "invalidate"])
publish = st.tuples(st.dictionaries(st.integers(0, 11), actions, max_size=12), st.booleans())
histories = st.lists(publish, min_size=1, max_size=7)


def snapshot_rows(history: list) -> tuple[list[tuple], list[bool]]:
    """dbt snapshot rows (item_id, value, dbt_valid_from, dbt_valid_to, dbt_is_deleted) of a history, and per publish
    whether the log is synced after it. A key's action on a live key: keep, update (new version, old one closed),
    delete (`new_record`: a deletion version), invalidate (`invalidate`: closed, no new version); on an absent key
    (never seen, deleted or invalidated) anything but keep (re)inserts it."""
    rows: list[list] = []
    current: dict[int, int] = {}  # key -> index of its current version (live or deletion record)
    syncs = []
    for step, (changes, sync) in enumerate(history, start=1):
        t = T0 + timedelta(hours=step)
        for key, action in sorted(changes.items()):
            cur = current.get(key)
            live = cur is not None and rows[cur][4] == "False"
            if action == "keep":
                continue
            if cur is not None:
                rows[cur][3] = t  # the current version (live, or a deletion record) closes at t
            if live and action == "invalidate":
                del current[key]
                continue
            deleted = "True" if live and action == "delete" else "False"
            rows.append([key, float(step * 100 + key), t, None, deleted])
            current[key] = len(rows) - 1
        syncs.append(sync)
    return [tuple(r) for r in rows], syncs


@pytest.fixture
def store(project_copy, engine: str):
    return FeatureStore(project_copy("p", with_seeds=False, engine=engine))


def write_snapshot(wh, rows: list[tuple], upto: datetime) -> None:
    """The snapshot as it stood at `upto`: versions opened by then, closes after it not yet written."""
    rel = f"main_snapshots.{SNAPSHOT}"
    wh.ensure_schema("main_snapshots")
    wh.execute(f"drop table if exists {rel}")
    wh.execute(f"""create table {rel} (item_id {wh.type("bigint")}, value {wh.type("double")},
                   dbt_valid_from {wh.type("timestamp")}, dbt_valid_to {wh.type("timestamp")},
                   dbt_is_deleted {wh.type("text")})""")
    for key, value, start, end, deleted in rows:
        if start <= upto:
            wh.execute(f"insert into {rel} values (?, ?, ?, ?, ?)",
                       [key, value, start, end if end is not None and end <= upto else None, deleted])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories)
def test_incremental_log_equals_recount_on_generated_histories(store, history):
    rows, syncs = snapshot_rows(history)
    fg = SimpleNamespace(name="fg_gen", key_columns=["item_id"], snapshot_schema="main_snapshots",
                         snapshot_name=SNAPSHOT, snapshot_relation=f"main_snapshots.{SNAPSHOT}")
    with store.project.warehouse() as wh:
        if wh.relation_exists("fs_meta", "commits"):  # a fresh log per generated history
            wh.execute("delete from fs_meta.commits where feature_group = 'fg_gen'")
        for step, sync in enumerate(syncs, start=1):
            if sync or step == len(syncs):
                write_snapshot(wh, rows, T0 + timedelta(hours=step))
                sync_commits(wh, fg)
        log = [(c.commit_time, c.inserted, c.updated, c.deleted, c.rows) for c in list_commits(wh, fg, False)]
        full = [(t, int(i), int(u), int(d), int(n)) for t, i, u, d, n in _recount_commits(wh, fg, _EPOCH)]
    assert log == full


# -- drift: the reference and detection windows hold only the columns the statistics read -----------------------
def test_drift_on_narrow_windows_equals_drift_on_whole_rows(project_copy, engine: str):
    """feature_group_drift copies only the event time and the drifting features into its windows; every statistic
    equals the one computed on windows of whole rows (what it copied before), for every reference mode."""
    from fs_cli.transforms.macros import project_macro_dir
    from fs_cli.validation import drift
    from fs_cli.validation.expectations import parse_expectations

    d = make_items_project(project_copy, engine)
    fs = FeatureStore(d)
    rows = [(i, f"2026-01-{1 + i % 20:02d} {i % 24:02d}:00:00", float((i * 37) % 101)) for i in range(300)]
    write_rows(d, rows)
    assert fs.run().ok
    write_rows(d, [(i, t, v * 1.5 + (i % 7)) for i, t, v in rows] + [(1000 + i, "2026-01-20 12:00:00", 3.0 * i)
                                                                    for i in range(40)])
    assert fs.project.dbt(["build", "--quiet", "--exclude", "resource_type:snapshot"]).success
    fg = fs.catalog.fg("fg_test_items")
    commit_time = fs.commits("fg_test_items")[0].commit_time
    macro_dir = project_macro_dir(fs.project)
    with fs.project.warehouse() as wh:
        for reference in ("previous_window", "last_commit", "commit"):
            exp = parse_expectations(fg)
            exp.drift.reference = reference
            narrow = {r.column: r.metrics for r in drift.feature_group_drift(wh, fg, exp, True, commit_time,
                                                                             macro_dir=macro_dir)}
            ref, cur, _ = drift._windows(wh, fg, exp.drift, commit_time)  # whole rows
            try:
                whole = {c: drift.column_drift(wh, ref, cur, c, True, macro_dir=macro_dir) for c in narrow}
            finally:
                for name in ("fs_drift_cur", "fs_drift_ref"):
                    wh.execute(f"drop table if exists {wh.temp_relation(name)}")
            assert set(narrow) == {"value"}, reference
            for column, stats in whole.items():
                assert stats["n_ref"] > 30 and stats["n_cur"] > 30, (reference, stats)
                assert {k: narrow[column][k] for k in stats} == stats, reference
