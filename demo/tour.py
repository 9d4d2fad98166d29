"""`make demo` (`python -m demo`): the whole feature store end to end on the embedded DuckDB default (`FS_TARGET=postgres make demo`
runs the same steps on the Postgres target of profiles.yml).

Each step is a plain `fs ...` command, printed before it runs, so the demo doubles as a tutorial: copy any line.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time

from . import ROOT, child_env

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
     ["python", "-m", "demo.request"]),
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
     "feature view", ["python", "-m", "demo.train"]),
    ("The model registry (also SQL: select * from fs_meta.model_registry)", ["model", "list"]),
    ("Provenance: champion -> training dataset -> feature view -> feature-group commits -> dbt sources",
     ["model", "lineage", "fraud_model@champion"]),
    ("Impact: what used a feature group", ["impact", "fg_customer_profile"]),
    ("Monitoring: a normal day and a shifted day of served traffic against the training dataset; `fs monitor` "
     "flags the shift (exit 1) and `fs report` draws it (target/demo/monitoring.html)",
     ["python", "-m", "demo.monitor"]),
]


def fresh_start() -> str:
    """The demo owns its store: drop what an earlier demo left in the target warehouse and in .fs/."""
    from fs_cli.project import Project
    from fs_cli.warehouse import META_SCHEMA

    project = Project(ROOT)
    target = project.target_config()
    # DuckDB file, online store, logs, model blobs; the folder itself (and its .gitkeep) stays
    for child in project.state_dir.glob("*") if project.state_dir.is_dir() else []:
        if child.name != ".gitkeep":
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    if target.get("type") != "duckdb":  # a server: drop the schemas the project builds into (and only those)
        base = str(target.get("schema"))
        with project.warehouse() as wh:
            for schema in wh.schemas():
                if schema == META_SCHEMA or schema == base or schema.startswith(base + "_"):
                    wh.drop_schema(schema)
    shutil.rmtree(ROOT / "target" / "demo", ignore_errors=True)
    (ROOT / "target" / "demo").mkdir(parents=True, exist_ok=True)
    return f"{target.get('type')} target {project.target!r}"


def main() -> int:
    os.chdir(ROOT)  # the `fs` commands read the project in their working directory
    env = child_env()  # the steps run with cwd=ROOT and import this checkout's demo and fs_cli whatever the cwd
    # In a child process: on Spark the session (and its one-process metastore) lives as long as its process.
    where = subprocess.run([sys.executable, "-c", "from demo.tour import fresh_start; print(fresh_start())"],
                           cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    print(f"demo on the {where}", flush=True)
    t0 = time.time()
    for i, (title, argv) in enumerate(STEPS, 1):
        # A step is an `fs` command, or a Python script (["python", ...]) standing for a user's own code.
        cmd, shown = ([sys.executable, *argv[1:]], shlex.join(argv)) if argv[0] == "python" else \
            ([*FS, *argv], f"fs {shlex.join(argv)}")
        print(f"\n\033[1m[{i}/{len(STEPS)}] {title}\033[0m\n$ {shown}", flush=True)
        rc = subprocess.call(cmd, cwd=ROOT, env=env)
        if rc != 0:
            print(f"\ndemo step failed with exit code {rc}: {shown}", file=sys.stderr)
            return rc
    print(f"\ndemo finished in {time.time() - t0:.0f}s on the {where}. BI: the published rows are in the "
          "<schema>_published views, history in <schema>_history (see README).")
    print("Web UI: run `fs ui --port 8890` and open http://127.0.0.1:8890/ui/ (catalog, commits, validation, drift, "
          "training datasets, models; every page also as JSON at <page>.json)")
    return 0
