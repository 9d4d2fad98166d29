"""Publishing as a store: a killed publish is still logged, BI views of published data and history, the gate under
plain dbt, UTC commit times whatever the server's time zone, and `dbt clean` leaving the store alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ENGINES, copy_project, use_engine
from services import clone_project, drop_clone, pg_connect, pg_database
from test_pipeline_commits import V1, V2, as_rows, bi_query, make_items_project, schema_of, write_rows

from fs_cli import FeatureStore
from fs_cli.cli import main
from fs_cli.timeutil import utcnow

FS = [sys.executable, "-m", "fs_cli"]


@pytest.fixture
def items(project_copy, engine: str) -> Path:
    return make_items_project(project_copy, engine)


def counts(log: list[dict]) -> list[tuple]:
    return [(c["commit_id"], c["inserted"], c["updated"], c["deleted"], c["rows"]) for c in log]


def fs_cli(project: Path, *args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["--project-dir", str(project), *args], catch_exceptions=False)
    return res.exit_code, res.stdout


@pytest.fixture(scope="module", params=ENGINES)
def killed(request, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """(engine, project) whose `fs run` of V1 died SIGKILL-like right after its snapshot, before logging the
    commit: killed once per engine, each test gets its own copy of that state (`crashed`)."""
    engine = request.param
    with ExitStack() as stack:
        db = stack.enter_context(pg_database()) if engine == "postgres" else None
        root = tmp_path_factory.mktemp(f"killed_{engine}")
        d = make_items_project(lambda name, with_seeds, engine: use_engine(
            copy_project(root / name, with_seeds=with_seeds), engine, db), engine)
        write_rows(d, V1)
        env = {**os.environ, "FS_TEST_CRASH_AFTER_SNAPSHOT": "1"}
        crashed = subprocess.run([*FS, "--project-dir", str(d), "run", "--json"], env=env, capture_output=True,
                                 text=True, timeout=300)
        assert crashed.returncode == 137, crashed.stderr[-2000:]
        if db:  # the dead process's sessions may outlive it for a moment: a template must have none
            con = pg_connect()
            with con.cursor() as cur:
                cur.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", [db])
            con.close()
        yield engine, d


@pytest.fixture
def crashed(killed, tmp_path) -> Iterator[Path]:
    engine, src = killed
    d = clone_project(engine, src, tmp_path / "items", "fs_test_killed_")
    try:
        yield d
    finally:
        drop_clone(engine, d)


def test_publish_killed_before_its_log_write_is_still_a_commit(crashed: Path, monkeypatch):
    """SIGKILL-like death right after the snapshot: the next `fs commits` / `fs run` logs the commit, exact counts."""
    monkeypatch.setenv("DBT_LOG_LEVEL", "none")  # `fs run --json` sets it; restored after the test
    items = crashed
    fs = FeatureStore(items)
    with fs.project.warehouse(read_only=True) as wh:  # the snapshot is there, the log is not
        assert wh.scalar(f"select count(*) from {fs.catalog.fg('fg_test_items').snapshot_relation}") == 4
        assert not wh.relation_exists("fs_meta", "commits") or wh.scalar(
            "select count(*) from fs_meta.commits") == 0

    write_rows(items, V2)  # the next run publishes a second commit: the first is logged as its own
    code, out = fs_cli(items, "run", "--json")
    assert code == 0, out
    run_id = json.loads(out)["run_id"]
    report = json.loads(out)["feature_groups"][0]
    assert (report["commit"]["commit_id"], report["commit"]["inserted"], report["commit"]["updated"],
            report["commit"]["deleted"], report["commit"]["rows"]) == (2, 1, 1, 1, 4)
    code, out = fs_cli(items, "commits", "fg_test_items", "--json")
    log = json.loads(out)
    assert counts(log) == [(1, 4, 0, 0, 4), (2, 1, 1, 1, 4)]
    assert log[0]["run_id"] is None and log[1]["run_id"] == run_id
    assert log[0]["validated"] is False and log[1]["validated"] is True  # the crash never linked its validation
    assert as_rows(fs.read("fg_test_items", commit=1)) == sorted(V1)


def test_killed_publish_then_fs_commits(crashed: Path):
    """`fs commits` alone logs the orphaned publish."""
    code, out = fs_cli(crashed, "commits", "fg_test_items", "--json")  # a new session after the dead process
    assert code == 0 and counts(json.loads(out)) == [(1, 4, 0, 0, 4)]


def test_bi_views_published_and_history(items: Path):
    """Per feature group a view of the rows published now and a history view, read by a separate read-only
    client (plain DuckDB / psql); plain `dbt build` keeps them current; candidates are not in the target schema."""
    fs = FeatureStore(items)
    write_rows(items, V1)
    assert fs.run().ok
    write_rows(items, V2)
    assert fs.project.dbt(["build", "--quiet"]).success  # the second publish by plain dbt

    published = schema_of(fs.project, "published")
    history = schema_of(fs.project, "history")
    rows = bi_query(fs.project, f"select item_id, event_time, value from {published}.fg_test_items "
                                "order by item_id, event_time")
    assert [(int(i), t, float(v)) for i, t, v in (r.split("\t") for r in rows)] == sorted(V2)
    cols = bi_query(fs.project, f"select column_name from information_schema.columns where table_schema = "
                                f"'{published}' and table_name = 'fg_test_items' order by ordinal_position")
    assert cols == ["item_id", "event_time", "value"]

    log = fs.commits("fg_test_items")
    assert [(c.commit_id, c.inserted, c.updated, c.deleted) for c in log] == [(1, 4, 0, 0), (2, 1, 1, 1)]
    hist = bi_query(fs.project, f"""
        select commit_id, item_id, value, case when deleted then 'deleted' else 'live' end,
               case when valid_to is null then 'current' else 'closed' end
        from {history}.fg_test_items order by commit_id, item_id, event_time""")
    parsed = [(int(c), int(i), float(v), d, s) for c, i, v, d, s in (r.split("\t") for r in hist)]
    assert parsed == [
        (1, 1, 1.0, "live", "closed"), (1, 1, 1.5, "live", "current"), (1, 2, 2.0, "live", "closed"),
        (1, 3, 3.0, "live", "current"),
        (2, 1, 1.25, "live", "current"), (2, 2, 2.0, "deleted", "current"), (2, 4, 4.0, "live", "current"),
    ]
    # commit ids and times agree with the commit log; `deleted` is a real boolean column
    per_commit = bi_query(fs.project, f"select commit_id, count(*) from {history}.fg_test_items "
                                      "group by commit_id order by commit_id")
    assert per_commit == ["1\t4", "2\t3"]
    with fs.project.warehouse(read_only=True) as wh:
        times = wh.fetchall(f"select distinct commit_id, valid_from from {history}.fg_test_items order by 1")
        assert [(c.commit_id, c.commit_time) for c in log] == [(int(i), t) for i, t in times]
        assert dict(wh.describe(f"{history}.fg_test_items"))["deleted"].lower() == "boolean"
        target = fs.project.target_config()["schema"]
        assert "fg_test_items" not in wh.tables(target)  # the candidate lives in <schema>_candidates
        assert "fg_test_items" in wh.tables(schema_of(fs.project, "candidates"))
    # time travel through the history view equals fs read
    t1 = log[0].commit_time + (log[1].commit_time - log[0].commit_time) / 2
    at = bi_query(fs.project, f"""select item_id from {history}.fg_test_items
        where valid_from <= cast('{t1}' as timestamp) and (valid_to is null or valid_to > cast('{t1}' as timestamp))
          and not deleted order by item_id, event_time""")
    assert [int(x) for x in at] == [r[0] for r in sorted(V1)]


NOT_NULL_VALUE = "      - {name: value, data_type: double, description: a value}"
NOT_NULL_VALUE_DECL = ("      - name: value\n        data_type: double\n        description: a value\n"
                       "        config: {meta: {fs: {not_null: true}}}")


def test_strict_group_without_its_test_is_gated_under_plain_dbt(items: Path):
    """No `fs_expectations` test attached: the snapshot's pre-hook checks the declared expectations and refuses a
    failing strict publish with a clear message; a commit published by plain dbt is marked unvalidated."""
    yml = items / "models" / "feature_groups" / "_test_items.yml"
    assert NOT_NULL_VALUE in yml.read_text() and "fs_expectations" not in yml.read_text()
    yml.write_text(yml.read_text().replace(NOT_NULL_VALUE, NOT_NULL_VALUE_DECL))
    fs = FeatureStore(items)
    write_rows(items, V1)
    assert fs.run().ok  # commit 1 through fs: validated
    write_rows(items, [*V2[:-1], (4, "2026-01-03 00:00:00", "")])  # a NULL value
    res = fs.project.dbt(["build", "--quiet"])
    assert not res.success
    snap = [r for r in res.results if r.node.resource_type == "snapshot"]
    assert len(snap) == 1 and str(snap[0].status).endswith("error")
    assert "not publishing strict feature group fg_test_items" in snap[0].message
    assert "not_null:value (1 rows)" in snap[0].message
    assert as_rows(fs.read("fg_test_items")) == sorted(V1)  # nothing published

    write_rows(items, V2)
    assert fs.project.dbt(["build", "--quiet"]).success  # passes the gate: published by plain dbt
    code, out = fs_cli(items, "commits", "fg_test_items", "--json")
    log = json.loads(out)
    assert [(c["commit_id"], c["validation"], c["validated"]) for c in log] == [(1, "passed", True),
                                                                                (2, "none", False)]
    code, table = fs_cli(items, "commits", "fg_test_items")
    assert "validation" in table and "passed" in table and "none" in table and "no passing validation" in table


def test_warn_group_is_not_gated_by_the_hook(items: Path):
    yml = items / "models" / "feature_groups" / "_test_items.yml"
    yml.write_text(yml.read_text().replace(NOT_NULL_VALUE, NOT_NULL_VALUE_DECL).replace("policy: strict",
                                                                                         "policy: warn"))
    write_rows(items, [*V1, (9, "2026-01-03 00:00:00", "")])
    fs = FeatureStore(items)
    assert fs.project.dbt(["build", "--quiet"]).success
    # `fs list` / `fs describe` log the plain-dbt publish before they report (no `fs commits` / `fs run` first)
    listed = {r["name"]: r for r in fs.list()}["fg_test_items"]
    assert listed["commits"] == 1 and listed["rows"] == 5 and listed["latest_commit"]["inserted"] == 5
    assert listed["latest_commit"]["validated"] is False
    assert [c["inserted"] for c in fs.describe("fg_test_items")["commit_log"]] == [5]


@pytest.mark.parametrize("engine", ["postgres"])
def test_commit_times_are_utc_on_a_non_utc_postgres(items: Path, monkeypatch):
    """The test database's sessions default to America/New_York: `fs run` and plain `dbt` (no PGTZ) both write UTC."""
    fs = FeatureStore(items)
    db = fs.project.target_config()["dbname"]
    con = pg_connect()
    with con.cursor() as cur:
        cur.execute(f"alter database \"{db}\" set timezone to 'America/New_York'")
    con.close()
    with monkeypatch.context() as m:
        m.delenv("PGTZ", raising=False)  # fs_cli sets it for its own sessions; a BI client or plain dbt has none
        check = pg_connect(db)
    with check.cursor() as cur:
        cur.execute("show timezone")
        assert cur.fetchone()[0] == "America/New_York"  # a plain session really is local
    check.close()

    write_rows(items, V1)
    before = utcnow()
    assert fs.run().ok
    c1 = fs.commits("fg_test_items")[0]
    assert before - timedelta(seconds=5) <= c1.commit_time <= utcnow() + timedelta(seconds=5)

    write_rows(items, V2)
    env = {k: v for k, v in os.environ.items() if k != "PGTZ"}
    dbt = str(Path(sys.executable).parent / "dbt")
    before = utcnow()
    subprocess.run([dbt, "build", "--quiet", "--project-dir", str(items), "--profiles-dir", str(items)],
                   env=env, cwd=items, check=True, capture_output=True, timeout=300)
    c2 = fs.commits("fg_test_items")[-1]
    assert c2.commit_id == 2
    assert before - timedelta(seconds=5) <= c2.commit_time <= utcnow() + timedelta(seconds=5)


