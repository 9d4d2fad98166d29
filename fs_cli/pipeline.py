"""The feature pipeline behind `fs run`: build candidates, test them, publish (snapshot), log commits.

Write-audit-publish: candidates are built and tested first, with snapshots excluded; only the feature groups whose
candidates passed (or whose policy is `warn`) are snapshotted. A failing strict candidate stays in its table for
inspection while the published version (the snapshot) and the online store keep the previous commit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .commits import Commit, claim_run, list_commits, sync_commits, sync_project
from .discovery import load as load_catalog
from .errors import FeatureStoreError
from .metadata import Catalog, FeatureGroup
from .project import Project
from .push_publish import finish_pushed_rows, merge_pushed_rows
from .warehouse import Warehouse


@dataclass
class FGOutcome:
    feature_group: str
    policy: str
    built: bool = False
    failures: list[str] = field(default_factory=list)  # failing tests / checks, human readable
    warnings: list[str] = field(default_factory=list)
    published: bool = False
    commit: Commit | None = None
    materialized: int | None = None

    @property
    def status(self) -> str:
        if not self.built:
            return "error"
        if self.failures and not self.published:
            return "blocked"
        if self.failures or self.warnings:
            return "warn"
        return "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature_group": self.feature_group,
            "status": self.status,
            "policy": self.policy,
            "published": self.published,
            "failures": self.failures,
            "warnings": self.warnings,
            "commit": self.commit.to_dict() if self.commit else None,
            "materialized": self.materialized,
        }


@dataclass
class RunReport:
    outcomes: dict[str, FGOutcome]
    other_failures: list[str]
    run_id: str | None = None

    @property
    def ok(self) -> bool:
        return not self.other_failures and all(o.status in ("ok", "warn") for o in self.outcomes.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "run_id": self.run_id,
            "feature_groups": [o.to_dict() for o in self.outcomes.values()],
            "other_failures": self.other_failures,
        }


#: A candidate check (Soda contract, drift, PII ...): f(project, wh, fg) -> (failures, warnings), where `wh` is an open
#: Warehouse on the target. Runs on every built candidate before the publish. A result that also has a non-empty
#: `.errors` (fs_cli.validation.GateLines: a check could not run) blocks the publish under every policy.
CandidateCheck = Callable[[Project, Warehouse, FeatureGroup], tuple[list[str], list[str]]]
#: An after-publish step (link validation results, materialize ...): f(project, catalog, outcomes) -> None.
PostPublishStep = Callable[[Project, Catalog, dict[str, FGOutcome]], None]

#: Test hook (documented, off unless set): `FS_TEST_CRASH_AFTER_SNAPSHOT=1` kills the process right after the snapshot
#: (the publish) and before the commit log is written, to prove the next `fs` command logs that commit anyway.
CRASH_AFTER_SNAPSHOT_ENV = "FS_TEST_CRASH_AFTER_SNAPSHOT"


def _node_name(result) -> str:
    return result.node.unique_id


def run_pipeline(
    project: Project,
    select: tuple[str, ...] = (),
    progress: Callable[[str, int], None] | None = None,
    checks: Sequence[CandidateCheck] = (),
    post_publish: Sequence[PostPublishStep] = (),
) -> RunReport:
    """Run the feature pipeline; `progress(message, nodes_done)` is called as dbt finishes nodes.

    The caller composes the audit and the after-publish work: `checks` run on every built candidate (their failures
    block a strict group), `post_publish` steps run after the snapshots (FeatureStore.run passes the validation gate,
    the link of its results to the new commits and materialization)."""
    catalog = load_catalog(project)  # validates every declaration before anything is written
    # A publish of an earlier run that died before logging it is its own commit, not part of this run's.
    sync_project(project, list(catalog.feature_groups.values()))
    done = 0

    def on_event(ev) -> None:
        nonlocal done
        name = ev.info.name
        if progress is None:
            return
        if name == "NodeStart":
            progress(f"building {ev.data.node_info.node_name}", done)
        elif name == "NodeFinished":
            done += 1
            progress(f"finished {ev.data.node_info.node_name}", done)

    build_args = ["build", "--quiet", "--exclude", "resource_type:snapshot", "path:models/feature_views"]
    if select:
        build_args += ["--select", *select]
    res = project.dbt(build_args, callbacks=[on_event])
    if res.exception is not None:
        raise FeatureStoreError(f"dbt build failed to run: {res.exception}", fix="run `dbt build` to see the full error")

    by_uid = {fg.unique_id: fg for fg in catalog.feature_groups.values()}
    outcomes: dict[str, FGOutcome] = {}
    other: list[str] = []
    for r in res.results:
        node = r.node
        status = str(r.status).split(".")[-1].lower()
        if node.unique_id in by_uid:
            fg = by_uid[node.unique_id]
            o = outcomes.setdefault(fg.name, FGOutcome(fg.name, fg.policy))
            o.built = status == "success"
            if not o.built:
                o.failures.append(f"model {status}: {(r.message or '').strip()[:300]}")
        elif node.resource_type == "test":
            targets = [by_uid[u] for u in node.depends_on.nodes if u in by_uid]
            failed = status in ("fail", "error")
            warned = status == "warn"
            msg = f"dbt test {node.name}: {status}" + (f" ({r.failures} failing rows)" if r.failures else "")
            for fg in targets:
                o = outcomes.setdefault(fg.name, FGOutcome(fg.name, fg.policy))
                if failed:
                    o.failures.append(msg)
                elif warned:
                    o.warnings.append(msg)
            if not targets and failed:
                other.append(msg)
        elif status in ("error", "fail"):
            other.append(f"{node.resource_type} {node.name}: {status}: {(r.message or '').strip()[:300]}")

    pushed = merge_pushed_rows(project, catalog, outcomes)  # pushed rows join their candidates (push_publish.py)
    # Audit: the given checks (contracts, drift ...) on each built candidate.
    unchecked: set[str] = set()  # a check could not run (its `.errors`): no policy publishes these
    if checks and any(o.built for o in outcomes.values()):
        with project.warehouse() as wh:
            for name, o in outcomes.items():
                if not o.built:
                    continue
                for check in checks:
                    result = check(project, wh, catalog.feature_groups[name])
                    fails, warns = result
                    o.failures += fails
                    o.warnings += warns
                    if getattr(result, "errors", None):
                        unchecked.add(name)

    # Publish: snapshot what passed, and what failed under the `warn` policy.
    to_publish = []
    for name, o in outcomes.items():
        if not o.built:
            continue
        if o.failures and (o.policy == "strict" or name in unchecked):
            continue
        if o.failures:  # warn policy: published, failures kept as warnings
            o.warnings += [f"published despite: {f}" for f in o.failures]
            o.failures = []
        to_publish.append(catalog.feature_groups[name])
    run_id = None
    if to_publish:
        with project.warehouse() as wh:
            logged_before = {fg.name: _last_commit_id(wh, fg) for fg in to_publish}
        snap = project.dbt(
            ["snapshot", "--quiet", "--select", *[fg.snapshot_name for fg in to_publish]], callbacks=[on_event]
        )
        published = set()
        run_id = snap.invocation_id
        for r in snap.results:
            if str(r.status).split(".")[-1].lower() == "success":
                published.add(r.node.name)
            else:
                other.append(f"snapshot {r.node.name}: {r.status}: {(r.message or '').strip()[:300]}")
        if os.environ.get(CRASH_AFTER_SNAPSHOT_ENV) == "1":
            os._exit(137)  # test hook: die like a SIGKILL between the publish and its log write
        with project.warehouse() as wh:
            for fg in to_publish:
                o = outcomes[fg.name]
                o.published = fg.snapshot_name in published
                if o.published:
                    o.commit = _log_publish(wh, fg, run_id, logged_before[fg.name])
    finish_pushed_rows(project, catalog, outcomes, pushed)  # published pushes: marked, their log consumed
    for step in post_publish:
        step(project, catalog, outcomes)
    _refresh_commits(project, catalog, outcomes)
    return RunReport(outcomes=outcomes, other_failures=other, run_id=run_id)


def _last_commit_id(wh: Warehouse, fg: FeatureGroup) -> int:
    commits = list_commits(wh, fg, with_validation=False)
    return commits[-1].commit_id if commits else 0


def _log_publish(wh: Warehouse, fg: FeatureGroup, run_id: str | None, logged_before: int) -> Commit | None:
    """The commit this run's snapshot made (None: the snapshot changed nothing), logged with the run's id -- also
    when a concurrent `fs commits` logged it first."""
    sync_commits(wh, fg, run_id=run_id)
    claim_run(wh, fg, logged_before, run_id)
    mine = [c for c in list_commits(wh, fg, with_validation=False) if c.commit_id > logged_before]
    return mine[-1] if mine else None


def _refresh_commits(project: Project, catalog: Catalog, outcomes: dict[str, FGOutcome]) -> None:
    """Re-read the new commits after the post-publish steps, which link validation results to them."""
    fresh = {name: o for name, o in outcomes.items() if o.commit is not None}
    if not fresh:
        return
    with project.warehouse(read_only=True) as wh:
        for name, o in fresh.items():
            by_id = {c.commit_id: c for c in list_commits(wh, catalog.feature_groups[name])}
            o.commit = by_id.get(o.commit.commit_id, o.commit)
