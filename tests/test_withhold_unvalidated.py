"""Issue 17 item 2: what plain `dbt build` publishes without `fs run`'s gate (no PII, future-time or drift check) is
marked by `fs commits` and withheld from serving on a strict group until `fs run` validates it (or
`fs materialize --allow-unvalidated` serves it, recorded); a warn group is served with a warning."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import drop_demo_models, preparsed

from fs_cli import FeatureStore
from fs_cli.cli import main
from fs_cli.online.backends import open_store
from fs_cli.online.reader import RequestError

FG = "fg_test_contacts"
FG_YAML = """
version: 2
models:
  - name: fg_test_contacts
    description: Items with a free-text contact note, for the serving-validation tests.
    config:
      meta:
        fs:
          entities: [item]
          event_time: event_time
          online: true
          ttl: 3650d
          owner: tests
          tags: [test]
          policy: POLICY
    columns:
      - {name: item_id, data_type: bigint, description: the item}
      - {name: event_time, data_type: timestamp, description: when}
      - {name: value, data_type: double, description: a value}
      - {name: contact, data_type: varchar, description: a free-text note}
"""
SNAPSHOT_YAML = """
snapshots:
  - name: fg_test_contacts_snapshot
    relation: ref('fg_test_contacts')
    config:
      unique_key: [item_id, event_time]
      strategy: check
      check_cols: all
      hard_deletes: new_record
