"""A label spine that is a dbt snapshot is read as of the training dataset's commit time (issue 16, item 4).

A label corrected or arriving after a training dataset was made must not change its reproduction with `--as-of`:
with the spine published by a snapshot, the feature view reads the spine's rows valid at the read instant, as it
does the feature groups. A spine that is a plain model is read live, and the training dataset's metadata says so.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import drop_demo_models, preparsed

from fs_cli import FeatureStore

ITEMS = "item_id,event_time,value\n1,2026-01-01 00:00:00,10.0\n2,2026-01-01 00:00:00,20.0\n"
LABELS_V1 = "item_id,ts,label\n1,2026-01-02 00:00:00,0\n2,2026-01-02 00:00:00,1\n"
# A day later: item 1's label corrected, and a late label for a new example.
LABELS_V2 = LABELS_V1.replace("1,2026-01-02 00:00:00,0", "1,2026-01-02 00:00:00,1") + "2,2026-01-03 00:00:00,0\n"

FG_YAML = """
version: 2
models:
  - name: fg_items
    description: Items.
    config:
      meta:
        fs: {entities: [item], event_time: event_time, online: false, owner: tests, policy: strict}
    columns:
      - {name: item_id, data_type: bigint, description: the item}
      - {name: event_time, data_type: timestamp, description: when}
      - {name: value, data_type: double, description: a value}
"""

SNAPSHOTS_YAML = """
snapshots:
  - name: fg_items_snapshot
    relation: ref('fg_items')
    config: {unique_key: [item_id, event_time], strategy: check, check_cols: all, hard_deletes: new_record}
  - name: labels_snapshot
    relation: ref('stg_labels')
    config: {unique_key: [item_id, ts], strategy: check, check_cols: all, hard_deletes: new_record}
"""

FV_YAML = """
version: 2
models:
  - name: fv_versioned
    description: Labels from a snapshot.
    config:
      meta:
        fs:
          feature_view:
            spine: {model: labels_snapshot, timestamp: ts, label: label}
            features: [{feature_group: fg_items, features: [value]}]
  - name: fv_live
    description: Labels from a plain model.
    config:
      meta:
        fs:
          feature_view:
            spine: {model: stg_labels, timestamp: ts, label: label}
            features: [{feature_group: fg_items, features: [value]}]
"""


@pytest.fixture
def project(project_copy, engine) -> Path:
    d = drop_demo_models(project_copy("spine", with_seeds=False, engine=engine))
    shutil.rmtree(d / "models" / "monitoring")  # views over the online logs: every build would make them for nothing
    (d / "seeds" / "items.csv").write_text(ITEMS)
    (d / "seeds" / "labels.csv").write_text(LABELS_V1)
    fg = d / "models" / "feature_groups"
    (fg / "fg_items.sql").write_text(
        "select cast(item_id as bigint) as item_id, cast(event_time as timestamp) as event_time,"
        " cast(value as {{ dbt.type_float() }}) as value from {{ ref('items') }}\n")
    (fg / "_items.yml").write_text(FG_YAML)
    (d / "models" / "staging" / "stg_labels.sql").write_text(
        "select cast(item_id as bigint) as item_id, cast(ts as timestamp) as ts, cast(label as integer) as label"
        " from {{ ref('labels') }}\n")
    (d / "snapshots" / "snapshots.yml").write_text(SNAPSHOTS_YAML)
    for fv in ("fv_versioned", "fv_live"):
        (d / "models" / "feature_views" / f"{fv}.sql").write_text("{{ feature_store.fs_feature_view() }}\n")
    (d / "models" / "feature_views" / "_views.yml").write_text(FV_YAML)
    text = (d / "dbt_project.yml").read_text()
    (d / "dbt_project.yml").write_text(text.replace(
        "  fs_entities:\n", "  fs_entities:\n    item:\n      join_keys: [item_id]\n"))
    return preparsed(d)


def _publish_labels(fs: FeatureStore) -> None:
    """The user's label pipeline: seed, staging model, snapshot (fs run publishes feature groups, not labels)."""
    res = fs.project.dbt(["build", "--quiet", "--select", "labels", "stg_labels", "labels_snapshot"])
    assert res.success, res.exception


def _labels(fs: FeatureStore, ref: str, version: int) -> list[tuple]:
    t = fs.training_dataset(ref, version=version, format="arrow")
    return sorted((int(r["item_id"]), str(r["ts"]), int(r["label"]), r["value"]) for r in t.to_pylist())


def test_a_snapshot_spine_is_read_as_of_and_a_model_spine_is_marked_live(project):
    fs = FeatureStore(project)
    assert fs.catalog.fv("fv_versioned").resolved()["spine"]["versioned"] is True
    assert fs.catalog.fv("fv_live").resolved()["spine"]["versioned"] is False
    _publish_labels(fs)
    assert fs.run(select=("+fg_items",), materialize=False).ok  # the labels were just built: only the group's lineage
    v1 = fs.create_training_dataset("fv_versioned")
    live1 = fs.create_training_dataset("fv_live")
    assert (v1.spine_read, live1.spine_read) == ("as_of", "live")
    day1 = [(1, "2026-01-02 00:00:00", 0, 10.0), (2, "2026-01-02 00:00:00", 1, 20.0)]
    assert _labels(fs, "fv_versioned", 1) == _labels(fs, "fv_live", 1) == day1

    (project / "seeds" / "labels.csv").write_text(LABELS_V2)  # a correction and a late label
    _publish_labels(fs)
    again = fs.create_training_dataset("fv_versioned", as_of=v1.read_at)
    assert _labels(fs, "fv_versioned", again.version) == day1
    assert again.content_hash == v1.content_hash and again.rows == v1.rows == 2

    now = fs.create_training_dataset("fv_versioned")
    later = [(1, "2026-01-02 00:00:00", 1, 10.0), (2, "2026-01-02 00:00:00", 1, 20.0),
             (2, "2026-01-03 00:00:00", 0, 20.0)]
    assert _labels(fs, "fv_versioned", now.version) == later
    # The plain-model spine has no history: --as-of reads its rows as they are now, and the metadata says so.
    live2 = fs.create_training_dataset("fv_live", as_of=live1.read_at)
    assert _labels(fs, "fv_live", live2.version) == later and live2.spine_read == "live"
    shown = fs.training_dataset_info("fv_live", live2.version).to_dict()
    assert shown["spine_read"] == "live"
