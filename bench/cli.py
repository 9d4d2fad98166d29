"""Fixed cost per command: each `fs` command as a cold process on the demo store, next to dbt's own floor.

    .venv/bin/python bench/cli.py [--project-dir DIR] [--repeat 5]

Needs a built demo store (`make demo`) in the project. Prints the median wall time of N cold processes per command
and its ratio to the bare interpreter and to `dbt ls`/`dbt parse` on the same project, measured in one run.
Nothing is left running: each command is a child process that exits (fs serve is stopped once /ready answers).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _time(argv: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_ready(cwd: Path) -> float:
    """Seconds from starting `fs serve` to /ready answering 200; the server is always stopped."""
    port = _free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(BIN / "fs"), "serve", "--port", str(port)], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - t0
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("fs serve did not become ready within 120 s")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project-dir", type=Path, default=ROOT)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    d = args.project_dir.resolve()
    if not (d / ".fs").exists():
        print(f"no store in {d}/.fs: run `make demo` first", file=sys.stderr)
        return 2
    fs = str(BIN / "fs")
    dbt = str(BIN / "dbt")
    cases: list[tuple[str, list[str] | None]] = [
        ("python -c pass (interpreter floor)", [sys.executable, "-c", "pass"]),
        ("dbt ls (dbt's floor)", [dbt, "ls", "--quiet"]),
        ("dbt parse", [dbt, "parse", "--quiet"]),
        ("fs --help", [fs, "--help"]),
        ("fs list", [fs, "list"]),
        ("fs describe fg_customer_profile", [fs, "describe", "fg_customer_profile"]),
        ("fs commits fg_customer_transactions", [fs, "commits", "fg_customer_transactions"]),
        ("fs read fg_customer_profile --limit 5", [fs, "read", "fg_customer_profile", "--limit", "5"]),
        ("fs materialize (nothing new)", [fs, "materialize"]),
        ("fs serve: start to /ready", None),
    ]
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    _time([fs, "list"], d)  # the first command after a change parses once; the rest must not
    rows = []
    for name, argv in cases:
        times = [(_serve_ready(d) if argv is None else _time(argv, d)) for _ in range(args.repeat)]
        rows.append((name, statistics.median(times), min(times)))
    floor = rows[0][1]
    dbt_ls = rows[1][1]
    print(f"{'command (cold process)':42} {'median s':>9} {'min s':>7} {'x python':>9} {'x dbt ls':>9}")
    for name, med, mn in rows:
        print(f"{name:42} {med:9.2f} {mn:7.2f} {med / floor:9.1f} {med / dbt_ls:9.2f}")
    try:
        load = os.getloadavg()[0]
        print(f"machine load (1 min): {load:.1f} on {os.cpu_count()} cores")
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
