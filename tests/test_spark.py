"""The same project on Spark with Delta Lake (dbt-spark `session` method, local pyspark, Java 17).

One Spark session serves the whole module (the Hive metastore is an embedded Derby database: one process per
project, and a JVM start costs tens of seconds), so everything here shares one session-scoped project: a small
hand-made online feature group published twice (insert/update/delete), a feature view over a hand-made label spine,
and the point-in-time macro compiled by dbt-spark next to them; fs_window_aggregate compiled by dbt-spark against
tests/test_window_aggregate.py's reference, on a session temp view; last, an incremental group added to the project
and published twice. Under pytest-xdist (--dist loadfile) this module and
tests/test_spark_demo.py are one work unit (tests/conftest.py, `pytest_xdist_make_scheduler`): one worker runs them in
turn in one JVM, the demo's session in the JVM this module warmed up. Without Java/pyspark the module skips on a laptop
and fails in CI (FS_REQUIRE_SERVICES).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import test_incremental_groups as incr
from conftest import copy_project, use_engine
from fastapi.testclient import TestClient
from online_support import oracle_latest
from pit_oracle import SPINE_COLS, STEP, T0, VARIANTS, check, model_sql, oracle
from services import missing
from test_push import ITEMS_SNAPSHOT as PUSH_ITEMS_SNAPSHOT
from test_push import ITEMS_YAML as PUSH_ITEMS_YAML
from test_window_aggregate import AGGS as WA_AGGS
from test_window_aggregate import BASE as WA_BASE
from test_window_aggregate import CONFIGS as WA_CONFIGS
from test_window_aggregate import STEP as WA_STEP
from test_window_aggregate import as_dict as wa_as_dict
from test_window_aggregate import assert_same as wa_assert_same
from test_window_aggregate import inline_sql as wa_inline_sql
from test_window_aggregate import reference as wa_reference
from test_window_aggregate import seconds as wa_seconds
from test_window_aggregate import split_rendered as wa_split_rendered

from fs_cli.online.backends import open_store
from fs_cli.online.from_warehouse import materialize_project
from fs_cli.online.specs import FGSpec
from fs_cli.server import create_app
from fs_cli.warehouse.spark import literal

# Delta's jars are fetched from Maven Central once and cached here for every later test run.
os.environ.setdefault("FS_SPARK_IVY", str(Path.home() / ".cache" / "fs-cli" / "spark-ivy"))

FG = "fg_spark_items"

FG_SQL = """select cast(item_id as bigint) as item_id, cast(event_time as timestamp) as event_time,
       cast(value as double) as value, cast(color as string) as color
from {{ ref('spark_items') }}
"""

FG_YAML = f"""
version: 2
models:
  - name: {FG}
    description: Items for the Spark tests.
    config:
      meta:
        fs:
          entities: [item]
          event_time: event_time
          online: true
          ttl: 30d
          owner: tests
          policy: strict
    columns:
      - {{name: item_id, data_type: bigint, description: the item}}
      - {{name: event_time, data_type: timestamp, description: when}}
      - name: value
        data_type: double
        description: a value
        config: {{meta: {{fs: {{range: [0, 100]}}}}}}
      - {{name: color, data_type: string, description: a colour}}
"""

SNAPSHOT_YAML = f"""
snapshots:
  - name: {FG}_snapshot
    relation: ref('{FG}')
    config:
      unique_key: [item_id, event_time]
      strategy: check
      check_cols: all
      hard_deletes: new_record
"""

FV_YAML = f"""
version: 2
models:
  - name: fv_spark_items
    description: Labels joined point in time with the Spark items.
    config:
      meta:
        fs:
          feature_view:
            spine:
              model: spark_labels
              timestamp: label_at
              label: label
              columns: [example_id]
            features:
              - feature_group: {FG}
                features: [value, color]
            boundary: inclusive
