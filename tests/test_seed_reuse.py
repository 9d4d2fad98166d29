"""`fs run` loads a seed again only when its file, its configuration or its table changed (fs_cli/seed_reuse.py):
what dbt would have loaded is in the table after every run, whichever way it got there. The oracle is the CSV file
itself, read with the csv module, against the seed table read back from the warehouse."""

from __future__ import annotations

from pathlib import Path

from test_withhold_unvalidated import make_project, rows_in_file, write_rows

from fs_cli import FeatureStore

SEED = "test_contacts"
ROWS = [(1, "2026-01-01 00:00:00", 1.25, "alpha"), (2, "2026-01-01 00:00:00", 2.5, "beta")]
CHANGED = [(1, "2026-01-02 00:00:00", 1.75, "gamma"), (2, "2026-01-01 00:00:00", 2.5, "beta")]  # (decimals in both: dbt keeps a seed table's inferred column types across loads)


def run(d: Path) -> tuple[bool, int | None]:
    """`fs run` as a new command (a new store reads the project as it is now); (whether dbt loaded the seed, the
    feature group's new commit or None)."""
    messages: list[str] = []
    report = FeatureStore(d).run(materialize=False, progress=lambda message, done: messages.append(message))
    assert report.ok, report.to_dict()
    commit = report.outcomes["fg_test_contacts"].commit
    return any(m.startswith(f"build: {SEED} ") for m in messages), commit.commit_id if commit else None


def seed_table(fs: FeatureStore) -> list[tuple]:
    with fs.project.warehouse() as wh:
        schema = next(s for s in wh.schemas() if s.endswith("_raw"))
        rows = wh.fetchall(f"select item_id, value, contact from {wh.relation(schema, SEED)} order by item_id")
    return [(int(i), float(v), c) for i, v, c in rows]



def test_a_seed_is_loaded_again_only_when_its_file_config_or_table_changed(project_copy, engine):
    d = make_project(project_copy, engine)
    write_rows(d, ROWS)
    fs = FeatureStore(d)

    loaded, commit = run(d)
    assert loaded and commit == 1
    assert seed_table(fs) == rows_in_file(d)

    loaded, commit = run(d)  # nothing changed: the seed is not loaded again, nothing is published
    assert (loaded, commit) == (False, None)
    assert seed_table(fs) == rows_in_file(d)

    write_rows(d, CHANGED)  # a changed file is loaded, and published
    loaded, commit = run(d)
    assert loaded and commit == 2
    assert seed_table(fs) == rows_in_file(d)

    with fs.project.warehouse(read_only=False) as wh:  # someone edits the loaded table by hand
        schema = next(s for s in wh.schemas() if s.endswith("_raw"))
        wh.execute(f"update {wh.relation(schema, SEED)} set value = 99 where item_id = 2")
    loaded, commit = run(d)  # reloaded from the file, as dbt build would: the candidate is unchanged
    assert (loaded, commit) == (True, None)
    assert seed_table(fs) == rows_in_file(d)

    (d / "seeds" / "_test_seeds.yml").write_text(  # another load configuration, same file
        f"version: 2\nseeds:\n  - name: {SEED}\n    config:\n      column_types: {{item_id: bigint}}\n")
    loaded, commit = run(d)
    assert (loaded, commit) == (True, None)
    loaded, _ = run(d)
    assert not loaded
