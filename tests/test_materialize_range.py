"""`fs materialize --end T [--start S]` (Feast's materialize(start_date, end_date)) on the demo, per warehouse:
the online store serves, per entity, the latest published row with max(S, T - ttl) <= event_time <= T (checked
against a brute-force oracle over the published rows read with plain SQL); nothing after T is served, even after a
materialization at a later clock; bad ranges fail with a clear message."""

from __future__ import annotations

from datetime import datetime

import pytest
from click.testing import CliRunner
from online_support import online_answer, oracle_latest, published_rows

from fs_cli import FeatureStore
from fs_cli.cli import main
from fs_cli.online.specs import FGSpec

END = datetime(2026, 1, 10, 12, 0)  # inside the demo's history: later rows exist and must not be served
START = datetime(2026, 1, 9, 0, 0)


def served(url: str, clock: datetime, name: str, spec: FGSpec, keys: list) -> dict:
    """{key: (event time text, [feature values])} of the entities the store has, as the service answers."""
    res = online_answer(url, clock, name, spec, keys)
    out = {}
    for j, k in enumerate(keys):
        if res[1]["statuses"][j] != "NOT_FOUND":
            out[k] = (res[1]["event_timestamps"][j], [res[1 + c]["values"][j] for c in range(len(spec.feature_names))])
    return out


def _norm(v):
    return float(v) if hasattr(v, "as_tuple") else v


def expected(spec: FGSpec, rows, end: datetime, start: datetime | None) -> dict:
    if start is not None:
        rows = rows.filter([t >= start for t in rows.column(spec.event_time).to_pylist()])
    return {k: [_norm(r[f]) for f in spec.feature_names] for k, r in oracle_latest(spec, rows, end).items()}


def test_range_serves_values_as_of_end(demo_copy_on_engine, tmp_path):
    engine, d = demo_copy_on_engine
    fs = FeatureStore(d)
    url = f"sqlite:///{tmp_path / 'online.sqlite'}"
    online = {n: fg for n, fg in fs.catalog.feature_groups.items() if fg.online}
    tables = {n: published_rows(fs, fg) for n, fg in online.items()}
    # A normal materialization first (the clock: after all the data), then backfills to the past over it.
    fs.materialize(store_url=url)
    for start in (None, START):
        _, results, warnings = fs.materialize(store_url=url, end=END.isoformat(), start=start)
        assert {r.feature_group for r in results} == set(online), warnings
        assert all(r.mode == "full" for r in results)
        for name, fg in online.items():
            spec = FGSpec.from_feature_group(fg)
            want = expected(spec, tables[name], END, start)
            later = [t for t in tables[name].column(spec.event_time).to_pylist() if t > END]
            assert want and later, f"{name}: the demo must have rows before and after {END}"
            keys = sorted({r[spec.keys[0]] for r in tables[name].to_pylist()})
            got = served(url, END, name, spec, keys)
            assert {k: v for k, (_, v) in got.items()} == want, (engine, name, start)
            assert max(datetime.fromisoformat(t.rstrip("Z")) for t, _ in got.values()) <= END
            assert {r.feature_group: r.written for r in results}[name] == len(want)
    if engine == "duckdb":  # the start bound really drops entities (not only a weaker TTL): checked once
        spec = FGSpec.from_feature_group(online["fg_customer_profile"])
        assert len(expected(spec, tables["fg_customer_profile"], END, START)) < \
            len(expected(spec, tables["fg_customer_profile"], END, None))


def test_a_range_materialization_is_followed_by_a_full_one(demo_copy_on_engine, tmp_path):
    """After --start (which leaves entities out), the next plain run cannot be incremental: it must be full and
    serve the current values again."""
    fs = FeatureStore(demo_copy_on_engine[1])
    url = f"sqlite:///{tmp_path / 'online.sqlite'}"
    fs.materialize(store_url=url, start=START, end=END)
    _, results, _ = fs.materialize(store_url=url)
    assert results and all(r.mode == "full" for r in results)


@pytest.mark.parametrize("args, words", [
    (["--end", "yesterday"], "--end: 'yesterday' is not a timestamp"),
    (["--start", "2026-13-01", "--end", "2026-01-10"], "--start: '2026-13-01' is not a timestamp"),
    (["--start", "2026-01-11", "--end", "2026-01-10"], "is after the end"),
])
def test_bad_range_fails_clearly(demo_project, tmp_path, args, words):
    res = CliRunner().invoke(main, ["--project-dir", str(demo_project), "materialize", *args,
                                    "--store", f"sqlite:///{tmp_path / 'online.sqlite'}"])
    assert res.exit_code != 0
    assert words in res.output, res.output
    assert not (tmp_path / "online.sqlite").exists()  # nothing was written
