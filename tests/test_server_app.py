"""The HTTP service through the ASGI app, on both real backends: Feast shape, native vectors, auth, bad input,
metrics and served-vector logs."""

from __future__ import annotations

import glob
import time
from datetime import datetime, timedelta

import orjson
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from online_support import BACKENDS, NOW, SPEC, cleanup, make_rows, make_store, oracle_latest

from fs_cli.online import FeatureSpec, FGSpec, FVSpec, materialize
from fs_cli.server import create_app

MERCHANT = FGSpec("fg_merchant", ("merchant_code", "country"), ("varchar", "varchar"), "ts",
                  (FeatureSpec("risk", "double"), FeatureSpec("amount", "double")), ttl_seconds=None)
VIEWS = {
    "fraud_v1": FVSpec("fraud_v1", ("fg_test:amount", "fg_test:n", "fg_merchant:risk"),
                       ("customer_id", "merchant_code", "country")),
    "customer_v1": FVSpec("customer_v1", ("fg_test:n", "fg_test:amount"), ("customer_id",)),
}
KEY = "s3cret-key"


def epoch(dt: datetime) -> float:
    return (dt - datetime(1970, 1, 1)).total_seconds()


@pytest.fixture(params=BACKENDS, scope="module")
def served(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"srv-{request.param}")
    store, _, _ = make_store(request.param, tmp)
    rows = make_rows(100, 4, seed=11)
    materialize(store, SPEC, rows, NOW, views=VIEWS)
    merch = pa.table({"merchant_code": ["m1", "m2", "m'; drop--"], "country": ["FR", "DE", "FR"],
                      "ts": [NOW - timedelta(days=30)] * 3, "risk": [0.1, 0.2, 0.3], "amount": [1.0, 2.0, 3.0]})
    materialize(store, MERCHANT, merch, NOW, views=VIEWS)
    clock = {"now": epoch(NOW)}
    app = create_app(store, api_keys=KEY, log_dir=tmp / "logs", max_batch=50, clock=lambda: clock["now"])
    with TestClient(app, headers={"x-api-key": KEY}) as client:
        yield client, oracle_latest(SPEC, rows, NOW), clock, tmp / "logs"
    cleanup(store)


