"""What `fs` says (issue 16, items 10, 12, 13, 14): progress lines outside a terminal with totals, a log file,
--verbose, documented exit codes, a locked warehouse as one line naming its holder, declaration errors that point
at the right fix and do not hide the valid groups, `fs validate FV` right after a publish, dbt tags.

One project copy is published once by `fs run` in a child process (stderr a pipe, as in CI); the other tests read
it, or a copy of it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import REPO, copy_project

from fs_cli.cli import main

FS = [sys.executable, "-m", "fs_cli"]
PROGRESS = re.compile(r"^fs run +[\d.]+s \[(\d+)/(\d+)\] (build|audit|publish): (\S+) (\w+)$")


def fs_proc(project: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*FS, "--project-dir", str(project), *args], capture_output=True, text=True,
                          timeout=timeout)


def invoke(project: Path, *args: str):
    return CliRunner().invoke(main, ["--project-dir", str(project), *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> dict:
    """A project copy after one `fs run --log-file` in a child process whose stderr is a pipe (not a terminal):
    every stderr line, whether the child was still running when it arrived, the exit code and the log file."""
    d = copy_project(tmp_path_factory.mktemp("messages") / "proj")
    log_file = d.parent / "fs.log"
    proc = subprocess.Popen([*FS, "--project-dir", str(d), "--log-file", str(log_file), "run"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[tuple[str, bool]] = []  # (line, the run was still going when it arrived)
    try:
        for line in proc.stderr:
            lines.append((line.rstrip("\n"), proc.poll() is None))
        stdout = proc.stdout.read()
        code = proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return {"dir": d, "stderr": lines, "stdout": stdout, "code": code, "log": log_file}


# -- item 14: progress outside a terminal, totals, log file ------------------------------------------------------
def test_run_outside_a_terminal_prints_progress_lines_as_it_goes_with_totals(published):
    assert published["code"] == 0, published
    progress = [(PROGRESS.match(line), live) for line, live in published["stderr"]]
    progress = [(m, live) for m, live in progress if m]
    assert len(progress) >= 10, published["stderr"]
    assert progress[0][1], "the first progress line arrived only after the run had finished"
    by_phase: dict[str, list[tuple[int, int]]] = {}
    for m, _ in progress:
        by_phase.setdefault(m.group(3), []).append((int(m.group(1)), int(m.group(2))))
    assert set(by_phase) == {"build", "audit", "publish"}, by_phase
    for phase, counts in by_phase.items():
        totals = {t for _, t in counts}
        assert len(totals) == 1 and totals.pop() > 0, (phase, counts)  # one total per phase, never "0 nodes"
        done = [n for n, _ in counts]
        assert done == list(range(1, len(done) + 1)) and done[-1] == counts[-1][1], (phase, counts)
    # the demo's three groups are audited and published
    assert by_phase["audit"][-1][1] == 3 and by_phase["publish"][-1][1] == 3
    assert "fs run" in published["stdout"]  # the report table still goes to stdout


def test_log_file_records_the_command_and_its_progress(published):
    log = published["log"].read_text().splitlines()
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO fs .*--log-file .* run$", log[0]), log[:2]
    logged = [ln for ln in log if "publish: fg_customer_profile_snapshot success" in ln]
    assert len(logged) == 1, log
    outcomes = [ln for ln in log if re.search(r"INFO fs run: fg_\w+ ok \(policy \w+\): commit 1 \(\+\d+ ~0 -0", ln)]
    assert len(outcomes) == 3, log


# -- item 10: a locked warehouse ---------------------------------------------------------------------------------
HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])  # read-write: the lock a BI client with write access holds
print("holding", flush=True)
time.sleep(600)
"""


def test_a_locked_warehouse_is_one_clear_line_naming_the_holder(published, monkeypatch):
    d = published["dir"]
    monkeypatch.setenv("FS_LOCK_TIMEOUT", "0")  # fail at once (waiting is tests/test_writer_lock.py's)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(d / ".fs" / "feature_store.duckdb")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"  # blocks until the lock is taken (or the child dies)
        res = fs_proc(d, "run")
    finally:
        holder.terminate()
        holder.wait(timeout=60)
    out = res.stdout + res.stderr
    assert res.returncode == 2, out
    assert "Traceback" not in out and len(out.strip().splitlines()) <= 3, out
    assert f"is locked by another process: PID {holder.pid}" in res.stderr, out
    assert res.stderr.startswith("error: the warehouse ") and "fix: close that process" in res.stderr, out


