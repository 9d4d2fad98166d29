"""Issue 17 item 6: writers wait for each other (bounded, with one message) instead of failing.

A second concurrent `fs run` used to die inside dbt with a DuckDB lock error; concurrent `fs model register` failed
with "cannot open the warehouse". Now every writer holds the project's writer lock (fs_cli/warehouse/lock.py) and a
DuckDB open waits for another process's lock, both up to FS_LOCK_TIMEOUT, then fail with one clear line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from registry_support import crafted_frame, engine_database, registry_project, train_pipeline, write_td
from test_pipeline_commits import V1, make_items_project, write_rows

from fs_cli.warehouse.lock import writer_lock

REPO = Path(__file__).resolve().parent.parent
FS = [sys.executable, "-m", "fs_cli"]
WAITING = "waiting for the warehouse lock held by PID"
DEADLINE = 300  # seconds any child may take on a loaded machine


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in ("FS_ONLINE_STORE", "FS_LOCK_TIMEOUT")}
    return {**e, "PYTHONPATH": str(REPO), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **extra}


def start(d: Path, *args: str, **extra_env: str) -> subprocess.Popen:
    return subprocess.Popen([*FS, "--project-dir", str(d), *args], env=env(**extra_env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = DEADLINE) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def end(procs: list[subprocess.Popen]) -> None:
    """Every child is gone after the test, whatever happened."""
    for p in procs:
        if p.poll() is None:
            p.kill()
        try:
            p.communicate(timeout=60)
        except (subprocess.TimeoutExpired, ValueError):
            pass


def wait_for_lock_holder(d: Path, pid: int, proc: subprocess.Popen, timeout: float = DEADLINE) -> None:
    """Poll (never a fixed sleep) until `pid` holds the project's writer lock (its PID is in .fs/write.lock)."""
    lock = d / ".fs" / "write.lock"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lock.exists() and lock.read_text().split(" ", 1)[0] == str(pid):
            return
        if proc.poll() is not None:
            raise AssertionError(f"PID {pid} ended before taking the lock: {proc.communicate()}")
        time.sleep(0.1)
    raise AssertionError(f"PID {pid} did not take the writer lock within {timeout} s")


@pytest.fixture
def items(project_copy) -> Path:
    d = make_items_project(project_copy, "duckdb")
    write_rows(d, V1)
    return d


def test_a_second_concurrent_fs_run_waits_for_the_first(items: Path):
    procs: list[subprocess.Popen] = []
    try:
        first = start(items, "run", "--json")
        procs.append(first)
        wait_for_lock_holder(items, first.pid, first)
        # waits as long as the first takes: the default bound (60 s) is less than one fs run on a loaded machine
        second = start(items, "run", "--json", FS_LOCK_TIMEOUT=str(DEADLINE))
        procs.append(second)
        code1, out1, err1 = finish(first)
        code2, out2, err2 = finish(second)
    finally:
        end(procs)
    assert code1 == 0, err1[-3000:]
    assert code2 == 0, err2[-3000:]
    assert f"{WAITING} {first.pid}" in err2, err2[-3000:]  # the second waited, and said for whom
    assert err2.count(WAITING) == 1 and "Traceback" not in err2 and "Traceback" not in err1
    first_report, second_report = json.loads(out1), json.loads(out2)
    assert first_report["ok"] and first_report["feature_groups"][0]["commit"]["commit_id"] == 1
    assert second_report["ok"] and second_report["feature_groups"][0]["commit"] is None  # nothing new to publish
    code, out, err = finish(start(items, "commits", "fg_test_items", "--json"))
    assert code == 0 and [c["commit_id"] for c in json.loads(out)] == [1], err


@pytest.fixture
def registry(tmp_path: Path, engine: str) -> Iterator[tuple[Path, Path]]:
    df = crafted_frame()
    model = train_pipeline(df, tmp_path / "model.skops")
    with engine_database(engine) as db:
        d = registry_project(tmp_path / "proj", engine, db)
        write_td(d, df)
        yield d, model


def test_four_concurrent_registrations_all_succeed_with_distinct_versions(registry: tuple[Path, Path]):
    d, model = registry
    procs: list[subprocess.Popen] = []
    try:
        procs = [start(d, "model", "register", "fraud", "--path", str(model), "--training-dataset", "fv_test:1",
                       "--json") for _ in range(4)]
        done = [finish(p) for p in procs]
    finally:
        end(procs)
    assert all(code == 0 for code, _, _ in done), "\n---\n".join(err[-3000:] for code, _, err in done if code)
    assert not any("Traceback" in err for _, _, err in done)
    assert sorted(json.loads(out)["model"]["version"] for _, out, _ in done) == [1, 2, 3, 4]
    code, out, err = finish(start(d, "model", "list", "--json"))
    assert code == 0, err
    assert sorted(m["version"] for m in json.loads(out) if m["name"] == "fraud") == [1, 2, 3, 4]


DUCKDB_HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])  # read-write, never released: a BI client with write access
print("holding", flush=True)
time.sleep(600)
"""
WRITER_HOLDER = """
import sys, time
from fs_cli.project import Project
from fs_cli.warehouse.lock import writer_lock
with writer_lock(Project(sys.argv[1])):  # another writer that never finishes
    print("holding", flush=True)
    time.sleep(600)
"""


@pytest.mark.parametrize("holder_kind", ["duckdb file", "writer lock"])
def test_a_holder_that_never_releases_gives_the_clear_error_after_the_timeout(items: Path, holder_kind: str):
    script, arg = ((DUCKDB_HOLDER, str(items / ".fs" / "feature_store.duckdb")) if holder_kind == "duckdb file"
                   else (WRITER_HOLDER, str(items)))
    (items / ".fs").mkdir(exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", script, arg], env=env(), stdout=subprocess.PIPE, text=True)
    procs = [holder]
    try:
        assert holder.stdout.readline().strip() == "holding"  # blocks until the lock is taken (or the child dies)
        t0 = time.monotonic()
        run = start(items, "run", FS_LOCK_TIMEOUT="2")
        procs.append(run)
        code, out, err = finish(run)
        waited = time.monotonic() - t0
    finally:
        end(procs)
    assert code == 2, out + err
    assert "Traceback" not in out + err and waited >= 2, err
    lines = err.strip().splitlines()
    assert lines[0].startswith(f"{WAITING} {holder.pid}") and "up to 2 s, FS_LOCK_TIMEOUT" in lines[0], err
    assert err.count(WAITING) == 1 and lines[1].startswith("error: ") and "\n  fix: " in err, err
    if holder_kind == "duckdb file":
        assert f"is locked by another process: PID {holder.pid}" in err, err
    else:
        assert f"the project is being written by another process: PID {holder.pid}" in err, err
        assert f"ps -p {holder.pid}" in err and "FS_LOCK_TIMEOUT" in err, err


def test_the_writer_lock_is_reentrant_and_threads_of_one_process_take_turns(tmp_path: Path):
    project = SimpleNamespace(state_dir=tmp_path / ".fs")  # all the lock needs of a project
    order: list[str] = []

    def other_writer() -> None:
        with writer_lock(project):
            order.append("other")

    with writer_lock(project):
        with writer_lock(project):  # a writer calling another (fs run materializes) does not wait for itself
            other = threading.Thread(target=other_writer)
            other.start()
            other.join(timeout=0.5)
            assert other.is_alive()  # the other thread waits for the outermost release
        assert (tmp_path / ".fs" / "write.lock").read_text().split(" ", 1)[0] == str(os.getpid())
        order.append("first")
    other.join(timeout=60)
    assert not other.is_alive() and order == ["first", "other"]
