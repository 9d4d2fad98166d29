"""Web UI benchmark: how long each page of `fs ui` takes to answer on the demo store (HTML and its JSON twin).

usage: .venv/bin/python bench/ui.py [--project-dir DIR] [--repeat 15] [--out bench/results/ui.json]

Starts `fs ui` on a free port over the project (default: this repository, as `make demo` left it; any project with a
published store works), waits for /health, then requests every page: one warm-up, then --repeat timed GETs over one
keep-alive connection each, reporting the median (and min / p90) wall time per page in ms. Twice: cold (FS_UI_CACHE=0:
every view reads the warehouse, as the first view after a write does) and with the page cache (the store unchanged
since the last view: what a person clicking around mostly gets). The pages measured are
the ones the store has: the catalog (and a search), each feature group, the training datasets (and the latest
version), the models (and each model), and monitoring when its tables exist.
Results: the JSON file and a Markdown table on stdout. The issue's target: < 300 ms per page on the demo store.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ui(project: Path, port: int, cache: bool) -> subprocess.Popen:
    env = {**os.environ, "FS_API_KEYS": "", "FS_UI_CACHE": "1" if cache else "0"}
    proc = subprocess.Popen([sys.executable, "-m", "fs_cli", "--project-dir", str(project), "ui", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"fs ui exited with {proc.returncode}: {proc.stderr.read()[-2000:]}")
        try:
            status, _ = get(port, "/health")
            if status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.3)
    proc.terminate()
    raise SystemExit("fs ui did not answer /health within 120 s")


def get(port: int, path: str, conn: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    if conn is None:
        c.close()
    return r.status, body


def pages(port: int) -> list[tuple[str, str]]:
    """(label, path) of every page the store has, found through the JSON twins themselves."""
    out = [("catalog", "/ui/"), ("catalog search", "/ui/?q=customer")]
    catalog = json.loads(get(port, "/ui/catalog.json")[1])
    out += [(f"feature group {g['name']}", f"/ui/feature-groups/{g['name']}") for g in catalog["feature_groups"]]
    out.append(("training datasets", "/ui/training-datasets"))
    tds = json.loads(get(port, "/ui/training-datasets.json")[1])["training_datasets"]
    if tds:
        td = tds[-1]
        out.append((f"training dataset {td['ref']}", f"/ui/training-datasets/{td['feature_view']}/{td['version']}"))
    out.append(("models", "/ui/models"))
    models = json.loads(get(port, "/ui/models.json")[1])["models"]
    out += [(f"model {n}", f"/ui/models/{n}") for n in sorted({m["name"] for m in models})]
    if get(port, "/ui/monitoring.json")[0] == 200:
        out.append(("monitoring", "/ui/monitoring"))
    return out


def measure(port: int, path: str, repeat: int) -> dict[str, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    status, body = get(port, path, conn)  # warm-up
    if status != 200:
        raise SystemExit(f"{path} answered {status}: {body[:300]!r}")
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        get(port, path, conn)
        times.append((time.perf_counter() - t0) * 1000)
    conn.close()
    times.sort()
    return {"median_ms": statistics.median(times), "min_ms": times[0],
            "p90_ms": times[min(len(times) - 1, int(0.9 * len(times)))], "bytes": len(body)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project-dir", type=Path, default=ROOT)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ui.json")
    args = ap.parse_args()
    results = []
    for cache in (False, True):
        port = free_port()
        proc = start_ui(args.project_dir, port, cache)
        try:
            for label, path in pages(port):
                html = measure(port, path, args.repeat)
                twin = "/ui/catalog.json" if path == "/ui/" else (path + ".json" if "?" not in path else None)
                js = measure(port, twin, args.repeat) if twin else None
                results.append({"page": label, "path": path, "cache": cache, "html": html, "json": js})
                print(f"{'cached' if cache else 'cold  '} {label:45s} html {html['median_ms']:7.1f} ms"
                      + (f"   json {js['median_ms']:7.1f} ms" if js else ""), file=sys.stderr, flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    doc = {"project": str(args.project_dir), "repeat": args.repeat, "cpus": os.cpu_count(), "load_1m": load,
           "python": platform.python_version(), "pages": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    print("\n| page | cold: HTML median ms (min / p90) | cold: JSON | unchanged store: HTML (min / p90) | "
          "unchanged store: JSON |\n|---|---|---|---|---|")
    cold = [r for r in results if not r["cache"]]
    warm = {r["path"]: r for r in results if r["cache"]}
    for r in cold:
        w = warm.get(r["path"], r)
        cells = []
        for x in (r, w):
            h, j = x["html"], x["json"]
            cells += [f"{h['median_ms']:.0f} ({h['min_ms']:.0f} / {h['p90_ms']:.0f})",
                      f"{j['median_ms']:.0f}" if j else "-"]
        print(f"| {r['page']} | " + " | ".join(cells) + " |")
    print(f"\n{os.cpu_count()} CPUs, 1-minute load {load:.1f} during the run; results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