"""

FV_SQL = f"""-- depends_on: {{{{ ref('spark_labels') }}}}
-- depends_on: {{{{ ref('{FG}_snapshot') }}}}
{{{{ feature_store.fs_feature_view() }}}}
"""

V1 = [(1, "2026-01-01 00:00:00", 1.0, "red"), (1, "2026-01-02 00:00:00", 1.5, "red"),
      (2, "2026-01-01 00:00:00", 2.0, "blue"), (3, "2026-01-01 00:00:00", 3.0, "grey")]
# item 1 @ Jan 1 corrected (update), item 2 gone (delete), item 4 new (insert), the rest unchanged.
V2 = [(1, "2026-01-01 00:00:00", 1.25, "red"), (1, "2026-01-02 00:00:00", 1.5, "red"),
      (3, "2026-01-01 00:00:00", 3.0, "grey"), (4, "2026-01-03 00:00:00", 4.0, "green")]
BAD = [*V2, (5, "2026-01-04 00:00:00", 500.0, "out of range")]  # fails the strict range expectation

# Label spine: on an event, between events, before any event, on a key without features, a NULL key, a duplicate.
LABELS = [(10, 1, "2026-01-02 00:00:00", 1), (11, 1, "2026-01-01 12:00:00", 0), (12, 3, "2025-12-31 00:00:00", 1),
          (13, 9, "2026-01-05 00:00:00", 0), (14, None, "2026-01-05 00:00:00", 1), (15, 4, "2026-01-03 00:00:00", 0),
          (16, 1, "2026-01-02 00:00:00", 1)]


def spark_available() -> None:
    if shutil.which("java") is None:
        missing("Spark", "no `java` on PATH (Spark needs Java 17)")
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        missing("Spark", f"`java -version` failed: {e}")
    if out.returncode != 0:
        missing("Spark", f"`java -version` failed: {out.stderr.strip()}")
    for module in ("pyspark", "delta", "dbt.adapters.spark", "soda_sparkdf"):
        try:
            __import__(module)
        except ImportError as e:
            missing("Spark", f"{e}; install the extra: pip install -c constraints.txt -e '.[spark]'")


def write_items(project: Path, rows: list[tuple]) -> None:
    # No single quotes in seed values: dbt-spark 1.11's seed INSERT does not escape them.
    lines = ["item_id,event_time,value,color"] + [f'{i},{t},{v},"{c}"' for i, t, v, c in rows]
    (project / "seeds" / "spark_items.csv").write_text("\n".join(lines) + "\n")


def make_project(root: Path) -> Path:
    d = use_engine(copy_project(root, with_seeds=False), "spark")
    fgs = d / "models" / "feature_groups"
    # Only this module's models: the demo's groups, staging and monitoring views would be rebuilt by every run.
    for p in [*fgs.iterdir(), *(d / "models" / "staging").iterdir(), *(d / "models" / "feature_views").iterdir(),
              *(d / "models" / "monitoring").iterdir(), *(d / "snapshots").iterdir()]:
        p.unlink()
    (fgs / f"{FG}.sql").write_text(FG_SQL)
    (fgs / "_spark_items.yml").write_text(FG_YAML)
    (d / "snapshots" / "spark_items.yml").write_text(SNAPSHOT_YAML)
    (d / "models" / "feature_views" / "fv_spark_items.sql").write_text(FV_SQL)
    (d / "models" / "feature_views" / "_fv.yml").write_text(FV_YAML)
    (d / "seeds" / "spark_labels.csv").write_text(
        "example_id,item_id,label_at,label\n"
        + "\n".join(f"{e},{'' if i is None else i},{t},{y}" for e, i, t, y in LABELS) + "\n")
    (d / "seeds" / "_spark_seeds.yml").write_text(
        "version: 2\nseeds:\n  - name: spark_labels\n    config:\n      column_types:\n"
        "        {example_id: bigint, item_id: bigint, label_at: timestamp, label: int}\n"
        "  - name: spark_items\n    config:\n      column_types:\n"
        "        {item_id: bigint, event_time: timestamp, value: double, color: string}\n")
    text = (d / "dbt_project.yml").read_text()
    (d / "dbt_project.yml").write_text(text.replace(
        "  fs_entities:\n", "  fs_entities:\n    item:\n      join_keys: [item_id]\n"))
    write_items(d, V1)
    return d


@pytest.fixture(scope="module")
def spark_project(tmp_path_factory):
    """The project after publish 1 (V1), publish 2 (V2) and a blocked strict candidate (BAD): one Spark session."""
    spark_available()
    from fs_cli import FeatureStore

    d = make_project(tmp_path_factory.mktemp("spark") / "proj")
    fs = FeatureStore(d)
    assert fs.project.engine == "spark"
    load_pit_tables(fs)  # the hand-made tables test_point_in_time_join_matches_oracle joins
    runs = [fs.run()]
    write_items(d, V2)
    runs.append(fs.run())
    write_items(d, BAD)
    runs.append(fs.run())
    yield {"dir": d, "fs": fs, "runs": runs}


def write_pit_models(d: Path) -> None:
    """The PIT macro's variants (pit_oracle) as models over the hand-made tables in schema pit. Written by the PIT
    test just before it compiles them, not by make_project: every `fs run` of the fixture would build them as views."""
    (d / "models" / "pit").mkdir(exist_ok=True)
    (d / "models" / "pit" / "_sources.yml").write_text(
        "version: 2\nsources:\n  - name: pit\n    schema: pit\n    tables: [{name: spine}, {name: fg_a}, {name: fg_b}]\n")
    for v in VARIANTS:
        (d / "models" / "pit" / f"{v.name}.sql").write_text(model_sql(v))


def load_pit_tables(fs) -> None:
    with fs.project.warehouse() as wh:
        wh.ensure_schema("pit")
        for name, cols in PIT_DDL.items():
            wh.execute(f"create table pit.{name} ({cols})")
        # One multi-row insert per table: one Delta file, so the spine's scan order is its insertion order.
        for name, rows in (("spine", PIT_SPINE), ("fg_a", PIT_FG_A), ("fg_b", PIT_FG_B)):
            width = len(rows[0])
            wh.execute(f"insert into pit.{name} values " + ", ".join(["(" + ", ".join("?" * width) + ")"] * len(rows)),
                       [v for r in rows for v in r])


def as_rows(df: pd.DataFrame) -> list[tuple]:
    return [(int(r.item_id), r.event_time.strftime("%Y-%m-%d %H:%M:%S"), float(r.value), r.color)
            for r in df.sort_values(["item_id", "event_time"]).itertuples()]


def test_publish_commits_and_time_travel(spark_project):
    fs, (r1, r2, _) = spark_project["fs"], spark_project["runs"]
    assert r1.ok, r1.to_dict()
    assert r2.ok, r2.to_dict()
    log = fs.commits(FG)
    assert [(c.commit_id, c.inserted, c.updated, c.deleted, c.rows) for c in log] == [(1, 4, 0, 0, 4), (2, 1, 1, 1, 4)]
    assert log[0].commit_time < log[1].commit_time
    assert [c.validation for c in log] == ["passed", "passed"]
    assert as_rows(fs.read(FG, commit=1)) == sorted(V1)
    assert as_rows(fs.read(FG, commit=2)) == sorted(V2)
    assert as_rows(fs.read(FG)) == sorted(V2)
    between = log[0].commit_time + (log[1].commit_time - log[0].commit_time) / 2
    assert as_rows(fs.read(FG, as_of=between)) == sorted(V1)
    assert as_rows(fs.read(FG, as_of=log[1].commit_time)) == sorted(V2)
    # Spark's TIMESTAMP comes back naive UTC, as on DuckDB and Postgres.
    assert fs.read(FG)["event_time"].dt.tz is None


def test_gate_blocks_bad_strict_candidate(spark_project):
    fs, bad = spark_project["fs"], spark_project["runs"][2]
    outcome = bad.outcomes[FG]
    assert not bad.ok and not outcome.published and outcome.commit is None, bad.to_dict()
    assert any("value" in f for f in outcome.failures), outcome.failures
    assert len(fs.commits(FG)) == 2  # nothing published
    assert as_rows(fs.read(FG)) == sorted(V2)
    failed = fs.validations(FG, limit=1, failed=True)
    assert failed and all(r["outcome"] in ("fail", "error") for r in failed)


def _expected_labels(items: list[tuple]) -> list[tuple]:
    """Oracle of the feature view: per label row, the item's latest row at or before label_at within 30 days."""
    out = []
    for e, item, t, y in LABELS:
        ts = datetime.fromisoformat(t)
        cands = [(datetime.fromisoformat(et), v, c) for i, et, v, c in items if item is not None and i == item
                 and ts - timedelta(days=30) <= datetime.fromisoformat(et) <= ts]
        best = max(cands) if cands else (None, None, None)
        out.append((e, ts, y, best[1], best[2]))
    return out


