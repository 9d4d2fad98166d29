"""`fs run` builds nothing only when every input of the last clean run is unchanged (fs_cli/run_inputs.py).

The oracles: the seed file and a source table written by the test (what must be published / built after each run),
a spy on dbt (the fast path never starts it), and the decision function itself after each kind of change, each
reverted to show that it was that change and nothing else that made the difference."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from test_withhold_unvalidated import FG, make_project, rows_in_file, write_rows

from fs_cli import FeatureStore, run_inputs
from fs_cli.cli import main
from fs_cli.discovery import load as load_catalog
from fs_cli.online.push_log import PushLog, push_dir_for
from fs_cli.project import Project

ROWS = [(1, "2026-01-01 00:00:00", 1.25, "alpha"), (2, "2026-01-01 00:00:00", 2.5, "beta")]
CHANGED = [(1, "2026-01-02 00:00:00", 1.75, "gamma"), (2, "2026-01-01 00:00:00", 2.5, "beta")]
BAD = [(1, "2026-01-02 00:00:00", 1.75, "jane.doe@example.com"), (2, "2026-01-01 00:00:00", 2.5, "beta")]

SOURCE_YML = """
version: 2
sources:
  - name: raw_in
    schema: raw_in
    tables:
      - name: extra
models:
  - name: stg_extra
    description: A staging model over a source table that is not a seed.
