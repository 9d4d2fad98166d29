"""The SDK surface (`FeatureStore`), the one door the CLI goes through, on a small project of its own: the demo
published once (DuckDB). Each answer is checked against an independent reading of the warehouse or of another
SDK method that does not share its code path."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import copy_project

from fs_cli import FeatureStore
from fs_cli.errors import FeatureStoreError
from fs_cli.sdk import online_locations, parse_ref

FG = "fg_customer_profile"
FV = "fv_fraud_detection"


@pytest.fixture(scope="module")
def fs(tmp_path_factory) -> FeatureStore:
    d = copy_project(tmp_path_factory.mktemp("sdk") / "proj")
    store = FeatureStore(d)
    report = store.run(materialize=False)
    assert report.ok, report.to_dict()
    return store


def _published(fs: FeatureStore, fg_name: str) -> list[dict]:
    """Oracle: the rows of the group's snapshot that are valid now, read with plain SQL."""
    fg = fs.catalog.fg(fg_name)
    with fs.project.warehouse(read_only=True) as wh:
        cols = [c.name for c in fg.columns]
        sql = (f"select {', '.join(wh.quote(c) for c in cols)} from {fg.snapshot_relation} "
               "where dbt_valid_to is null")
        return [dict(zip(cols, r, strict=True)) for r in wh.fetchall(sql)]


def test_catalog_listing_and_search(fs):
    rows = {r["name"]: r for r in fs.list()}
    assert set(fs.catalog.feature_groups) | set(fs.catalog.feature_views) == set(rows)
    profile = rows[FG]
    assert profile["kind"] == "feature_group"
    assert profile["latest_commit"]["commit_id"] == fs.commits(FG)[-1].commit_id == 1
    described = fs.describe(FG)
    assert {f["name"] for f in described["features"]} <= {c.name for c in fs.catalog.fg(FG).columns}
    hits = fs.search("basket")
    assert hits and all("basket" in " ".join(str(v) for v in h.values()).lower() for h in hits)


def test_read_equals_the_published_snapshot_rows(fs):
    table = fs.read(FG, format="arrow")
    expected = _published(fs, FG)
    assert table.num_rows == len(expected) == fs.commits(FG)[-1].rows
    key = lambda r: repr(sorted(r.items()))  # noqa: E731
    got = [{c: r[c] for c in expected[0]} for r in table.to_pylist()]
    assert sorted(got, key=key) == sorted(expected, key=key)
    assert fs.read(FG, commit=1).shape[0] == len(expected)  # one commit: now and commit 1 agree


def test_contract_and_validation(fs):
    contract = fs.contract(FG)
    declared = {c.name for c in fs.catalog.fg(FG).columns}
    assert declared <= {c["name"] for c in contract["columns"]}
    assert fs.contract_yaml(FG, generated_only=True).startswith(f"# Soda contract of {FG}")
    report = fs.validate(FG)
    assert report.feature_group == FG and report.passed, report.to_dict()
    history = fs.validations(FG, limit=1)
    assert {r["candidate_id"] for r in history} == {report.candidate_id}
    assert all(r["outcome"] in ("fail", "error") for r in fs.validations(FG, failed=True))


def test_materialize_then_online_lookup_equals_the_published_row(fs):
    url, results, warnings = fs.materialize()
    assert url == fs.online_store_url() and not warnings
    online_fgs = {n for n, g in fs.catalog.feature_groups.items() if g.online}
    assert {r.feature_group for r in results} == online_fgs
    assert FG in online_fgs
    # Oracle: the group keeps a history per customer; the online store serves the customer's latest row by
    # (event time, created time), which a row picked at random from the published rows need not be.
    g = fs.catalog.fg(FG)
    rows = _published(fs, FG)
    customer = rows[0]["customer_id"]
    mine = [r for r in rows if r["customer_id"] == customer]
    order = lambda r: (r[g.event_time], r[g.created_time] if g.created_time else 0)  # noqa: E731
    row = max(mine, key=order)
    assert sum(order(r) == order(row) for r in mine) == 1  # the latest row is unambiguous
    assert g.ttl is None or row[g.event_time] >= datetime.now(UTC).replace(tzinfo=None) - g.ttl  # still within TTL: served
    answer = fs.get_online_features([f"{FG}:segment"], {"customer_id": [customer]})
    assert answer["results"][1]["values"] == [row["segment"]]
    assert online_locations(fs)[0] == url
    assert online_locations(None, url)[0] == url  # serving without a project: only a store


def test_training_dataset_lifecycle(fs, tmp_path: Path):
    td = fs.create_training_dataset(FV, split="random:0.8,0.2:3", description="sdk test")
    assert parse_ref(f"{FV}:{td.version}") == (FV, td.version)
    assert [t.version for t in fs.training_datasets(FV)] == [td.version]
    info = fs.training_dataset_info(FV)
    assert (info.version, info.content_hash) == (td.version, td.content_hash)
    table = fs.training_dataset(FV, format="arrow")
    assert table.num_rows == td.rows == sum(td.row_counts.values())
    assert fs.training_dataset(FV, split="train").shape[0] == td.row_counts["train"]
    _, n = fs.export_training_dataset(FV, tmp_path / "td.parquet", split="test")
    assert n == td.row_counts["test"] == pq.read_table(tmp_path / "td.parquet").num_rows


def test_unknown_names_are_user_errors_with_a_fix(fs):
    for call in (lambda: fs.read("fg_nope"), lambda: fs.describe("fg_nope"), lambda: fs.validate("fg_nope"),
                 lambda: fs.training_dataset_info("fv_nope")):
        with pytest.raises(FeatureStoreError) as e:
            call()
        assert e.value.fix
