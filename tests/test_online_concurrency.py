"""Concurrent materializations of one feature group, on the real SQLite file and the real Redis server.

Two guarantees (issue 17, item 7), each checked with publishes racing in threads and with the exact bad
interleaving forced:
- a row is only ever served under the spec (schema) it was packed for: an incremental update computed under one
  schema is never applied after a full rewrite changed the schema (rows of layout (x, v, w) must not be answered
  under spec (v, w));
- no older version replaces a newer one: every publish carries its data version (the snapshot commit it reflects,
  then its clock); a publish older than the serving one is refused and writes nothing.

The oracle is in the data itself: the value of feature f written by publish number t is the text "f:t", so a value
read under the wrong spec has another feature's name, and t orders the publishes (its data version grows with t).
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from datetime import datetime, timedelta

import pyarrow as pa
import pytest
from online_support import BACKENDS, cleanup, make_store

from fs_cli.online import OnlineReader, materialize
from fs_cli.online.specs import FeatureSpec, FGSpec
from fs_cli.online.store import StaleVersionError, SupersededError, unpack_row

FG = "fg_race"
NOW = datetime(2026, 1, 10, 12, 0, 0)
COMMIT0 = datetime(2026, 1, 1)
N_KEYS = 40


def _spec(*features: str) -> FGSpec:
    return FGSpec(name=FG, keys=("customer_id",), key_types=("bigint",), event_time="event_time",
                  features=tuple(FeatureSpec(f, "varchar") for f in features))


SPEC_VW = _spec("v", "w")
SPEC_XVW = _spec("x", "v", "w")  # the schema change: a feature added in front shifts every column


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    s, _, _ = make_store(request.param, tmp_path)
    yield s
    cleanup(s)


def rows(spec: FGSpec, tag: int, keys=range(N_KEYS)) -> pa.Table:
    keys = list(keys)
    cols = {"customer_id": pa.array(keys, pa.int64()), "event_time": [NOW - timedelta(minutes=1)] * len(keys)}
    for f in spec.feature_names:
        cols[f] = pa.array([f"{f}:{tag}" for _ in keys], pa.string())
    return pa.table(cols)


def watermark(tag: int) -> dict:
    """The data version of publish `tag`: a later snapshot commit for a later tag."""
    return {"commit_time": (COMMIT0 + timedelta(seconds=tag)).isoformat()}


def publish(store, spec: FGSpec, tag: int, changed=None, **kw):
    if changed is None:
        return materialize(store, spec, rows(spec, tag), NOW, watermark=watermark(tag), **kw)
    return materialize(store, spec, rows(spec, tag, changed), NOW, watermark=watermark(tag), changed=changed, **kw)


def served(store) -> dict[int, int] | None:
    """{key: publish tag} served, after checking every row against the spec served with it; None if the pointer
    moved between the two reads (nothing to check in that instant)."""
    res = store.read([(FG, [str(k) for k in range(N_KEYS)])])[0]
    ptr = store.pointers()[FG]
    if (ptr.gen, ptr.version) != (res.gen, res.version):
        return None
    spec = ptr.spec
    tags = {}
    for k, raw in enumerate(res.values):
        if raw is None:
            continue
        values = unpack_row(raw)[2:]
        assert len(values) == len(spec.features), f"key {k}: row {values} served under spec {spec.feature_names}"
        for f, v in zip(spec.feature_names, values, strict=True):
            assert v.split(":")[0] == f, f"key {k}: feature {f} answered {v!r} (spec {spec.feature_names})"
        tags[k] = {int(v.split(":")[1]) for v in values}.pop()
    return tags


def served_through_reader(store) -> None:
    """What the service answers as PRESENT is each feature's own value."""
    reader = OnlineReader(store, clock=lambda: (NOW - datetime(1970, 1, 1)).total_seconds())
    spec = reader.spec(FG)
    resp, _ = reader.get_online_features({"features": [f"{FG}:{f}" for f in spec.feature_names],
                                          "entities": {"customer_id": list(range(N_KEYS))}})
    for f, col in zip(spec.feature_names, resp["results"][1:], strict=True):
        for v, status in zip(col["values"], col["statuses"], strict=True):
            assert status == "PRESENT" and v.startswith(f + ":"), (f, v, status)


