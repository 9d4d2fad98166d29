"""Benchmark: the cost of applying fitted transformations (and on-demand features) on the online path.

usage: .venv/bin/python bench/transforms.py [--customers 10000] [--requests 5000] [--http] [--duration 8]
                                            [--connections 4]

Builds two online feature groups (synthetic, seeded) in a fresh SQLite online store and three feature views over
the same six features: `fv_raw` (no transformations), `fv_tf` (six fitted transformations, incl. one-hot and
label encoding) and `fv_od` (fv_tf + one on-demand feature evaluated by in-process DuckDB).
1. In-process: OnlineReader.vectors (+ ViewServing.apply) per single-entity request; the variants interleaved
   request by request, median latency of each.
2. --http: `fs`'s FastAPI app under uvicorn (1 worker, subprocess), GET /feature-views/<fv>/vector driven by a
   keep-alive Python load generator; requests/s for each view in alternating windows (median of 4).
Prints a Markdown table; results also in bench/results/transforms.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fs_cli.online import FeatureSpec, FGSpec, FVSpec, materialize  # noqa: E402
from fs_cli.online.backends import open_store  # noqa: E402
from fs_cli.online.reader import OnlineReader  # noqa: E402
from fs_cli.transforms import fit, parse_on_demand  # noqa: E402
from fs_cli.transforms.served_vector import EXTRA_KEY, ViewServing  # noqa: E402

NOW = datetime(2025, 1, 2)
SEGMENTS = ["standard", "gold", "platinum", None]
COUNTRIES = ["DE", "FR", "ES", "NL", "IT", "PL", "PT", "BE"]
TRANSFORMS = [
    {"feature": "tx_amount_7d", "fn": "impute", "args": {"strategy": "median"}},
    {"feature": "tx_amount_7d", "fn": "standard_scaler"},
    {"feature": "tx_count_7d", "fn": "robust_scaler"},
    {"feature": "avg_basket", "fn": "log1p"},
    {"feature": "segment", "fn": "one_hot"},
    {"feature": "country", "fn": "label_encode"},
    {"feature": "credit_limit", "fn": "bucketize", "args": {"boundaries": [1000, 3000, 6000]}},
]
ON_DEMAND = [{"name": "amount_to_avg_basket", "expr": "amount / nullif(avg_basket, 0)",
              "inputs": ["amount", "avg_basket"], "request": {"amount": "double"}}]


def data(n: int) -> tuple[pa.Table, pa.Table]:
    rnd = random.Random(42)
    ids = list(range(1, n + 1))
    t = [datetime(2024, 12, 31)] * n
    tx = pa.table({"customer_id": ids, "event_time": t,
                   "tx_amount_7d": [rnd.choice([None, rnd.lognormvariate(4, 1)]) for _ in ids],
                   "tx_count_7d": [rnd.randint(0, 40) for _ in ids],
                   "avg_basket": [rnd.lognormvariate(3, 0.7) for _ in ids]})
    prof = pa.table({"customer_id": ids, "event_time": t,
                     "segment": [rnd.choice(SEGMENTS) for _ in ids], "country": [rnd.choice(COUNTRIES) for _ in ids],
                     "credit_limit": [float(rnd.choice([500, 1000, 2000, 5000, 10000])) for _ in ids]})
    return tx, prof


def build(store_url: str, n: int) -> None:
    tx, prof = data(n)
    fgs = {
        "fg_tx": FGSpec("fg_tx", ("customer_id",), ("bigint",), "event_time",
                        (FeatureSpec("tx_amount_7d", "double"), FeatureSpec("tx_count_7d", "bigint"),
                         FeatureSpec("avg_basket", "double"))),
        "fg_profile": FGSpec("fg_profile", ("customer_id",), ("bigint",), "event_time",
                             (FeatureSpec("segment", "varchar"), FeatureSpec("country", "varchar"),
                              FeatureSpec("credit_limit", "double"))),
    }
    feats = tuple(f"{fg}:{f.name}" for fg, s in fgs.items() for f in s.features)
    con = duckdb.connect()
    con.register("tx", tx)
    con.register("prof", prof)
    train = "(select tx.*, segment, country, credit_limit, 100.0 as amount from tx join prof using (customer_id)) t"
    stats = fit(con, train, TRANSFORMS, split_column=None)
    cols = {f.split(":")[1]: f.split(":")[1] for f in feats}
    ods = [o.to_dict() for o in parse_on_demand(ON_DEMAND, {"avg_basket": "double"})]
    extra = {"latest": 1, "versions": {"1": stats}, "columns": cols, "on_demand": []}
    views = {
        "fv_raw": FVSpec("fv_raw", feats, ("customer_id",)),
        "fv_tf": FVSpec("fv_tf", feats, ("customer_id",), extra={EXTRA_KEY: extra}),
        "fv_od": FVSpec("fv_od", feats, ("customer_id",), extra={EXTRA_KEY: {**extra, "on_demand": ods}}),
    }
    store = open_store(store_url)
    try:
        materialize(store, fgs["fg_tx"], tx, NOW, views=views)
        materialize(store, fgs["fg_profile"], prof, NOW, views=views)
    finally:
        store.close()


def in_process(store_url: str, n: int, requests: int) -> dict[str, float]:
    store = open_store(store_url)
    reader = OnlineReader(store)
    reader.refresh()
    rnd = random.Random(1)
    keys = [rnd.randint(1, n) for _ in range(requests)]
    servings = {name: ViewServing(name, reader.view(name).extra[EXTRA_KEY], ["customer_id"])
                for name in ("fv_tf", "fv_od")}
    # Interleaved per request (raw, tf, od, raw, ...) so that machine load drifts hit every variant alike.
    samples: dict[str, list[float]] = {"fv_raw": [], "fv_tf": [], "fv_od": []}
    added: dict[str, list[float]] = {"fv_tf": [], "fv_od": []}  # ViewServing.apply alone
    reqs = {"fv_raw": None, "fv_tf": None, "fv_od": [{"amount": 25.0}]}
    clock = time.perf_counter
    names = list(samples)
    for _ in range(3):
        for i, k in enumerate(keys):
            for name in names[i % 3:] + names[:i % 3]:  # rotate who reads the key first (warm pages)
                samples_of = samples[name]
                serving = servings.get(name)
                t0 = clock()
                answer = reader.vectors(name, [{"customer_id": k}])
                t1 = clock()
                if serving is not None:
                    serving.apply(answer, reqs[name], None)
                    added[name].append(clock() - t1)
                samples_of.append(clock() - t0)
    store.close()
    out = {name: statistics.median(v) * 1e6 for name, v in samples.items()}
    out.update({f"{name}_apply_only": statistics.median(v) * 1e6 for name, v in added.items()})
    return out


SERVER = """
import sys
sys.path.insert(0, {root!r})
import uvicorn
from fs_cli.online.backends import open_store
from fs_cli.server.app import create_app
uvicorn.run(create_app(open_store({url!r}), api_keys="", log_dir=None), host="127.0.0.1", port={port},
            log_level="warning", access_log=False)
