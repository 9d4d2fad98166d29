"""`fs` imports what the command that runs needs, nothing more: `import fs_cli.cli`, `fs --help` and `fs --version`
import none of dbt, Soda, pandas, DuckDB, pyarrow, numpy, FastAPI, scikit-learn; read-only commands on an unchanged
project add only DuckDB. Each case runs in a fresh interpreter and reads its sys.modules (a correctness check of
what is imported, not a timing test). Also: the lazy command map (fs_cli.cli.COMMANDS) matches the commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import click
import pytest

from fs_cli.cli import COMMANDS, main

HEAVY = {"dbt", "soda", "pandas", "duckdb", "pyarrow", "numpy", "fastapi", "uvicorn", "sklearn", "psycopg2",
         "agate", "jinja2"}

# Runs `fs ARGS...` in this fresh interpreter as the console script does, then prints the heavy packages loaded.
PROBE = """
import json, os, sys
sys.argv = ["fs", *sys.argv[1:]]
code = 0
try:
    if sys.argv[1:] == ["--import-only"]:
        import fs_cli.cli
    else:
        from fs_cli.cli import main
        main(prog_name="fs")
except SystemExit as e:
    code = e.code or 0
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(os.environ["PROBE_HEAVY_MODULES"])))
print("\\nFS_PROBE " + json.dumps({"code": code, "heavy": heavy}))
"""


def probe(*args: str, cwd: Path | None = None) -> dict:
    # not FS_-prefixed: the FS_ environment is part of the manifest fingerprint (another value would parse again)
    env = {**os.environ, "PROBE_HEAVY_MODULES": json.dumps(sorted(HEAVY))}
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=600, cwd=cwd,
                         env=env)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("FS_PROBE ")]
    assert line, out.stdout + out.stderr
    return {**json.loads(line[-1][len("FS_PROBE "):]), "stdout": out.stdout, "stderr": out.stderr}


def test_importing_the_cli_imports_no_heavy_package():
    r = probe("--import-only")
    assert r["heavy"] == [], r


def test_help_imports_no_command_and_lists_every_command():
    r = probe("--help")
    assert r["code"] == 0 and r["heavy"] == [], r
    listed = r["stdout"].split("Commands:", 1)[1]
    for name in COMMANDS:
        assert f"\n  {name} " in listed, name


def test_version_is_the_package_version():
    r = probe("--version")
    assert r["code"] == 0 and r["heavy"] == [], r
    assert r["stdout"].splitlines()[0] == f"fs {version('fs-cli')}"


def test_an_unknown_command_is_a_usage_error():
    r = probe("no-such-command")
    assert r["code"] == 2 and r["heavy"] == [], r


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_command_map_names_each_command_and_its_own_help(name):
    """`fs --help` shows COMMANDS' help without importing the command: it must be the command's own."""
    target, short_help = COMMANDS[name]
    module, _, attr = target.partition(":")
    cmd = getattr(__import__(module, fromlist=[attr]), attr)
    assert isinstance(cmd, click.Command) and cmd.name == name
    assert cmd.get_short_help_str(limit=10_000) == short_help


def test_loading_the_model_group_applies_the_monitoring_extension():
    ctx = click.Context(main)
    score = main.get_command(ctx, "model").get_command(ctx, "score")
    assert "spine" in {p.name for p in score.params}  # fs_cli.commands.monitoring's `--spine`


@pytest.fixture(scope="module")
def parsed_project(tmp_path_factory) -> Path:
    """A project copy whose manifest has been parsed once (the next read-only command reuses it)."""
    from conftest import copy_project

    from fs_cli import FeatureStore

    d = copy_project(tmp_path_factory.mktemp("imports") / "proj")
    FeatureStore(d).list()
    return d


@pytest.mark.parametrize("args", [["list"], ["describe", "fg_customer_profile"], ["search", "amount"],
                                  ["list", "--json"]])
def test_read_only_commands_on_an_unchanged_project_import_no_dbt_pandas_or_soda(parsed_project, args):
    r = probe(*args, cwd=parsed_project)
    assert r["code"] == 0, r
    assert set(r["heavy"]) <= {"duckdb", "jinja2"}, r  # jinja2: `describe` reads validation costs via validation/
    assert "fg_customer_profile" in r["stdout"] or args[0] == "search"
