"""Fixed cost per command: each `fs` command as a cold process on the demo store, next to dbt's own floor.

    .venv/bin/python bench/cli.py [--project-dir DIR] [--repeat 5] [--markdown]

Needs a built demo store (`make demo`) in the project. Prints, per command, the median wall time of N cold processes,
the median CPU time (user + sys of the process and its children: what the command costs, less sensitive to other
load on the machine than wall time), and the wall-time ratios to the bare interpreter and to `dbt ls` on the same
project, all measured in one run, with the load average. `fs run` and `fs materialize` are run once untimed first,
so the timed runs find nothing new; `fs training-dataset create` adds a version per run to the store it is given
(use a copy of the demo). Nothing is left running: each command is a child process that is waited for (killed after
--timeout), and `fs serve` is stopped once /ready answers.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _time(argv: list[str], cwd: Path, timeout: float) -> tuple[float, float]:
    """(wall s, CPU s) of one cold process; it always ends (subprocess.run kills it on timeout)."""
    cpu0, t0 = _children_cpu(), time.perf_counter()
    subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=timeout)
    return time.perf_counter() - t0, _children_cpu() - cpu0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_ready(cwd: Path, timeout: float) -> tuple[float, float]:
    """Seconds from starting `fs serve` to /ready answering 200 (and the server's CPU until stopped); the server is
    always stopped and waited for."""
    port = _free_port()
    cpu0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.Popen([str(BIN / "fs"), "serve", "--port", str(port), "--no-log"], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"fs serve exited with {proc.returncode} before it was ready")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as r:
                    if r.status == 200:
                        ready = time.perf_counter() - t0
                        break
            except OSError:
                time.sleep(0.02)
        else:
            raise RuntimeError(f"fs serve did not become ready within {timeout:.0f} s")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return ready, _children_cpu() - cpu0


@dataclass
class Case:
    name: str
    argv: list[str] | None  # None: fs serve, time to ready
    warm_up: bool = False  # run once untimed first (so the timed runs find nothing new)
    kind: str = ""  # read-only | write | floor


def cases(fs: str, dbt: str) -> list[Case]:
    return [
        Case("python -c pass (interpreter floor)", [sys.executable, "-c", "pass"], kind="floor"),
        Case("dbt ls (dbt's floor)", [dbt, "ls", "--quiet"], kind="floor"),
        Case("dbt parse", [dbt, "parse", "--quiet"], kind="floor"),
        Case("fs --version", [fs, "--version"], kind="read-only"),
        Case("fs --help", [fs, "--help"], kind="read-only"),
        Case("fs list", [fs, "list"], kind="read-only"),
        Case("fs describe fg_customer_profile", [fs, "describe", "fg_customer_profile"], kind="read-only"),
        Case("fs commits fg_customer_transactions", [fs, "commits", "fg_customer_transactions"], kind="read-only"),
        Case("fs read fg_customer_profile --limit 5", [fs, "read", "fg_customer_profile", "--limit", "5"],
             kind="read-only"),
        Case("fs materialize (nothing new)", [fs, "materialize"], warm_up=True, kind="write"),
        Case("fs run (nothing changed)", [fs, "run"], warm_up=True, kind="write"),
        Case("fs training-dataset create fv_fraud_detection", [fs, "training-dataset", "create", "fv_fraud_detection"],
             kind="write"),
        Case("fs serve: start to /ready", None, kind="read-only"),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project-dir", type=Path, default=ROOT)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", action="append", help="Run only the cases whose name contains this (repeatable).")
    ap.add_argument("--timeout", type=float, default=600, help="Seconds before a command is killed.")
    ap.add_argument("--markdown", action="store_true", help="Print the table as Markdown (bench/README.md).")
    args = ap.parse_args()
    d = args.project_dir.resolve()
    if not (d / ".fs").exists():
        print(f"no store in {d}/.fs: run `make demo` first", file=sys.stderr)
        return 2
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    for var in ("FS_DUCKDB_PATH", "FS_PROJECT_DIR", "FS_TARGET"):  # the demo's own store, as a user in it has
        os.environ.pop(var, None)
    todo = cases(str(BIN / "fs"), str(BIN / "dbt"))
    if args.only:
        todo = [c for c in todo if c.kind == "floor" or any(o in c.name for o in args.only)]
    load_before = os.getloadavg()
    rows = []
    for case in todo:
        if case.kind != "floor" and rows and rows[-1][0].kind == "floor":
            # plain dbt (the floor cases) rewrote target/manifest.json, which fs cannot vouch for: the first fs
            # command after it parses once (dbt's partial parse), the ones after read the manifest without dbt
            _time([str(BIN / "fs"), "list"], d, args.timeout)
        if case.warm_up:
            _time(case.argv, d, args.timeout)
        runs = [(_serve_ready(d, args.timeout) if case.argv is None else _time(case.argv, d, args.timeout))
                for _ in range(args.repeat)]
        rows.append((case, statistics.median(w for w, _ in runs), min(w for w, _ in runs),
                     statistics.median(c for _, c in runs)))
        print(f"  {case.name}: {rows[-1][1]:.2f} s", file=sys.stderr)
    load_after = os.getloadavg()
    floor = rows[0][1]
    dbt_ls = rows[1][1]
    if args.markdown:
        print("| command (cold process) | median s | min s | CPU s | x python | x dbt ls |")
        print("|---|---:|---:|---:|---:|---:|")
        for case, med, mn, cpu in rows:
            print(f"| `{case.name}` | {med:.2f} | {mn:.2f} | {cpu:.2f} | {med / floor:.1f} | {med / dbt_ls:.2f} |")
    else:
        print(f"{'command (cold process)':48} {'median s':>9} {'min s':>7} {'CPU s':>7} {'x python':>9} {'x dbt ls':>9}")
        for case, med, mn, cpu in rows:
            print(f"{case.name:48} {med:9.2f} {mn:7.2f} {cpu:7.2f} {med / floor:9.1f} {med / dbt_ls:9.2f}")
    print(f"\nN = {args.repeat} cold processes per command; load average (1/5/15 min) before "
          f"{'/'.join(f'{x:.1f}' for x in load_before)}, after {'/'.join(f'{x:.1f}' for x in load_after)} "
          f"on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
