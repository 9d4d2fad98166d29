"""Integrity of publishing (issues #16, #17): what `fs run` publishes is exactly what its gate audited.

On the small items feature group of test_pipeline_commits (data the test controls), on every engine:
  - a check the gate cannot run (a newly declared column the model does not have) publishes under no policy, and is
    shown as an error, not as a failed check;
  - a writer that appends to the candidate after the audit (a test hook runs its SQL between audit and publish)
    does not get its rows published;
  - `fs run --no-materialize` links the validation results to the commit;
  - a failing `dbt snapshot` invocation makes the run fail;
  - one run publishes all its feature groups at one instant;
  - rows the snapshot cannot represent (NULL or duplicate snapshot key) are refused under policy `warn` too.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_pipeline_commits import V1, as_rows, write_rows
from test_pipeline_commits import make_items_project as _make_items_project

from fs_cli import FeatureStore
from fs_cli.cli import main
from fs_cli.pipeline import SQL_AFTER_AUDIT_ENV
from fs_cli.project import DbtResult

FG = "fg_test_items"


def make_items_project(project_copy, engine: str) -> Path:
    """The items group alone: the monitoring models need the demo's sources, which this project has not."""
    d = _make_items_project(project_copy, engine)
    shutil.rmtree(d / "models" / "monitoring", ignore_errors=True)
    return d


@pytest.fixture
def items(project_copy, engine: str) -> Path:
    return make_items_project(project_copy, engine)


def _yml(project: Path) -> Path:
    return project / "models" / "feature_groups" / "_test_items.yml"


def set_policy(project: Path, policy: str) -> None:
    yml = _yml(project)
    yml.write_text(yml.read_text().replace("policy: strict", f"policy: {policy}"))


def declare_range(project: Path, column: str, low, high) -> None:
    yml = _yml(project)
    old = f"      - {{name: {column}, data_type: double, description: a value}}\n"
    assert old in yml.read_text()
    yml.write_text(yml.read_text().replace(old, (
        f"      - name: {column}\n        data_type: double\n        description: a value\n"
        f"        config: {{meta: {{fs: {{range: [{low}, {high}]}}}}}}\n")))


def attach_expectations_test(project: Path) -> None:
    yml = _yml(project)
    old = "    description: Items for the commit tests.\n"
    yml.write_text(yml.read_text().replace(old, old + "    data_tests: [fs_expectations]\n"))


def run_json(project: Path, *args: str) -> tuple[int, dict]:
    res = CliRunner().invoke(main, ["--project-dir", str(project), "run", "--json", *args], catch_exceptions=False)
    return res.exit_code, json.loads(res.output[res.output.index('{\n  "ok"'):])


def _outcome(report: dict) -> dict:
    return next(o for o in report["feature_groups"] if o["feature_group"] == FG)


GATE_ERRORS = {
    # a newly declared column the model does not have yet: the contract's column queries cannot run
    "declared_column": ("      - name: fresh\n        data_type: double\n        description: new\n"
                        "        config: {meta: {fs: {range: [0, 1], not_null: true}}}\n"),
    # a dbt test the warehouse cannot run (model-level test on a column that does not exist)
    "dbt_test": None,
}


@pytest.mark.parametrize("policy,kind", [("strict", "declared_column"), ("warn", "declared_column"),
                                         ("warn", "dbt_test")])
def test_gate_error_never_publishes(project_copy, policy: str, kind: str):
    """#17.4: a check that cannot run is an error, shown as one; no policy publishes on it."""
    d = make_items_project(project_copy, "duckdb")
    set_policy(d, policy)
    write_rows(d, V1)
    assert FeatureStore(d).run(materialize=False).ok
    yml = _yml(d)
    if kind == "declared_column":
        yml.write_text(yml.read_text() + GATE_ERRORS[kind])
    else:
        old = "    description: Items for the commit tests.\n"
        yml.write_text(yml.read_text().replace(old, old + "    data_tests: [{not_null: {column_name: ghost}}]\n"))
    write_rows(d, [*V1, (9, "2026-01-05 00:00:00", 9.0)])
    res = CliRunner().invoke(main, ["--project-dir", str(d), "run", "--no-materialize"], catch_exceptions=False)
    assert res.exit_code == 1 and "ERROR" in res.output, res.output
    code, report = run_json(d, "--no-materialize")
    o = _outcome(report)
    assert code == 1 and not report["ok"]
    assert not o["published"] and o["status"] == "blocked", o
    assert not any("published despite" in w for w in o["warnings"]), o["warnings"]
    assert o["errors"] and all(e.startswith("ERROR ") for e in o["errors"]), o
    assert len(FeatureStore(d).commits(FG)) == 1