# -- item 14: --verbose, exit codes --------------------------------------------------------------------------------
def test_verbose_shows_the_traceback_behind_an_error_and_plain_does_not(published):
    plain = invoke(published["dir"], "describe", "fg_nope")
    assert plain.exit_code == 2 and "unknown feature group 'fg_nope'" in plain.stderr
    assert "Traceback" not in plain.stderr
    verbose = invoke(published["dir"], "--verbose", "describe", "fg_nope")
    assert verbose.exit_code == 2 and "unknown feature group 'fg_nope'" in verbose.stderr
    assert "Traceback" in verbose.stderr and "FeatureStoreError" in verbose.stderr


def test_an_unexpected_exception_is_exit_3_with_its_traceback():
    @click.command("boom-test")
    def boom() -> None:
        raise ZeroDivisionError("a bug")

    main.add_command(boom)
    try:
        res = CliRunner().invoke(main, ["boom-test"], catch_exceptions=False)
    finally:
        main.commands.pop("boom-test")
    assert res.exit_code == 3, res.output
    assert "Traceback" in res.stderr and "ZeroDivisionError: a bug" in res.stderr and "bug in fs" in res.stderr


def _documented_codes(text: str) -> dict[int, str]:
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^\s*\|?\s*(\d+)\s+\|?\s*(\S.*)$", text, re.M)}


def test_exit_codes_are_documented_in_help_and_readme_as_the_code_uses_them():
    from fs_cli import errors

    code_values = {errors.EXIT_OK, errors.EXIT_FAILED, errors.EXIT_USAGE, errors.EXIT_INTERNAL,
                   errors.EXIT_INTERRUPTED}
    help_text = CliRunner().invoke(main, ["--help"]).stdout
    section = help_text[help_text.index("Exit codes:"):]
    assert set(_documented_codes(section)) == code_values, section
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("### Exit codes"):]
    table = table[:table.index("\n\n", table.index("|---"))]
    assert set(_documented_codes(table)) == code_values, table
    assert "--verbose" in readme and "--log-file" in readme


def test_a_usage_error_exits_2():
    res = CliRunner().invoke(main, ["list", "--no-such-option"])
    assert res.exit_code == 2


# -- item 13: fs validate FV after a publish; the --as-of example ------------------------------------------------
def test_validate_a_feature_view_right_after_a_publish_builds_it(published, tmp_path):
    d = tmp_path / "proj"
    shutil.copytree(published["dir"], d)  # the view is not built: `fs run` publishes groups, not views
    res = invoke(d, "validate", "fv_fraud_detection", "--json")
    assert res.exit_code in (0, 1), res.output  # a verdict on the data, not "has not been built"
    report = json.loads(res.stdout)
    assert report["feature_group"] == "fv_fraud_detection" and report["results"], report
    import duckdb

    con = duckdb.connect(str(d / ".fs" / "feature_store.duckdb"), read_only=True)
    try:
        n = con.execute("select count(*) from information_schema.tables where table_name = 'fv_fraud_detection'")
        assert n.fetchone()[0] == 1
    finally:
        con.close()


def test_training_dataset_help_shows_a_commit_time_as_the_as_of_example():
    text = CliRunner().invoke(main, ["training-dataset", "--help"]).stdout
    example = [ln for ln in text.splitlines() if "--as-of" in ln]
    assert example and "2026-01-15" not in text, text  # the demo's data cutoff is not a commit time
    assert "fs commits" in text and "commit time" in text


# -- item 14: meta.fs tags are dbt tags ----------------------------------------------------------------------------
def test_feature_group_tags_are_dbt_tags(published):
    from fs_cli import FeatureStore

    d = published["dir"]
    dbt = Path(sys.executable).parent / "dbt"  # plain dbt, as a user types it
    res = subprocess.run([str(dbt), "ls", "--quiet", "--select", "tag:fraud", "--resource-type", "model", "--output",
                          "name", "--project-dir", str(d), "--profiles-dir", str(d)],
                         capture_output=True, text=True, timeout=600, cwd=d)
    assert res.returncode == 0, res.stdout + res.stderr
    assert sorted(res.stdout.split()) == ["fg_customer_transactions", "fg_merchant_activity"], res.stdout
    fs = FeatureStore(d)
    tagged = {fg.name for fg in fs.catalog.feature_groups.values() if "fraud" in fg.tags}
    assert tagged == {"fg_customer_transactions", "fg_merchant_activity"}
    assert fs.describe("fg_customer_profile")["tags"] == ["profile", "state"]


