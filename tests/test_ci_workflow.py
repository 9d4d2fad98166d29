"""The CI/CD workflow (.github/workflows/feature-store.yml, issue 16 item 8) runs as written.

Each job runs in a fresh copy of the project (a job is a fresh checkout), its `run:` steps in order, through bash as
GitHub runs them (`bash --noprofile --norc -eo pipefail`), with the workflow's, job's and step's env. `uses:` steps
are the runner's machinery (checkout, Python, artifact upload) and are not run, except the download of the production
manifest: it is substituted with a copy of a manifest.json produced by an earlier parse of the project. DuckDB only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from fs_cli import FeatureStore

WORKFLOW = REPO / ".github" / "workflows" / "feature-store.yml"
DOWNLOAD = "dawidd6/action-download-artifact"
UPLOAD = "actions/upload-artifact"


def load() -> dict:
    wf = yaml.safe_load(WORKFLOW.read_text())
    wf["on"] = wf.pop(True, wf.get("on"))  # YAML 1.1 reads the key `on` as true
    return wf


def runs(job: dict) -> list[str]:
    return [s["run"] for s in job["steps"] if "run" in s]


def step_using(job: dict, action: str) -> dict:
    (step,) = [s for s in job["steps"] if s.get("uses", "").startswith(action + "@")]
    return step


def test_the_workflow_gates_pull_requests_and_deploys_main():
    wf = load()
    assert "pull_request" in wf["on"] and wf["on"]["push"]["branches"] == ["main"]
    plan, deploy = wf["jobs"]["plan"], wf["jobs"]["deploy"]
    assert plan["if"] == "github.event_name == 'pull_request'"
    assert "refs/heads/main" in deploy["if"] and "push" in deploy["if"]
    # pull request: plain dbt build, then fs plan against the downloaded production manifest
    pr = runs(plan)
    build = next(i for i, r in enumerate(pr) if "dbt build" in r)
    check = next(i for i, r in enumerate(pr) if r.startswith("fs plan --state "))
    assert build < check
    download = step_using(plan, DOWNLOAD)
    assert plan["steps"].index(download) < plan["steps"].index(next(s for s in plan["steps"] if s.get("run") == pr[check]))
    assert pr[check].split("--state ", 1)[1].strip() == download["with"]["path"]
    # merge: fs run, then fs materialize, then the deployed manifest is kept under the name pull requests download
    main = runs(deploy)
    assert next(i for i, r in enumerate(main) if r.startswith("fs run")) < \
        next(i for i, r in enumerate(main) if r.startswith("fs materialize"))
    upload = step_using(deploy, UPLOAD)
    assert upload["with"]["name"] == download["with"]["name"] and upload["with"]["path"] == "target/manifest.json"
    assert download["with"]["workflow"] == WORKFLOW.name and download["with"]["branch"] == "main"


def bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture
def prod_manifest(project_copy, tmp_path) -> Path:
    """A production manifest.json, as the last deploy left it: the project parsed once."""
    d = project_copy("prod")
    assert FeatureStore(d).catalog.feature_groups  # parses (in-process: no cold dbt start-up)
    out = tmp_path / "artifact" / "manifest.json"
    out.parent.mkdir()
    shutil.copy(d / "target" / "manifest.json", out)
    return out


def test_each_run_step_exits_0_in_order(project_copy, prod_manifest):
    wf = load()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           **{k: str(v) for k, v in (wf.get("env") or {}).items()}}
    ran: list[tuple[str, str]] = []
    for name, job in wf["jobs"].items():
        d = project_copy(f"checkout_{name}")  # every job starts from a fresh checkout
        job_env = {**env, **{k: str(v) for k, v in (job.get("env") or {}).items()}}
        for step in job["steps"]:
            if "run" not in step:
                if step["uses"].startswith(DOWNLOAD + "@"):  # the one substitution: the artifact, from a local parse
                    (d / step["with"]["path"]).mkdir(parents=True)
                    shutil.copy(prod_manifest, d / step["with"]["path"] / "manifest.json")
                elif step["uses"].startswith(UPLOAD + "@"):  # not run; what it would upload must exist
                    assert (d / step["with"]["path"]).is_file(), step
                continue
            assert "${{" not in step["run"], "a run step must run as written, without GitHub expressions"
            r = bash(step["run"], d, {**job_env, **{k: str(v) for k, v in (step.get("env") or {}).items()}})
            assert r.returncode == 0, f"{name}: {step.get('name') or step['run']} exited {r.returncode}\n" \
                f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
            ran.append((name, step["run"].strip().splitlines()[-1]))
            if step["run"].startswith("fs plan"):
                assert "0 breaking" in r.stdout, r.stdout
        if name == "deploy":  # what the merge did: every group published (a commit each), the online store written
            fs = FeatureStore(d)
            assert all(fs.commits(fg) for fg in fs.catalog.feature_groups)
            assert (d / ".fs" / "online_store.sqlite").is_file()
    assert [r for _, r in ran] == [
        "command -v fs >/dev/null || pip install -c constraints.txt -e .", "dbt build",
        "fs plan --state prod-manifest/",
        "command -v fs >/dev/null || pip install -c constraints.txt -e .", "fs run --no-materialize", "fs materialize",
    ]