def test_training_dataset_and_export(spark_project, tmp_path):
    fs = spark_project["fs"]
    td = fs.create_training_dataset("fv_spark_items")
    assert td.version == 1 and td.rows == len(LABELS)
    df = fs.training_dataset("fv_spark_items")
    got = sorted((int(r.example_id), r.label_at.to_pydatetime(), int(r.label),
                  None if pd.isna(r.value) else float(r.value), None if pd.isna(r.color) else r.color)
                 for r in df.itertuples())
    assert got == sorted(_expected_labels(V2))
    out = tmp_path / "td.parquet"
    fs.export_training_dataset("fv_spark_items", out)
    assert len(pd.read_parquet(out)) == len(LABELS)


def test_materialization_into_sqlite_equals_warehouse(spark_project, tmp_path):
    """Latest row per item within the TTL, picked in Spark, read as Arrow, served from SQLite: equal to the oracle
    over the rows published now (plain SQL on the snapshot); then backfills to an earlier end, with and without a
    start (Feast's materialize(start_date, end_date)), equal to the oracle over the rows in the range."""
    fs = spark_project["fs"]
    fg = fs.catalog.fg(FG)
    with fs.project.warehouse(read_only=True) as wh:
        cols = ", ".join(wh.quote(c) for c in fg.column_names)
        rows = wh.arrow(f"select {cols} from {fg.snapshot_relation} where dbt_valid_to is null "
                        f"and (dbt_is_deleted is null or dbt_is_deleted <> 'True')")
    now = datetime(2026, 1, 31, 12)  # 30-day TTL from Jan 1 12:00: item 3 (Jan 1 00:00) expired, 1 and 4 live
    store = open_store(f"sqlite:///{tmp_path / 'online.sqlite'}")
    try:
        results, warnings = materialize_project(fs.project, fs.catalog, store=store, full=True, now=now)
        assert not warnings, warnings
        spec = FGSpec.from_feature_group(fg)
        expected = oracle_latest(spec, rows, now)
        assert sorted(expected) == [1, 4]
        assert {r.feature_group: r.written for r in results} == {FG: len(expected)}
        client = TestClient(create_app(store, clock=lambda: (now - datetime(1970, 1, 1)).total_seconds(),
                                       log_dir=None))
        keys = [1, 2, 3, 4, 99]
        r = client.post("/get-online-features",
                        json={"features": [f"{FG}:value", f"{FG}:color"], "entities": {"item_id": keys}})
        assert r.status_code == 200, r.text
        res = r.json()["results"]
        for j, k in enumerate(keys):
            if k in expected:
                assert [res[1]["values"][j], res[2]["values"][j]] == [expected[k]["value"], expected[k]["color"]]
            else:
                assert res[1]["statuses"][j] == "NOT_FOUND", k
        # `fs materialize --start S --end T` (a backfill): per item the latest row with S <= event time <= T
        end, start = datetime(2026, 1, 2, 12), datetime(2026, 1, 1, 6)
        for lower in (None, start):
            materialize_project(fs.project, fs.catalog, store=store, now=end, start=lower)
            window = rows.filter([lower is None or t >= lower for t in rows.column("event_time").to_pylist()])
            want = oracle_latest(spec, window, end)
            assert sorted(want) == ([1] if lower else [1, 3])  # item 4 (Jan 3) is after the end, item 3 before S
            client = TestClient(create_app(store, clock=lambda: (end - datetime(1970, 1, 1)).total_seconds(),
                                           log_dir=None))
            res = client.post("/get-online-features",
                              json={"features": [f"{FG}:value"], "entities": {"item_id": keys}}).json()["results"]
            got = {k: res[1]["values"][j] for j, k in enumerate(keys) if res[1]["statuses"][j] != "NOT_FOUND"}
            assert got == {k: r["value"] for k, r in want.items()}, (lower, got)
    finally:
        store.close()


