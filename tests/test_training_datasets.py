"""Training datasets on the demo: bitemporal reproduction, no leakage (brute-force oracle), splits, immutability,
atomicity, concurrency, CLI/SDK.

Every test runs on each engine (DuckDB, Postgres): `demo_copy_on_engine` (tests/conftest.py) is a copy of the demo built and
published twice there, with fv_fraud_detection:1 created between the two publishes (right after commit 1).
The module fixture adds: v2 (now) -> rebuild the day-1 label spine -> v3 --as-of commit 1 and v4 (now, day-1 spine)
-> restore the spine.
"""

from __future__ import annotations

import bisect
import json
import threading
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from fs_cli import FeatureStore, metadata, training
from fs_cli.cli import main
from fs_cli.commits import read_published
from fs_cli.errors import FeatureStoreError
from fs_cli.training import decimals_as_double

FV = "fv_fraud_detection"
DAY1 = {"demo_data_cutoff": "2026-01-15 00:00:00"}
SPLIT = "random:0.8,0.2:7"  # the split conftest's demo_project used for v1


def _spine(fs: FeatureStore) -> list[tuple]:
    fv = fs.catalog.fv(FV)
    cols = ", ".join(f'"{c}"' for c in fv.spine_columns)
    with fs.project.warehouse(read_only=True) as wh:
        rows = wh.fetchall(f"select {cols} from {fv.spine_relation}")
    # DECIMAL values as floats: what a training dataset's rows are read as (training.decimals_as_double)
    return sorted((tuple(float(v) if isinstance(v, Decimal) else v for v in r) for r in rows), key=repr)


def _rebuild_spine(fs: FeatureStore, vars: dict) -> None:
    res = fs.project.with_vars(vars).dbt(["run", "--quiet", "--select", "+stg_fraud_labels"])
    assert res.success, res.exception


@pytest.fixture(scope="module")
def timeline(demo_copy_on_engine) -> dict:
    engine, demo_project = demo_copy_on_engine
    fs = FeatureStore(demo_project)
    assert fs.project.engine == engine
    v1 = fs.training_dataset_info(FV, 1)
    assert v1.description == "right after commit 1"
    spine2 = _spine(fs)
    v2 = fs.create_training_dataset(FV, split=SPLIT)
    with fs.project.warehouse(read_only=True) as wh:
        assert wh.engine == engine
        commit1_at = wh.scalar("select max(commit_time) from fs_meta.commits where commit_id = 1")
    _rebuild_spine(fs, DAY1)  # the labels as they were on day 1: the spine is the user's input, not versioned
    try:
        spine1 = _spine(fs)
        v3 = fs.create_training_dataset(FV, as_of=commit1_at, split=SPLIT)
        v4 = fs.create_training_dataset(FV, split=SPLIT)
    finally:
        _rebuild_spine(fs, {})
    assert _spine(fs) == spine2
    return {"engine": engine, "dir": demo_project, "fs": fs, "v1": v1, "v2": v2, "v3": v3, "v4": v4, "commit1_at": commit1_at,
            "spine1": spine1, "spine2": spine2}


def _rows(fs: FeatureStore, td: training.TrainingDataset) -> list[dict]:
    return fs.training_dataset(FV, version=td.version, format="arrow").to_pylist()


def _oracle(fs: FeatureStore, spine_rows: list[dict], as_of, fv=None) -> list[dict]:
    """Brute-force point-in-time join over the feature groups as published at `as_of`: per spine row and group,
    the row with the greatest event_time <= spine time (< when the boundary is strict) and >= spine time - ttl,
    else NULLs."""
    cat = fs.catalog
    fv = fv or cat.fv(FV)
    find = bisect.bisect_right if fv.boundary == "inclusive" else bisect.bisect_left
    out = [dict(r) for r in spine_rows]
    with fs.project.warehouse(read_only=True) as wh:
        for sel in fv.selections:
            fg = cat.fg(sel.feature_group)
            by_key: dict[tuple, list[tuple]] = defaultdict(list)
            for r in decimals_as_double(read_published(wh, fg, as_of)).to_pylist():
                by_key[tuple(r[k] for k in sel.join_keys)].append((r[fg.event_time], r))
            for rows in by_key.values():
                rows.sort(key=lambda x: x[0])
            for o in out:
                cands = by_key.get(tuple(o[c] for c in sel.join_keys.values()), [])
                i = find([t for t, _ in cands], o[fv.spine_timestamp]) - 1
                hit = cands[i][1] if i >= 0 else None
                if hit is not None and fg.ttl is not None and hit[fg.event_time] < o[fv.spine_timestamp] - fg.ttl:
                    hit = None
                for f, col in sel.outputs():
                    o[col] = None if hit is None else hit[f]
    return out


