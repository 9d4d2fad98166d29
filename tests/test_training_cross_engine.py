"""The same demo on DuckDB and on Postgres: the same commit counts for every feature group and the same
training-dataset rows (the same content hash; the same rows once numbers are compared at 12 significant digits)."""

from __future__ import annotations

from datetime import datetime

import pytest

from fs_cli import FeatureStore

FV = "fv_fraud_detection"


def _normalized(v):
    if isinstance(v, float):
        return float(f"{v:.12g}")
    if isinstance(v, datetime):
        return v.replace(tzinfo=None)
    return v


@pytest.fixture(scope="module")
def stores(demo_project, demo_project_postgres) -> dict[str, FeatureStore]:
    out = {"duckdb": FeatureStore(demo_project), "postgres": FeatureStore(demo_project_postgres)}
    assert {e: fs.project.engine for e, fs in out.items()} == {"duckdb": "duckdb", "postgres": "postgres"}
    return out


def test_same_commit_counts_for_every_feature_group(stores):
    duck, pg = stores["duckdb"], stores["postgres"]
    fgs = sorted(duck.catalog.feature_groups)
    assert fgs == sorted(pg.catalog.feature_groups) and fgs
    for fg in fgs:
        a = [(c.commit_id, c.inserted, c.updated, c.deleted, c.rows) for c in duck.commits(fg)]
        b = [(c.commit_id, c.inserted, c.updated, c.deleted, c.rows) for c in pg.commits(fg)]
        assert len(a) == 2 and a == b, fg


def test_same_training_dataset_rows_and_content_hash(stores):
    duck, pg = stores["duckdb"], stores["postgres"]
    a, b = duck.training_dataset_info(FV, 1), pg.training_dataset_info(FV, 1)
    assert a.rows == b.rows > 0 and a.row_counts == b.row_counts
    assert [c["name"] for c in a.columns] == [c["name"] for c in b.columns]
    rows_a = duck.training_dataset(FV, version=1, format="arrow").to_pylist()
    rows_b = pg.training_dataset(FV, version=1, format="arrow").to_pylist()
    norm = [[{k: _normalized(v) for k, v in r.items()} for r in rows] for rows in (rows_a, rows_b)]
    assert norm[0] == norm[1]
    assert a.content_hash == b.content_hash
    # exported numbers are doubles in pandas on both engines (DECIMAL included), never Python objects
    for fs in (duck, pg):
        df = fs.training_dataset(FV, version=1)
        numeric = [c["name"] for c in a.columns if c["name"] in ("amount", "credit_limit")]
        assert numeric and all(df[c].dtype == "float64" for c in numeric)
