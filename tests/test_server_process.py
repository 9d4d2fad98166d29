"""A real `fs serve` process on a free port, over each real backend, answering Feast-shaped and native requests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from online_support import BACKENDS, SPEC, cleanup, make_rows, make_store, oracle_latest

from fs_cli.online import FVSpec, materialize

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("backend,workers", [(b, 2 if b == "sqlite" else 1) for b in BACKENDS])
def test_fs_serve_process(backend, workers, tmp_path):
    store, url, prefix = make_store(backend, tmp_path)
    # event times relative to the real clock, so the server's TTL check (real time) sees them as fresh
    now = datetime_utcnow()
    rows = make_rows(30, 3, seed=4, now=now, spread_s=600, future_s=0)
    materialize(store, SPEC, rows, now, views={"customer_v1": FVSpec("customer_v1", ("fg_test:amount",), ("customer_id",))})
    expected = oracle_latest(SPEC, rows, now)
    port = free_port()
    env = {**os.environ, "FS_API_KEYS": "k1", **({"FS_ONLINE_PREFIX": prefix} if prefix else {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fs_cli", "serve", "--store", url, "--port", str(port), "--workers", str(workers),
         "--log-dir", str(tmp_path / "logs")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 20
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"fs serve did not become ready: {proc.stdout.read() if proc.poll() is not None else ''}")
            time.sleep(0.2)
        h = {"x-api-key": "k1"}
        keys = sorted(expected)
        r = httpx.post(f"{base}/get-online-features", headers=h,
                       json={"features": ["fg_test:amount", "fg_test:label"], "entities": {"customer_id": keys}})
        assert r.status_code == 200, r.text
        res = r.json()["results"]
        assert res[1]["values"] == [expected[k]["amount"] for k in keys]
        assert res[2]["values"] == [expected[k]["label"] for k in keys]
        assert set(res[1]["statuses"]) == {"PRESENT"}
        v = httpx.get(f"{base}/feature-views/customer_v1/vector", params={"customer_id": keys[0]}, headers=h).json()
        assert v["values"] == {"amount": expected[keys[0]]["amount"]}
        assert httpx.post(f"{base}/get-online-features", json={}).status_code == 401
        assert httpx.get(f"{base}/docs").status_code == 200
        assert "fs_http_requests_total" in httpx.get(f"{base}/metrics").text
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        cleanup(store)


def datetime_utcnow():
    from fs_cli.timeutil import utcnow

    return utcnow().replace(microsecond=0)