PIT_DDL = {
    "spine": "k1 bigint, k2 string, ts timestamp, label bigint",
    "fg_a": "k1 bigint, et timestamp, cr timestamp, x double, y string",
    "fg_b": "id bigint, region string, t timestamp, z double",
}
TS = T0 + 4 * STEP  # 2 hours after T0: fg_a's 2-hour TTL ends exactly at T0
PIT_SPINE = [
    (1, "eu", TS, 1), (2, "eu", TS, 0), (3, "eu", TS, 0),
    (1, "eu", TS, 1),                       # a duplicate spine row comes out twice, in place
    (None, "eu", TS, 0), (1, None, TS, 1),  # NULL keys match nothing
    (1, "us", None, 0),                     # NULL time matches nothing
    (2, "us", T0 + 2 * STEP, 1),            # fg_b row exactly at the spine time: inclusive only
    (3, "eu", T0, 0),                       # fg_b row exactly one TTL (1 h) before
]
PIT_FG_A = [
    (1, TS, T0, 10.0, "now"), (1, TS, T0 + STEP, 11.0, "later_created"),  # tie on event time: latest created wins
    (1, TS, None, 12.0, "it's null"),                                  # a NULL created time loses the tie
    (1, T0, T0, 0.0, "edge"),                                             # exactly at the TTL boundary
    (2, T0 - STEP, T0, 5.0, "too_old"), (3, TS + STEP, T0, 7.0, "future"),
    (None, TS, T0, 99.0, "null_key"), (2, None, T0, 98.0, "null_time"), (3, T0, T0, 3.0, "at_spine_time"),
]
PIT_FG_B = [
    (1, "eu", TS, 1.0), (1, "eu", TS - 2 * STEP, 2.0), (2, "us", T0 + 2 * STEP, 3.0), (2, "us", T0 + STEP, 4.0),
    (None, "eu", TS, 5.0), (3, "eu", T0 - timedelta(hours=1), 6.0), (3, "eu", T0 - timedelta(hours=2), 7.0),
]


