"""Nothing changed costs less, any change is still audited and published. Two mechanisms, proved by one sequence of
`fs run`s per engine (each run costs seconds; the two mechanisms were tested by two sequences of the same runs):

- a candidate equal to its validated published version is neither audited nor published again (fs_cli/unchanged.py);
  anything else goes through the gate and the snapshot as before;
- `fs run` loads a seed again only when its file, its configuration or its table changed (fs_cli/seed_reuse.py):
  what dbt would have loaded is in the table after every run, whichever way it got there.

The oracle is the seed file, read with the csv module: after every run the seed table and the published rows are the
file's rows, and the gate ran exactly when the rules say it must."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from test_withhold_unvalidated import FG, make_project, rows_in_file, write_rows

from fs_cli import FeatureStore

SEED = "test_contacts"
ROWS = [(1, "2026-01-01 00:00:00", 1.25, "alpha"), (2, "2026-01-01 00:00:00", 2.5, "beta")]
# (decimals in both: dbt keeps a seed table's inferred column types across loads)
CHANGED = [(1, "2026-01-02 00:00:00", 1.75, "gamma"), (2, "2026-01-01 00:00:00", 2.5, "beta")]
BAD = [(1, "2026-01-02 00:00:00", 1.75, "jane.doe@example.com"), (2, "2026-01-01 00:00:00", 2.5, "beta")]


@dataclass(frozen=True)
class Run:
    audit: str  # what the audit said of the group ("" when it said nothing)
    commit: int | None  # the group's new commit
    ok: bool
    loaded: bool  # whether dbt loaded the seed


def run(d: Path) -> Run:
    """`fs run --rebuild` as a new command (a new store reads the project as it is now). --rebuild: dbt runs even when
    nothing changed since the last clean run (fs run's fast path, tests/test_run_fast_path.py, would otherwise skip
    dbt altogether), so the two mechanisms tested here are the ones deciding."""
    messages: list[str] = []
    report = FeatureStore(d).run(materialize=False, progress=lambda message, done: messages.append(message),
                                 rebuild=True)
    audit = [m.split(f"audit: {FG} ", 1)[1] for m in messages if m.startswith(f"audit: {FG} ")]
    commit = report.outcomes[FG].commit
    return Run(audit=audit[-1] if audit else "", commit=commit.commit_id if commit else None, ok=report.ok,
               loaded=any(m.startswith(f"build: {SEED} ") for m in messages))


def published(d: Path) -> list[tuple]:
    df = FeatureStore(d).read(FG)
    return sorted((int(r.item_id), float(r.value), r.contact) for r in df.itertuples())


def seed_table(d: Path) -> list[tuple]:
    with FeatureStore(d).project.warehouse() as wh:
        schema = next(s for s in wh.schemas() if s.endswith("_raw"))
        rows = wh.fetchall(f"select item_id, value, contact from {wh.relation(schema, SEED)} order by item_id")
    return [(int(i), float(v), c) for i, v, c in rows]


def gate_runs(d: Path) -> int:
    with FeatureStore(d).project.warehouse() as wh:
        return int(wh.scalar("select count(distinct candidate_id) from fs_meta.validation_results where feature_group = ?",
                             [FG]))


def test_unchanged_candidates_and_seeds_are_skipped_and_any_change_is_loaded_audited_and_published(project_copy,
                                                                                                    engine):
    d = make_project(project_copy, engine)
    write_rows(d, ROWS)
    assert run(d) == Run("pass", 1, ok=True, loaded=True)
    assert seed_table(d) == rows_in_file(d)
    runs = gate_runs(d)

    # nothing new: the seed is not loaded again, no audit, no publish
    assert run(d) == Run("unchanged since commit 1", None, ok=True, loaded=False)
    assert gate_runs(d) == runs and published(d) == rows_in_file(d)
    assert seed_table(d) == rows_in_file(d)

    write_rows(d, BAD)  # a changed file is loaded; the change is audited: the strict group blocks it
    assert run(d) == Run("fail", None, ok=False, loaded=True)
    assert seed_table(d) == rows_in_file(d)
    assert published(d) == sorted((i, v, c) for i, _, v, c in ROWS)  # commit 1 stays published

    write_rows(d, CHANGED)  # a good change: loaded, audited and published
    assert run(d) == Run("pass", 2, ok=True, loaded=True)
    assert seed_table(d) == rows_in_file(d)
    unchanged = run(d)
    assert (unchanged.audit, unchanged.commit, unchanged.ok, unchanged.loaded) == (
        "unchanged since commit 2", None, True, False)
    assert published(d) == rows_in_file(d)

    with FeatureStore(d).project.warehouse(read_only=False) as wh:  # someone edits the loaded table by hand
        schema = next(s for s in wh.schemas() if s.endswith("_raw"))
        wh.execute(f"update {wh.relation(schema, SEED)} set value = 99 where item_id = 2")
    again = run(d)  # reloaded from the file, as dbt build would: the candidate is unchanged
    assert (again.loaded, again.commit, again.ok) == (True, None, True)
    assert seed_table(d) == rows_in_file(d)

    (d / "seeds" / "_test_seeds.yml").write_text(  # another load configuration, same file
        f"version: 2\nseeds:\n  - name: {SEED}\n    config:\n      column_types: {{item_id: bigint}}\n")
    again = run(d)
    assert (again.loaded, again.commit, again.ok) == (True, None, True)
    again = run(d)
    assert not again.loaded and again.ok

    # A freshness expectation depends on the clock: audited on every run, even with the same rows (here it fails,
    # the rows being from January, and says so every time).
    yml = d / "models" / "feature_groups" / "_test_contacts.yml"
    yml.write_text(yml.read_text().replace("          policy: strict\n",
                                           "          policy: strict\n          expectations: {freshness: 1d}\n"))
    fresh = run(d)
    assert (fresh.audit, fresh.commit, fresh.ok, fresh.loaded) == ("fail", None, False, False)
    assert published(d) == rows_in_file(d)
