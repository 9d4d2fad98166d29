"""Read-only commands reuse the manifest dbt last wrote while the project is unchanged, and never a stale one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fs_cli import FeatureStore

PROBE = """
import json, sys
from fs_cli import FeatureStore
rows = FeatureStore(sys.argv[1]).list()
print(json.dumps({"dbt_imported": "dbt.cli.main" in sys.modules or "dbt.parser.manifest" in sys.modules,
                  "descriptions": {r["name"]: r["description"] for r in rows}}))
"""


def _probe(project: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, str(project)], capture_output=True, text=True, check=True,
                         timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def project(project_copy) -> Path:
    d = project_copy("cache")
    FeatureStore(d).list()  # the first command parses and records the fingerprint
    return d


def test_unchanged_project_lists_without_dbt(project):
    first = _probe(project)
    assert first["dbt_imported"] is False
    assert first["descriptions"]["fg_customer_profile"]


def test_an_edited_yaml_is_seen_by_the_next_command(project):
    yml = project / "models" / "feature_groups" / "_feature_groups.yml"
    text = yml.read_text()
    new_text = text.replace("name: fg_customer_profile\n    description: ",
                            "name: fg_customer_profile\n    description: EDITED ", 1)
    assert new_text != text
    yml.write_text(new_text)
    after = _probe(project)
    assert after["dbt_imported"] is True  # the change was detected: dbt parsed again
    assert after["descriptions"]["fg_customer_profile"].startswith("EDITED ")
    again = _probe(project)  # and the new parse is what the next command reuses
    assert again == {**after, "dbt_imported": False}


def test_another_target_or_vars_miss_the_cache(project, monkeypatch):
    from fs_cli import manifest_cache
    from fs_cli.project import Project

    assert manifest_cache.load(Project(project)) is not None
    assert manifest_cache.load(Project(project, vars={"demo_data_cutoff": "2026-01-02 00:00:00"})) is None
    monkeypatch.setenv("FS_SOMETHING_ELSE", "1")  # profile/env_var inputs are part of the fingerprint
    assert manifest_cache.load(Project(project)) is None


# -- fs and plain dbt share dbt's partial parsing -----------------------------------------------------------------
BIN = Path(sys.executable).parent


def _parse_log(project: Path, argv: list[str]) -> str:
    """What dbt logged about parsing while `argv` ran in the project directory (dbt's own log, <project>/logs/dbt.log,
    written by plain dbt and by fs's in-process dbt alike)."""
    log = project / "logs" / "dbt.log"
    start = log.stat().st_size if log.exists() else 0
    subprocess.run(argv, cwd=project, capture_output=True, text=True, check=True, timeout=600)
    with log.open("rb") as f:
        f.seek(start)
        return "\n".join(line for line in f.read().decode(errors="replace").splitlines() if "pars" in line.lower())


def test_plain_dbt_and_fs_do_not_invalidate_each_others_partial_parse(project_copy):
    d = project_copy("partial")
    fs, dbt = str(BIN / "fs"), str(BIN / "dbt")
    _parse_log(d, [fs, "list"])  # fs parses first (full parse) and writes target/partial_parse.msgpack

    after_fs = _parse_log(d, [dbt, "ls", "--quiet"])
    assert "Unable to do partial parsing" not in after_fs, after_fs
    assert "no changes found, skipping parsing" in after_fs, after_fs

    yml = d / "models" / "feature_groups" / "_feature_groups.yml"
    yml.write_text(yml.read_text().replace("name: fg_customer_profile\n    description: ",
                                           "name: fg_customer_profile\n    description: EDITED ", 1))
    dbt_parse = _parse_log(d, [dbt, "parse", "--quiet"])  # plain dbt re-parses one file, rewrites the msgpack
    assert "Unable to do partial parsing" not in dbt_parse and "1 files changed" in dbt_parse, dbt_parse

    after_dbt = _parse_log(d, [fs, "list"])
    assert "Unable to do partial parsing" not in after_dbt, after_dbt
    assert "no changes found, skipping parsing" in after_dbt, after_dbt


def test_fs_passes_target_only_where_plain_dbt_would_pick_another(project_copy, monkeypatch):
    """dbt hashes the --target it was given: fs gives none for the profile's own default, like plain `dbt`."""
    from fs_cli.project import Project

    monkeypatch.delenv("DBT_TARGET", raising=False)
    d = project_copy("target")
    assert "--target" not in Project(d)._base_args()
    assert "--target" not in Project(d, target="duckdb")._base_args()
    args = Project(d, target="postgres")._base_args()
    assert args[args.index("--target") + 1] == "postgres"


# -- what fs records after dbt wrote target/manifest.json from a manifest parsed earlier ---------------------------
def _edit_description(project: Path) -> None:
    yml = project / "models" / "feature_groups" / "_feature_groups.yml"
    yml.write_text(yml.read_text().replace("name: fg_customer_profile\n    description: ",
                                           "name: fg_customer_profile\n    description: EDITED ", 1))


def test_a_manifest_parsed_before_an_edit_is_never_recorded_as_current(project):
    """dbt writes target/manifest.json at the end of a run from the manifest fs parsed at the start: an edit made in
    between must not be vouched for by that write (the next command parses again and sees the edit)."""
    from fs_cli.project import Project

    p = Project(project)
    p._parsed_manifest()  # parsed now, before the edit
    _edit_description(project)
    # dbt rewrites target/manifest.json from the parse made before the edit
    assert p.dbt(["compile", "--quiet", "-s", "stg_customers", "--indirect-selection", "empty"]).success
    after = _probe(project)
    assert after["dbt_imported"] is True
    assert after["descriptions"]["fg_customer_profile"].startswith("EDITED ")


def test_dbt_calls_with_other_vars_keep_the_fast_path(project):
    """A training dataset or a demo cutoff runs dbt with extra vars on the manifest parsed without them: what dbt
    writes is that manifest, so the next plain command still reads it without dbt."""
    from fs_cli.project import Project

    other = Project(project).with_vars({"demo_data_cutoff": "2026-01-02 00:00:00"})
    assert other.dbt(["compile", "--quiet", "-s", "stg_customers", "--indirect-selection", "empty"]).success
    assert _probe(project)["dbt_imported"] is False


def test_plain_dbt_rewriting_the_manifest_keeps_the_fast_path_and_never_serves_a_stale_one(project):
    """fs reads its own copy of the manifest it recorded: `dbt ls --vars ...` rewriting target/manifest.json (a parse
    with other inputs) neither invalidates it nor is read in its place; an edited YAML is still seen."""
    dbt = str(Path(sys.executable).parent / "dbt")
    subprocess.run([dbt, "ls", "--quiet", "--vars", '{"demo_data_cutoff": "2026-01-02 00:00:00"}'], cwd=project,
                   capture_output=True, check=True, timeout=600)
    assert _probe(project)["dbt_imported"] is False
    _edit_description(project)
    subprocess.run([dbt, "parse", "--quiet"], cwd=project, capture_output=True, check=True, timeout=600)
    after = _probe(project)
    assert after["dbt_imported"] is True and after["descriptions"]["fg_customer_profile"].startswith("EDITED ")


def test_the_rendered_profile_of_other_vars_does_not_evict_the_projects_own(project):
    from fs_cli import manifest_cache
    from fs_cli.project import Project

    own = Project(project).target_config()
    Project(project, vars={"demo_data_cutoff": "2026-01-02 00:00:00"}).target_config()  # another key, stored too
    assert manifest_cache.cached_profile_value(Project(project), "target:duckdb") == own
    assert Project(project)._profile_default_target() == "duckdb"


def test_a_long_lived_store_sees_an_edit_made_after_it_read_the_project(project):
    """A notebook's FeatureStore (or a server's) outlives edits: its next call reads the project as it is now (before,
    it kept the manifest it read first, and a later `run` would have built the old declarations)."""
    fs = FeatureStore(project)
    assert not fs.describe("fg_customer_profile")["description"].startswith("EDITED ")
    _edit_description(project)
    assert fs.describe("fg_customer_profile")["description"].startswith("EDITED ")
    with fs.project.reading():  # inside a read block the project is read once, as it was when the block began
        before = fs.catalog
        (project / "models" / "feature_groups" / "_feature_groups.yml").touch()
        assert fs.catalog is before
