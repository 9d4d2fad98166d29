"""A real `fs serve` process on a free port, over each real backend, answering Feast-shaped and native requests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from online_support import BACKENDS, SPEC, cleanup, make_rows, make_store, oracle_latest
from services import pg_connect

from fs_cli import FeatureStore
from fs_cli.online import FVSpec, materialize
from fs_cli.online.specs import FGSpec

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
        wait_ready(base, proc)
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
        # with keys on, /docs and /metrics need one too (unless --public-docs / --public-metrics)
        assert httpx.get(f"{base}/docs").status_code == 401 and httpx.get(f"{base}/docs", headers=h).status_code == 200
        assert "fs_http_requests_total" in httpx.get(f"{base}/metrics", headers=h).text
    finally:
        stop(proc)
        cleanup(store)


READY_DEADLINE_S = 120  # a loaded CI machine can take long to import and fork workers; never a fixed sleep


def wait_ready(base: str, proc: subprocess.Popen, headers: dict | None = None,
               output: Callable[[], str] | None = None) -> None:
    """Poll /ready until it answers 200; fail early if the process exits, or at the deadline (never a fixed sleep),
    with the server's output (`output()`, default: its stdout pipe)."""
    said = output or (lambda: proc.stdout.read() if proc.poll() is not None else "")
    deadline = time.monotonic() + READY_DEADLINE_S
    while True:
        try:
            if httpx.get(f"{base}/ready", headers=headers, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            pytest.fail(f"fs serve exited ({proc.returncode}) before it was ready: {said()}")
        if time.monotonic() > deadline:
            pytest.fail(f"fs serve was not ready after {READY_DEADLINE_S} s: {said()}")
        time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_fs_serve_on_a_postgres_project(project_copy, tmp_path):
    """`fs materialize` then `fs serve` (real processes) in a project whose target is Postgres: the server finds the
    store and its log folder in <project>/.fs without opening the warehouse, and serves what the warehouse holds."""
    pg_connect().close()  # skip (laptop) or fail (CI) when the server is missing
    d = project_copy("serve_pg", engine="postgres")
    fs = FeatureStore(d)
    assert fs.project.engine == "postgres"
    assert fs.project.dbt(["build", "--select", "+fg_customer_profile_snapshot"]).success
    fg = fs.catalog.fg("fg_customer_profile")
    spec = FGSpec.from_feature_group(fg)
    env = {k: v for k, v in os.environ.items() if k not in ("FS_ONLINE_STORE", "FS_SERVED_LOG_DIR", "FS_TARGET")}
    env["PYTHONPATH"] = str(REPO)
    mat = subprocess.run([sys.executable, "-m", "fs_cli", "materialize", "fg_customer_profile", "--json",
                          "--allow-unvalidated"],
                         cwd=d, env=env, capture_output=True, text=True, timeout=600)
    assert mat.returncode == 0, mat.stderr
    with fs.project.warehouse(read_only=True) as wh:
        cols = ", ".join(wh.quote(c) for c in fg.column_names)
        rows = wh.arrow(f"select {cols} from {fg.snapshot_relation} where dbt_valid_to is null "
                        f"and (dbt_is_deleted is null or dbt_is_deleted <> 'True')")
    expected = oracle_latest(spec, rows, datetime_utcnow())
    report = json.loads(mat.stdout)
    assert report["store"] == f"sqlite:///{d / '.fs' / 'online_store.sqlite'}"
    assert [(r["feature_group"], r["written"]) for r in report["results"]] == [("fg_customer_profile", len(expected))]
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "fs_cli", "serve", "--port", str(port)],
                            cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        keys = sorted(expected)[:200] + [-1]
        r = httpx.post(f"{base}/get-online-features", json={
            "features": [f"fg_customer_profile:{f}" for f in spec.feature_names], "entities": {"customer_id": keys}})
        assert r.status_code == 200, r.text
        res = r.json()["results"]
        for j, k in enumerate(keys):
            got = [res[1 + c]["values"][j] for c in range(len(spec.feature_names))]
            if k in expected:
                want = [float(v) if hasattr(v, "as_tuple") else v
                        for v in (expected[k][f] for f in spec.feature_names)]
                assert got == [w.isoformat() if hasattr(w, "isoformat") else w for w in want], k
            else:
                assert res[1]["statuses"][j] == "NOT_FOUND"
        # served vectors are logged under <project>/.fs/served_vectors by default
        log_dir = d / ".fs" / "served_vectors"
        deadline = time.monotonic() + 60
        while not any(log_dir.glob("*")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert any(log_dir.glob("*")), f"no served-vector log under {log_dir}"
    finally:
        stop(proc)


def datetime_utcnow():
    from fs_cli.timeutil import utcnow

    return utcnow().replace(microsecond=0)
