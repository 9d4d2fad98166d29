"""Demo step: a shifted day of traffic is caught by `fs monitor`.

Two bursts of served feature vectors go to the service's log (written by the service's own writer,
fs_cli/server/logs.py, so the lines are exactly what `fs serve` logs): a normal day, vectors as the training
dataset's test split has them, then a day where an upstream change inflated the customers' 30-day amounts
(x4 + 100) and a customer segment never seen in training appears. `fs monitor` compares each day with the training
dataset the champion was trained on; the normal day passes (exit 0), the shifted day is flagged (exit 1), and
`fs report` draws both in one HTML file.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import orjson

from fs_cli import training
from fs_cli.sdk import FeatureStore
from fs_cli.server.logs import ServedLog
from fs_cli.timeutil import utcnow

from . import child_env

FV = "fv_fraud_detection"
BATCH = 25  # entity rows per logged request


def _serve(log: ServedLog, rows: list[dict], keys: list[str], features: list[str], shifted: bool) -> None:
    names = [*keys, *features]
    for i in range(0, len(rows), BATCH):
        batch = rows[i:i + BATCH]
        results = []
        for n in names:
            values = [r.get(n) for r in batch]
            if shifted and n == "tx_amount_30d":
                values = [None if v is None else float(v) * 4 + 100 for v in values]
            if shifted and n == "segment":
                values = ["unseen_segment" for _ in values]
            results.append({"values": values,
                            "statuses": ["PRESENT" if v is not None else "NULL_VALUE" for v in values]})
        body = orjson.dumps({"metadata": {"feature_names": names}, "results": results}, default=str)
        log.submit(uuid.uuid4().hex, FV, {}, body)


def _fs(argv: list[str]) -> int:
    print(f"$ fs {shlex.join(argv)}", flush=True)
    return subprocess.call([sys.executable, "-m", "fs_cli", *argv])


def _tick() -> None:
    """Let the clock move past the last logged line, so the next burst starts a window of its own."""
    mark = utcnow()
    while utcnow() <= mark + timedelta(milliseconds=5):
        time.sleep(0.005)


def prepare() -> dict[str, str]:
    """Log the two days of served vectors; the window bounds as text."""
    fs = FeatureStore()
    td = training.info(fs.project, FV, 1)
    rows = training.read(fs.project, FV, td.version, split="test")[1].to_pylist()
    keys, features = fs.catalog.fv(FV).key_columns, [f["name"] for f in td.features]
    log = ServedLog(fs.project.state_dir / "served_vectors")
    start = utcnow()
    _serve(log, rows, keys, features, shifted=False)
    log.close()
    _tick()
    mid = utcnow()
    log = ServedLog(fs.project.state_dir / "served_vectors")
    _serve(log, rows, keys, features, shifted=True)
    log.close()
    _tick()
    end = utcnow()
    print(f"logged {len(rows)} served vectors of a normal day, then {len(rows)} of a shifted day "
          "(tx_amount_30d x4 + 100, an unseen segment) to .fs/served_vectors/", flush=True)
    return {"td": str(td.version), **{k: f"{v:%Y-%m-%d %H:%M:%S.%f}" for k, v in
                                       (("start", start), ("mid", mid), ("end", end))}}


def main() -> int:
    if sys.argv[1:] == ["--prepare"]:
        print(json.dumps(prepare()))
        return 0
    # The preparation reads the warehouse in a child process: on Spark a session holds the project's one-process
    # metastore for as long as its process lives, and the `fs monitor` commands below need it.
    out = subprocess.run([sys.executable, "-m", "demo.monitor", "--prepare"], check=True, env=child_env(),
                         stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()
    print("\n".join(out[:-1]), flush=True)
    w = json.loads(out[-1])
    td, start, mid, end = w["td"], w["start"], w["mid"], w["end"]

    window = ["--training-dataset", td, "--source", "served"]
    normal = _fs(["monitor", FV, *window, "--since", start, "--until", mid])
    shifted = _fs(["monitor", FV, *window, "--since", mid, "--until", end])
    _fs(["report", "--html", "target/demo/monitoring.html"])
    if normal == 0 and shifted == 1:
        print("\n\033[1mmonitoring: the normal day passed (exit 0); the shifted day was flagged (exit 1)\033[0m")
        return 0
    print(f"\nmonitoring: expected exit codes 0 (normal day) and 1 (shifted day), got {normal} and {shifted}",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