def test_feast_request_and_response(served):
    client, expected, _, _ = served
    keys = sorted(expected)[:5] + [999_999]
    r = client.post("/get-online-features", json={
        "features": ["fg_test:n", "fg_merchant:risk", "fg_test:amount"],
        "entities": {"customer_id": keys, "merchant_code": ["m1"] * 6, "country": ["FR", "DE", "FR", "FR", "FR", "FR"]}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["metadata"]["feature_names"] == ["customer_id", "merchant_code", "country", "n", "risk", "amount"]
    res = {n: x for n, x in zip(body["metadata"]["feature_names"], body["results"], strict=True)}
    assert res["customer_id"]["values"] == keys
    assert res["amount"]["values"] == [expected[k]["amount"] for k in keys[:5]] + [None]
    assert res["amount"]["statuses"] == ["PRESENT"] * 5 + ["NOT_FOUND"]
    assert res["risk"]["values"] == [0.1, None, 0.1, 0.1, 0.1, 0.1]  # (m1, DE) does not exist
    assert res["risk"]["statuses"][1] == "NOT_FOUND"
    for i, k in enumerate(keys[:5]):
        assert res["n"]["event_timestamps"][i] == expected[k]["event_time"].isoformat() + "Z"
    assert r.headers["x-fs-versions"] == "fg_test=1,fg_merchant=1"
    assert r.headers["x-request-id"]
    # the feature_service form and full feature names
    r2 = client.post("/get-online-features", json={"feature_service": "customer_v1", "full_feature_names": True,
                                                   "entities": {"customer_id": keys[:2]}})
    assert r2.json()["metadata"]["feature_names"] == ["customer_id", "fg_test__n", "fg_test__amount"]


def test_ttl_enforced_on_read(served):
    client, expected, clock, _ = served
    k = sorted(expected)[0]
    clock["now"] = epoch(NOW + timedelta(hours=2))  # beyond fg_test's 1 h TTL; fg_merchant has none
    try:
        r = client.get(f"/feature-views/customer_v1/vector?customer_id={k}")
        assert r.json()["statuses"] == {"n": "OUTSIDE_MAX_AGE", "amount": "OUTSIDE_MAX_AGE"}
        assert r.json()["values"] == {"n": None, "amount": None}
        r = client.post("/get-online-features", json={"features": ["fg_merchant:risk"],
                                                       "entities": {"merchant_code": ["m2"], "country": ["DE"]}})
        assert r.json()["results"][2]["statuses"] == ["PRESENT"]
    finally:
        clock["now"] = epoch(NOW)


def test_native_vector_and_vectors(served):
    client, expected, _, _ = served
    k = sorted(expected)[3]
    r = client.get(f"/feature-views/customer_v1/vector?customer_id={k}")
    assert r.status_code == 200, r.text
    v = r.json()
    assert v["entity"] == {"customer_id": k} and v["versions"] == {"fg_test": 1}
    assert v["values"] == {"n": expected[k]["n"], "amount": expected[k]["amount"]}
    r = client.post("/feature-views/fraud_v1/vectors", json={"entities": [
        {"customer_id": k, "merchant_code": "m'; drop--", "country": "FR"},
        {"customer_id": 424242, "merchant_code": "m2", "country": "DE"}]})
    assert r.status_code == 200, r.text
    vecs = r.json()["vectors"]
    assert vecs[0]["values"] == {"amount": expected[k]["amount"], "n": expected[k]["n"], "risk": 0.3}
    assert vecs[1]["statuses"]["amount"] == "NOT_FOUND" and vecs[1]["values"]["risk"] == 0.2
    listing = client.get("/feature-views").json()
    assert set(listing["feature_views"]) == set(VIEWS)


BAD = [
    ("POST", "/get-online-features", b"{", 400, "malformed JSON"),
    ("POST", "/get-online-features", b"", 400, "empty"),
    ("POST", "/get-online-features", b"[1,2]", 400, "JSON object"),
    ("POST", "/get-online-features", b'{"entities": {"customer_id": [1]}}', 400, "features"),
    ("POST", "/get-online-features", b'{"features": "fg_test:n", "entities": {"customer_id": [1]}}', 400, "list"),
    ("POST", "/get-online-features", b'{"features": ["fg_test:nope"], "entities": {"customer_id": [1]}}', 404, "no feature"),
    ("POST", "/get-online-features", b'{"features": ["nope:x"], "entities": {"customer_id": [1]}}', 404, "unknown online feature group"),
    ("POST", "/get-online-features", b'{"features": ["fg_test"], "entities": {"customer_id": [1]}}', 400, "feature_group:feature"),
    ("POST", "/get-online-features", b'{"features": ["fg_test:n"], "entities": {"customer_id": ["1 or 1=1"]}}', 400, "integer"),
    ("POST", "/get-online-features", b'{"features": ["fg_test:n"], "entities": {"customer_id": [true]}}', 400, "integer"),
    ("POST", "/get-online-features", b'{"features": ["fg_test:n"], "entities": {"customer_id": [1.5]}}', 400, "integer"),
    ("POST", "/get-online-features", b'{"features": ["fg_test:n"], "entities": {"customer_id": []}}', 400, "empty batch"),
    ("POST", "/get-online-features", b'{"features": ["fg_test:n"], "entities": {"customer_id": 5}}', 400, "list"),
    ("POST", "/get-online-features", b'{"features": ["fg_test:n"], "entities": {"merchant_code": ["a"]}}', 400, "missing"),
    ("POST", "/get-online-features", b'{"features": ["fg_test:n"], "entities": {"customer_id": [' + b",".join(b"1" for _ in range(51)) + b"]}}", 413, "exceeds"),
    ("POST", "/get-online-features", b'{"feature_service": "x\'; drop table fs_rows; --", "entities": {"customer_id": [1]}}', 404, "unknown feature view"),
    ("POST", "/get-online-features", b'{"features": ["fg_test:n", "fg_test:n"], "entities": {"customer_id": [1]}}', 400, "twice"),
    ("POST", "/get-online-features", b'{"features": ["fg_test:n"], "feature_service": "customer_v1", "entities": {"customer_id": [1]}}', 400, "either"),
    ("POST", "/get-online-features", b'{"features": ["fg_test:n"], "entities": {"customer_id": [1]}, "full_feature_names": "yes"}', 400, "true or false"),
    ("POST", "/get-online-features", b'{"features": ["fg_merchant:risk"], "entities": {"merchant_code": ["a", "b"], "country": ["FR"]}}', 400, "same length"),
    ("GET", "/feature-views/customer_v1/vector?customer_id=abc", None, 400, "integer"),
    ("GET", "/feature-views/customer_v1/vector", None, 400, "exactly once"),
    ("GET", "/feature-views/customer_v1/vector?customer_id=1&customer_id=2", None, 400, "exactly once"),
    ("GET", "/feature-views/customer_v1/vector?customer_id=1&bogus=2", None, 400, "unknown query parameter"),
    ("GET", "/feature-views/nope%27%3B%20drop/vector?customer_id=1", None, 404, "unknown feature view"),
    ("POST", "/feature-views/customer_v1/vectors", b'{"entities": []}', 400, "empty batch"),
    ("POST", "/feature-views/customer_v1/vectors", b'{"entities": [{"customer_id": "1"}]}', 400, "integer"),
    ("POST", "/feature-views/customer_v1/vectors", b'{"entities": [{"cust": 1}]}', 400, "unknown entity key"),
    ("POST", "/feature-views/customer_v1/vectors", b'{"entities": [1]}', 400, "object"),
    ("POST", "/feature-views/customer_v1/vectors", b'{"rows": []}', 400, "entities"),
    ("POST", "/feature-views/customer_v1/vectors", orjson.dumps({"entities": [{"customer_id": i} for i in range(51)]}), 413, "exceeds"),
    ("POST", "/feature-views/fraud_v1/vectors", b'{"entities": [{"customer_id": 1, "merchant_code": 5, "country": "FR"}]}', 400, "string"),
]


@pytest.mark.parametrize("method,path,body,status,words", BAD, ids=[f"{i}-{b[4]}" for i, b in enumerate(BAD)])
def test_bad_input_is_a_clear_4xx(served, method, path, body, status, words):
    client = served[0]
    r = client.request(method, path, content=body)
    assert r.status_code == status, r.text
    assert words.lower() in r.json()["error"].lower()


def test_api_keys(served):
    client = served[0]
    body = {"features": ["fg_test:n"], "entities": {"customer_id": [1]}}
    with TestClient(client.app) as anon:
        assert anon.post("/get-online-features", json=body).status_code == 401
        assert anon.post("/get-online-features", json=body, headers={"x-api-key": "wrong"}).status_code == 401
        assert anon.post("/get-online-features", json=body, headers={"authorization": f"Bearer {KEY}"}).status_code == 200
        assert anon.get("/health").status_code == 200
        # with keys on, /metrics needs one unless made public (tests/test_server_hardening.py)
        assert anon.get("/metrics").status_code == 401 and client.get("/metrics").status_code == 200


def test_health_ready_metrics_and_logs(served):
    client, expected, _, log_dir = served
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json()["status"] == "ready"
    k = sorted(expected)[0]
    rid = "req-123"
    client.post("/get-online-features", json={"feature_service": "customer_v1", "entities": {"customer_id": [k, 7]}},
                headers={"x-request-id": rid})
    text = client.get("/metrics").text
    assert 'fs_http_requests_total{method="POST",route="/get-online-features",status="200"}' in text
    assert "fs_http_request_duration_seconds_bucket" in text and 'fs_online_store_version{feature_group="fg_test"} 1' in text
    deadline = time.time() + 5
    lines: list[dict] = []
    while time.time() < deadline:
        lines = [orjson.loads(x) for f in glob.glob(str(log_dir / "*.jsonl")) for x in open(f, "rb")]
        if any(x["request_id"] == rid for x in lines):
            break
        time.sleep(0.1)
    mine = [x for x in lines if x["request_id"] == rid]
    assert len(mine) == 1 and mine[0]["feature_view"] == "customer_v1"
    resp = mine[0]["response"]
    assert resp["metadata"]["feature_names"] == ["customer_id", "n", "amount"]
    assert resp["results"][0]["values"] == [k, 7]  # the entity keys of both served vectors
    assert resp["results"][2]["values"][0] == expected[k]["amount"]
    assert mine[0]["versions"] == {"fg_test": 1} and mine[0]["served_at"].endswith("Z")
    all_text = b"".join(open(f, "rb").read() for f in glob.glob(str(log_dir / "*.jsonl")))
    assert KEY.encode() not in all_text  # API keys are never logged


def test_log_rotation_bounds_disk(tmp_path):
    from fs_cli.server.logs import ServedLog

    log = ServedLog(tmp_path, max_bytes=2000, max_files=3, flush_seconds=0.01)
    body = orjson.dumps({"metadata": {"feature_names": ["k", "f"]}, "results": [{"values": ["x" * 500]}]})
    for i in range(40):
        log.submit(str(i), "v", {}, body)
        time.sleep(0.005)
    log.close()
    files = glob.glob(str(tmp_path / "served-*.jsonl"))
    assert 1 <= len(files) <= 3
