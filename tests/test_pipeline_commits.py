"""Publishing, the commit log and time travel on a small feature group whose data the test controls exactly."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from conftest import drop_demo_models, preparsed

from fs_cli import FeatureStore

FG_YAML = """
version: 2
models:
  - name: fg_test_items
    description: Items for the commit tests.
    config:
      meta:
        fs:
          entities: [item]
          event_time: event_time
          online: false
          ttl: 1d
          owner: tests
          tags: [test]
          policy: strict
    columns:
      - {name: item_id, data_type: bigint, description: the item}
      - {name: event_time, data_type: timestamp, description: when}
      - {name: value, data_type: double, description: a value}
"""

SNAPSHOT_YAML = """
snapshots:
  - name: fg_test_items_snapshot
    relation: ref('fg_test_items')
    config:
      unique_key: [item_id, event_time]
      strategy: check
      check_cols: all
      hard_deletes: new_record
"""


def write_rows(project: Path, rows: list[tuple[int, str, float]]) -> None:
    lines = ["item_id,event_time,value"] + [f"{i},{t},{v}" for i, t, v in rows]
    (project / "seeds" / "test_items.csv").write_text("\n".join(lines) + "\n")


def make_items_project(project_copy, engine: str) -> Path:
    d = project_copy("items", with_seeds=False, engine=engine)
    # Portable SQL: `double precision` is a double on DuckDB and Postgres (dbt's type_float is a 4-byte REAL on DuckDB).
    (d / "models" / "feature_groups" / "fg_test_items.sql").write_text(
        "select cast(item_id as bigint) as item_id, cast(event_time as timestamp) as event_time,"
        " cast(value as double precision) as value from {{ ref('test_items') }}\n"
    )
    (d / "models" / "feature_groups" / "_test_items.yml").write_text(FG_YAML)
    (d / "snapshots" / "test_items.yml").write_text(SNAPSHOT_YAML)
    # Only the test group: the demo's models and snapshots would need the demo seeds.
    drop_demo_models(d)
    text = (d / "dbt_project.yml").read_text()
    (d / "dbt_project.yml").write_text(text.replace(
        "  fs_entities:\n", "  fs_entities:\n    item:\n      join_keys: [item_id]\n"))
    return preparsed(d)


@pytest.fixture
def items_project(project_copy, engine: str) -> Path:
    """The test group on every engine (DuckDB file, fresh Postgres database)."""
    return make_items_project(project_copy, engine)


@pytest.fixture
def items_project_duckdb(project_copy) -> Path:
    """For checks that end before the warehouse is touched (declarations): one engine is enough."""
    return make_items_project(project_copy, "duckdb")


def nothing_written(project) -> bool:
    """No table or view exists in the target yet (DuckDB: not even the file)."""
    from fs_cli.warehouse import store_exists

    if not store_exists(project):
        return True
    with project.warehouse(read_only=True) as wh:
        return wh.scalar("select count(*) from information_schema.tables "
                         "where table_schema not in ('information_schema', 'pg_catalog')") == 0


V1 = [(1, "2026-01-01 00:00:00", 1.0), (1, "2026-01-02 00:00:00", 1.5), (2, "2026-01-01 00:00:00", 2.0),
      (3, "2026-01-01 00:00:00", 3.0)]
# item 1 @ Jan 1 corrected (update), item 2 gone (delete), item 4 new (insert), the rest unchanged.
V2 = [(1, "2026-01-01 00:00:00", 1.25), (1, "2026-01-02 00:00:00", 1.5), (3, "2026-01-01 00:00:00", 3.0),
      (4, "2026-01-03 00:00:00", 4.0)]


def as_rows(df: pd.DataFrame) -> list[tuple]:
    return [(int(r.item_id), r.event_time.strftime("%Y-%m-%d %H:%M:%S"), float(r.value))
            for r in df.sort_values(["item_id", "event_time"]).itertuples()]


def test_publishes_commits_and_time_travel(items_project: Path):
    fs = FeatureStore(items_project)
    write_rows(items_project, V1)
    r1 = fs.run()
    assert r1.ok, r1.to_dict()
    write_rows(items_project, V2)
    r2 = fs.run()
    assert r2.ok, r2.to_dict()
    r3 = fs.run()  # nothing changed: no commit
    assert r3.ok and r3.outcomes["fg_test_items"].commit is None

    log = fs.commits("fg_test_items")
    assert [(c.commit_id, c.inserted, c.updated, c.deleted, c.rows) for c in log] == [
        (1, 4, 0, 0, 4),
        (2, 1, 1, 1, 4),
    ]
    assert log[0].commit_time < log[1].commit_time
    assert log[1].run_id  # dbt's invocation id of the publishing run

    assert as_rows(fs.read("fg_test_items", commit=1)) == sorted(V1)
    assert as_rows(fs.read("fg_test_items", commit=2)) == sorted(V2)
    assert as_rows(fs.read("fg_test_items")) == sorted(V2)
    between = log[0].commit_time + (log[1].commit_time - log[0].commit_time) / 2
    assert as_rows(fs.read("fg_test_items", as_of=between)) == sorted(V1)
    assert as_rows(fs.read("fg_test_items", as_of=log[1].commit_time)) == sorted(V2)

    # A deleted key that comes back is an insert, not an update.
    write_rows(items_project, [*V2, (2, "2026-01-01 00:00:00", 2.0)])
    assert fs.run().ok
    c3 = fs.commits("fg_test_items")[-1]
    assert (c3.commit_id, c3.inserted, c3.updated, c3.deleted, c3.rows) == (3, 1, 0, 0, 5)
    assert as_rows(fs.read("fg_test_items", commit=2)) == sorted(V2)  # history is immutable


def test_time_travel_errors(items_project: Path):
    from fs_cli.errors import FeatureStoreError

    fs = FeatureStore(items_project)
    write_rows(items_project, V1)
    with pytest.raises(FeatureStoreError, match="never been published|does not exist"):
        fs.read("fg_test_items")
    assert fs.run().ok
    with pytest.raises(FeatureStoreError, match="no commit 7") as e:
        fs.read("fg_test_items", commit=7)
    assert "existing commits: 1" in str(e.value)
    with pytest.raises(FeatureStoreError, match="first published"):
        fs.read("fg_test_items", as_of=datetime(2000, 1, 1))
    with pytest.raises(FeatureStoreError, match="not a timestamp"):
        fs.read("fg_test_items", as_of="yesterday-ish")
    with pytest.raises(FeatureStoreError, match="unknown feature group"):
        fs.read("fg_nope")


def test_plain_dbt_snapshot_is_logged_too(items_project: Path):
    """CI may publish with plain `dbt build`; fs picks up those commits from the snapshot."""
    fs = FeatureStore(items_project)
    write_rows(items_project, V1)
    res = fs.project.dbt(["build", "--quiet"])
    assert res.success
    write_rows(items_project, V2)
    assert fs.project.dbt(["build", "--quiet"]).success
    log = fs.commits("fg_test_items")
    assert [(c.inserted, c.updated, c.deleted) for c in log] == [(4, 0, 0), (1, 1, 1)]


BAD = [
    ("entities: [item]", "entities: []", "config.meta.fs.entities is missing"),
    ("entities: [item]", "entities: [widget]", "unknown entity 'widget'"),
    ("event_time: event_time", "event_time: happened_at", "event_time names column 'happened_at'"),
    ("ttl: 1d", "ttl: soon", "'soon' is not a duration"),
    ("policy: strict", "policy: sometimes", "policy is 'sometimes'"),
    ("      - {name: item_id, data_type: bigint, description: the item}\n", "",
     "primary_key names column 'item_id', which the model does not declare"),
]


@pytest.mark.parametrize("old,new,message", BAD, ids=[b[2][:30] for b in BAD])
def test_invalid_declarations_fail_before_writing(items_project: Path, old: str, new: str, message: str):
    from fs_cli.errors import DeclarationError

    yml = items_project / "models" / "feature_groups" / "_test_items.yml"
    assert old in yml.read_text()
    yml.write_text(yml.read_text().replace(old, new))
    write_rows(items_project, V1)
    fs = FeatureStore(items_project)
    with pytest.raises(DeclarationError) as e:
        fs.run()
    text = str(e.value)
    assert "model fg_test_items" in text and message in text and "fix:" in text
    assert nothing_written(fs.project)


def test_missing_snapshot_is_explained(items_project_duckdb: Path):
    from fs_cli.errors import DeclarationError

    items_project = items_project_duckdb
    (items_project / "snapshots" / "test_items.yml").unlink()
    write_rows(items_project, V1)
    with pytest.raises(DeclarationError, match="no snapshot publishes this feature group") as e:
        FeatureStore(items_project).run()
    assert "fg_test_items_snapshot" in str(e.value) and "hard_deletes: new_record" in str(e.value)


def test_snapshot_with_wrong_key_is_rejected(items_project_duckdb: Path):
    from fs_cli.errors import DeclarationError

    items_project = items_project_duckdb
    snap = items_project / "snapshots" / "test_items.yml"
    snap.write_text(snap.read_text().replace("unique_key: [item_id, event_time]", "unique_key: [item_id]"))
    write_rows(items_project, V1)
    with pytest.raises(DeclarationError, match="unique_key"):
        FeatureStore(items_project).run()


def test_failing_strict_candidate_keeps_previous_commit(items_project: Path):
    """A dbt test failure on a strict group blocks the publish; the previous version stays published."""
    yml = items_project / "models" / "feature_groups" / "_test_items.yml"
    yml.write_text(yml.read_text().replace(
        "      - {name: value, data_type: double, description: a value}",
        "      - name: value\n        data_type: double\n        description: a value\n"
        "        data_tests: [not_null]"))
    fs = FeatureStore(items_project)
    write_rows(items_project, V1)
    assert fs.run().ok
    write_rows(items_project, [*V2[:-1], (4, "2026-01-03 00:00:00", "")])  # a NULL value
    report = fs.run()
    assert not report.ok
    o = report.outcomes["fg_test_items"]
    assert o.status == "blocked" and not o.published and any("not_null" in f for f in o.failures)
    assert [c.commit_id for c in fs.commits("fg_test_items")] == [1]
    assert as_rows(fs.read("fg_test_items")) == sorted(V1)


BI_SQL = """
select item_id, event_time, value
from {snapshots}.fg_test_items_snapshot
where dbt_valid_from <= (select commit_time from fs_meta.commits
                         where feature_group = 'fg_test_items' and commit_id = 1)
  and (dbt_valid_to is null or dbt_valid_to > (select commit_time from fs_meta.commits
                         where feature_group = 'fg_test_items' and commit_id = 1))
  and dbt_is_deleted <> 'True'