def test_point_in_time_join_matches_oracle(spark_project):
    """spark__fs_point_in_time_join (window functions; rows numbered in scan order) against the brute-force oracle
    on hand-made edge cases: TTL boundary, ties on event time (created time, NULL created), NULL keys and times,
    duplicates, spine order kept."""
    fs = spark_project["fs"]
    write_pit_models(spark_project["dir"])
    res = fs.project.dbt(["compile", "--select", "path:models/pit"], reuse_manifest=False)  # parse the new files
    assert res.success, res.exception
    compiled = {r.node.name: r.node.compiled_code for r in res.results}
    assert set(compiled) == {v.name for v in VARIANTS}
    with fs.project.warehouse() as wh:
        for v in VARIANTS:
            table = wh.arrow(compiled[v.name])
            assert table.column_names == [*SPINE_COLS, "x", "y", "b_z", "b_id"]
            got = list(zip(*(table.column(i).to_pylist() for i in range(table.num_columns)), strict=True))
            check(got, oracle(PIT_SPINE, PIT_FG_A, PIT_FG_B, v), v)


def test_model_registry_and_lineage(spark_project, tmp_path):
    """Register a model on a Spark training dataset, alias it, read it back through the registry's tables and view
    (Delta), and follow its lineage down to the feature group's commit."""
    import joblib
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    fs = spark_project["fs"]
    td = fs.create_training_dataset("fv_spark_items")
    df = fs.training_dataset("fv_spark_items", version=td.version)
    model = make_pipeline(SimpleImputer(), LogisticRegression()).fit(df[["value"]], df["label"])
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    m = fs.models.register("spark_model", path, td.ref, metrics={"train_rows": len(df)},
                           meta={"owner": "tests", "intended_use": "the Spark registry test"}, trust_pickle=True)
    assert (m.name, m.version, m.training_dataset_version) == ("spark_model", 1, td.version)
    assert [c["name"] for c in m.input_schema] == ["value"]
    fs.models.alias("spark_model", 1, "champion", reason="first", force=True)  # 7 rows: nothing to validate on
    assert fs.models.info("spark_model@champion").version == 1
    assert [(h["action"], h["new_version"]) for h in fs.models.alias_history("spark_model")] == [("set", 1)]
    with fs.project.warehouse(read_only=True) as wh:
        view = wh.fetchall("select name, version, status, aliases, validation_status from fs_meta.model_registry")
    assert view == [("spark_model", 1, "active", "champion", None)]
    lineage = fs.models.lineage("spark_model@champion")
    assert lineage["training_dataset"]["version"] == td.version
    commits = [(c["feature_group"], c["commit_id"], c["inserted"], c["updated"], c["deleted"], c["rows"])
               for c in lineage["feature_group_commits"]]
    assert commits == [(FG, 2, 1, 1, 1, 4)]
    assert "spark_items" in lineage["sources"]