# -- the exact interleavings -------------------------------------------------------------------------------------

def test_incremental_planned_before_a_schema_change_is_not_applied_after_it(store):
    """An incremental update (schema (v, w), newest data) is computed, then a full rewrite to (x, v, w) flips before
    it is applied: the update must write nothing (the next run plans again), not pack (v, w) rows into the
    (x, v, w) row set nor publish the (v, w) spec over it."""
    publish(store, SPEC_VW, 1)
    original = store.apply_incremental

    def schema_change_first(*args, **kw):
        publish(store, SPEC_XVW, 2)  # lands between the plan and the publish of the incremental update
        return original(*args, **kw)

    store.apply_incremental = schema_change_first
    with pytest.raises(SupersededError):
        publish(store, SPEC_VW, 3, changed=[0, 1, 2])
    store.apply_incremental = original
    assert store.pointers()[FG].spec == SPEC_XVW
    assert served(store) == dict.fromkeys(range(N_KEYS), 2)
    served_through_reader(store)


def test_incremental_is_refused_when_its_base_version_moved(store):
    """Same schema, but another publish landed between the plan and the apply: the change set was computed from a
    version that no longer serves, so it is not applied to the new one."""
    publish(store, SPEC_VW, 1)
    base = store.pointers()[FG]
    publish(store, SPEC_VW, 2)
    with pytest.raises(SupersededError):
        publish(store, SPEC_VW, 3, changed=[5], base=base)
    assert served(store) == dict.fromkeys(range(N_KEYS), 2)


def test_older_data_is_refused_after_newer(store):
    publish(store, SPEC_VW, 5)
    before = store.pointers()[FG]
    with pytest.raises(StaleVersionError, match="already serves newer data"):
        publish(store, SPEC_VW, 4)  # full, older commit
    with pytest.raises(StaleVersionError):
        publish(store, SPEC_VW, 3, changed=[0, 1])  # incremental, older commit
    with pytest.raises(StaleVersionError):  # same commit, earlier clock
        materialize(store, SPEC_VW, rows(SPEC_VW, 6), NOW - timedelta(seconds=1), watermark=watermark(5))
    after = store.pointers()[FG]
    assert (after.gen, after.version) == (before.gen, before.version)
    assert served(store) == dict.fromkeys(range(N_KEYS), 5)
    # the same data again is not older: published (an idempotent re-run)
    publish(store, SPEC_VW, 5)
    # a deliberate backfill to the past (`fs materialize --end T`) is published on purpose
    r = publish(store, SPEC_VW, 1, rewind=True)
    assert r.version == after.version + 2 and served(store) == dict.fromkeys(range(N_KEYS), 1)


def test_the_flip_itself_refuses_older_data(store):
    """Two full writes in flight: the one holding newer data took its generation first and flips first; the other
    (older data, newer generation) must not flip over it. Checked at the store's atomic flip, not before."""
    newer, older = store.begin_full(FG), store.begin_full(FG)
    newer.write([(str(k), b'[0,null,"v:2","w:2"]') for k in range(N_KEYS)])
    older.write([(str(k), b'[0,null,"v:1","w:1"]') for k in range(N_KEYS)])
    meta = {"spec": SPEC_VW.to_dict(), "now": NOW.isoformat()}
    newer.commit({**meta, "data_version": [2, 0]})
    with pytest.raises(StaleVersionError):
        older.commit({**meta, "data_version": [1, 0]})
    assert served(store) == dict.fromkeys(range(N_KEYS), 2)


# -- racing threads ------------------------------------------------------------------------------------------------