@pytest.mark.parametrize("engine", ["duckdb"])
def test_dbt_clean_leaves_the_store_alone(items: Path):
    yml = items / "models" / "feature_groups" / "_test_items.yml"
    yml.write_text(yml.read_text().replace("online: false", "online: true").replace("ttl: 1d", "ttl: null"))
    fs = FeatureStore(items)
    write_rows(items, V1)
    report = fs.run()
    assert report.ok and report.outcomes["fg_test_items"].materialized
    log = [c.to_dict() for c in fs.commits("fg_test_items")]
    online = fs.get_online_features(["fg_test_items:value"], {"item_id": [1, 3]})
    assert (items / "target").is_dir()
    state = {p.relative_to(items): p.stat().st_size for p in (items / ".fs").rglob("*") if p.is_file()}

    assert fs.project.dbt(["clean"]).success
    assert not (items / "target").exists()
    assert {p.relative_to(items): p.stat().st_size for p in (items / ".fs").rglob("*") if p.is_file()} == state
    fresh = FeatureStore(items)
    assert [c.to_dict() for c in fresh.commits("fg_test_items")] == log
    assert fresh.get_online_features(["fg_test_items:value"], {"item_id": [1, 3]}) == online
    assert online["results"][-1]["values"] == [1.5, 3.0]  # item 1's latest row (Jan 2) and item 3
