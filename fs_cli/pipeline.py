"""The feature pipeline behind `fs run`: build candidates, test them, publish (snapshot), log commits.

Write-audit-publish: candidates are built and tested first, with snapshots excluded; only the feature groups whose
candidates passed (or whose policy is `warn`) are snapshotted. A failing strict candidate stays in its table for
inspection while the published version (the snapshot) and the online store keep the previous commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .commits import Commit, sync_commits
from .errors import FeatureStoreError
from .metadata import Catalog, FeatureGroup
from .project import Project
from .warehouse import connect


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


# Validation checks (Soda contracts, drift, PII ...) register here: f(project, con, fg) -> (failures, warnings).
CandidateCheck = Callable[[Project, Any, FeatureGroup], tuple[list[str], list[str]]]
CANDIDATE_CHECKS: list[CandidateCheck] = []
# After-publish steps (materialization ...) register here: f(project, catalog, outcomes) -> None.
PostPublishStep = Callable[[Project, Catalog, dict[str, FGOutcome]], None]
POST_PUBLISH: list[PostPublishStep] = []


def _node_name(result) -> str:
    return result.node.unique_id


def run_pipeline(
    project: Project,
    select: tuple[str, ...] = (),
    progress: Callable[[str, int], None] | None = None,
    materialize: bool = True,
) -> RunReport:
    """Run the feature pipeline; `progress(message, nodes_done)` is called as dbt finishes nodes."""
    from .catalog import load  # late import: catalog imports this module's types

    catalog = load(project)  # validates every declaration before anything is written
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

    # Audit: the registered checks (contracts, drift ...) on each built candidate.
    if CANDIDATE_CHECKS:
        with connect(project.warehouse_path) as con:
            for name, o in outcomes.items():
                if not o.built:
                    continue
                for check in CANDIDATE_CHECKS:
                    fails, warns = check(project, con, catalog.feature_groups[name])
                    o.failures += fails
                    o.warnings += warns

    # Publish: snapshot what passed, and what failed under the `warn` policy.
    to_publish = []
    for name, o in outcomes.items():
        if not o.built:
            continue
        if o.failures and o.policy == "strict":
            continue
        if o.failures:  # warn policy: published, failures kept as warnings
            o.warnings += [f"published despite: {f}" for f in o.failures]
            o.failures = []
        to_publish.append(catalog.feature_groups[name])
    run_id = None
    if to_publish:
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
        with connect(project.warehouse_path) as con:
            for fg in to_publish:
                o = outcomes[fg.name]
                o.published = fg.snapshot_name in published
                if o.published:
                    new = sync_commits(con, fg, run_id=run_id)
                    o.commit = new[-1] if new else None
    if materialize:
        for step in POST_PUBLISH:
            step(project, catalog, outcomes)
    return RunReport(outcomes=outcomes, other_failures=other, run_id=run_id)


# Materialize freshly published online feature groups (fs_cli/online/from_warehouse.py, issue 4).
from .online.from_warehouse import post_publish_materialize  # noqa: E402

POST_PUBLISH.append(post_publish_materialize)

# Audit every candidate through the validation gate (fs_cli/validation, issue 5) and link results to commits.
from .validation import pipeline_check, post_publish_link  # noqa: E402

CANDIDATE_CHECKS.append(pipeline_check)
POST_PUBLISH.append(post_publish_link)
