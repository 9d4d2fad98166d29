"""Online store + materialization on the real SQLite file and the real Redis server (same tests, both backends)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from online_support import BACKENDS, NOW, SPEC, cleanup, make_rows, make_store, oracle_latest

from fs_cli.errors import FeatureStoreError
from fs_cli.online import FVSpec, OnlineReader, materialize
from fs_cli.online.store import SupersededError, unpack_row

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    s, url, prefix = make_store(request.param, tmp_path)
    s.test_url, s.test_prefix = url, prefix  # type: ignore[attr-defined]
    yield s
    cleanup(s)


def _at(now):
    return lambda: (now - NOW.__class__(1970, 1, 1)).total_seconds()


def read_all(store, spec, keys):
    res = store.read([(spec.name, [str(k) for k in keys])])[0]
    return res, [None if v is None else unpack_row(v) for v in res.values]


def test_materialize_matches_oracle(store):
    rows = make_rows(200, 6, seed=1)
    r = materialize(store, SPEC, rows, NOW)
    expected = oracle_latest(SPEC, rows, NOW)
    assert r.mode == "full" and r.written == len(expected) and r.version == 1
    res, got = read_all(store, SPEC, range(205))
    for k, row in zip(range(205), got, strict=True):
        if k not in expected:
            assert row is None
            continue
        e = expected[k]
        assert row[2:] == [e["amount"], e["label"], e["n"]]
        assert row[0] == int((e["event_time"] - NOW.__class__(1970, 1, 1)).total_seconds() * 1_000_000)
    assert store.row_count(SPEC.name) == len(expected)


def test_feast_answer_statuses_ttl_and_order(store):
    rows = make_rows(50, 4, seed=2)
    materialize(store, SPEC, rows, NOW, views={"v": FVSpec("v", ("fg_test:n", "fg_test:amount"), ("customer_id",))})
    expected = oracle_latest(SPEC, rows, NOW)
    present = sorted(expected)[:3]
    reader = OnlineReader(store, clock=_at(NOW))
    body = {"features": ["fg_test:n", "fg_test:label", "fg_test:amount"], "entities": {"customer_id": [*present, 10**9]}}
    resp, info = reader.get_online_features(body)
    assert resp["metadata"]["feature_names"] == ["customer_id", "n", "label", "amount"]  # request order, not set order
    amounts = resp["results"][3]
    assert amounts["values"][:3] == [expected[k]["amount"] for k in present]
    assert amounts["statuses"] == ["PRESENT"] * 3 + ["NOT_FOUND"]
    assert amounts["event_timestamps"][3] == "1970-01-01T00:00:00Z"
    assert info["versions"] == {"fg_test": 1}
    # after the TTL has passed (clock moved), the same rows are OUTSIDE_MAX_AGE and their values are withheld
    later = OnlineReader(store, clock=_at(NOW + timedelta(hours=3)))
    resp2, _ = later.get_online_features(body)
    assert resp2["results"][3]["statuses"] == ["OUTSIDE_MAX_AGE"] * 3 + ["NOT_FOUND"]
    assert resp2["results"][3]["values"] == [None] * 4
    # the feature service form (a feature view) answers the same features in the view's order
    resp3, _ = reader.get_online_features({"feature_service": "v", "entities": {"customer_id": present}})
    assert resp3["metadata"]["feature_names"] == ["customer_id", "n", "amount"]


def test_incremental_equals_full_and_costs_the_change(store):
    rows = make_rows(300, 3, seed=3)
    materialize(store, SPEC, rows, NOW)
    # a commit touches 3 entities (1%): new values for 0 and 1, entity 2 deleted
    changed_rows = pa.table({"customer_id": pa.array([0, 1], pa.int64()), "event_time": [NOW, NOW],
                             "created": [NOW, NOW], "amount": [777.0, 777.0], "label": pa.array(["z", "z"], pa.string()),
                             "n": pa.array([1, 1], pa.int64())})
    r = materialize(store, SPEC, changed_rows, NOW, changed=[0, 1], deleted=[2])
    assert r.mode == "incremental" and r.written == 2 and r.deleted == 1 and r.version == 2
    _, got = read_all(store, SPEC, [0, 1, 2, 3])
    assert got[0][2] == 777.0 and got[1][2] == 777.0 and got[2] is None
    assert got[3] == read_all(store, SPEC, [3])[1][0]
    # same content as a full rewrite of the new truth
    untouched = rows.filter(pc.greater(rows["customer_id"], 2))
    truth = pa.concat_tables([untouched, changed_rows])
    expected = oracle_latest(SPEC, truth, NOW)
    _, all_rows = read_all(store, SPEC, range(300))
    assert {k for k, v in zip(range(300), all_rows, strict=True) if v is not None} == set(expected)


def test_nothing_new_publishes_an_empty_version_without_rows(store):
    """An empty change set needs no rows (None: nothing is read or packed): the version records the new clock and
    watermark and bumps, every row stays as served, and TTL still follows the reader's clock."""
    rows = make_rows(100, 3, seed=4)
    first = materialize(store, SPEC, rows, NOW, watermark={"commit_time": "2026-01-10T11:00:00"})
    _, before = read_all(store, SPEC, range(100))
    later = NOW + timedelta(minutes=30)
    r = materialize(store, SPEC, None, later, changed=[], watermark={"commit_time": "2026-01-10T11:00:00"})
    assert (r.mode, r.written, r.deleted, r.input_rows) == ("incremental", 0, 0, 0)
    assert (r.gen, r.version) == (first.gen, first.version + 1)
    ptr = store.pointers()[SPEC.name]
    assert ptr.meta["now"] == later.isoformat() and ptr.meta["rows"] == first.written
    assert read_all(store, SPEC, range(100))[1] == before
    expected = oracle_latest(SPEC, rows, NOW)
    body = {"features": ["fg_test:amount"], "entities": {"customer_id": sorted(expected)}}
    at_now, _ = OnlineReader(store, clock=_at(NOW)).get_online_features(body)
    assert set(at_now["results"][1]["statuses"]) == {"PRESENT"}
    past_ttl, _ = OnlineReader(store, clock=_at(NOW + timedelta(hours=3))).get_online_features(body)
    assert set(past_ttl["results"][1]["statuses"]) == {"OUTSIDE_MAX_AGE"}  # TTL 1 h, judged on the reader's clock
    with pytest.raises(FeatureStoreError, match="rows must be"):  # a full materialization does need rows
        materialize(store, SPEC, None, later)


