"""`fs erase` (issue 17, item 11): after erasure no command, BI view, training dataset, online lookup or log returns the
erased entity's values; everything else is untouched row for row; commit counts hold; the event is recorded; the next
publish does not bring the values back.

On the published demo (two commits, training dataset v1): customer 35 was deleted upstream between the commits (its
commit-1 rows and its deletion marker carried values), customer 2 is live (still in the sources, and online).
The oracle is independent of fs: every relation of the warehouse with a `customer_id` column (information_schema),
the JSONL files parsed here, the HTTP service in-process.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from online_support import REDIS_URL, redis_available

from fs_cli import FeatureStore
from fs_cli.cli import main
from fs_cli.errors import FeatureStoreError
from fs_cli.monitoring.logs import PredictionLog
from fs_cli.online.backends import open_store
from fs_cli.online.push_log import PushLog, push_dir_for
from fs_cli.server import create_app

ERASED = {2, 35}
OTHER = 7
CUSTOMER_GROUPS = ["fg_customer_profile", "fg_customer_transactions"]
SERVED = ["fg_customer_profile:segment", "fg_customer_profile:credit_limit"]
MATERIALIZE_END = "2026-01-31 23:00:00"
# Columns that may keep a value on an erased row: keys, event/commit times, the split, snapshot bookkeeping.
KEPT = {"customer_id", "merchant_id", "feature_time", "profile_updated_at", "transaction_at", "split", "dbt_scd_id",
        "dbt_updated_at", "dbt_valid_from", "dbt_valid_to", "dbt_is_deleted", "commit_id", "valid_from", "valid_to",
        "deleted"}


def _norm(v: Any) -> Any:
    return float(v) if hasattr(v, "as_tuple") else v  # Decimal (Postgres numeric) vs float


def customer_relations(fs: FeatureStore) -> dict[str, list[dict[str, Any]]]:
    """Every relation (table or view) of the warehouse with a customer_id column, except the upstream sources (seeds
    and staging: deleting the customer there is the user's job) -> its rows, sorted."""
    out = {}
    with fs.project.warehouse(read_only=True) as wh:
        rels = wh.fetchall("select distinct table_schema, table_name from information_schema.columns "
                           "where column_name = 'customer_id' "
                           "and table_schema not in ('pg_catalog', 'information_schema')")
        for schema, name in sorted(rels):
            if schema.endswith("_raw") or name.startswith("stg_"):
                continue
            res = wh.execute(f"select * from {wh.relation(schema, name)}")
            rows = [{c: _norm(v) for c, v in zip(res.columns, r, strict=True)} for r in res.fetchall()]
            out[f"{schema}.{name}"] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))
    return out


def reads(fs: FeatureStore) -> dict[str, Any]:
    """What the commands answer: every commit of the customer groups, a read as of each commit time, the commit logs,
    the training dataset."""
    out: dict[str, Any] = {}
    for fg in CUSTOMER_GROUPS:
        commits = fs.commits(fg)
        out[f"commits:{fg}"] = [(c.commit_id, c.commit_time, c.inserted, c.updated, c.deleted, c.rows)
                                for c in commits]
        for c in commits:
            out[f"{fg}@{c.commit_id}"] = fs.read(fg, commit=c.commit_id, format="arrow").to_pylist()
            out[f"{fg}@as_of:{c.commit_id}"] = fs.read(fg, as_of=str(c.commit_time), format="arrow").to_pylist()
        out[f"{fg}@now"] = fs.read(fg, format="arrow").to_pylist()
    out["td"] = fs.training_dataset("fv_fraud_detection", 1, format="arrow").to_pylist()
    return out


def log_lines(state_dir: Path) -> dict[str, list[dict]]:
    return {kind: [orjson.loads(x) for f in sorted((state_dir / kind).glob("*.jsonl")) for x in f.open("rb")]
            for kind in ("served_vectors", "predictions")}


def served_customers(line: dict) -> list[Any]:
    names = line["response"]["metadata"]["feature_names"]
    return line["response"]["results"][names.index("customer_id")]["values"]


def log_tables(fs: FeatureStore) -> dict[str, list[dict]]:
    out = {}
    with fs.project.warehouse(read_only=True) as wh:
        for t in ("served_vectors_log", "served_vectors_log_values", "predictions_log", "predictions_log_values"):
            res = wh.execute(f"select * from fs_meta.{t}")
            out[t] = sorted((dict(zip(res.columns, r, strict=True)) for r in res.fetchall()), key=repr)
    return out


def logged_customer(table: str, row: dict) -> Any:
    """The customer a log-table row is about (None for a values row of another name)."""
    if table.endswith("_values"):
        return row["value_text"] if (row["kind"], row["name"]) == ("entity", "customer_id") else None
    return json.loads(row["entity"]).get("customer_id")