def test_racing_full_and_incremental_publishes_across_schema_changes(store):
    """Writer threads publish full rewrites (switching between the two schemas) and incremental updates (planned
    under the schema they saw, applied after a random delay) while a reader checks every answer. Each publish gets
    a unique tag in increasing order; whatever order they land in, (1) every row is served under its own spec,
    (2) no key's served tag ever goes back, (3) at the end each key serves the newest accepted publish touching it."""
    publish(store, SPEC_VW, 0)
    tags = itertools.count(1)
    tag_lock = threading.Lock()
    accepted: list[tuple[int, set[int]]] = []  # (tag, keys) of publishes the store took
    errors: list[str] = []
    stop = threading.Event()
    original = store.apply_incremental

    def slow_apply(*args, **kw):  # a large change set: a window for other publishes between plan and apply
        time.sleep(random.uniform(0, 0.01))
        return original(*args, **kw)

    store.apply_incremental = slow_apply

    def writer(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            for _ in range(12):
                with tag_lock:
                    tag = next(tags)  # data read now: its version orders it ...
                time.sleep(rnd.uniform(0, 0.01))  # ... but it may publish after a newer one
                try:
                    if rnd.random() < 0.5:
                        spec = rnd.choice([SPEC_VW, SPEC_XVW])
                        publish(store, spec, tag)
                        accepted.append((tag, set(range(N_KEYS))))
                    else:
                        spec = store.pointers()[FG].spec
                        keys = rnd.sample(range(N_KEYS), 5)
                        publish(store, spec, tag, changed=keys)
                        accepted.append((tag, set(keys)))
                except SupersededError:  # refused, nothing written (StaleVersionError is one)
                    pass
                except Exception as e:  # noqa: BLE001 - the incremental pre-check of a schema that just changed
                    if "same schema" not in str(e):
                        errors.append(f"writer: {e!r}")
        except BaseException as e:  # noqa: BLE001
            errors.append(f"writer: {e!r}")

    def reader() -> None:
        last: dict[int, int] = {}
        while not stop.is_set():
            try:
                now = served(store)
            except AssertionError as e:
                errors.append(f"reader: {e}")
                return
            if now is None:
                continue
            for k, t in now.items():
                if t < last.get(k, -1):
                    errors.append(f"key {k}: publish {t} served after publish {last[k]}")
                    return
                last[k] = t

    writers = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join(120)
    stop.set()
    for t in readers:
        t.join(60)
    store.apply_incremental = original
    assert not errors, errors[:5]
    final = served(store)
    expected = {k: max([0] + [t for t, keys in accepted if k in keys]) for k in range(N_KEYS)}
    assert final == expected
    served_through_reader(store)
    assert len(accepted) >= 5  # the race really published


def test_racing_publishes_in_reverse_order(store):
    """Threads read their data in one order and publish in the reverse order (the newest first): only the newest
    is published, every older one is refused without writing."""
    publish(store, SPEC_VW, 0)
    n = 6
    results: dict[int, str] = {}
    done = {t: threading.Event() for t in range(1, n + 2)}
    done[n + 1].set()

    def run(tag: int) -> None:
        try:
            done[tag + 1].wait(60)  # the newest data publishes first, then the next older, ...
            spec = SPEC_XVW if tag % 2 else SPEC_VW
            publish(store, spec, tag)
            results[tag] = "published"
        except StaleVersionError:
            results[tag] = "refused"
        finally:
            done[tag].set()

    threads = [threading.Thread(target=run, args=(t,)) for t in range(1, n + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results[n] == "published"
    assert all(results[t] == "refused" for t in range(1, n)), results
    assert served(store) == dict.fromkeys(range(N_KEYS), n)
    served_through_reader(store)


# -- through `fs materialize` (the warehouse path) ------------------------------------------------------------------

PROFILE = "fg_customer_profile"
CLOCK = datetime(2026, 1, 20, 12, 0)


def _all_rows(store, fg: str) -> list:
    return [None if v is None else unpack_row(v) for v in store.read([(fg, [str(k) for k in range(1000)])])[0].values]


def test_fs_materialize_plans_again_after_a_concurrent_schema_change_and_refuses_older_runs(
        store, demo_project, tmp_path, monkeypatch):
    """On the demo (DuckDB): a clock run plans an incremental update; before it publishes, another writer publishes
    the group under another schema. The run must plan again (a full rewrite) and serve exactly what a clean
    materialization serves. Then a run on an earlier clock (a concurrent run that read earlier and publishes later)
    is refused with a warning and writes nothing; an explicit --end (a backfill) is published on purpose."""
    from fs_cli import FeatureStore
    from fs_cli.online import from_warehouse

    fs = FeatureStore(demo_project)

    def run(clock: datetime, target=store, **kw):
        monkeypatch.setattr(from_warehouse, "utcnow", lambda: clock)
        return from_warehouse.materialize_project(fs.project, fs.catalog, [PROFILE], store=target, **kw)

    run(CLOCK)
    spec = store.pointers()[PROFILE].spec
    other = FGSpec(name=PROFILE, keys=spec.keys, key_types=spec.key_types, event_time=spec.event_time,
                   features=(FeatureSpec("other", "varchar"),))
    original = store.apply_incremental
    calls = []

    def schema_change_first(*args, **kw):
        if not calls:  # once: the other writer lands between this run's plan and its publish
            calls.append(1)
            table = pa.table({spec.keys[0]: pa.array(range(1, 400), pa.int64()),
                              spec.event_time: [CLOCK - timedelta(days=1)] * 399, "other": ["other:1"] * 399})
            served_commit = store.pointers()[PROFILE].meta["watermark"]  # same data, not older: not refused
            materialize(store, other, table, CLOCK + timedelta(minutes=30), watermark=served_commit)
        return original(*args, **kw)

    store.apply_incremental = schema_change_first
    results, warnings = run(CLOCK + timedelta(hours=1))
    store.apply_incremental = original
    assert calls, "the run did not plan an incremental update"
    reference, _, _ = make_store("sqlite", tmp_path)
    try:
        run(CLOCK + timedelta(hours=1), target=reference)
        assert store.pointers()[PROFILE].spec == spec
        want = _all_rows(reference, PROFILE)
        assert sum(v is not None for v in want) > 100 and _all_rows(store, PROFILE) == want
    finally:
        cleanup(reference)
    assert [r.mode for r in results] == ["full"] and not warnings, (results, warnings)  # planned again
    before = store.pointers()[PROFILE]
    results, warnings = run(CLOCK - timedelta(hours=1))  # read earlier, publishes later: refused
    assert results == [] and any("already serves newer data" in w for w in warnings), warnings
    after = store.pointers()[PROFILE]
    assert (after.gen, after.version, after.meta["now"]) == (before.gen, before.version, before.meta["now"])
    results, warnings = run(CLOCK, now=CLOCK - timedelta(days=3))  # a backfill: served on purpose
    assert [r.mode for r in results] == ["full"], warnings
    assert store.pointers()[PROFILE].meta["now"] == (CLOCK - timedelta(days=3)).isoformat()


# -- push ingestion across a schema change -------------------------------------------------------------------------

def test_a_push_packed_for_the_old_schema_is_not_written_after_a_schema_change(store, tmp_path):
    """The push service checked and packed rows with the push specs it loaded ((v, w)); a materialization flipped
    the group to (x, v, w) before the write (its push specs are published after the flip): the push is refused
    with a 409 to retry, nothing is written online, and the next push is checked against the new schema."""
    import orjson

    from fs_cli.online.push import ColumnRule, PushLog, PushRequestError, PushService, PushSpec

    def push_specs(spec: FGSpec) -> bytes:
        rules = {"customer_id": ColumnRule("customer_id", "int", True),
                 "event_time": ColumnRule("event_time", "timestamp", True),
                 **{f: ColumnRule(f, "str") for f in spec.feature_names}}
        return orjson.dumps({FG: PushSpec(spec, rules).to_dict()})

    publish(store, SPEC_VW, 1)
    store.put_document("push_specs", push_specs(SPEC_VW))
    service = PushService(store, PushLog(tmp_path / "push"), clock=lambda: (NOW - datetime(1970, 1, 1)).total_seconds())
    when = (NOW - timedelta(seconds=30)).isoformat()
    service.push(FG, {"customer_id": [0], "event_time": [when], "v": ["v:2"], "w": ["w:2"]})
    assert served(store)[0] == 2
    publish(store, SPEC_XVW, 3)  # the schema change; the service still holds the (v, w) push specs
    with pytest.raises(PushRequestError) as err:
        service.push(FG, {"customer_id": [1], "event_time": [when], "v": ["v:4"], "w": ["w:4"]})
    assert err.value.status == 409
    assert served(store) == dict.fromkeys(range(N_KEYS), 3)
    served_through_reader(store)
    store.put_document("push_specs", push_specs(SPEC_XVW))  # what `fs materialize` publishes after the flip
    service.push(FG, {"customer_id": [1], "event_time": [when], "x": ["x:5"], "v": ["v:5"], "w": ["w:5"]})
    assert served(store)[1] == 5