"""


@pytest.fixture
def dbt_calls(monkeypatch) -> list[list[str]]:
    """Every dbt invocation of fs in this test (the real one runs; this only records its arguments)."""
    calls: list[list[str]] = []
    real = Project.dbt

    def spy(self, args, *a, **kw):
        calls.append(list(args))
        return real(self, args, *a, **kw)

    monkeypatch.setattr(Project, "dbt", spy)
    return calls


def add_source(d: Path) -> None:
    (d / "models" / "extra").mkdir(exist_ok=True)
    (d / "models" / "extra" / "_raw_in.yml").write_text(SOURCE_YML)
    (d / "models" / "extra" / "stg_extra.sql").write_text(
        "select id, v from {{ source('raw_in', 'extra') }}\n")
    with FeatureStore(d).project.warehouse() as wh:
        wh.ensure_schema("raw_in")
        wh.execute(f"create table {wh.relation('raw_in', 'extra')} (id {wh.type('bigint')}, v {wh.type('double')})")
        wh.execute(f"insert into {wh.relation('raw_in', 'extra')} values (1, 0.5), (2, 1.5)")


def sql(d: Path, statement: str) -> None:
    with FeatureStore(d).project.warehouse() as wh:
        wh.execute(statement)


def built_extra(d: Path) -> list[tuple]:
    store = FeatureStore(d)
    node = next(n for n in store.project.manifest().nodes.values() if n.name == "stg_extra")
    with store.project.warehouse() as wh:
        return sorted(tuple(r) for r in wh.fetchall(f"select id, v from {wh.relation(node.schema, node.alias)}"))


def decision(d: Path, vars: dict | None = None):
    """What the next `fs run` (no --select, no --rebuild) decides: the recorded clean run, or None (build)."""
    store = FeatureStore(d, vars=vars)
    project = store.project
    return run_inputs.unchanged_since(project, load_catalog(project), run_inputs.fingerprint(project))


def run(d: Path, **kw):
    messages: list[str] = []
    report = FeatureStore(d).run(materialize=False, progress=lambda m, done: messages.append(m), **kw)
    audit = [m.split(f"audit: {FG} ", 1)[1] for m in messages if m.startswith(f"audit: {FG} ")]
    return report, (audit[-1] if audit else "")


def published(d: Path) -> list[tuple]:
    df = FeatureStore(d).read(FG)
    return sorted((int(r.item_id), float(r.value), r.contact) for r in df.itertuples())


def test_a_run_builds_nothing_only_when_every_input_is_unchanged(project_copy, engine, dbt_calls):
    d = make_project(project_copy, engine)
    add_source(d)
    write_rows(d, ROWS)
    report, audit = run(d)
    assert report.ok and report.outcomes[FG].commit.commit_id == 1 and report.unchanged_since is None
    assert decision(d) is not None  # a clean run on a fresh warehouse is recorded
    fg = FeatureStore(d).catalog.fg(FG)
    with FeatureStore(d).project.warehouse() as wh:  # a freshness expectation is never skipped: never recorded
        assert run_inputs._skipped_when_unchanged(wh, fg)
        fresh = replace(fg, meta={**fg.meta, "expectations": {"freshness": "3650d"}})
        assert not run_inputs._skipped_when_unchanged(wh, fresh)

    # Each kind of change makes the next run build; undoing it makes it skip again.
    extra = "raw_in.extra"
    sql(d, f"insert into {extra} values (3, 2.5)")  # a source table written by hand
    assert decision(d) is None
    sql(d, f"delete from {extra} where id = 3")
    assert decision(d) is not None
    fg_rel = FeatureStore(d).catalog.fg(FG).relation
    sql(d, f"update {fg_rel} set value = value + 1 where item_id = 1")  # a candidate edited by hand
    assert decision(d) is None
    sql(d, f"update {fg_rel} set value = value - 1 where item_id = 1")
    assert decision(d) is not None
    snap = FeatureStore(d).catalog.fg(FG).snapshot_relation
    sql(d, f"update {snap} set contact = 'edited' where item_id = 2")  # the published history (plain SQL)
    assert decision(d) is None
    sql(d, f"update {snap} set contact = 'beta' where item_id = 2")
    assert decision(d) is not None
    seed = d / "seeds" / "test_contacts.csv"
    st = seed.stat()
    os.utime(seed, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a project file touched (not even edited)
    assert decision(d) is None
    os.utime(seed, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert decision(d) is not None
    assert decision(d, vars={"some_var": 1}) is None  # other vars
    log = PushLog(push_dir_for(FeatureStore(d).project.state_dir))
    log.append(FG, [{"id": "p1", "pushed_at": "2026-01-03T00:00:00", "row": {}}])  # a push waiting to be published
    assert decision(d) is None
    log.path(FG).unlink()
    assert decision(d) is not None

    # Nothing changed: dbt is not started, every group is reported unchanged, nothing is audited or published.
    before = len(dbt_calls)
    res = CliRunner().invoke(main, ["--project-dir", str(d), "run", "--no-materialize", "--json"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert len(dbt_calls) == before
    assert '"nothing_changed_since": {' in res.stdout and '"status": "ok"' in res.stdout
    res = CliRunner().invoke(main, ["--project-dir", str(d), "run", "--no-materialize"], catch_exceptions=False)
    assert res.exit_code == 0 and "nothing changed since the run of" in res.stdout
    assert len(dbt_calls) == before
    assert published(d) == rows_in_file(d)

    # A source row and a seed change: built, the seed's change published, the source's row in the staging model.
    sql(d, f"insert into {extra} values (3, 2.5)")
    write_rows(d, CHANGED)
    report, audit = run(d)
    assert report.unchanged_since is None and report.outcomes[FG].commit.commit_id == 2
    assert published(d) == rows_in_file(d)
    assert built_extra(d) == [(1, 0.5), (2, 1.5), (3, 2.5)]
    assert decision(d) is not None

    # --rebuild runs dbt even so; the candidate is then skipped by the audit (fs_cli/unchanged.py), not published.
    before = len(dbt_calls)
    report, audit = run(d, rebuild=True)
    assert len(dbt_calls) > before and report.unchanged_since is None
    assert audit == "unchanged since commit 2" and report.outcomes[FG].commit is None and report.ok

    # A blocked run is not recorded: the next run builds (and blocks) again, commit 2 stays published.
    write_rows(d, BAD)
    report, audit = run(d)
    assert not report.ok and audit == "fail" and decision(d) is None
    before = len(dbt_calls)
    report, audit = run(d)
    assert not report.ok and audit == "fail" and len(dbt_calls) > before
    assert published(d) == sorted((i, v, c) for i, _, v, c in CHANGED)


WH = {dialect: SimpleNamespace(SQL_DIALECT=dialect) for dialect in ("duckdb", "postgres", "spark")}


def _node(uid: str, code: str, kind: str = "model") -> SimpleNamespace:
    return SimpleNamespace(node=SimpleNamespace(unique_id=uid, resource_type=kind, compiled_code=code,
                                                raw_code=code, name=uid.rsplit(".", 1)[-1]))


@pytest.mark.parametrize("dialect", sorted(WH))
@pytest.mark.parametrize(("code", "verdict"), [
    ("select a from main.t", None),
    ("with x as (select a from main.t) select a from x join main.u using (a)", None),
    ("select a, generate_series as g from main.t, generate_series(1, 3)", None),
    ("select a from main.other", "reads main.other"),
    ("select a from read_parquet('f.parquet')", "table function"),
    ("select a, current_timestamp as t from main.t", "calls"),
    ("select a, now() as t from main.t", "calls"),
    ("select a, random() as r from main.t", "calls"),
])
def test_compiled_reads_outside_the_record_or_of_the_clock_make_a_run_ineligible(dialect, code, verdict):
    if dialect == "spark" and "read_parquet" in code:
        code = "select a from parquet.`f.parquet`"  # Spark's way of reading a file in place
    if dialect != "duckdb" and "generate_series" in code:
        code = "select a from main.t" if dialect == "spark" else code
    why = run_inputs._volatile_or_unknown_reads(WH[dialect], SimpleNamespace(macros={}), [_node("model.p.m", code)],
                                               {'"main"."t"', "`main`.`u`", "main.u"})
    if verdict is None:
        assert why is None
    else:
        assert why is not None and (verdict in why or (dialect == "spark" and "reads parquet" in why)), why


def test_jinja_reading_the_run_clock_through_a_dispatched_macro_makes_a_run_ineligible():
    macros = {
        "macro.p.fs_stamp": SimpleNamespace(name="fs_stamp", macro_sql="{{ adapter.dispatch('fs_stamp')() }}"),
        "macro.p.default__fs_stamp": SimpleNamespace(name="default__fs_stamp",
                                                     macro_sql="'{{ run_started_at }}'"),
        "macro.p.fs_pure": SimpleNamespace(name="fs_pure", macro_sql="{{ modules.re.match('a', 'a') }} 1"),
    }
    model = SimpleNamespace(unique_id="model.p.m", raw_code="select {{ fs_pure() }} as a")
    assert run_inputs._volatile_jinja(SimpleNamespace(macros=macros), [model]) is None
    model = SimpleNamespace(unique_id="model.p.m", raw_code="select {{ fs_stamp() }} as a")
    assert "run_started_at" in run_inputs._volatile_jinja(SimpleNamespace(macros=macros), [model])


def test_content_tokens_in_one_statement_equal_one_per_relation(project_copy, engine):
    d = project_copy("tokens", with_seeds=False, engine=engine)
    with FeatureStore(d).project.warehouse() as wh:
        wh.ensure_schema("tok")
        a, b, empty = (wh.relation("tok", n) for n in ("a", "b", "empty"))
        wh.execute(f"create table {a} (k {wh.type('bigint')}, v {wh.type('text')})")
        wh.execute(f"insert into {a} values (1, 'x'), (2, null), (2, null)")
        wh.execute(f"create table {b} (t {wh.type('timestamp')})")
        wh.execute(f"insert into {b} values (cast('2026-01-01 00:00:00' as timestamp))")
        wh.execute(f"create table {empty} (k {wh.type('bigint')})")
        together = wh.content_tokens([a, b, empty])
        assert together == {r: wh.content_token(r) for r in (a, b, empty)}
        assert together[a].startswith("3:") and together[empty] == "0:None" and together[a] != together[b]
        missing = wh.relation("tok", "missing")
        assert run_inputs.tokens(wh, [a, missing]) == {a: together[a], missing: None}  # the one unreadable is named