"""


def http_load(port: int, path_of, duration: float, conns: int) -> float:
    stop = time.perf_counter() + duration
    counts = [0] * conns

    def worker(i: int) -> None:
        rnd = random.Random(i)
        c = http.client.HTTPConnection("127.0.0.1", port)
        while time.perf_counter() < stop:
            c.request("GET", path_of(rnd))
            r = c.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError(f"HTTP {r.status}")
            counts[i] += 1
        c.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(conns)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - t0)


def over_http(store_url: str, n: int, duration: float, conns: int) -> dict[str, float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", SERVER.format(root=str(ROOT), url=store_url, port=port)])
    try:
        for _ in range(200):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/ready")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        paths = {"fv_raw": lambda r: f"/feature-views/fv_raw/vector?customer_id={r.randint(1, n)}",
                 "fv_tf": lambda r: f"/feature-views/fv_tf/vector?customer_id={r.randint(1, n)}",
                 "fv_od": lambda r: f"/feature-views/fv_od/vector?customer_id={r.randint(1, n)}&amount=25.5"}
        # Short alternating windows, median per variant: load drift on a shared machine hits both alike.
        runs: dict[str, list[float]] = {"fv_raw": [], "fv_tf": [], "fv_od": []}
        window = max(1.0, duration / 4)
        for _ in range(4):
            for name in runs:
                runs[name].append(http_load(port, paths[name], window, conns))
        return {name: statistics.median(v) for name, v in runs.items()}
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=5_000)
    ap.add_argument("--http", action="store_true")
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--connections", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/online.sqlite"
        build(url, args.customers)
        res: dict[str, dict[str, float]] = {"in_process_us_per_request": in_process(url, args.customers, args.requests)}
        if args.http:
            res["http_requests_per_s"] = over_http(url, args.customers, args.duration, args.connections)
    ip = res["in_process_us_per_request"]
    print("| path | untransformed (fv_raw) | transformed (fv_tf) | + on-demand (fv_od) | tf vs raw |")
    print("|---|---|---|---|---|")
    print(f"| in-process, us/request | {ip['fv_raw']:.1f} | {ip['fv_tf']:.1f} | {ip['fv_od']:.1f} | "
          f"{(ip['fv_raw'] / ip['fv_tf'] - 1) * 100:+.1f}% throughput |")
    print(f"| ViewServing.apply alone, us/request | - | {ip['fv_tf_apply_only']:.1f} | "
          f"{ip['fv_od_apply_only']:.1f} | |")
    if "http_requests_per_s" in res:
        h = res["http_requests_per_s"]
        print(f"| HTTP GET vector, req/s | {h['fv_raw']:.0f} | {h['fv_tf']:.0f} | {h['fv_od']:.0f} | "
              f"{(h['fv_tf'] / h['fv_raw'] - 1) * 100:+.1f}% |")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "transforms.json").write_text(json.dumps({**res, "args": vars(args)}, indent=2))


if __name__ == "__main__":
    main()
