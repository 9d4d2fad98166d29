"""Shared fixtures: throw-away copies of the project, each with its own warehouse file."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("SODA_CORE_TELEMETRY_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Tests never touch the user's warehouse or online store: every project copy uses its own target/.
for _var in ("FS_DUCKDB_PATH", "FS_PROJECT_DIR", "FS_TARGET", "FS_ONLINE_STORE"):
    os.environ.pop(_var, None)

REPO = Path(__file__).resolve().parent.parent
PROJECT_FILES = ["dbt_project.yml", "profiles.yml"]
PROJECT_DIRS = ["models", "snapshots", "macros", "seeds", "tests/dbt", "analyses"]


def copy_project(dst: Path, with_seeds: bool = True) -> Path:
    """A copy of the repo's dbt project in `dst` (no target/, no venv)."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in PROJECT_FILES:
        shutil.copy(REPO / f, dst / f)
    for d in PROJECT_DIRS:
        if (REPO / d).is_dir():
            ignore = shutil.ignore_patterns("*.py", "__pycache__") if d == "seeds" or not with_seeds else None
            if d == "seeds" and not with_seeds:
                (dst / d).mkdir(parents=True, exist_ok=True)
                continue
            shutil.copytree(REPO / d, dst / d, ignore=ignore, dirs_exist_ok=True)
    return dst


@pytest.fixture
def project_copy(tmp_path: Path, monkeypatch) -> Callable[..., Path]:
    """Factory: a fresh project copy under tmp_path (its warehouse: <copy>/target/feature_store.duckdb)."""

    def make(name: str = "proj", with_seeds: bool = True) -> Path:
        d = copy_project(tmp_path / name, with_seeds=with_seeds)
        return d

    return make


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory) -> Path:
    """The demo, built and published twice (day 1 with cutoff 2026-01-15, then day 2), once per test worker;
    training dataset fv_fraud_detection:1 was created between the two publishes."""
    from fs_cli import FeatureStore

    d = copy_project(tmp_path_factory.mktemp("demo") / "proj")  # warehouse: d/target/feature_store.duckdb
    r1 = FeatureStore(d, vars={"demo_data_cutoff": "2026-01-15 00:00:00"}).run(materialize=False)
    assert r1.ok, r1.to_dict()
    fs = FeatureStore(d)
    # Training dataset v1, made right after commit 1: test_training_datasets.py proves --as-of reproduces it.
    fs.create_training_dataset("fv_fraud_detection", split="random:0.8,0.2:7", description="right after commit 1")
    r2 = fs.run(materialize=False)
    assert r2.ok, r2.to_dict()
    return d