# -- item 12: declaration errors -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def broken(published, tmp_path_factory) -> Path:
    """The published project with two broken declarations: a typo in fg_customer_profile's event_time, and no
    entities on fg_merchant_activity."""
    d = tmp_path_factory.mktemp("broken") / "proj"
    shutil.copytree(published["dir"], d)
    yml = d / "models" / "feature_groups" / "_feature_groups.yml"
    text = yml.read_text()
    assert text.count("event_time: profile_updated_at") == 1 and text.count("entities: [merchant]") == 1
    text = text.replace("event_time: profile_updated_at", "event_time: profile_updated_att")
    yml.write_text(text.replace("          entities: [merchant]\n", ""))
    return d


def test_one_broken_group_does_not_hide_the_others(broken):
    res = invoke(broken, "describe", "fg_customer_transactions", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["commits"] >= 1
    res = invoke(broken, "read", "fg_customer_transactions", "--limit", "2", "--json")
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)) == 2
    res = invoke(broken, "commits", "fg_customer_transactions", "--json")
    assert res.exit_code == 0 and len(json.loads(res.stdout)) >= 1, res.output
    listed = invoke(broken, "list", "--json")
    assert listed.exit_code == 0, listed.output
    kinds = {r["name"]: r["kind"] for r in json.loads(listed.stdout)}
    assert kinds["fg_customer_transactions"] == "feature_group"
    assert kinds["fg_customer_profile"] == kinds["fg_merchant_activity"] == "invalid"
    assert kinds["fv_fraud_detection"] == "invalid"  # it reads the broken groups


def test_the_broken_group_is_reported_and_publishing_stays_strict(broken):
    res = invoke(broken, "describe", "fg_customer_profile")
    assert res.exit_code == 2, res.output
    assert "config.meta.fs.event_time names column 'profile_updated_att'" in res.stderr, res.stderr
    assert "fix: did you mean profile_updated_at?" in res.stderr, res.stderr
    # the typo is reported on its field; no fix elsewhere copies it (e.g. into the snapshot's unique_key)
    assert [ln for ln in res.stderr.splitlines() if "profile_updated_att" in ln] == [
        ln for ln in res.stderr.splitlines() if "event_time names column 'profile_updated_att'" in ln], res.stderr
    assert "unique_key" not in res.stderr, res.stderr
    res = invoke(broken, "run")
    assert res.exit_code == 2 and "fg_customer_profile" in res.stderr and "fg_merchant_activity" in res.stderr


def test_a_missing_entity_gets_a_real_example(broken):
    res = invoke(broken, "describe", "fg_merchant_activity")
    assert res.exit_code == 2, res.output
    assert "config.meta.fs.entities is missing" in res.stderr, res.stderr
    assert "e.g. `entities: [merchant]`" in res.stderr, res.stderr  # the entity whose key the model has


def test_project_level_declaration_problems_still_fail_every_command(broken, tmp_path):
    d = tmp_path / "proj"
    shutil.copytree(broken, d)
    proj = d / "dbt_project.yml"
    proj.write_text(proj.read_text().replace("join_keys: [merchant_id]", "join_keys: []"))
    assert "join_keys: []" in proj.read_text()
    res = invoke(d, "describe", "fg_customer_transactions")
    assert res.exit_code == 2 and "vars.fs_entities.merchant" in res.stderr, res.output



def test_an_error_after_dbt_was_imported_is_printed_once(tmp_path):
    """dbt puts a handler on the root logger once imported; fs's own log records must not reach it (they did, and
    every error after a dbt call was printed twice)."""
    d = copy_project(tmp_path / "proj")
    (d / "models" / "broken.yml").write_text("models: [\n")  # dbt's parse fails: the error comes after dbt ran
    res = fs_proc(d, "list")
    assert res.returncode == 2
    assert len(re.findall(r"(?m)^error: dbt could not parse the project", res.stderr)) == 1, res.stderr
    assert res.stderr.count("dbt could not parse the project") == 1, res.stderr
    assert res.stderr.count("fix: run `dbt parse`") == 1, res.stderr
