"""dbt configuration set once in dbt_project.yml: the snapshot strategy every feature group is published with
reaches each snapshot (the catalog reads the resolved config from the manifest), and a snapshot that overrides it
is still refused by the catalog."""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO, copy_project

from fs_cli import FeatureStore
from fs_cli.errors import FeatureStoreError

PUBLISHING = {"strategy": "check", "check_cols": "all", "hard_deletes": "new_record"}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return copy_project(tmp_path_factory.mktemp("dbt_config") / "proj")


def test_shared_snapshot_config_lives_in_dbt_project_yml_only():
    shared = yaml.safe_load((REPO / "dbt_project.yml").read_text())["snapshots"]["feature_store"]
    assert {k.lstrip("+"): v for k, v in shared.items() if k.lstrip("+") in PUBLISHING} == PUBLISHING
    for snap in yaml.safe_load((REPO / "snapshots" / "feature_groups.yml").read_text())["snapshots"]:
        assert not set(snap.get("config", {})) & set(PUBLISHING), snap["name"]  # not repeated per snapshot


def test_every_feature_group_snapshot_resolves_the_shared_config(project):
    fs = FeatureStore(project)
    catalog = fs.catalog  # the catalog validates each group's snapshot config: loading is the first check
    nodes = fs.project.manifest().nodes
    assert catalog.feature_groups
    for fg in catalog.feature_groups.values():
        cfg = nodes[fg.snapshot_unique_id].config.to_dict()
        assert {k: cfg.get(k) for k in PUBLISHING} == PUBLISHING, fg.name
        assert set(cfg["unique_key"]) == set(fg.key_columns)


def test_a_snapshot_overriding_the_shared_config_is_refused(tmp_path):
    d = copy_project(tmp_path / "proj")
    path = d / "snapshots" / "feature_groups.yml"
    doc = yaml.safe_load(path.read_text())
    doc["snapshots"][0]["config"]["hard_deletes"] = "ignore"  # its own config wins over dbt_project.yml
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(FeatureStoreError) as e:
        _ = FeatureStore(d).catalog
    assert f"snapshot {doc['snapshots'][0]['name']} does not record deletes" in str(e.value)


def test_no_dead_paths_in_dbt_project_yml():
    cfg = yaml.safe_load((REPO / "dbt_project.yml").read_text())
    for key in ("model-paths", "seed-paths", "snapshot-paths", "macro-paths", "test-paths", "analysis-paths"):
        for p in cfg.get(key, []):
            assert (REPO / p).is_dir(), f"{key}: {p} does not exist"