# ------------------------------------------------------------------------------- fs_window_aggregate on Spark
def window_events(rng: random.Random, key_base: int, clustered: bool) -> list[tuple]:
    """One event table shaped like test_window_aggregate's strategies (NULL keys, times and values; ties; events on
    window boundaries), its keys moved to key_base + 1.. so that several tables share one Spark query."""
    if clustered:  # many events on few times: ties on (key, time), dense windows
        return [(key_base + rng.randint(1, 2), WA_BASE + rng.randint(0, 12) * WA_STEP,
                 rng.choice([None, *range(0, 4)])) for _ in range(rng.randint(1, 25))]
    return [(rng.choice([None, key_base + 1, key_base + 2, key_base + 3]),
             rng.choice([None, *(WA_BASE + i * WA_STEP for i in range(0, 4 * 24 * 4 + 1))]),
             rng.choice([None, *range(-5, 21)])) for _ in range(rng.randint(0, 40))]


def window_batch(seed: int = 13) -> list[tuple]:
    """Eight generated tables and test_window_aggregate's by-hand boundaries (key 1000) as one event table."""
    rng = random.Random(seed)
    events = [e for i in range(8) for e in window_events(rng, 10 * i, clustered=i % 2 == 1)]
    t0 = WA_BASE + timedelta(hours=10)
    return [*events, (1000, t0 - timedelta(hours=1), 100), (1000, t0 - timedelta(minutes=30), 10), (1000, t0, 1)]


class SparkWindowRunner:
    """The event table as a session temp view `ev` (a literal VALUES list: no Delta files), the rendered SQL run on
    it through the warehouse layer."""

    def __init__(self, wh):
        self.wh = wh

    def run(self, sql: str, events: list[tuple]) -> dict:
        values = ", ".join(f"({literal(k)}, {literal(t)}, {literal(v)})" for k, t, v in events)
        self.wh.execute("create or replace temporary view ev as select cast(k as int) as k, "
                        f"cast(ts as timestamp) as ts, cast(v as bigint) as v from values {values} as t(k, ts, v)")
        res = self.wh.execute(sql)
        return wa_as_dict(res.columns, res.fetchall())


def test_window_aggregate_matches_reference(spark_project):
    """fs_window_aggregate compiled by dbt-spark (its Spark interval arithmetic, sequence() grid and mean), every
    configuration of tests/test_window_aggregate.py (every aggregate function and window unit, a lag with
    closed='left', two grids) on one generated event table against the brute-force reference; then future events
    appended, the reference again, and no value of an existing evaluation point changed (no leakage)."""
    fs = spark_project["fs"]
    inline = wa_inline_sql().replace("var('aggs')", json.dumps(WA_AGGS))  # no --vars: the project's manifest holds
    res = fs.project.dbt(["compile", "--quiet", "--inline", inline])
    assert res.success, res.exception
    rendered = wa_split_rendered(res.results[0].node.compiled_code)
    assert set(rendered) == set(WA_CONFIGS)
    assert "sequence(" in rendered["grid_1h"] and "generate_series" not in rendered["grid_1h"]  # Spark's dispatch
    events = window_batch()
    latest = max(t for k, t, _ in events if k is not None and t is not None)
    future = [(k, latest + timedelta(minutes=m), v) for k, m, v in ((1000, 15, 7), (1, 1, 3), (11, 30, 2),
                                                                     (21, 60 * 25, 9), (2, 15, None))]
    with fs.project.warehouse() as wh:
        runner = SparkWindowRunner(wh)
        for name, kw in WA_CONFIGS.items():
            before = runner.run(rendered[name], events)
            wa_assert_same(before, wa_reference(events, **kw))
            after = runner.run(rendered[name], events + future)
            wa_assert_same(after, wa_reference(events + future, **kw))
            lag = timedelta(seconds=wa_seconds(kw["lag"])) if kw.get("lag") else timedelta(0)
            for key, row in before.items():  # a point sees events up to t - lag; the future ones are all > latest
                if kw["at"] == "events" or key[1] - lag <= latest:
                    assert after[key] == row, (name, key)


