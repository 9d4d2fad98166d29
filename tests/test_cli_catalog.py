"""The `fs` commands on the published demo: discovery, commit log, time travel, exports; --json parsed."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from fs_cli.cli import main


@pytest.fixture(scope="module")
def fs(demo_project: Path):
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True):
        res = runner.invoke(main, ["--project-dir", str(demo_project), *args], catch_exceptions=False)
        if ok:
            assert res.exit_code == 0, res.output
        return res

    return invoke


def test_list_json(fs):
    rows = json.loads(fs("list", "--json").stdout)
    fgs = {r["name"]: r for r in rows if r["kind"] == "feature_group"}
    assert set(fgs) >= {"fg_customer_transactions", "fg_customer_profile", "fg_merchant_activity"}
    tx = fgs["fg_customer_transactions"]
    assert tx["entities"] == ["customer"] and tx["ttl"] == "2d" and tx["online"] is True
    assert tx["commits"] == 2 and tx["latest_commit"]["commit_id"] == 2
    assert tx["rows"] == tx["latest_commit"]["rows"] > 0


def test_list_table_for_people(fs):
    out = fs("list").stdout
    assert "fg_customer_profile" in out and "feature_group" in out


def test_describe_json_has_features_lineage_and_commits(fs):
    d = json.loads(fs("describe", "fg_customer_profile", "--json").stdout)
    assert d["primary_key"] == ["customer_id"] and d["event_time"] == "profile_updated_at"
    assert [f["name"] for f in d["features"]] == ["country", "segment", "credit_limit", "age_years", "tenure_days"]
    assert all(f["pii"] is False for f in d["features"])
    lineage = {n["name"]: n["type"] for n in d["lineage"]}
    assert lineage.get("stg_customers") == "model" and lineage.get("customers") == "seed"
    assert d["sources"] == ["customers"]
    assert [c["commit_id"] for c in d["commit_log"]] == [1, 2]


def test_search_finds_features_by_description(fs):
    hits = json.loads(fs("search", "basket", "--json").stdout)
    assert {"kind": "feature", "feature_group": "fg_customer_transactions", "name": "tx_avg_amount_30d"}.items() <= {
        k: v for k, v in hits[0].items() if k in ("kind", "feature_group", "name")}.items()
    assert json.loads(fs("search", "no-such-thing-xyz", "--json").stdout) == []
    tagged = json.loads(fs("search", "merchant", "--json").stdout)
    assert any(h["kind"] == "feature_group" and h["name"] == "fg_merchant_activity" for h in tagged)


def test_commits_json(fs):
    log = json.loads(fs("commits", "fg_customer_transactions", "--json").stdout)
    assert [c["commit_id"] for c in log] == [1, 2]
    first, second = log
    assert first["inserted"] == first["rows"] and first["updated"] == first["deleted"] == 0
    # Day 2 brings new days (inserts), late rows and corrections (updates) and erasures (deletes).
    assert second["inserted"] > 0 and second["updated"] > 0 and second["deleted"] > 0
    assert second["rows"] == first["rows"] + second["inserted"] - second["deleted"]
    # both published by `fs run` through the gate of a strict group: a passing validation run is linked to each
    assert [(c["validation"], c["validated"]) for c in log] == [("passed", True), ("passed", True)]
    table = fs("commits", "fg_customer_transactions").stdout
    assert "validation" in table and "passed" in table and "no passing validation" not in table


def test_read_commit_vs_now(fs, tmp_path: Path):
    log = json.loads(fs("commits", "fg_customer_transactions", "--json").stdout)
    out1 = tmp_path / "c1.parquet"
    fs("read", "fg_customer_transactions", "--commit", "1", "--out", str(out1))
    assert pq.read_table(out1).num_rows == log[0]["rows"]
    out2 = tmp_path / "now.csv"
    fs("read", "fg_customer_transactions", "--out", str(out2))
    assert len(out2.read_text().strip().splitlines()) == log[1]["rows"] + 1
    rows = json.loads(fs("read", "fg_customer_profile", "--as-of", log[1]["commit_time"], "--limit", "3",
                         "--json").stdout)
    assert len(rows) == 3 and set(rows[0]) == {"customer_id", "profile_updated_at", "country", "segment",
                                                "credit_limit", "age_years", "tenure_days"}


def test_errors_are_clear_and_exit_2(fs):
    res = fs("describe", "fg_customer", ok=False)
    assert res.exit_code == 2 and "unknown feature group 'fg_customer'" in res.stderr and "did you mean" in res.stderr
    res = fs("read", "fg_customer_profile", "--commit", "99", ok=False)
    assert res.exit_code == 2 and "no commit 99" in res.stderr
    res = fs("read", "fg_customer_profile", "--out", "x.xlsx", ok=False)
    assert res.exit_code == 2 and "use a .parquet or .csv" in res.stderr


def test_help_tells_the_story(fs):
    out = fs("--help").stdout
    for word in ("run", "list", "describe", "search", "commits", "read"):
        assert word in out
    assert "write-audit" in fs("run", "--help").stdout or "publish" in fs("run", "--help").stdout