def http_lookup(store_url: str, customers: list[int], log_dir: Path | None = None) -> dict:
    store = open_store(store_url)
    try:
        app = create_app(store, log_dir=log_dir)
        with TestClient(app) as client:
            r = client.post("/get-online-features", json={"features": SERVED, "entities": {"customer_id": customers}})
            assert r.status_code == 200, r.text
            return r.json()
    finally:
        store.close()


def by_customer(answer: dict) -> dict[Any, dict[str, tuple]]:
    names = answer["metadata"]["feature_names"]
    res = answer["results"]
    keys = res[names.index("customer_id")]["values"]
    return {k: {n: (res[j]["values"][i], res[j]["statuses"][i]) for j, n in enumerate(names) if n != "customer_id"}
            for i, k in enumerate(keys)}


def erased_row(row: dict[str, Any]) -> bool:
    return row.get("customer_id") in ERASED


def split_rows(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    return [r for r in rows if erased_row(r)], [r for r in rows if not erased_row(r)]


@pytest.fixture(scope="module")
def erased(demo_copy_on_engine):
    """The demo copy with an online store, served-vector and prediction logs; customers 2 and 35 erased by the CLI."""
    engine, d = demo_copy_on_engine
    fs = FeatureStore(d)
    fs.materialize(end=MATERIALIZE_END)
    url, state = fs.online_store_url(), fs.project.state_dir
    log_dir = state / "served_vectors"
    http_lookup(url, [2, OTHER], log_dir=log_dir)
    http_lookup(url, [2], log_dir=log_dir)
    deadline = time.time() + 60
    while time.time() < deadline and len(log_lines(state)["served_vectors"]) < 2:
        time.sleep(0.1)
    PredictionLog(state).write([
        {"logged_at": "2026-02-01T00:00:00Z", "row_id": uuid.uuid4().hex, "model": "fraud_model:1",
         "feature_view": "fv_fraud_detection", "training_dataset_version": 1, "entity": {"customer_id": c,
                                                                                        "merchant_id": 3},
         "timestamp": "2026-01-20T10:00:00", "features": {"segment": f"seg-{c}", "credit_limit": 1000.0 + c},
         "prediction": 0, "score": 0.1} for c in (35, OTHER, 2)])
    with fs.project.warehouse() as wh:  # failing rows the gate kept as samples hold values too
        wh.execute("insert into fs_meta.validation_results (feature_group, candidate_id, check_name, kind, outcome, "
                   "samples, validated_at) values (?, ?, ?, ?, ?, ?, ?)",
                   ["fg_customer_profile", "test-erasure", "samples", "expectation", "fail",
                    json.dumps([{"customer_id": 35, "segment": "leaky"}, {"customer_id": OTHER, "segment": "kept"}]),
                    datetime(2026, 2, 1)])
    push_log = PushLog(push_dir_for(state))  # unpublished pushed rows (the service's /push) hold values too
    push_log.append("fg_customer_profile", [
        {"id": f"req:{c}", "pushed_at": "2026-02-01T00:00:00", "row": {"customer_id": c, "segment": f"pushed-{c}"}}
        for c in (2, OTHER)])
    loaded = fs.sync_inference_logs()
    assert loaded.served_vectors == 3 and loaded.predictions == 3, loaded
    before = {"relations": customer_relations(fs), "reads": reads(fs), "logs": log_lines(state),
              "log_tables": log_tables(fs), "online": by_customer(fs.get_online_features(SERVED, {"customer_id": [2, OTHER]}))}
    result = CliRunner().invoke(main, ["--project-dir", str(d), "erase", "customer=35", "customer=2", "--yes",
                                       "--reason", "ticket-9", "--actor", "dpo@example.com", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    fs = FeatureStore(d)
    after = {"relations": customer_relations(fs), "reads": reads(fs), "logs": log_lines(state),
             "log_tables": log_tables(fs),
             "online": by_customer(fs.get_online_features(SERVED, {"customer_id": [2, OTHER]})),
             "http": by_customer(http_lookup(url, [2, 35, OTHER])),
             "push_log": push_log.read("fg_customer_profile")[0]}
    push_log.path("fg_customer_profile").unlink()  # not published by the re-run below: this test is about erasure
    return engine, d, fs, before, after, report


def test_no_relation_or_read_returns_the_values(erased):
    _, _, _, before, after, _ = erased
    assert set(before["relations"]) == set(after["relations"])
    seen = set()
    for rel, rows in before["relations"].items():
        gone_before, kept_before = split_rows(rows)
        gone_after, kept_after = split_rows(after["relations"][rel])
        assert kept_after == kept_before, f"{rel}: other customers changed"
        assert len(gone_after) == len(gone_before), f"{rel}: erased rows must be kept (commit counts)"
        for r in gone_after:
            leaked = {c: v for c, v in r.items() if c not in KEPT and v is not None}
            assert not leaked, f"{rel} still returns values of customer {r['customer_id']}: {leaked}"
        # the erased customers' keys and times are the same rows as before
        key = sorted(json.dumps({c: v for c, v in r.items() if c in KEPT}, default=str) for r in gone_before)
        assert key == sorted(json.dumps({c: v for c, v in r.items() if c in KEPT}, default=str) for r in gone_after)
        if gone_before:
            seen.add(rel.rsplit(".", 1)[1])
    # the oracle saw the erased customers in snapshots, BI views (published / history), candidates, the TD
    assert {"fg_customer_profile_snapshot", "fg_customer_transactions_snapshot", "fg_customer_profile",
            "fg_customer_transactions", "fv_fraud_detection_v1"} <= seen
    # customer 35's commit-1 rows and deletion marker carried values before
    assert any(r["customer_id"] == 35 and r.get("segment") is not None for rel, rows in before["relations"].items()
               if rel.endswith("fg_customer_profile_snapshot") for r in rows)

    for name, value in before["reads"].items():
        got = after["reads"][name]
        if name.startswith("commits:"):
            assert got == value, f"{name}: commit ids and counts must not change"
            continue
        gone_before, kept_before = split_rows(value)
        gone_after, kept_after = split_rows(got)
        assert kept_after == kept_before and len(gone_after) == len(gone_before), name
        assert all(v is None for r in gone_after for c, v in r.items() if c not in KEPT), name
    assert any(split_rows(before["reads"]["fg_customer_profile@1"])[0])  # the erased were readable at commit 1


def test_online_store_and_service(erased):
    _, _, _, before, after, _ = erased
    assert before["online"][2]["segment"][1] == "PRESENT"
    assert after["online"][OTHER] == before["online"][OTHER]
    assert after["http"][OTHER] == before["online"][OTHER]
    for who in (after["online"][2], after["http"][2], after["http"][35]):
        assert all(v is None and status != "PRESENT" for v, status in who.values()), who


def test_logs_files_and_tables(erased):
    _, d, fs, before, after, _ = erased
    served_before = [c for line in before["logs"]["served_vectors"] for c in served_customers(line)]
    served_after = [c for line in after["logs"]["served_vectors"] for c in served_customers(line)]
    assert sorted(served_before) == [2, 2, OTHER] and served_after == [OTHER]
    other_line = [x for x in after["logs"]["served_vectors"] if OTHER in served_customers(x)][0]
    assert by_customer(other_line["response"])[OTHER] == before["online"][OTHER]
    assert [p["entity"]["customer_id"] for p in after["logs"]["predictions"]] == [OTHER]
    text = b"".join(f.read_bytes() for f in fs.project.state_dir.rglob("*.jsonl"))
    assert b"seg-35" not in text and b"seg-2\"" not in text and b"1035.0" not in text

    tables = after["log_tables"]
    assert len(tables["served_vectors_log"]) == 1 and len(tables["predictions_log"]) == 1
    for t, rows in tables.items():
        assert {str(c) for c in (logged_customer(t, r) for r in before["log_tables"][t])} >= {"2", "35", "7"} - (
            {"35"} if t.startswith("served") else set())
        assert {str(logged_customer(t, r)) for r in rows} <= {"7", "None"}, t
        assert [r for r in before["log_tables"][t] if str(logged_customer(t, r)) == "7"] == [
            r for r in rows if str(logged_customer(t, r)) == "7"], f"{t}: another customer's rows changed"
        kept_ids = {r["row_id"] for r in tables[t.replace("_values", "")]}
        assert {r["row_id"] for r in rows} == kept_ids, f"{t}: values of erased rows left behind"
    # `fs logs sync` neither re-reads nor skips lines: nothing is added back
    again = FeatureStore(d).sync_inference_logs()
    assert again.served_vectors == 0 and again.predictions == 0
    assert log_tables(FeatureStore(d)) == tables


def test_push_log(erased):
    _, _, _, _, after, report = erased
    assert [r["row"]["customer_id"] for r in after["push_log"]] == [OTHER]
    assert after["push_log"][0]["row"]["segment"] == f"pushed-{OTHER}"
    assert report["locations"]["push_log:fg_customer_profile"] == 1


def test_event_recorded_without_values(erased):
    _, d, fs, _, _, report = erased
    assert report["entities"] == {"customer": 2}
    assert report["locations"]["snapshot:fg_customer_profile"] >= 3
    assert report["still_upstream"] and "fg_customer_profile" in " ".join(report["warnings"])
    events = fs.erasures()
    assert len(events) == 1
    e = events[0]
    assert (e["entity"], e["key_count"], e["actor"], e["reason"]) == ("customer", 2, "dpo@example.com", "ticket-9")
    assert e["locations"] == report["locations"] and len(e["keys_sha256"]) == 64
    with fs.project.warehouse(read_only=True) as wh:
        samples = wh.scalar("select samples from fs_meta.validation_results where candidate_id = 'test-erasure'")
    assert json.loads(samples) == [{"customer_id": OTHER, "segment": "kept"}]
    assert report["locations"]["validation_samples"] == 1
    listed = CliRunner().invoke(main, ["--project-dir", str(d), "erase", "--list", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout)[0]["erasure_id"] == report["erasure_id"]
    with fs.project.warehouse(read_only=True) as wh:
        stored = repr(wh.fetchall("select * from fs_meta.erasures"))
    assert "platinum" not in stored and "standard" not in stored  # no feature values in the record


def test_republish_keeps_the_erasure(erased):
    """Customer 2 is still in the sources: `fs run` rebuilds its rows with values, the publish redacts them again;
    plain `dbt snapshot` too. No new commit, nothing returns."""
    _, d, fs, before, after, _ = erased
    report = fs.run(select=("fg_customer_profile",), materialize=False)
    assert report.ok, report.to_dict()
    fg = fs.catalog.fg("fg_customer_profile")
    with fs.project.warehouse() as wh:  # a source change reaching the candidate outside fs run
        wh.execute(f"update {fg.relation} set segment = 'leak' where customer_id = 2")
    assert fs.project.dbt(["snapshot", "--select", "fg_customer_profile_snapshot"]).success
    fs = FeatureStore(d)
    assert reads(fs)["commits:fg_customer_profile"] == before["reads"]["commits:fg_customer_profile"]
    now = customer_relations(fs)
    for rel, rows in now.items():
        if "fg_customer_profile" in rel and "candidates" not in rel:
            assert rows == after["relations"][rel], rel


def test_bad_input_changes_nothing(erased):
    _, d, fs, _, _, _ = erased
    def state() -> tuple:
        with fs.project.warehouse(read_only=True) as wh:
            return (sorted(wh.fetchall("select * from fs_meta.erased_keys"), key=repr),
                    fs.read("fg_customer_profile", commit=1, format="arrow").to_pylist(),
                    fs.read("fg_customer_transactions", format="arrow").num_rows)

    before = state()
    for args, words in ((["customer=999999"], "no published or candidate row"),
                        (["client=42"], "unknown entity 'client'"),
                        (["customer="], "key value is missing"),
                        (["customer"], "is not ENTITY=KEY"),
                        (["customer=7", "customer=abc"], "customer=abc")):
        with pytest.raises(FeatureStoreError, match=words):
            fs.erase(args)
    for args, words in ((["customer=999999"], "customer=999999: no published or candidate row"),
                        (["client=42"], "unknown entity")):
        cli = CliRunner().invoke(main, ["--project-dir", str(d), "erase", *args, "--yes"])
        assert cli.exit_code == 2 and words in " ".join(cli.output.split()), cli.output
    assert state() == before
    assert len(fs.erasures()) == 1


def test_redis_online_store(erased):
    _, d, fs, _, _, _ = erased
    if not redis_available():
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    prefix = f"fs_test_{uuid.uuid4().hex[:12]}"
    import os

    old = os.environ.get("FS_ONLINE_PREFIX")
    os.environ["FS_ONLINE_PREFIX"] = prefix
    try:
        fs.materialize(end=MATERIALIZE_END, store_url=REDIS_URL)
        lookup = by_customer(fs.get_online_features(SERVED, {"customer_id": [11, OTHER]}, store_url=REDIS_URL))
        assert lookup[11]["segment"][1] == "PRESENT"
        report = fs.erase(["customer=11"], store_url=REDIS_URL)
        assert report.locations.get("online:fg_customer_profile") == 1
        fresh = FeatureStore(d)
        got = by_customer(fresh.get_online_features(SERVED, {"customer_id": [11, OTHER]}, store_url=REDIS_URL))
        assert all(v is None for v, _ in got[11].values())
        assert got[OTHER] == lookup[OTHER]
    finally:
        store = open_store(REDIS_URL, prefix=prefix)
        store.drop_all()
        store.close()
        if old is None:
            os.environ.pop("FS_ONLINE_PREFIX", None)
        else:
            os.environ["FS_ONLINE_PREFIX"] = old