# ------------------------------------------------------------------------------- incremental groups on Spark
def write_incremental_groups(d: Path) -> None:
    """tests/test_incremental_groups.py's four groups (three incremental, one table group over the same source) on
    their seeds, with dbt-spark's `merge` strategy (Delta MERGE on the key: dbt-spark has no delete+insert) and
    Spark's `double`."""
    fgs = d / "models" / "feature_groups"
    spark_sql = {"'delete+insert'": "'merge'", "double precision": "double"}

    def for_spark(sql: str) -> str:
        for a, b in spark_sql.items():
            sql = sql.replace(a, b)
        return sql

    for name, seed in ((incr.APPEND, "test_items"), (incr.REPLACED, "replaced_items"), (incr.BLOCKED, "bad_items")):
        (fgs / f"{name}.sql").write_text(for_spark(incr.MODEL).replace("ref('test_items')", f"ref('{seed}')"))
        (fgs / f"_{name}.yml").write_text(incr.FG_YAML.replace("fg_test_items", name))
        (d / "snapshots" / f"{name}.yml").write_text(incr.SNAPSHOT_YAML.replace("fg_test_items", name))
    (fgs / f"{incr.TABLE}.sql").write_text(for_spark(incr.TABLE_MODEL))
    (fgs / f"_{incr.TABLE}.yml").write_text(incr.FG_YAML.replace("fg_test_items", incr.TABLE))
    (d / "snapshots" / f"{incr.TABLE}.yml").write_text(incr.TABLE_SNAPSHOT_YAML)
    types = "{item_id: bigint, event_time: timestamp, value: double, ingested_at: timestamp}"
    (d / "seeds" / "_incr_seeds.yml").write_text("version: 2\nseeds:\n" + "".join(
        f"  - name: {seed}\n    config:\n      column_types: {types}\n"
        for seed in ("test_items", "replaced_items", "bad_items")))


def test_incremental_groups_publish_their_batches(spark_project):
    """tests/test_incremental_groups.py's five runs on Spark, asserted by that module's own tests: exact commits and
    time travel of an incremental group whose source is replaced by its new batch; the same versions (dbt_scd_id
    included) and commits as a table group over an append-only source, each audit holding exactly its batch; a bad
    row in a later batch blocked under `strict` and published with the batch that fixes it, a row deleted from the
    candidate behind fs's back not recorded as a deletion."""
    d, fs = spark_project["dir"], spark_project["fs"]
    write_incremental_groups(d)
    groups = tuple(f"+{n}" for n in (incr.APPEND, incr.TABLE, incr.REPLACED, incr.BLOCKED))
    timeline = {"engine": "spark",
                **incr.run_timeline(fs, d, lambda fs: incr.run_counting_audited_rows(fs, groups))}
    incr.test_incremental_group_publishes_exact_commits(timeline)
    incr.test_incremental_publish_equals_a_table_group_and_reads_only_the_batch(timeline)
    incr.test_a_bad_row_in_a_later_batch_is_blocked(timeline)


# ------------------------------------------------------------------------------- pushed rows published on Spark
PUSHED = "fg_push_items"


def write_push_group(d: Path, day: datetime, spine_at: datetime) -> None:
    """tests/test_push.py's pushed group (push source, strict range and allowed values) and its feature view, with
    Spark's types."""
    fgs = d / "models" / "feature_groups"
    (fgs / f"{PUSHED}.sql").write_text(
        "select cast(item_id as bigint) as item_id, cast(event_time as timestamp) as event_time,"
        " cast(value as double) as value, cast(grade as string) as grade from {{ ref('push_items') }}\n")
    (fgs / "_push_items.yml").write_text(PUSH_ITEMS_YAML)
    (d / "snapshots" / "push_items.yml").write_text(PUSH_ITEMS_SNAPSHOT)
    (d / "models" / "feature_views" / "fv_push_items.sql").write_text("{{ feature_store.fs_feature_view() }}\n")
    (d / "seeds" / "push_items.csv").write_text(
        f"item_id,event_time,value,grade\n1,{day:%Y-%m-%d %H:%M:%S},10.0,a\n2,{day:%Y-%m-%d %H:%M:%S},20.0,b\n")
    (d / "seeds" / "push_spine.csv").write_text(
        f"item_id,ts,label\n1,{spine_at - timedelta(minutes=2):%Y-%m-%d %H:%M:%S},0\n"
        f"1,{spine_at:%Y-%m-%d %H:%M:%S},1\n2,{spine_at:%Y-%m-%d %H:%M:%S},0\n")
    (d / "seeds" / "_push_seeds.yml").write_text(
        "version: 2\nseeds:\n  - name: push_items\n    config:\n      column_types:\n"
        "        {item_id: bigint, event_time: timestamp, value: double, grade: string}\n"
        "  - name: push_spine\n    config:\n      column_types: {item_id: bigint, ts: timestamp, label: int}\n")


