"""Push ingestion (issue 13, item 2): Feast-shaped POST /push and /write-to-online-store on both online stores
(rules per row, 422 naming row/column/rule with nothing written, newer-only atomic writes, durable log, TTL), and
the publish path: the next `fs run` makes the pushed rows a commit (fs read --as-of, training datasets) through the
same gate, consuming the log only after the commit."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from online_support import BACKENDS, cleanup, make_store

from fs_cli.online import FeatureSpec, FGSpec, materialize
from fs_cli.online.push import ColumnRule, PushSpec
from fs_cli.online.push_log import PushLog
from fs_cli.server import create_app

NOW = datetime(2026, 2, 1, 12, 0, 0)
KEY = "push-key"
SPEC = FGSpec("fg_profile", ("customer_id",), ("bigint",), "updated_at",
              (FeatureSpec("segment", "varchar"), FeatureSpec("credit_limit", "double"), FeatureSpec("age", "integer")),
              ttl_seconds=3600)
RULES = {
    "customer_id": ColumnRule("customer_id", "int", True),
    "updated_at": ColumnRule("updated_at", "timestamp", True),
    "segment": ColumnRule("segment", "str", True, allowed=("standard", "gold")),
    "credit_limit": ColumnRule("credit_limit", "float", False, 0, None),
    "age": ColumnRule("age", "int", False, 0, 120),
}


def epoch(dt: datetime) -> float:
    return (dt - datetime(1970, 1, 1)).total_seconds()


def iso(dt: datetime) -> str:
    return dt.isoformat()


@pytest.fixture(params=BACKENDS)
def service(request, tmp_path):
    """The app over a real store holding one materialized row (customer 1 at NOW - 10 min), push specs published."""
    store, _, _ = make_store(request.param, tmp_path)
    import pyarrow as pa

    materialize(store, SPEC, pa.table({"customer_id": [1], "updated_at": [NOW - timedelta(minutes=10)],
                                       "segment": ["standard"], "credit_limit": [100.0], "age": [30]}), NOW)
    store.put_document("push_specs", orjson.dumps({"fg_profile": PushSpec(SPEC, RULES, "profile_updates").to_dict()}))
    clock = {"now": epoch(NOW)}
    app = create_app(store, api_keys=KEY, clock=lambda: clock["now"], push_dir=tmp_path / "push")
    with TestClient(app, headers={"x-api-key": KEY}) as client:
        yield client, store, clock, tmp_path / "push"
    cleanup(store)


def lookup(client, keys: list[int], deadline_s: float = 1.0) -> dict:
    body = {"features": ["fg_profile:segment", "fg_profile:credit_limit", "fg_profile:age"],
            "entities": {"customer_id": keys}}
    r = client.post("/get-online-features", json=body)
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    return {"segment": res[1], "credit_limit": res[2], "age": res[3]}


def push_body(rows: list[dict], name: str = "fg_profile", **extra) -> dict:
    cols = list(rows[0])
    return {"push_source_name": name, "df": {c: [r.get(c) for r in rows] for c in cols}, **extra}


def row(cid: int, at: datetime, segment: str = "gold", limit: float | None = 500.0, age: int | None = 40) -> dict:
    return {"customer_id": cid, "updated_at": iso(at), "segment": segment, "credit_limit": limit, "age": age}


def logged(push_dir: Path) -> list[dict]:
    return PushLog(push_dir).read("fg_profile")[0]


def test_push_then_lookup_serves_it(service):
    client, _, _, push_dir = service
    r = client.post("/push", json=push_body([row(1, NOW - timedelta(minutes=1)), row(2, NOW - timedelta(minutes=2),
                                                                                   "standard", 7.5, None)]))
    assert r.status_code == 200, r.text
    assert r.json() == {"feature_group": "fg_profile", "rows": 2, "written": 2, "skipped_older": 0, "logged": 2}
    deadline = time.monotonic() + 1.0  # correctness with a deadline, not a timing claim
    while True:
        got = lookup(client, [1, 2])
        if got["segment"]["values"] == ["gold", "standard"] or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert got["segment"]["values"] == ["gold", "standard"]
    assert got["credit_limit"]["values"] == [500.0, 7.5]
    assert got["age"]["values"] == [40, None]
    assert got["age"]["statuses"] == ["PRESENT", "NULL_VALUE"]
    assert got["segment"]["event_timestamps"] == [iso(NOW - timedelta(minutes=1)) + "Z",
                                                  iso(NOW - timedelta(minutes=2)) + "Z"]
    # logged durably, in order, with ids, as normalized rows
    recs = logged(push_dir)
    assert [r["row"]["customer_id"] for r in recs] == [1, 2]
    assert recs[1]["row"] == {"customer_id": 2, "updated_at": iso(NOW - timedelta(minutes=2)), "segment": "standard",
                              "credit_limit": 7.5, "age": None}
    assert len({r["id"] for r in recs}) == 2


def test_push_by_declared_push_source_and_offline_mode(service):
    client, _, _, push_dir = service
    r = client.post("/push", json=push_body([row(3, NOW - timedelta(minutes=1))], name="profile_updates",
                                            to="offline"))
    assert r.status_code == 200, r.text
    assert r.json()["written"] == 0 and r.json()["logged"] == 1
    assert lookup(client, [3])["segment"]["statuses"] == ["NOT_FOUND"]  # offline only: not served
    assert [x["row"]["customer_id"] for x in logged(push_dir)] == [3]


def test_older_push_never_replaces_a_fresher_value(service):
    client, _, _, _ = service
    r = client.post("/push", json=push_body([row(1, NOW - timedelta(hours=2), "gold")]))  # older than the served row
    assert r.status_code == 200 and r.json()["written"] == 0 and r.json()["skipped_older"] == 1
    assert lookup(client, [1])["segment"]["values"] == ["standard"]
    # within one request the latest event time of a key wins, whatever the order
    r = client.post("/push", json=push_body([row(1, NOW - timedelta(minutes=1), "gold"),
                                             row(1, NOW - timedelta(minutes=5), "standard", 1.0)]))
    assert r.status_code == 200
    assert lookup(client, [1])["segment"]["values"] == ["gold"]


@pytest.mark.parametrize("bad, column, rule", [
    ({"segment": "platinum"}, "segment", "allowed_values"),
    ({"credit_limit": -1.0}, "credit_limit", "range"),
    ({"age": 121}, "age", "range"),
    ({"age": "forty"}, "age", "type"),
    ({"segment": None}, "segment", "not_null"),
    ({"customer_id": None}, "customer_id", "not_null"),
    ({"updated_at": "yesterday"}, "updated_at", "type"),
    ({"updated_at": iso(NOW + timedelta(hours=1))}, "updated_at", "future_event_time"),
])
def test_a_bad_row_fails_the_request_and_nothing_is_written(service, bad, column, rule):
    client, store, _, push_dir = service
    good = row(5, NOW - timedelta(minutes=1))
    r = client.post("/push", json=push_body([good, {**row(6, NOW - timedelta(minutes=1)), **bad}]))
    assert r.status_code == 422, r.text
    body = r.json()
    assert (body["row"], body["column"], body["rule"]) == (1, column, rule)
    assert f"row 1, column {column}" in body["error"] and rule in body["error"]
    assert lookup(client, [5, 6])["segment"]["statuses"] == ["NOT_FOUND", "NOT_FOUND"]  # not even the good row
    assert logged(push_dir) == []


def test_malformed_pushes_are_4xx(service):
    client, _, _, _ = service
    cases = [
        ({"push_source_name": "nope", "df": {"customer_id": [1]}}, 404),
        ({"push_source_name": "fg_profile", "df": {"customer_id": [1, 2], "updated_at": [iso(NOW)]}}, 422),
        ({"push_source_name": "fg_profile", "df": {**push_body([row(1, NOW)])["df"], "extra": [1]}}, 422),
        ({"push_source_name": "fg_profile", "df": {"customer_id": [1]}}, 422),  # event time missing
        ({"push_source_name": "fg_profile", "df": push_body([row(1, NOW)])["df"], "to": "elsewhere"}, 400),
        ({"df": {}}, 400),
    ]
    for body, status in cases:
        r = client.post("/push", json=body)
        assert r.status_code == status, (body, r.text)
        assert r.json()["error"]
    assert client.post("/push", content=b"{not json").status_code == 400
    big = b'{"push_source_name": "fg_profile", "df": {"x": ["' + b"a" * (4 * 2**20) + b'"]}}'
    assert client.post("/push", content=big).status_code == 413


def test_push_needs_the_api_key(service):
    client, _, _, _ = service
    body = push_body([row(1, NOW - timedelta(minutes=1))])
    assert client.post("/push", json=body, headers={"x-api-key": "wrong"}).status_code == 401
    assert client.post("/write-to-online-store", json={"feature_view_name": "fg_profile", "df": body["df"]},
                       headers={"x-api-key": "wrong"}).status_code == 401


def test_ttl_still_applies_to_pushed_values(service):
    client, _, clock, _ = service
    assert client.post("/push", json=push_body([row(7, NOW - timedelta(minutes=1))])).status_code == 200
    assert lookup(client, [7])["segment"]["statuses"] == ["PRESENT"]
    clock["now"] = epoch(NOW + timedelta(hours=1))  # 61 minutes after the event: beyond the 1 h TTL
    got = lookup(client, [7])
    assert got["segment"]["statuses"] == ["OUTSIDE_MAX_AGE"] and got["segment"]["values"] == [None]


def test_feast_remote_online_store_payload(service):
    """Byte for byte what Feast 0.67's RemoteOnlineStore.online_write_batch posts
    (sdk/python/feast/infra/online_stores/remote.py, `online_write_batch` -> `post_remote_online_write`): columnar
    `df` with the join keys, the features, `event_timestamp` (naive UTC isoformat) and `created` (None when the
    feature view has no created column), `allow_registry_cache: false`, sent with requests' `json=` (json.dumps
    with its default separators)."""
    import json

    client, _, _, push_dir = service
    at = NOW - timedelta(seconds=30)
    df = {"customer_id": [8], "segment": ["gold"], "credit_limit": [42.5], "age": [33],
          "event_timestamp": [at.isoformat()], "created": [None]}
    payload = json.dumps({"feature_view_name": "fg_profile", "df": df, "allow_registry_cache": False}).encode()
    r = client.post("/write-to-online-store", content=payload, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    got = lookup(client, [8])
    assert got["segment"]["values"] == ["gold"] and got["credit_limit"]["values"] == [42.5]
    assert got["segment"]["event_timestamps"] == [at.isoformat() + "Z"]
    assert logged(push_dir)[0]["row"]["updated_at"] == at.isoformat()


def test_concurrent_pushes_are_all_logged_and_atomic(service):
    """8 threads pushing 2-row requests: every acknowledged row is in the log once; each key serves its newest."""
    from concurrent.futures import ThreadPoolExecutor

    client, _, _, push_dir = service

    def one(i: int) -> int:
        rows = [row(100 + i % 10, NOW - timedelta(seconds=600 - i)), row(200 + i % 10, NOW - timedelta(seconds=600 - i))]
        return client.post("/push", json=push_body(rows)).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(one, range(80))) == {200}
    recs = logged(push_dir)
    assert len(recs) == 160 and len({r["id"] for r in recs}) == 160
    got = lookup(client, [100 + k for k in range(10)])
    newest = [iso(NOW - timedelta(seconds=600 - max(i for i in range(80) if i % 10 == k))) + "Z" for k in range(10)]
    assert got["segment"]["event_timestamps"] == newest


def test_push_log_consume_keeps_later_appends(tmp_path):
    log = PushLog(tmp_path / "push")
    log.append("fg_x", [{"id": "a:0", "row": {}}, {"id": "a:1", "row": {}}])
    recs, end = log.read("fg_x")
    log.append("fg_x", [{"id": "b:0", "row": {}}])  # pushed while `fs run` publishes
    with open(log.path("fg_x"), "ab") as f:
        f.write(b'{"id": "torn')  # a crash mid-write: never acknowledged
    log.append("fg_x", [{"id": "c:0", "row": {}}])  # acknowledged after the torn line: still a record
    log.consume("fg_x", end)
    assert [r["id"] for r in log.read("fg_x")[0]] == ["b:0", "c:0"]
    assert [r["id"] for r in recs] == ["a:0", "a:1"]


# -- the publish path: `fs run` after pushes ---------------------------------------------------------------------
ITEMS_YAML = """
version: 2
models:
  - name: fg_push_items
    description: Items whose values are also pushed.
    config:
      meta:
        fs:
          entities: [item]
          event_time: event_time
          online: true
          ttl: 30d
          owner: tests
          policy: strict
          push_source: item_updates
          drift: false
    columns:
      - {name: item_id, data_type: bigint, description: the item}
      - {name: event_time, data_type: timestamp, description: when}
      - name: value
        data_type: double
        description: a value
        config: {meta: {fs: {range: [0, 100]}}}
      - name: grade
        data_type: varchar
        description: a grade
        config: {meta: {fs: {allowed_values: [a, b], not_null: true}}}
  - name: fv_push_items
    config:
      meta:
        fs:
          feature_view:
            spine: {model: push_spine, timestamp: ts, label: label}
            features: [{feature_group: fg_push_items, features: "*"}]