def test_failing_check_says_how_many_rows(project_copy):
    """#16.11: a failing range check names the count and the bounds, not the pass condition."""
    d = make_items_project(project_copy, "duckdb")
    declare_range(d, "value", 0, 2.5)
    write_rows(d, V1)  # 3.0 is outside [0, 2.5]
    code, report = run_json(d, "--no-materialize")
    lines = _outcome(report)["failures"]
    line = next(f for f in lines if "contract:invalid:value:range" in f)
    assert "1 row outside [0, 2.5]" in line and "No invalid values" not in line, line


def test_no_materialize_links_validation_to_commit(items: Path):
    """#17.5: the validation results of a run without materialization still name the commit they published."""
    write_rows(items, V1)
    code, report = run_json(items, "--no-materialize")
    assert code == 0, report
    assert _outcome(report)["commit"]["validation"] == "passed"
    fs = FeatureStore(items)
    with fs.project.warehouse(read_only=True) as wh:
        ids = {r[0] for r in wh.fetchall("select commit_id from fs_meta.validation_results where feature_group = ?",
                                         [FG])}
    assert ids == {1}


def test_failed_snapshot_invocation_fails_the_run(project_copy, monkeypatch):
    """A `dbt snapshot` that fails as a whole (no node results) is a failed run, not an `ok` without a commit."""
    d = make_items_project(project_copy, "duckdb")
    write_rows(d, V1)
    fs = FeatureStore(d)
    real = fs.project.dbt

    def failing_snapshot(args, *a, **kw):
        if args[0] == "snapshot":
            return DbtResult(success=False, results=[], exception=RuntimeError("warehouse went away"),
                             invocation_id="x")
        return real(args, *a, **kw)

    monkeypatch.setattr(fs.project, "dbt", failing_snapshot)
    report = fs.run(materialize=False)
    o = report.outcomes[FG]
    assert not report.ok and not o.published and o.status != "ok", report.to_dict()
    assert any("warehouse went away" in f for f in o.failures + report.other_failures)


def test_writer_between_audit_and_publish_is_not_published(items: Path, monkeypatch):
    """#17.1: rows appended to the candidate after the audit (the test hook runs the writer's SQL there) are not
    published: the snapshot publishes the audited rows, exactly."""
    declare_range(items, "value", 0, 10)
    attach_expectations_test(items)  # as the demo does: dbt's DAG gates plain `dbt build`, no snapshot pre-hook check
    write_rows(items, V1)
    fs = FeatureStore(items)
    fg = fs.catalog.fg(FG)
    monkeypatch.setenv(SQL_AFTER_AUDIT_ENV,
                       f"insert into {fg.relation} (item_id, event_time, value) "
                       f"values (99, cast('2026-01-09 00:00:00' as timestamp), 500.0)")
    report = fs.run(materialize=False)
    assert report.ok, report.to_dict()
    assert as_rows(FeatureStore(items).read(FG)) == sorted(V1)
    c = FeatureStore(items).commits(FG)
    assert [(x.inserted, x.rows) for x in c] == [(4, 4)]


FG_B_YML = """
version: 2
models:
  - name: fg_test_items_b
    description: A second group over the same items.
    config:
      meta:
        fs:
          entities: [item]
          event_time: event_time
          online: false
          ttl: 30d
          owner: tests
          policy: strict
    columns:
      - {name: item_id, data_type: bigint, description: the item}
      - {name: event_time, data_type: timestamp, description: when}
      - {name: doubled, data_type: double, description: twice the value}
"""

FV_YML = """
version: 2
models:
  - name: fv_items
    description: Both item groups on a label spine.
    config:
      meta:
        fs:
          feature_view:
            spine: {model: test_labels, timestamp: label_time, label: label}
            features:
              - {feature_group: fg_test_items, features: "*"}
              - {feature_group: fg_test_items_b, features: "*"}
"""