"""
EMAIL = "jane.doe@example.com"
CLEAN = [(1, "2026-01-01 00:00:00", 1.0, "alpha"), (2, "2026-01-01 00:00:00", 2.0, "beta")]
WITH_EMAIL = [(1, "2026-01-02 00:00:00", 1.5, EMAIL), (2, "2026-01-01 00:00:00", 2.0, "beta")]
FIXED = [(1, "2026-01-02 00:00:00", 1.5, "gamma"), (2, "2026-01-01 00:00:00", 2.0, "beta")]


def make_project(project_copy, engine: str, policy: str = "strict") -> Path:
    d = drop_demo_models(project_copy("contacts", with_seeds=False, engine=engine))
    (d / "models" / "feature_groups" / f"{FG}.sql").write_text(
        "select cast(item_id as bigint) as item_id, cast(event_time as timestamp) as event_time,"
        " cast(value as double precision) as value, cast(contact as varchar) as contact"
        " from {{ ref('test_contacts') }}\n")
    (d / "models" / "feature_groups" / "_test_contacts.yml").write_text(FG_YAML.replace("POLICY", policy))
    (d / "snapshots" / "test_contacts.yml").write_text(SNAPSHOT_YAML)
    text = (d / "dbt_project.yml").read_text()
    (d / "dbt_project.yml").write_text(text.replace(
        "  fs_entities:\n", "  fs_entities:\n    item:\n      join_keys: [item_id]\n"))
    return preparsed(d)


def write_rows(d: Path, rows: list[tuple]) -> None:
    lines = ["item_id,event_time,value,contact"] + [",".join(str(x) for x in r) for r in rows]
    (d / "seeds" / "test_contacts.csv").write_text("\n".join(lines) + "\n")


def rows_in_file(d: Path) -> list[tuple]:
    """(item_id, value, contact) of the seed file, read with the csv module: an oracle independent of dbt."""
    with (d / "seeds" / "test_contacts.csv").open() as f:
        return sorted((int(r["item_id"]), float(r["value"]), r["contact"]) for r in csv.DictReader(f))


def fs_cli(d: Path, *args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["--project-dir", str(d), *args], catch_exceptions=False)
    return res.exit_code, res.stdout


def served(d: Path, item_id: int) -> tuple:
    """(contact, status) the online store answers for one item (a fresh reader: what a lookup sees now)."""
    answer = FeatureStore(d).get_online_features([f"{FG}:contact"], {"item_id": [item_id]})
    names = answer["metadata"]["feature_names"]
    col = answer["results"][names.index("contact")]
    return col["values"][0], col["statuses"][0]


def commits(d: Path) -> list[tuple]:
    code, out = fs_cli(d, "commits", FG, "--json")
    assert code == 0, out
    return [(c["commit_id"], c["validation"]) for c in json.loads(out)]


def materialize(d: Path, *args: str) -> dict:
    code, out = fs_cli(d, "materialize", *args, "--json")
    assert code == 0, out
    return json.loads(out)


@pytest.fixture
def strict(project_copy, engine: str) -> Path:
    return make_project(project_copy, engine)


def test_plain_dbt_email_is_marked_withheld_then_served_once_fs_run_validates(strict: Path):
    d = strict
    write_rows(d, CLEAN)
    assert FeatureStore(d).run().ok  # commit 1 through the gate, materialized
    assert served(d, 1) == ("alpha", "PRESENT")

    write_rows(d, WITH_EMAIL)
    assert FeatureStore(d).project.dbt(["build", "--quiet"]).success  # fs_expectations pass: no PII test in dbt
    assert commits(d) == [(1, "passed"), (2, "none")]  # marked

    report = materialize(d)
    assert report["results"] == []  # nothing written for the group
    [warning] = [w for w in report["warnings"] if w.startswith(FG)]
    assert f"{FG}: withheld from serving: no passing validation run covers commit 2 of this strict group" in warning
    assert "keeps serving its previous version" in warning
    assert f"fs run --select {FG}" in warning and f"--allow-unvalidated {FG}" in warning
    assert served(d, 1) == ("alpha", "PRESENT")  # the validated commit 1 keeps serving, not the e-mail
    code, table = fs_cli(d, "materialize")
    assert code == 0 and "no passing validation run covers commit 2" in " ".join(table.split())  # the table view says it too

    # serving it anyway is a deliberate, recorded choice
    report = materialize(d, "--allow-unvalidated")
    assert [r["feature_group"] for r in report["results"]] == [FG]
    assert any("served although no passing validation run covers commit 2" in w and "--allow-unvalidated" in w
               for w in report["warnings"])
    assert served(d, 1) == (EMAIL, "PRESENT")
    store = open_store(FeatureStore(d).online_store_url())
    try:
        recorded = store.pointers()[FG].meta["note"]["unvalidated"]
    finally:
        store.close()
    assert recorded["commits"] == [2] and recorded["allowed"] is True and recorded["policy"] == "strict"

    # `fs run` refuses the e-mail (strict gate): no commit, so nothing changes
    blocked = FeatureStore(d).run()
    assert not blocked.ok and not blocked.outcomes[FG].published
    assert any("pii" in f for f in blocked.outcomes[FG].failures), blocked.to_dict()
    assert commits(d) == [(1, "passed"), (2, "none")]
    # the fixed data goes through the gate: a validated commit, served by the run's own materialization
    write_rows(d, FIXED)
    fixed = FeatureStore(d).run()
    assert fixed.ok and fixed.outcomes[FG].commit.commit_id == 3, fixed.to_dict()
    assert commits(d) == [(1, "passed"), (2, "none"), (3, "passed")]
    assert served(d, 1) == ("gamma", "PRESENT")
    report = materialize(d, "--full")
    assert [r["feature_group"] for r in report["results"]] == [FG]
    assert not [w for w in report["warnings"] if FG in w]
    assert served(d, 1) == ("gamma", "PRESENT")


def test_fs_run_on_the_same_rows_validates_the_plain_dbt_commit(strict: Path):
    """Plain dbt published clean rows first: nothing is served until `fs run` audits them; its snapshot changes
    nothing, so the passing run is linked to the commit that holds those rows, which is then served."""
    d = strict
    write_rows(d, CLEAN)
    assert FeatureStore(d).project.dbt(["build", "--quiet"]).success
    report = materialize(d)
    assert report["results"] == []
    assert any(w.startswith(f"{FG}: withheld from serving: no passing validation run covers commit 1 ")
               and "keeps serving nothing" in w for w in report["warnings"]), report
    with pytest.raises(RequestError, match="none materialized"):  # nothing of the group is served at all
        served(d, 1)

    run = FeatureStore(d).run()
    assert run.ok and run.outcomes[FG].commit is None, run.to_dict()  # no new commit: the same rows
    assert commits(d) == [(1, "passed")]
    assert served(d, 1) == ("alpha", "PRESENT")  # the run's own materialization serves it now


def test_a_warn_group_is_served_with_a_warning(project_copy, engine: str):
    d = make_project(project_copy, engine, policy="warn")
    write_rows(d, WITH_EMAIL)
    assert FeatureStore(d).project.dbt(["build", "--quiet"]).success
    report = materialize(d)
    assert [r["feature_group"] for r in report["results"]] == [FG]
    assert any(w == f"{FG}: served although no passing validation run covers commit 1 (policy warn)"
               for w in report["warnings"]), report
    assert served(d, 1) == (EMAIL, "PRESENT")