def _key(r: dict) -> tuple:
    return (r["transaction_id"], r["transaction_at"])


# -- bitemporal ---------------------------------------------------------------------------------------------------

def test_as_of_commit_1_reproduces_the_dataset_made_right_after_commit_1(timeline):
    v1, v3, v4 = timeline["v1"], timeline["v3"], timeline["v4"]
    assert v3.content_hash == v1.content_hash
    assert v3.rows == v1.rows and v3.row_counts == v1.row_counts
    assert {c["commit_id"] for c in v1.fg_commits} == {1} == {c["commit_id"] for c in v3.fg_commits}
    assert v3.as_of == timeline["commit1_at"] and v1.as_of is None
    # Same spine, later commits: the day-2 publish changed features of some rows, so "now" differs.
    assert all(c["commit_id"] > 1 for c in v4.fg_commits)
    assert v4.content_hash != v1.content_hash
    fs = timeline["fs"]
    assert _rows(fs, v3) == _rows(fs, v1)


def test_as_of_excludes_later_commits_and_no_feature_comes_from_the_future(timeline):
    fs = timeline["fs"]
    fv = fs.catalog.fv(FV)
    for name, as_of in (("v3", timeline["commit1_at"]), ("v4", None), ("v2", None)):
        rows = _rows(fs, timeline[name])
        spine = [{c: r[c] for c in fv.spine_columns} for r in rows]
        expected = _oracle(fs, spine, as_of)
        got = [{k: v for k, v in r.items() if k != "split"} for r in rows]
        assert sorted(got, key=_key) == sorted(expected, key=_key), f"{name} differs from the oracle"
    # The oracle only looks back; show the data has future rows it had to skip, and rows commit 2 changed.
    v3, v4 = ({_key(r): r for r in _rows(fs, timeline[v])} for v in ("v3", "v4"))
    changed = [k for k in v3 if v3[k] != v4[k]]
    assert changed, "commit 2 should change some features of the day-1 spine"
    snapshot = fs.catalog.fg("fg_customer_transactions").snapshot_relation
    with fs.project.warehouse(read_only=True) as wh:
        future = wh.scalar(
            f"""select count(*) from {timeline["v4"].table} s
                where exists (select 1 from {snapshot} f
                              where f.customer_id = s.customer_id and f.feature_time > s.transaction_at)""")
    assert future > 1000


def test_every_spine_row_exactly_once(timeline):
    fs = timeline["fs"]
    fv = fs.catalog.fv(FV)
    for name, spine in (("v1", "spine1"), ("v2", "spine2"), ("v3", "spine1")):
        rows = [tuple(r[c] for c in fv.spine_columns) for r in _rows(fs, timeline[name])]
        assert sorted(rows, key=repr) == timeline[spine]


def test_rejects_as_of_before_first_commit_or_in_future(timeline):
    fs = timeline["fs"]
    with pytest.raises(FeatureStoreError, match="first published"):
        fs.create_training_dataset(FV, as_of=timeline["commit1_at"] - timedelta(hours=1))
    with pytest.raises(FeatureStoreError, match="future"):
        fs.create_training_dataset(FV, as_of="2999-01-01")
    with pytest.raises(FeatureStoreError, match="unknown feature view"):
        fs.create_training_dataset("fv_nope")
    with pytest.raises(FeatureStoreError, match="unknown feature view 'fv_fraud_detectio'") as e:
        fs.training_dataset("fv_fraud_detectio")
    assert FV in e.value.fix


# -- splits -------------------------------------------------------------------------------------------------------

def test_random_split_is_the_seeded_hash_of_the_canonical_row_number(timeline):
    fs = timeline["fs"]
    td = timeline["v2"]
    rows = _rows(fs, td)  # stored in canonical order
    expected = ["train" if training.split_fraction(7, n) < 0.8 else "test" for n in range(1, len(rows) + 1)]
    assert [r["split"] for r in rows] == expected
    assert td.row_counts == {"train": expected.count("train"), "test": expected.count("test")}
    assert 0.77 < td.row_counts["train"] / td.rows < 0.83
    train = fs.training_dataset(FV, version=td.version, split="train")
    assert len(train) == td.row_counts["train"] and set(train["split"]) == {"train"}


@pytest.mark.parametrize("text,kind,names", [
    ("random:0.7,0.2,0.1:3", "random", ("train", "validation", "test")),
    ("random:a=0.5,b=0.5", "random", ("a", "b")),
    ("time:2026-01-10", "time", ("train", "test")),
    ("time:2026-01-01,2026-01-10", "time", ("train", "validation", "test")),
    (None, "none", ("train",)),
])
def test_split_spec_parses(text, kind, names):
    s = training.SplitSpec.parse(text)
    assert (s.kind, s.names) == (kind, names)
    assert training.SplitSpec.parse(str(s)) == s


