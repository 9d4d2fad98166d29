"""A candidate equal to its validated published version is neither audited nor published again (fs_cli/unchanged.py);
anything else goes through the gate and the snapshot as before. The oracle is the seed file: after every run the
published rows are the file's rows, and the gate ran exactly when the rules say it must."""

from __future__ import annotations

from pathlib import Path

from test_withhold_unvalidated import FG, make_project, rows_in_file, write_rows

from fs_cli import FeatureStore

ROWS = [(1, "2026-01-01 00:00:00", 1.25, "alpha"), (2, "2026-01-01 00:00:00", 2.5, "beta")]
CHANGED = [(1, "2026-01-02 00:00:00", 1.75, "gamma"), (2, "2026-01-01 00:00:00", 2.5, "beta")]
BAD = [(1, "2026-01-02 00:00:00", 1.75, "jane.doe@example.com"), (2, "2026-01-01 00:00:00", 2.5, "beta")]


def run(d: Path) -> tuple[str, int | None, bool]:
    """`fs run` as a new command: (what the audit said of the group, its new commit or None, whether it ran ok)."""
    messages: list[str] = []
    report = FeatureStore(d).run(materialize=False, progress=lambda message, done: messages.append(message))
    audit = [m.split(f"audit: {FG} ", 1)[1] for m in messages if m.startswith(f"audit: {FG} ")]
    commit = report.outcomes[FG].commit
    return (audit[-1] if audit else ""), (commit.commit_id if commit else None), report.ok


def published(d: Path) -> list[tuple]:
    df = FeatureStore(d).read(FG)
    return sorted((int(r.item_id), float(r.value), r.contact) for r in df.itertuples())



def gate_runs(d: Path) -> int:
    with FeatureStore(d).project.warehouse() as wh:
        return int(wh.scalar("select count(distinct candidate_id) from fs_meta.validation_results where feature_group = ?",
                             [FG]))


def test_only_a_validated_unchanged_candidate_skips_the_gate_and_the_snapshot(project_copy, engine):
    d = make_project(project_copy, engine)
    write_rows(d, ROWS)
    assert run(d) == ("pass", 1, True)
    runs = gate_runs(d)

    assert run(d) == ("unchanged since commit 1", None, True)  # nothing new: no audit, no publish
    assert gate_runs(d) == runs and published(d) == rows_in_file(d)

    write_rows(d, BAD)  # a change is audited: the strict group blocks it, commit 1 stays published
    audit, commit, ok = run(d)
    assert (audit, commit, ok) == ("fail", None, False)
    assert published(d) == sorted((i, v, c) for i, _, v, c in ROWS)

    write_rows(d, CHANGED)  # a good change: audited and published
    assert run(d) == ("pass", 2, True)
    assert run(d) == ("unchanged since commit 2", None, True)
    assert published(d) == rows_in_file(d)

    # A freshness expectation depends on the clock: audited on every run, even with the same rows (here it fails,
    # the rows being from January, and says so every time).
    yml = d / "models" / "feature_groups" / "_test_contacts.yml"
    yml.write_text(yml.read_text().replace("          policy: strict\n",
                                           "          policy: strict\n          expectations: {freshness: 1d}\n"))
    audit, commit, ok = run(d)
    assert (audit, commit, ok) == ("fail", None, False)
    assert published(d) == rows_in_file(d)