"""
ITEMS_SNAPSHOT = """
snapshots:
  - name: fg_push_items_snapshot
    relation: ref('fg_push_items')
    config:
      unique_key: [item_id, event_time]
"""


def make_push_project(project_copy, engine: str, t0: datetime) -> Path:
    from conftest import drop_demo_models, preparsed

    d = drop_demo_models(project_copy("push", with_seeds=False, engine=engine))
    (d / "models" / "feature_groups" / "fg_push_items.sql").write_text(
        "select cast(item_id as bigint) as item_id, cast(event_time as timestamp) as event_time,"
        " cast(value as double precision) as value, cast(grade as varchar(8)) as grade from {{ ref('push_items') }}\n")
    (d / "models" / "feature_views" / "fv_push_items.sql").write_text("{{ feature_store.fs_feature_view() }}\n")
    (d / "models" / "feature_groups" / "_push_items.yml").write_text(ITEMS_YAML)
    (d / "snapshots" / "push_items.yml").write_text(ITEMS_SNAPSHOT)
    day = t0 - timedelta(days=1)
    (d / "seeds" / "push_items.csv").write_text(
        f"item_id,event_time,value,grade\n1,{day:%Y-%m-%d %H:%M:%S},10.0,a\n2,{day:%Y-%m-%d %H:%M:%S},20.0,b\n")
    # spine: item 1 just before and just after its pushed value (pushed at t0 - 1 min)
    (d / "seeds" / "push_spine.csv").write_text(
        f"item_id,ts,label\n1,{t0 - timedelta(minutes=2):%Y-%m-%d %H:%M:%S},0\n"
        f"1,{t0:%Y-%m-%d %H:%M:%S},1\n2,{t0:%Y-%m-%d %H:%M:%S},0\n")
    text = (d / "dbt_project.yml").read_text()
    (d / "dbt_project.yml").write_text(text.replace(
        "  fs_entities:\n", "  fs_entities:\n    item:\n      join_keys: [item_id]\n"))
    return preparsed(d)


def _published(fs, as_of=None) -> list[tuple]:
    df = fs.read("fg_push_items", as_of=as_of)
    return sorted((int(r.item_id), r.event_time.to_pydatetime().replace(tzinfo=None), float(r.value), r.grade)
                  for r in df.itertuples())


def test_fs_run_publishes_pushed_rows_once(project_copy, engine):
    from fs_cli import FeatureStore
    from fs_cli.online.backends import open_store
    from fs_cli.timeutil import utcnow

    t0 = utcnow().replace(microsecond=0)
    d = make_push_project(project_copy, engine, t0)
    fs = FeatureStore(d)
    assert fs.run().ok
    push_dir = fs.project.state_dir / "push"
    store = open_store(fs.online_store_url())
    pushed_at = t0 - timedelta(minutes=1)
    try:
        app = create_app(store, api_keys="", push_dir=push_dir)
        with TestClient(app) as client:
            r = client.post("/push", json={"push_source_name": "item_updates", "df": {
                "item_id": [1], "event_time": [iso(pushed_at)], "value": [55.5], "grade": ["b"]}})
            assert r.status_code == 200, r.text
            r = client.post("/get-online-features", json={"features": ["fg_push_items:value"],
                                                          "entities": {"item_id": [1]}})
            assert r.json()["results"][1]["values"] == [55.5]
            # a row the declaration refuses never reaches the log
            bad = client.post("/push", json={"push_source_name": "fg_push_items", "df": {
                "item_id": [2], "event_time": [iso(pushed_at)], "value": [500.0], "grade": ["a"]}})
            assert bad.status_code == 422 and bad.json()["rule"] == "range"
    finally:
        store.close()
    # a record that breaks the rules now (e.g. written before the declaration changed) is rejected at publish
    PushLog(push_dir).append("fg_push_items", [{"id": "old:0", "pushed_at": iso(t0), "row": {
        "item_id": 2, "event_time": iso(pushed_at), "value": 1.0, "grade": "z"}}])
    before_publish = utcnow()
    report = fs.run()
    assert report.ok, report.to_dict()
    o = report.outcomes["fg_push_items"]
    assert o.commit is not None and (o.commit.inserted, o.commit.updated, o.commit.deleted) == (1, 0, 0)
    assert any("rejected" in w and "allowed_values" in w for w in o.warnings), o.warnings
    day = t0 - timedelta(days=1)
    batch = [(1, day, 10.0, "a"), (2, day, 20.0, "b")]
    assert _published(fs) == sorted([*batch, (1, pushed_at, 55.5, "b")])
    assert _published(fs, as_of=before_publish) == batch  # time travel: not there before its commit
    assert PushLog(push_dir).read("fg_push_items")[0] == []  # consumed after the commit
    with fs.project.warehouse(read_only=True) as wh:
        rows = wh.fetchall('select fs_push_id, fs_status, fs_commit_id, fs_reason from fs_push.fg_push_items '
                           'order by fs_status')
    assert [(r[1], r[2]) for r in rows] == [("published", o.commit.commit_id), ("rejected", None)]
    assert "allowed_values" in rows[1][3] and '"grade": "z"' in rows[1][3].replace('":"', '": "')
    # the training dataset sees the pushed value from its event time on (point in time), not before
    fs.create_training_dataset("fv_push_items")
    td = fs.training_dataset("fv_push_items").sort_values(["item_id", "ts"])
    assert list(td["value"]) == [10.0, 55.5, 20.0]
    # later runs keep the pushed row (no delete, no second commit)
    again = fs.run()
    assert again.ok and again.outcomes["fg_push_items"].commit is None
    assert len(fs.commits("fg_push_items")) == 2


# -- Feast 0.67's own client (a venv of its own) -----------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]


def feast_python() -> Path | None:
    """A Python with Feast 0.67: $FS_FEAST_PYTHON, `make feast-venv`'s .venv-feast, or the benchmarks' venv.
    With FS_TEST_FEAST_VENV=create (CI), a missing one is created by `make feast-venv` (pip, from PyPI)."""
    import os
    import subprocess

    if os.environ.get("FS_FEAST_PYTHON"):
        return Path(os.environ["FS_FEAST_PYTHON"])
    if (ROOT / ".venv-feast" / ".installed").exists():  # the stamp: pip finished
        return ROOT / ".venv-feast" / "bin" / "python"
    if (ROOT / "bench" / ".feast-venv" / "bin" / "feast").exists():  # bench/README.md's venv
        return ROOT / "bench" / ".feast-venv" / "bin" / "python"
    if os.environ.get("FS_TEST_FEAST_VENV") == "create":
        subprocess.run(["make", "feast-venv"], cwd=ROOT, check=True, timeout=900)
        return ROOT / ".venv-feast" / "bin" / "python"
    return None


def test_feast_client_writes_and_reads_back(tmp_path):
    """Feast 0.67's FeatureStore (online_store: remote) -> write_to_online_store -> our /write-to-online-store;
    its get_online_features then returns the pushed value within 1 s (polled), and the push log holds the row."""
    import os
    import socket
    import subprocess
    import sys

    import httpx
    import pyarrow as pa

    from fs_cli.online.backends import open_store
    from fs_cli.timeutil import utcnow

    py = feast_python()
    if py is None:
        from services import missing

        missing("Feast 0.67's client", "no Feast venv: `make feast-venv` (make test builds it first)")
    now = utcnow()
    url = f"sqlite:///{tmp_path / 'online.sqlite'}"
    store = open_store(url)
    materialize(store, SPEC, pa.table({"customer_id": [1], "updated_at": [now - timedelta(minutes=10)],
                                       "segment": ["standard"], "credit_limit": [1.0], "age": [3]}), now)
    store.put_document("push_specs", orjson.dumps({"fg_profile": PushSpec(SPEC, RULES).to_dict()}))
    store.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "FS_ONLINE_STORE": url, "FS_PUSH_DIR": str(tmp_path / "push"), "FS_SERVED_LOG_DIR": "",
           "FS_API_KEYS": ""}
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "fs_cli.server.main:app_from_env", "--factory",
                               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server not ready after 90 s"
            time.sleep(0.3)
        at = (now - timedelta(minutes=1)).replace(microsecond=0)
        out = subprocess.run([str(py), str(ROOT / "tests" / "feast_push_client.py"), f"http://127.0.0.1:{port}",
                              str(tmp_path), at.isoformat()], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        got = orjson.loads(out.stdout.strip().splitlines()[-1])
        assert (got["segment"], got["credit_limit"], got["age"]) == (["gold"], [77.25], [41])
        assert got["seconds"] <= 1.0
        recs = PushLog(tmp_path / "push").read("fg_profile")[0]
        assert [r["row"] for r in recs] == [{"customer_id": 9, "updated_at": at.isoformat(), "segment": "gold",
                                            "credit_limit": 77.25, "age": 41}]
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_a_crash_after_the_snapshot_neither_loses_nor_republishes_pushed_rows(project_copy):
    """`fs run` killed right after the snapshot (before the commit log and before the push log is consumed): the next
    run logs that commit, publishes nothing twice, marks the rows published by it and consumes the log."""
    import os
    import subprocess
    import sys

    from fs_cli import FeatureStore
    from fs_cli.timeutil import utcnow

    t0 = utcnow().replace(microsecond=0)
    d = make_push_project(project_copy, "duckdb", t0)
    fs = FeatureStore(d)
    assert fs.run().ok
    at = t0 - timedelta(minutes=3)
    log = PushLog(fs.project.state_dir / "push")
    log.append("fg_push_items", [{"id": "r1:0", "pushed_at": iso(t0), "row": {
        "item_id": 3, "event_time": iso(at), "value": 3.5, "grade": "a"}}])  # an acknowledged push
    crashed = subprocess.run([sys.executable, "-m", "fs_cli", "--project-dir", str(d), "run"], capture_output=True,
                             text=True, timeout=600, env={**os.environ, "FS_TEST_CRASH_AFTER_SNAPSHOT": "1"})
    assert crashed.returncode == 137, crashed.stderr[-2000:]
    assert [r["id"] for r in log.read("fg_push_items")[0]] == ["r1:0"]  # not consumed: the commit was not finished
    report = fs.run()
    assert report.ok, report.to_dict()
    assert report.outcomes["fg_push_items"].commit is None  # the crashed run's snapshot already holds the row
    commits = fs.commits("fg_push_items")
    assert [(c.commit_id, c.inserted) for c in commits] == [(1, 2), (2, 1)]
    assert [r for r in _published(fs) if r[0] == 3] == [(3, at, 3.5, "a")]
    assert log.read("fg_push_items")[0] == []
    with fs.project.warehouse(read_only=True) as wh:
        assert wh.fetchall("select fs_push_id, fs_status, fs_commit_id from fs_push.fg_push_items") == [
            ("r1:0", "published", 2)]


def test_fuzzed_pushes_never_get_a_server_error(tmp_path):
    """schemathesis over /push and /write-to-online-store from the service's own OpenAPI, with push on: never a 5xx."""
    schemathesis = pytest.importorskip("schemathesis")
    import pyarrow as pa
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    store, _, _ = make_store("sqlite", tmp_path)
    materialize(store, SPEC, pa.table({"customer_id": [1], "updated_at": [NOW - timedelta(minutes=10)],
                                       "segment": ["standard"], "credit_limit": [1.0], "age": [3]}), NOW)
    store.put_document("push_specs", orjson.dumps({"fg_profile": PushSpec(SPEC, RULES, "profile_updates").to_dict()}))
    app = create_app(store, push_dir=tmp_path / "push", clock=lambda: epoch(NOW))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex="^/(push|write-to-online-store)$")
    statuses: list[int] = []
    for operation in schema.get_all_operations():
        op = operation.ok()

        @given(case=op.as_strategy())
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case):
            statuses.append(case.call_and_validate(checks=[not_a_server_error]).status_code)

        check()
    cleanup(store)
    assert len(statuses) >= 60 and max(statuses) < 500