def test_incremental_needs_same_schema(store):
    materialize(store, SPEC, make_rows(5, 1), NOW)
    other = SPEC.__class__(**{**SPEC.__dict__, "ttl_seconds": 60})
    with pytest.raises(FeatureStoreError, match="full materialization"):
        materialize(store, other, make_rows(5, 1), NOW, changed=[1])


def test_old_versions_are_garbage_collected(store):
    for i in range(3):
        r = materialize(store, SPEC, make_rows(100, 2, seed=i), NOW)
        assert r.version == i + 1
    if hasattr(store, "r"):
        data_keys = list(store.r.scan_iter(match=f"{store.k_data}*"))
        assert len(data_keys) == 1
    else:
        gens = store._con().execute("select distinct gen from fs_rows where fg = ?", (SPEC.name,)).fetchall()
        assert len(gens) == 1


def test_stale_flip_is_refused(store):
    a = store.begin_full(SPEC.name)
    b = store.begin_full(SPEC.name)
    b.write([("1", b"[0,null,1.0,\"b\",1]")])
    b.commit({"spec": SPEC.to_dict()})
    a.write([("1", b"[0,null,2.0,\"a\",1]")])
    with pytest.raises(SupersededError):
        a.commit({"spec": SPEC.to_dict()})
    assert read_all(store, SPEC, [1])[1][0][2] == 1.0


def test_concurrent_readers_see_whole_versions(store):
    """A writer re-materializes (full and incremental) while readers check every answer is one version."""
    n = 400
    materialize(store, SPEC, make_rows(n, 1, seed=0, tag=1, spread_s=60, future_s=0), NOW)
    stop = threading.Event()
    errors: list[str] = []
    seen: set[float] = set()

    def reader_loop():
        keys = [str(k) for k in range(n)]
        i = 0
        while not stop.is_set():
            i += 1
            # alternate the one-statement read and the multi-statement read transaction (> 900 parameters)
            results = store.read([(SPEC.name, keys)] * (1 if i % 2 else 3))
            if len({(r.gen, r.version) for r in results}) != 1:
                errors.append("lookups of one read came from different versions")
                return
            vals = {unpack_row(v)[2] for r in results for v in r.values if v is not None}
            if len(vals) != 1:
                errors.append(f"mixed versions in one read: {sorted(vals)[:5]}")
                return
            seen.update(vals)

    threads = [threading.Thread(target=reader_loop) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for tag in range(2, 8):
            rows = make_rows(n, 1, seed=0, tag=tag, spread_s=60, future_s=0)
            if tag % 2:
                materialize(store, SPEC, rows, NOW, changed=list(range(n)))  # incremental touching all
            else:
                materialize(store, SPEC, rows, NOW)
            time.sleep(0.02)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert len(seen) >= 2  # readers actually observed flips


KILL_SCRIPT = textwrap.dedent("""
    import sys, os
    sys.path.insert(0, {tests!r})
    from online_support import SPEC, NOW, make_rows
    from fs_cli.online import materialize
    from fs_cli.online.backends import open_store
    store = open_store({url!r}, prefix={prefix!r})
    rows = make_rows(60000, 1, seed=5, tag=2, spread_s=60, future_s=0)
    def progress(done, total):
        if done >= 20000:
            print("HALFWAY", flush=True)
            import time; time.sleep(30)  # the parent SIGKILLs us here, mid-write
    materialize(store, SPEC, rows, NOW, progress=progress)
    print("FINISHED", flush=True)
""")


def test_sigkill_midway_leaves_old_version_serving(store, tmp_path):
    materialize(store, SPEC, make_rows(500, 1, seed=5, tag=1, spread_s=60, future_s=0), NOW)
    before = store.pointers()[SPEC.name]
    script = KILL_SCRIPT.format(tests=os.path.join(REPO, "tests"), url=store.test_url, prefix=store.test_prefix)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "HALFWAY", line
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    after = store.pointers()[SPEC.name]
    assert (after.gen, after.version) == (before.gen, before.version)
    res, got = read_all(store, SPEC, range(600))
    assert {r[2] for r in got if r is not None} == {1.0}  # only the old version's values
    assert sum(r is not None for r in got) == 500
    # the next successful run flips and removes the orphaned partial row set
    r = materialize(store, SPEC, make_rows(50, 1, seed=6, tag=3, spread_s=60, future_s=0), NOW)
    assert r.version == before.version + 1
    if hasattr(store, "r"):
        assert len(list(store.r.scan_iter(match=f"{store.k_data}*"))) == 1
    else:
        assert store._con().execute("select count(distinct gen) from fs_rows").fetchone()[0] == 1