@pytest.mark.parametrize("text", ["random:0.8,0.3:1", "random:0.8,0.2:x", "time:2026-02-01,2026-01-01", "kfold:5",
                                  "random:", "random:a=0.5,0.5"])
def test_split_spec_rejects(text):
    with pytest.raises(FeatureStoreError, match="--split"):
        training.SplitSpec.parse(text)


def test_time_split_and_sdk_create(timeline):
    fs = timeline["fs"]
    td = fs.create_training_dataset(FV, split="time:2026-01-10", description="time split")
    df = fs.training_dataset(FV, version=td.version)
    cutoff = df["transaction_at"] < "2026-01-10"
    assert (df.loc[cutoff, "split"] == "train").all() and (df.loc[~cutoff, "split"] == "test").all()
    assert td.row_counts == {"train": int(cutoff.sum()), "test": int((~cutoff).sum())}
    assert td.description == "time split" and td.split["kind"] == "time"


# -- immutability, atomicity, concurrency -------------------------------------------------------------------------

def _hash_of_table(fs: FeatureStore, version: int) -> str:
    td = fs.training_dataset_info(FV, version)
    with fs.project.warehouse() as wh:
        return training.content_hash(wh, td.table, training.td_order(td), wh.describe(td.table))


def test_versions_are_immutable_and_a_crash_leaves_no_half_version(timeline):
    fs = timeline["fs"]
    before = [td.version for td in fs.training_datasets(FV)]
    assert before == list(range(1, len(before) + 1))
    assert _hash_of_table(fs, 1) == timeline["v1"].content_hash  # v1 untouched by every later create

    def crash(wh, relation, fv, meta):
        raise RuntimeError("simulated crash after the table was built")

    with pytest.raises(RuntimeError, match="simulated crash"):  # a build step fails after the table was built
        training.create(fs.project, fs.catalog, FV, split=SPLIT, steps=[crash])
    assert [td.version for td in fs.training_datasets(FV)] == before
    # A process killed mid-build leaves its temporary table: never listed, dropped by the next create.
    with fs.project.warehouse() as wh:
        wh.execute(f'create table fs_training."__building_{FV}_dead" as select 1 as x')
    assert [td.version for td in fs.training_datasets(FV)] == before
    td = fs.create_training_dataset(FV, split=SPLIT)
    assert td.version == before[-1] + 1
    with fs.project.warehouse(read_only=True) as wh:
        tables = {r[0] for r in wh.fetchall(
            "select table_name from information_schema.tables where table_schema = 'fs_training'")}
    # (the demo's warehouse is shared with other modules: only this view's tables are this test's business)
    assert {t for t in tables if t.startswith(FV)} == {f"{FV}_v{v}" for v in [*before, td.version]}
    assert not [t for t in tables if t.startswith("__building_")]
    assert td.content_hash == timeline["v2"].content_hash  # same spine and commits as v2: same content


def test_concurrent_creates_get_distinct_versions(timeline):
    fs = timeline["fs"]
    cat = fs.catalog
    fv = cat.fv(FV)
    sql = training.compile_feature_view(fs.project, fv, None)
    start = max(td.version for td in fs.training_datasets(FV))
    results, errors = [], []

    def worker(i: int) -> None:
        try:
            with fs.project.warehouse() as wh:
                meta = {"created_at": timeline["commit1_at"], "as_of": None, "read_at": timeline["commit1_at"],
                        "fg_commits": [], "spine_model": fv.spine_model, "declaration": fv.spec,
                        "description": f"thread {i}"}
                results.append(training.build(wh, fv, sql, meta, training.SplitSpec.parse(SPLIT)).version)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(results) == list(range(start + 1, start + 4))
    assert len({fs.training_dataset_info(FV, v).content_hash for v in results}) == 1


# -- CLI -----------------------------------------------------------------------------------------------------------

def _cli(timeline, *args: str):
    res = CliRunner().invoke(main, ["--project-dir", str(timeline["dir"]), *args], catch_exceptions=False)
    return res