def add_second_group_and_view(d: Path) -> None:
    fg_dir = d / "models" / "feature_groups"
    (fg_dir / "fg_test_items_b.sql").write_text(
        "select cast(item_id as bigint) as item_id, cast(event_time as timestamp) as event_time,"
        " cast(value * 2 as double precision) as doubled from {{ ref('test_items') }}\n")
    (fg_dir / "_test_items_b.yml").write_text(FG_B_YML)
    snap = d / "snapshots" / "test_items.yml"
    snap.write_text(snap.read_text() + """
  - name: fg_test_items_b_snapshot
    relation: ref('fg_test_items_b')
    config:
      unique_key: [item_id, event_time]
""")
    (d / "models" / "feature_views" / "_fv_items.yml").write_text(FV_YML)
    (d / "models" / "feature_views" / "fv_items.sql").write_text(
        "-- depends_on: {{ ref('test_labels') }}\n-- depends_on: {{ ref('fg_test_items_snapshot') }}\n"
        "-- depends_on: {{ ref('fg_test_items_b_snapshot') }}\n{{ feature_store.fs_feature_view() }}\n")
    (d / "seeds" / "test_labels.csv").write_text(
        "item_id,label_time,label\n1,2026-01-03 00:00:00,1\n2,2026-01-02 00:00:00,0\n3,2026-01-04 00:00:00,1\n")


def test_one_run_publishes_at_one_instant(project_copy, engine: str):
    """#16.2: all groups of one `fs run` share one commit time, so a training dataset as of that time reads every
    group; #16.3: `training-dataset show` prints that time exactly, and pasting it back reproduces the dataset."""
    d = make_items_project(project_copy, engine)
    add_second_group_and_view(d)
    write_rows(d, V1)
    fs = FeatureStore(d)
    assert fs.run(materialize=False).ok
    times = {fs.commits(name)[-1].commit_time for name in (FG, "fg_test_items_b")}
    assert len(times) == 1, times
    t = times.pop()
    td = fs.create_training_dataset("fv_items", as_of=t)
    assert td.rows == 3 and {c["commit_id"] for c in td.fg_commits} == {1}

    res = CliRunner().invoke(main, ["--project-dir", str(d), "training-dataset", "show", "fv_items:1"])
    assert res.exit_code == 0, res.output
    printed = next(line.split("│")[2].strip() for line in res.output.splitlines()
                   if line.split("│")[1:2] and line.split("│")[1].strip() == "as_of")
    assert printed == t.isoformat(sep=" ", timespec="microseconds"), (printed, t)
    again = FeatureStore(d).create_training_dataset("fv_items", as_of=printed)
    assert again.content_hash == td.content_hash


@pytest.mark.parametrize("bad_row", [(5, "", 5.0), (1, "2026-01-01 00:00:00", 7.0)], ids=["null_key", "dup_key"])
def test_warn_policy_refuses_rows_the_snapshot_cannot_key(items: Path, bad_row):
    """#16.1: under `warn`, a NULL or duplicate snapshot key would make every publish a commit (NULL never equals
    NULL in the snapshot's merge). Such a candidate is refused under every policy, with the reason kept, and the
    published version and its commit counts stay exact."""
    set_policy(items, "warn")
    write_rows(items, V1)
    fs = FeatureStore(items)
    assert fs.run(materialize=False).ok
    write_rows(items, [*V1, bad_row])
    for _ in range(2):  # the same data twice: nothing may be committed either time
        report = FeatureStore(items).run(materialize=False)
        o = report.outcomes[FG]
        assert not report.ok and not o.published and o.status == "blocked", report.to_dict()
        assert any("refused under every policy" in f for f in o.failures), o.failures
    log = FeatureStore(items).commits(FG)
    assert [(c.commit_id, c.inserted, c.updated, c.deleted, c.rows) for c in log] == [(1, 4, 0, 0, 4)]
    assert as_rows(FeatureStore(items).read(FG)) == sorted(V1)
    rows = FeatureStore(items).validations(FG, limit=1, failed=True)
    assert {r["check_name"] for r in rows} & {"contract:duplicate:key", "contract:missing:event_time:not_null"}


def test_dbt_expectations_refuse_a_range_that_is_not_a_number(project_copy):
    """#17.3: plain `dbt build` renders declared bounds into SQL; `range: [0, "1 and 1=0"]` must not compile into
    `> 1 and 1=0` (a test that always passes): the macro refuses it, naming the column and the value, and the
    snapshot (the publish) does not run."""
    d = make_items_project(project_copy, "duckdb")
    declare_range(d, "value", 0, '"1 and 1=0"')
    attach_expectations_test(d)
    write_rows(d, [*V1, (5, "2026-01-05 00:00:00", 5.0)])
    res = FeatureStore(d).project.dbt(["build", "--quiet"])
    assert not res.success
    by_name = {r.node.name: r for r in res.results}
    test = next(r for n, r in by_name.items() if n.startswith("fs_expectations"))
    assert str(test.status).split(".")[-1].lower() == "error"
    assert "column value" in test.message and "1 and 1=0" in test.message, test.message
    assert str(by_name["fg_test_items_snapshot"].status).split(".")[-1].lower() == "skipped"