def test_pushed_rows_are_published_through_the_gate(spark_project):
    """tests/test_push.py's publish path on Spark: rows in the push log become a commit of their group at the next
    run (fs_push.<group> on Delta, merged into the candidate), a row that breaks the group's rules is kept as
    rejected with the reason, time travel and a training dataset see the pushed value from its event time on, a later
    push of the same key supersedes it, and a run with nothing new publishes nothing."""
    from fs_cli.online.push_log import PushLog
    from fs_cli.timeutil import utcnow

    d, fs = spark_project["dir"], spark_project["fs"]
    t0 = utcnow().replace(microsecond=0)
    day, pushed_at = t0 - timedelta(days=1), t0 - timedelta(minutes=1)
    write_push_group(d, day, t0)
    select = (f"+{PUSHED}", "push_spine")
    first = fs.run(select=select, materialize=False)
    assert first.outcomes[PUSHED].status == "ok", first.to_dict()
    push_dir = fs.project.state_dir / "push"
    PushLog(push_dir).append(PUSHED, [
        {"id": "p:0", "pushed_at": t0.isoformat(), "row": {
            "item_id": 1, "event_time": pushed_at.isoformat(), "value": 55.5, "grade": "b"}},
        {"id": "p:1", "pushed_at": t0.isoformat(), "row": {  # breaks allowed_values: kept, rejected
            "item_id": 2, "event_time": pushed_at.isoformat(), "value": 1.0, "grade": "z"}}])
    before_publish = utcnow()
    report = fs.run(select=select, materialize=False)
    o = report.outcomes[PUSHED]
    assert o.status in ("ok", "warn"), report.to_dict()
    assert o.commit is not None and (o.commit.inserted, o.commit.updated, o.commit.deleted) == (1, 0, 0)
    assert any("rejected" in w and "allowed_values" in w for w in o.warnings), o.warnings

    def published(as_of=None) -> list[tuple]:
        return sorted((int(r.item_id), r.event_time.to_pydatetime().replace(tzinfo=None), float(r.value), r.grade)
                      for r in fs.read(PUSHED, as_of=as_of).itertuples())

    batch = [(1, day, 10.0, "a"), (2, day, 20.0, "b")]
    assert published() == sorted([*batch, (1, pushed_at, 55.5, "b")])
    assert published(as_of=before_publish) == batch
    assert PushLog(push_dir).read(PUSHED)[0] == []  # consumed after the commit
    with fs.project.warehouse() as wh:
        rows = wh.fetchall(f"select fs_push_id, fs_status, fs_commit_id, fs_reason from fs_push.{PUSHED} "
                           "order by fs_push_id")
    assert [r[:3] for r in rows] == [("p:0", "published", o.commit.commit_id), ("p:1", "rejected", None)]
    assert "allowed_values" in rows[1][3]
    fs.create_training_dataset("fv_push_items")
    td = fs.training_dataset("fv_push_items").sort_values(["item_id", "ts"])
    assert list(td["value"]) == [10.0, 55.5, 20.0]
    # a later push of the same key and event time supersedes the published one (Delta MERGE) and updates the row
    PushLog(push_dir).append(PUSHED, [{"id": "p:2", "pushed_at": utcnow().isoformat(), "row": {
        "item_id": 1, "event_time": pushed_at.isoformat(), "value": 66.0, "grade": "a"}}])
    third = fs.run(select=select, materialize=False)
    c3 = third.outcomes[PUSHED].commit
    assert c3 is not None and (c3.inserted, c3.updated, c3.deleted) == (0, 1, 0), third.to_dict()
    assert published() == sorted([*batch, (1, pushed_at, 66.0, "a")])
    with fs.project.warehouse() as wh:
        rows = wh.fetchall(f"select fs_push_id, fs_status, fs_reason from fs_push.{PUSHED} where fs_push_id <> 'p:1' "
                           "order by fs_push_id")
    assert rows == [("p:0", "superseded", "replaced by push p:2"), ("p:2", "published", None)]
    again = fs.run(select=select, materialize=False)
    assert again.outcomes[PUSHED].commit is None, again.to_dict()
    assert len(fs.commits(PUSHED)) == 3