order by item_id, event_time
"""


def bi_query(project, sql: str) -> list[str]:
    """Rows of `sql` (tab-separated lines) from another process, as a BI tool would read them: a read-only plain
    DuckDB client on the file, or psql on the Postgres database. No fs_cli involved."""
    target = project.target_config()
    if target["type"] == "duckdb":
        script = (
            "import duckdb, sys\n"
            "con = duckdb.connect(sys.argv[1], read_only=True)\n"
            "for r in con.execute(sys.argv[2]).fetchall(): print('\\t'.join('' if v is None else str(v) for v in r))\n"
        )
        out = subprocess.run([sys.executable, "-c", script, str(project.warehouse_path), sql],
                             capture_output=True, text=True, check=True)
    else:
        import shutil

        psql = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"
        out = subprocess.run(
            [psql, "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-h", str(target["host"]),
             "-p", str(target["port"]), "-U", str(target["user"]), "-d", str(target["dbname"]), "-c", sql],
            capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if line.strip()]


def schema_of(project, suffix: str) -> str:
    """The schema dbt builds `+schema: <suffix>` into: <target schema>_<suffix>."""
    return f"{project.target_config()['schema']}_{suffix}"


def test_dbt_snapshot_sql_is_readable_from_a_bi_client(items_project: Path):
    """BI: the commit log and snapshots are ordinary tables, readable by any client (the README's SQL)."""
    fs = FeatureStore(items_project)
    write_rows(items_project, V1)
    assert fs.run().ok
    rows = bi_query(fs.project, BI_SQL.format(snapshots=schema_of(fs.project, "snapshots")))
    assert len(rows) == 4 and rows[0].split("\t")[0] == "1"


def test_versioned_feature_group(items_project: Path):
    """A schema-breaking change is a new dbt model version, published and logged as its own feature group."""
    fg_dir = items_project / "models" / "feature_groups"
    (fg_dir / "fg_test_items_v2.sql").write_text(
        "select cast(item_id as bigint) as item_id, cast(event_time as timestamp) as event_time,"
        " cast(value * 100 as bigint) as value_cents from {{ ref('test_items') }}\n"
    )
    yml = fg_dir / "_test_items.yml"
    yml.write_text(yml.read_text() + """    latest_version: 1
    versions:
      - v: 1
      - v: 2
        columns:
          - include: all
            exclude: [value]
          - {name: value_cents, data_type: bigint, description: the value in cents}
""")
    (fg_dir / "fg_test_items.sql").rename(fg_dir / "fg_test_items_v1.sql")
    snap = items_project / "snapshots" / "test_items.yml"
    snap.write_text(snap.read_text().replace("fg_test_items_snapshot", "fg_test_items_v1_snapshot")
                    .replace("ref('fg_test_items')", "ref('fg_test_items', v=1)") + """
  - name: fg_test_items_v2_snapshot
    relation: ref('fg_test_items', v=2)
    config:
      unique_key: [item_id, event_time]
      strategy: check
      check_cols: all
      hard_deletes: new_record
""")
    write_rows(items_project, V1)
    fs = FeatureStore(items_project)
    assert set(fs.catalog.feature_groups) == {"fg_test_items_v1", "fg_test_items_v2"}
    assert fs.run().ok
    v2 = fs.read("fg_test_items_v2")
    assert list(v2.columns) == ["item_id", "event_time", "value_cents"]
    assert sorted(v2.value_cents.tolist()) == [100, 150, 200, 300]
    assert [c.inserted for c in fs.commits("fg_test_items_v1")] == [4]
