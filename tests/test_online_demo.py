"""End to end on the demo project: published feature groups -> online store (SQLite file, Redis) -> HTTP answers
equal the warehouse's latest rows (brute-force oracle); and `fs run` materializes incrementally after a publish."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from online_support import BACKENDS, cleanup, make_store, oracle_latest

from fs_cli import FeatureStore
from fs_cli.online.from_warehouse import materialize_project, online_specs
from fs_cli.online.specs import FGSpec
from fs_cli.online.store import default_url, open_store
from fs_cli.server import create_app


def _epoch(t: datetime) -> float:
    return (t - datetime(1970, 1, 1)).total_seconds()


@pytest.mark.parametrize("backend", BACKENDS)
def test_served_values_equal_warehouse_latest(demo_project, backend, tmp_path):
    fs = FeatureStore(demo_project)
    catalog = fs.catalog
    online = {n: fg for n, fg in catalog.feature_groups.items() if fg.online}
    tables = {n: fs.read(n, format="arrow") for n in online}
    # "now" just after the newest event, so every TTL'd group has live rows and some expired ones
    now = max(max(t[online[n].event_time].to_pylist()) for n, t in tables.items()) + timedelta(minutes=1)
    store, _, _ = make_store(backend, tmp_path)
    try:
        results, _ = materialize_project(fs.project, catalog, store=store, now=now)
        assert {r.feature_group for r in results} == set(online)
        client = TestClient(create_app(store, clock=lambda: _epoch(now)))
        for name, fg in online.items():
            spec = FGSpec.from_feature_group(fg)
            expected = oracle_latest(spec, tables[name], now)
            assert expected, f"{name} has no live rows at {now}"
            keys = sorted({r[spec.keys[0]] for r in tables[name].to_pylist()}) + [-1]
            for i in range(0, len(keys), 1000):
                part = keys[i:i + 1000]
                r = client.post("/get-online-features", json={
                    "features": [f"{name}:{f}" for f in spec.feature_names], "entities": {spec.keys[0]: part}})
                assert r.status_code == 200, r.text
                res = r.json()["results"]
                for j, k in enumerate(part):
                    if k in expected:
                        got = [res[1 + c]["values"][j] for c in range(len(spec.feature_names))]
                        assert got == [expected[k][f] for f in spec.feature_names], (name, k)
                        assert res[1]["statuses"][j] in ("PRESENT", "NULL_VALUE")
                    else:
                        assert res[1]["statuses"][j] == "NOT_FOUND", (name, k)
    finally:
        cleanup(store)


def test_fs_run_materializes_incrementally(project_copy):
    d = project_copy("incr")
    r1 = FeatureStore(d, vars={"demo_data_cutoff": "2026-01-15 00:00:00"}).run()
    assert r1.ok, r1.to_dict()
    fs = FeatureStore(d)
    store = open_store(default_url(fs.project.warehouse_path))
    try:
        first = store.pointers()
        assert first and all(p.meta["mode"] == "full" for p in first.values())
        assert all(o.materialized is not None for o in r1.outcomes.values() if o.published)
        r2 = fs.run()
        assert r2.ok, r2.to_dict()
        after = store.pointers()
        changed = [n for n, o in r2.outcomes.items() if o.commit is not None]
        assert changed
        for n in changed:
            assert after[n].version == first[n].version + 1
            assert after[n].meta["mode"] == "incremental"
            assert after[n].gen == first[n].gen  # updated in place, not rewritten
        # the incrementally maintained content equals the oracle over the newly published rows
        for n, ptr in after.items():
            spec = ptr.spec
            now = datetime.fromisoformat(ptr.meta["now"])
            expected = oracle_latest(spec, fs.read(n, format="arrow"), now)
            assert store.row_count(n) == len(expected), n
        fgs, views, _ = online_specs(fs.catalog)
        assert set(fgs) == set(after)
    finally:
        store.close()
