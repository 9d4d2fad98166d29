"""Online benchmark: materialization speed and HTTP serving throughput/latency, against a bare endpoint and Feast.

usage: .venv/bin/python bench/online.py [--size small|medium|large] [--duration 10] [--connections 8]
                                        [--backends sqlite,redis] [--no-feast] [--no-log]

1. Loads the benchmark layout (bench/data/<size>/fg_customer_tx.parquet, fg_customer_profile.parquet; generated
   with bench/gen_data.py if missing) as two online feature groups (key customer_id, event_time, created, no TTL).
2. Materializes both into each backend (fresh SQLite file; Redis under a throw-away key prefix) and reports rows/s.
3. Starts `fs serve` (1 worker, served-vector logging on, as by default), a bare FastAPI endpoint that returns a
   fixed body of the same size as our answer (the ceiling for this stack), and, if bench/.feast-venv exists,
   `feast serve` on the same data after timing `FeatureStore.materialize` into Feast's SQLite online store.
4. Drives each with Feast-shaped requests (one random entity; 100 random entities; 6 features from 2 groups)
   using wrk (Debian package `wrk`) or, if wrk is absent, a Python keep-alive load generator.
Results: bench/results/online-<size>.json and a Markdown table on stdout (pasted into bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))

from fs_cli.online import FeatureSpec, FGSpec, FVSpec, materialize  # noqa: E402
from fs_cli.online.backends import open_store  # noqa: E402

SIZES = {"small": (10_000, 200_000, 100_000), "medium": (100_000, 2_000_000, 1_000_000),
         "large": (1_000_000, 20_000_000, 10_000_000)}
FGS = {"fg_customer_tx": ["tx_amount_7d", "tx_count_7d", "avg_basket"],
       "fg_customer_profile": ["credit_score", "tenure_days", "risk_ratio"]}
FEATURES = [f"{fg}:{f}" for fg, fs in FGS.items() for f in fs]
NOW = datetime(2025, 1, 2)  # after every generated event (all of 2024)
REDIS_URL = "redis://127.0.0.1:6379/0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
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


def specs() -> dict[str, FGSpec]:
    return {fg: FGSpec(fg, ("customer_id",), ("bigint",), "event_time",
                       tuple(FeatureSpec(f, "double") for f in feats), created_time="created", ttl_seconds=None)
            for fg, feats in FGS.items()}


def ensure_data(size: str) -> Path:
    d = BENCH / "data" / size
    if not (d / "fg_customer_tx.parquet").exists():
        n, rows, spine = SIZES[size]
        subprocess.run([sys.executable, str(BENCH / "gen_data.py"), str(d), str(n), str(rows), str(spine)], check=True)
    return d


# -- load generation ---------------------------------------------------------------------------------------
WRK_LUA = """
math.randomseed({seed})
local feats = '{feats}'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local ids = {{}}
  for i = 1, {k} do ids[i] = math.random(0, {n} - 1) end
  local body = '{{"features":' .. feats .. ',"entities":{{"customer_id":[' .. table.concat(ids, ",") .. ']}}}}'
  return wrk.format(nil, "/get-online-features", nil, body)
end
"""


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def run_wrk(base: str, k: int, n: int, duration: int, conns: int, tmp: Path) -> dict:
    script = tmp / f"req{k}.lua"
    script.write_text(WRK_LUA.format(seed=42, feats=json.dumps(FEATURES), k=k, n=n))
    cmd = ["wrk", "-t2", f"-c{conns}", f"-d{duration}s", "--latency", "-s", str(script), base]
    subprocess.run([*cmd[:3], "-d2s", *cmd[4:]], capture_output=True)  # warm-up
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50_ms": lat.get("50"), "p90_ms": lat.get("90"), "p99_ms": lat.get("99"),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0, "socket_errors": errors.group(1) if errors else None,
            "tool": "wrk"}


def run_python_load(base: str, k: int, n: int, duration: int, conns: int) -> dict:
    """Fallback when wrk is missing: `conns` threads, one keep-alive connection each (client-bound, slower)."""
    import http.client
    import random

    host, port = base.replace("http://", "").split(":")
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    end = time.time() + duration

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        c = http.client.HTTPConnection(host, int(port))
        mine = []
        while time.time() < end:
            body = json.dumps({"features": FEATURES, "entities": {"customer_id": [rnd.randrange(n) for _ in range(k)]}})
            t0 = time.perf_counter()
            c.request("POST", "/get-online-features", body, {"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            mine.append(time.perf_counter() - t0)
            if r.status != 200:
                errors[0] += 1
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat.sort()

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000

    return {"rps": len(lat) / duration, "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99),
            "non_2xx": errors[0], "tool": "python"}


def load(base: str, k: int, n: int, args, tmp: Path) -> dict:
    if shutil.which("wrk"):
        return run_wrk(base, k, n, args.duration, args.connections, tmp)
    return run_python_load(base, k, n, args.duration, args.connections)


# -- servers -----------------------------------------------------------------------------------------------
BARE_APP = textwrap.dedent("""
    import sys, uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import Response
    one, many = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
    app = FastAPI()

    @app.post("/get-online-features")
    async def fixed(request: Request):
        raw = await request.body()
        return Response(many if raw.count(b",") > 20 else one, media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), access_log=False, log_level="warning")