def test_cli_list_show_export(timeline, tmp_path: Path):
    res = _cli(timeline, "training-dataset", "list", FV, "--json")
    assert res.exit_code == 0, res.output
    listed = json.loads(res.output)
    assert [d["version"] for d in listed] == list(range(1, len(listed) + 1))
    assert listed[0]["fg_commits"][0]["commit_id"] == 1 and listed[0]["content_hash"] == timeline["v1"].content_hash

    res = _cli(timeline, "training-dataset", "show", timeline["v3"].ref, "--json")
    assert res.exit_code == 0, res.output
    shown = json.loads(res.output)
    assert shown["as_of"].startswith(str(timeline["commit1_at"])[:19])
    assert shown["labels"] == ["is_fraud"] and shown["declaration"]["spine"]["model"] == "stg_fraud_labels"
    assert {f["name"] for f in shown["features"]} >= {"tx_amount_7d", "segment", "merchant_tx_count_7d"}

    out = tmp_path / "td.parquet"
    res = _cli(timeline, "training-dataset", "export", f"{FV}:1", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert pq.read_table(out).to_pylist() == _rows(timeline["fs"], timeline["v1"])
    csv = tmp_path / "train.csv"
    res = _cli(timeline, "training-dataset", "export", f"{FV}:1", "--format", "csv", "--out", str(csv),
               "--split", "train")
    assert res.exit_code == 0, res.output
    assert len(csv.read_text().splitlines()) == timeline["v1"].row_counts["train"] + 1

    res = _cli(timeline, "training-dataset", "show", f"{FV}:99")
    assert res.exit_code == 2 and "does not exist" in res.output
    res = _cli(timeline, "training-dataset", "export", FV, "--out", str(tmp_path / "x.txt"))
    assert res.exit_code == 2 and "--format" in res.output
    res = _cli(timeline, "training-dataset", "create", FV, "--split", "random:0.5")
    assert res.exit_code == 2 and "add up to" in res.output


def test_plain_dbt_builds_the_view_after_its_inputs(timeline):
    """The view's SQL is the macro; plain dbt builds it (current commits) and it has one row per spine row."""
    fs = timeline["fs"]
    res = fs.project.dbt(["run", "--quiet", "--select", FV])
    assert res.success, res.exception
    fv = fs.catalog.fv(FV)
    with fs.project.warehouse(read_only=True) as wh:
        cols = wh.query_columns(f"select * from {fv.relation}")
        n = wh.scalar(f"select count(*) from {fv.relation}")
    assert cols == fv.output_columns and n == len(timeline["spine2"])
    node = fs.catalog.manifest.nodes[fv.unique_id]
    assert {"model.feature_store.stg_fraud_labels",
            "snapshot.feature_store.fg_merchant_activity_snapshot"} <= set(node.depends_on.nodes)


def test_missing_spine_column_is_a_declaration_error_at_build(timeline, monkeypatch):
    fs = timeline["fs"]
    fv = fs.catalog.fv(FV)
    monkeypatch.setattr(fv, "spine_extra", [*fv.spine_extra, "merchant_country"])
    with fs.project.warehouse(read_only=True) as wh, pytest.raises(FeatureStoreError) as e:
        training._check_spine(wh, fv)
    assert "merchant_country" in str(e.value) and FV in str(e.value) and "fix:" in str(e.value)



def test_macro_prefix_strict_boundary_and_entity_mapping_match_the_oracle(timeline):
    """A declaration the demo view does not use: the same group twice (prefixed), strict boundary, renamed keys."""
    fs = timeline["fs"]
    cat = fs.catalog
    decl = {
        "spine": {"model": "stg_fraud_labels", "timestamp": "transaction_at", "label": "is_fraud",
                  "entities": {"customer": "customer_id", "merchant": {"merchant_id": "merchant_id"}}},
        "features": [
            {"feature_group": "fg_customer_profile", "features": ["segment", "credit_limit"]},
            {"feature_group": "fg_customer_profile", "features": ["segment"], "prefix": "again_"},
            {"feature_group": "fg_merchant_activity", "features": ["merchant_tx_count_7d"], "prefix": "m_"},
        ],
        "boundary": "strict",
    }
    fv, errs = metadata._parse_fv(cat.manifest.nodes[cat.fv(FV).unique_id], decl, cat.feature_groups,
                                  cat.entities, cat.manifest)
    assert not errs
    inline = ("{{ feature_store.fs_feature_view_sql('fv_inline', fromjson('" + json.dumps(decl) + "')) }}\n"
              "-- ttl {{ feature_store.fs_ttl_seconds('2w') }} {{ feature_store.fs_ttl_seconds('36h') }}")
    res = fs.project.dbt(["compile", "--log-level", "none", "--inline", inline])
    assert res.success, res.exception
    sql = res.results[0].node.compiled_code
    assert sql.rstrip().endswith("-- ttl 1209600 129600")  # FG TTL notation includes weeks
    with fs.project.warehouse(read_only=True) as wh:
        table = decimals_as_double(wh.arrow(sql))
        cols = table.column_names
        rows = table.to_pylist()
    assert cols == fv.output_columns == ["customer_id", "merchant_id", "transaction_at", "is_fraud", "segment",
                                         "credit_limit", "again_segment", "m_merchant_tx_count_7d"]
    expected = _oracle(fs, [{c: r[c] for c in fv.spine_columns} for r in rows], None, fv)
    assert rows == expected  # also in spine order: the oracle keeps the order it is given
    assert all(r["segment"] == r["again_segment"] for r in rows)
