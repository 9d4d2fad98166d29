"""`make demo`: the whole feature store end to end on the embedded DuckDB default.

Each step is a plain `fs ...` command, printed before it runs, so the demo doubles as a tutorial: copy any line.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FS = [sys.executable, "-m", "fs_cli"]

# (title, argv) -- argv after `fs`.
STEPS: list[tuple[str, list[str]]] = [
    ("Day 1: build, test and publish the feature groups with data seen until 2026-01-15",
     ["run", "--vars", '{demo_data_cutoff: "2026-01-15 00:00:00"}']),
    ("Day 2: late transactions, corrections and erasure requests arrive; publish again",
     ["run"]),
    ("The catalog", ["list"]),
    ("Find features", ["search", "basket"]),
    ("The commit log of a feature group (inserted / updated / deleted per publish)",
     ["commits", "fg_customer_transactions"]),
    ("Time travel: the profile group as published by commit 1", ["read", "fg_customer_profile", "--commit", "1",
                                                                 "--limit", "5"]),
    ("Export the current version", ["read", "fg_customer_transactions", "--out", "target/demo/fg_tx.parquet"]),
    ("Online store: `fs run` materialized the latest values of the online groups; refresh them explicitly",
     ["materialize"]),
    ("Online serving: start `fs serve` and request features in Feast's request shape",
     ["python", "-m", "fs_cli.server.demo_request"]),
    ("Training dataset: every labelled transaction joined point-in-time with the features known at that moment",
     ["training-dataset", "create", "fv_fraud_detection", "--split", "random:0.8,0.2:42",
      "--description", "demo: 80/20 random split"]),
    ("Training dataset versions (immutable; the FG commits read, the split, the content hash)",
     ["training-dataset", "list"]),
    ("One version in detail", ["training-dataset", "show", "fv_fraud_detection:1"]),
    ("Export its train split for a notebook", ["training-dataset", "export", "fv_fraud_detection:1", "--split", "train",
                                               "--out", "target/demo/fraud_train.parquet"]),
    ("Train a scikit-learn model on the latest training dataset, register it with its governance metadata, "
     "validate it (test split, slices, out-of-distribution inputs), make it champion, score a batch through the "
     "feature view", ["python", "-m", "fs_cli.registry.demo_train"]),
    ("The model registry (also SQL: select * from fs_meta.model_registry)", ["model", "list"]),
    ("Provenance: champion -> training dataset -> feature view -> feature-group commits -> dbt sources",
     ["model", "lineage", "fraud_model@champion"]),
    ("Impact: what used a feature group", ["impact", "fg_customer_profile"]),
]


def main() -> int:
    os.chdir(ROOT)
    env = dict(os.environ, FS_DUCKDB_PATH=str(ROOT / ".fs" / "feature_store.duckdb"))
    # A fresh start: the demo owns target/; nothing else lives there.
    for p in (ROOT / ".fs" / "feature_store.duckdb", ROOT / "target" / "feature_store.duckdb.wal"):
        p.unlink(missing_ok=True)
    shutil.rmtree(ROOT / "target" / "demo", ignore_errors=True)
    (ROOT / "target" / "demo").mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for i, (title, argv) in enumerate(STEPS, 1):
        # A step is an `fs` command, or a Python script (["python", ...]) standing for a user's own code.
        cmd, shown = ([sys.executable, *argv[1:]], shlex.join(argv)) if argv[0] == "python" else \
            ([*FS, *argv], f"fs {shlex.join(argv)}")
        print(f"\n\033[1m[{i}/{len(STEPS)}] {title}\033[0m\n$ {shown}", flush=True)
        rc = subprocess.call(cmd, env=env)
        if rc != 0:
            print(f"\ndemo step failed with exit code {rc}: {shown}", file=sys.stderr)
            return rc
    print(f"\ndemo finished in {time.time() - t0:.0f}s. Warehouse: .fs/feature_store.duckdb "
          "(open it read-only with any DuckDB client).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
