"""Push ingestion throughput: POST /push at N concurrent keep-alive connections, SQLite and Redis online stores.

Starts `fs serve`'s app (uvicorn, 1 worker) over a store holding one materialized feature group, waits for /ready,
pushes 1-row requests (a random entity of 10,000, a fresh event time each) from N threads for D seconds, then
terminates the server (finally). Every acknowledged push is also checked to be in the durable log (fsync per
request). Reports pushes/s and latency percentiles.

    .venv/bin/python bench/push.py --seconds 10 --connections 8
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fs_cli.online import FeatureSpec, FGSpec, materialize  # noqa: E402
from fs_cli.online.backends import open_store  # noqa: E402
from fs_cli.online.push import PUSH_DOC, ColumnRule, PushSpec  # noqa: E402
from fs_cli.online.push_log import PushLog  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/0"
ENTITIES = 10_000
SPEC = FGSpec("fg_bench", ("customer_id",), ("bigint",), "event_time",
              (FeatureSpec("amount", "double"), FeatureSpec("segment", "varchar")), ttl_seconds=None)
RULES = {"customer_id": ColumnRule("customer_id", "int", True), "event_time": ColumnRule("event_time", "timestamp", True),
         "amount": ColumnRule("amount", "float", False, 0, None),
         "segment": ColumnRule("segment", "str", True, allowed=("a", "b"))}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def prepare(kind: str, tmp: Path) -> tuple[str, str | None]:
    """(store URL, redis prefix) of a fresh store with fg_bench materialized (ENTITIES rows a day old)."""
    if kind == "sqlite":
        url, prefix = f"sqlite:///{tmp / 'online.sqlite'}", None
        store = open_store(url)
    else:
        url, prefix = REDIS_URL, f"fs_bench_push_{uuid.uuid4().hex[:8]}"
        store = open_store(url, prefix=prefix)
    now = datetime.utcnow()
    rows = pa.table({"customer_id": list(range(ENTITIES)), "event_time": [now - timedelta(days=1)] * ENTITIES,
                     "amount": [1.0] * ENTITIES, "segment": ["a"] * ENTITIES})
    materialize(store, SPEC, rows, now)
    store.put_document(PUSH_DOC, orjson.dumps({SPEC.name: PushSpec(SPEC, RULES).to_dict()}))
    store.close()
    return url, prefix


def load(base: str, seconds: float, conns: int) -> dict:
    import httpx

    stop_at = time.perf_counter() + seconds
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        mine: list[float] = []
        with httpx.Client(base_url=base, timeout=30) as c:
            while time.perf_counter() < stop_at:
                at = datetime.utcnow() - timedelta(seconds=1)
                body = orjson.dumps({"push_source_name": SPEC.name, "df": {
                    "customer_id": [rng.randrange(ENTITIES)], "event_time": [at.isoformat()],
                    "amount": [round(rng.random() * 100, 2)], "segment": [rng.choice("ab")]}})
                t = time.perf_counter()
                r = c.post("/push", content=body, headers={"content-type": "application/json"})
                dt = time.perf_counter() - t
                if r.status_code == 200:
                    mine.append(dt)
                else:
                    with lock:
                        errors[0] += 1
        with lock:
            lat.extend(mine)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(conns)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    lat.sort()

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")

    return {"ok": len(lat), "errors": errors[0], "pushes_per_s": len(lat) / wall, "p50_ms": pct(0.50),
            "p99_ms": pct(0.99), "max_ms": lat[-1] * 1000 if lat else float("nan")}


def run_one(kind: str, seconds: float, conns: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"fs-push-bench-{kind}-"))
    proc = None
    prefix = None
    try:
        url, prefix = prepare(kind, tmp)
        port = free_port()
        env = {**os.environ, "FS_ONLINE_STORE": url, "FS_PUSH_DIR": str(tmp / "push"), "FS_SERVED_LOG_DIR": "",
               "FS_API_KEYS": "", **({"FS_ONLINE_PREFIX": prefix} if prefix else {})}
        cmd = [sys.executable, "-m", "uvicorn", "fs_cli.server.main:app_from_env", "--factory", "--host", "127.0.0.1",
               "--port", str(port), "--no-access-log", "--log-level", "warning"]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/ready", proc)
        res = load(base, seconds, conns)
        res["logged"] = len(PushLog(tmp / "push").read(SPEC.name)[0])
        res["log_matches_acks"] = res["logged"] == res["ok"]
        return res
    finally:
        if proc is not None:
            stop(proc)
        if prefix:
            store = open_store(REDIS_URL, prefix=prefix)
            store.drop_all()
            store.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--stores", default="sqlite,redis")
    args = ap.parse_args()
    results = {kind: run_one(kind, args.seconds, args.connections) for kind in args.stores.split(",")}
    print("| store | connections | pushes/s | p50 ms | p99 ms | max ms | errors | log == acks |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, r in results.items():
        print(f"| {kind} | {args.connections} | {r['pushes_per_s']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
              f"{r['max_ms']:.1f} | {r['errors']} | {r['log_matches_acks']} ({r['logged']}) |")


if __name__ == "__main__":
    main()
