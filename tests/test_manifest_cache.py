"""Read-only commands reuse the manifest dbt last wrote while the project is unchanged, and never a stale one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fs_cli import FeatureStore

PROBE = """
import json, sys
from fs_cli import FeatureStore
rows = FeatureStore(sys.argv[1]).list()
print(json.dumps({"dbt_imported": "dbt.cli.main" in sys.modules or "dbt.parser.manifest" in sys.modules,
                  "descriptions": {r["name"]: r["description"] for r in rows}}))
"""


def _probe(project: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, str(project)], capture_output=True, text=True, check=True,
                         timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def project(project_copy) -> Path:
    d = project_copy("cache")
    FeatureStore(d).list()  # the first command parses and records the fingerprint
    return d


def test_unchanged_project_lists_without_dbt(project):
    first = _probe(project)
    assert first["dbt_imported"] is False
    assert first["descriptions"]["fg_customer_profile"]


def test_an_edited_yaml_is_seen_by_the_next_command(project):
    yml = project / "models" / "feature_groups" / "_feature_groups.yml"
    text = yml.read_text()
    new_text = text.replace("name: fg_customer_profile\n    description: ",
                            "name: fg_customer_profile\n    description: EDITED ", 1)
    assert new_text != text
    yml.write_text(new_text)
    after = _probe(project)
    assert after["dbt_imported"] is True  # the change was detected: dbt parsed again
    assert after["descriptions"]["fg_customer_profile"].startswith("EDITED ")
    again = _probe(project)  # and the new parse is what the next command reuses
    assert again == {**after, "dbt_imported": False}


def test_another_target_or_vars_miss_the_cache(project, monkeypatch):
    from fs_cli import manifest_cache
    from fs_cli.project import Project

    assert manifest_cache.load(Project(project)) is not None
    assert manifest_cache.load(Project(project, vars={"demo_data_cutoff": "2026-01-02 00:00:00"})) is None
    monkeypatch.setenv("FS_SOMETHING_ELSE", "1")  # profile/env_var inputs are part of the fingerprint
    assert manifest_cache.load(Project(project)) is None