""")

FEAST_REPO = textwrap.dedent("""
    from datetime import timedelta
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    def fv(name, cols):
        src = FileSource(name=name + "_src", path={data!r} + "/" + name + ".parquet",
                         timestamp_field="event_time", created_timestamp_column="created")
        return FeatureView(name=name, entities=[customer], ttl=timedelta(0), online=True, source=src,
                           schema=[Field(name=c, dtype=Float64) for c in cols])
    fg_customer_tx = fv("fg_customer_tx", {tx!r})
    fg_customer_profile = fv("fg_customer_profile", {prof!r})
""")
FEAST_YAML = """project: bench
registry: {repo}/registry.db
provider: local
online_store:
  type: sqlite
  path: {repo}/online_store.db
offline_store:
  type: file
"""
FEAST_MAT = textwrap.dedent("""
    import sys, time
    from datetime import datetime
    from feast import FeatureStore
    fs = FeatureStore(repo_path=sys.argv[1])
    t0 = time.perf_counter()
    fs.materialize(datetime(2023, 12, 31), datetime(2025, 1, 2))
    print("SECONDS", time.perf_counter() - t0)
""")


def feast_setup(data: Path, tmp: Path) -> tuple[Path, Path, float] | None:
    venv = BENCH / ".feast-venv"
    if not (venv / "bin" / "feast").exists():
        return None
    repo = tmp / "feast_repo"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text(FEAST_YAML.format(repo=repo))
    (repo / "defs.py").write_text(FEAST_REPO.format(data=str(data), tx=FGS["fg_customer_tx"],
                                                    prof=FGS["fg_customer_profile"]))
    env = {**os.environ, "FEAST_USAGE": "False"}
    subprocess.run([str(venv / "bin" / "feast"), "apply"], cwd=repo, env=env, check=True, capture_output=True)
    out = subprocess.run([str(venv / "bin" / "python"), "-c", FEAST_MAT, str(repo)], cwd=repo, env=env,
                         capture_output=True, text=True, check=True).stdout
    secs = float(re.search(r"SECONDS ([\d.]+)", out).group(1))
    return venv, repo, secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="medium", choices=SIZES)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--backends", default="sqlite,redis")
    ap.add_argument("--no-feast", action="store_true")
    ap.add_argument("--no-log", action="store_true", help="serve without served-vector logging")
    ap.add_argument("--repeat", type=int, default=3,
                    help="rounds over all servers (interleaved, so load from elsewhere hits all alike); medians")
    args = ap.parse_args()

    data = ensure_data(args.size)
    n_entities = SIZES[args.size][0]
    tmp = Path(tempfile.mkdtemp(prefix="fs-bench-online-"))
    results: dict = {"size": args.size, "entities": n_entities, "connections": args.connections,
                     "duration_s": args.duration, "repeat": args.repeat, "logging": not args.no_log,
                     "load_tool": "wrk" if shutil.which("wrk") else "python",
                     "cpus": os.cpu_count(), "materialize": {}, "serve": {}}
    tables = {fg: pq.read_table(data / f"{fg}.parquet") for fg in FGS}
    views = {"customer_v1": FVSpec("customer_v1", tuple(FEATURES), ("customer_id",))}
    procs: list[subprocess.Popen] = []
    prefix = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        urls = {}
        for backend in args.backends.split(","):
            url = f"sqlite:///{tmp / 'online.sqlite'}" if backend == "sqlite" else REDIS_URL
            store = open_store(url, prefix=prefix)
            t0 = time.perf_counter()
            rows_in = written = 0
            for fg, spec in specs().items():
                r = materialize(store, spec, tables[fg], NOW, views=views)
                rows_in += r.input_rows
                written += r.written
            secs = time.perf_counter() - t0
            results["materialize"][f"fs ({backend})"] = {"seconds": round(secs, 2), "input_rows": rows_in,
                                                         "entities_written": written,
                                                         "rows_per_s": round(rows_in / secs)}
            print(f"materialize {backend}: {secs:.2f}s, {rows_in / secs:,.0f} input rows/s, {written} entities")
            store.close()
            urls[backend] = url

        feast = None if args.no_feast else feast_setup(data, tmp)
        if feast:
            results["materialize"]["feast (sqlite)"] = {"seconds": round(feast[2], 2),
                                                        "rows_per_s": round(2 * SIZES[args.size][1] / feast[2])}
            print(f"feast materialize: {feast[2]:.2f}s")

        servers = {}
        for backend, url in urls.items():
            port = free_port()
            env = {**os.environ, "FS_ONLINE_PREFIX": prefix, "FS_API_KEYS": ""}
            cmd = [sys.executable, "-m", "fs_cli", "serve", "--store", url, "--port", str(port), "--workers", "1",
                   "--log-dir", str(tmp / f"logs-{backend}")] + (["--no-log"] if args.no_log else [])
            p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            procs.append(p)
            wait_ready(f"http://127.0.0.1:{port}/ready", p)
            servers[f"fs serve ({backend})"] = f"http://127.0.0.1:{port}"

        # the bare endpoint returns bodies of exactly our answer's size for 1 and 100 entities
        import httpx

        first = next(iter(servers.values()))
        one = httpx.post(f"{first}/get-online-features",
                         json={"features": FEATURES, "entities": {"customer_id": [1]}}).content
        many = httpx.post(f"{first}/get-online-features",
                          json={"features": FEATURES, "entities": {"customer_id": list(range(100))}}).content
        (tmp / "one.json").write_bytes(one)
        (tmp / "many.json").write_bytes(many)
        port = free_port()
        p = subprocess.Popen([sys.executable, "-c", BARE_APP, str(tmp / "one.json"), str(tmp / "many.json"), str(port)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(p)
        wait_ready(f"http://127.0.0.1:{port}/docs", p)
        servers["bare FastAPI (fixed body)"] = f"http://127.0.0.1:{port}"

        if feast:
            venv, repo, _ = feast
            port = free_port()
            p = subprocess.Popen([str(venv / "bin" / "feast"), "serve", "-p", str(port), "--no-access-log",
                                  "--max-requests", "1000000000"],
                                 cwd=repo, env={**os.environ, "FEAST_USAGE": "False"},
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            procs.append(p)
            wait_ready(f"http://127.0.0.1:{port}/health", p, timeout=120)
            check = httpx.post(f"http://127.0.0.1:{port}/get-online-features",
                               json={"features": FEATURES, "entities": {"customer_id": [1]}}).json()
            assert "results" in check, check
            servers["feast serve (sqlite)"] = f"http://127.0.0.1:{port}"

        runs: dict[tuple[str, int], list[dict]] = {}
        for rnd in range(args.repeat):
            for name, base in servers.items():
                for k in (1, 100):
                    r = load(base, k, n_entities, args, tmp)
                    runs.setdefault((name, k), []).append(r)
                    print(f"[{rnd + 1}/{args.repeat}] {name:28s} {k:>3} entities: {r['rps']:>9,.0f} req/s  "
                          f"p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  non-2xx {r['non_2xx']}", flush=True)
        for (name, k), rs in runs.items():
            med = sorted(rs, key=lambda r: r["rps"])[len(rs) // 2]
            results["serve"].setdefault(name, {})[f"{k}_entity"] = {
                **med, "p99_ms": sorted(r["p99_ms"] for r in rs)[len(rs) // 2],
                "rps_runs": [round(r["rps"]) for r in rs], "non_2xx": sum(r["non_2xx"] for r in rs)}
    finally:
        for p in procs:
            stop(p)
        if "redis" in args.backends:
            try:
                s = open_store(REDIS_URL, prefix=prefix)
                s.drop_all()
                s.close()
            except Exception:
                pass
        shutil.rmtree(tmp, ignore_errors=True)

    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    (out / f"online-{args.size}.json").write_text(json.dumps(results, indent=2))
    print_markdown(results)


def print_markdown(res: dict) -> None:
    bare = res["serve"].get("bare FastAPI (fixed body)", {})
    feast = res["serve"].get("feast serve (sqlite)", {})
    print(f"\n| server ({res['size']}, {res['connections']} connections, 1 worker, median of {res['repeat']}) "
          "| entities/request | req/s | p50 ms | p99 ms | vs bare | vs feast |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, by_k in res["serve"].items():
        for k, r in by_k.items():
            vb = r["rps"] / bare[k]["rps"] if k in bare else None
            vf = r["rps"] / feast[k]["rps"] if k in feast else None
            print(f"| {name} | {k.split('_')[0]} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                  f"{f'{vb:.2f}x' if vb else '-'} | {f'{vf:.1f}x' if vf else '-'} |")
    print("\n| materialization (2 feature groups) | seconds | input rows/s |")
    print("|---|---:|---:|")
    for name, m in res["materialize"].items():
        print(f"| {name} | {m['seconds']} | {m['rows_per_s']:,} |")


if __name__ == "__main__":
    main()
