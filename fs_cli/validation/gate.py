"""The validation gate of write-audit-publish: every check of a candidate, one report, stored.

`validate_candidate` runs after dbt built the candidate (the feature group's model) and before its snapshot
publishes it: Soda contract, drift against the published reference, PII content scan and pii lineage, plus the
results of the dbt tests on the model from the build that just ran. The caller applies the policy, except that an
errored check (the gate could not look at the data) blocks under every policy.

Every read and write goes through the project's Warehouse (its dbt target): results and costs land in that target's
fs_meta, Soda runs through its own data source for that engine, drift SQL comes from the project's macros.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from ..commits import is_published, list_commits
from ..declarations.model import FeatureGroup
from ..errors import FeatureStoreError
from ..project import Project
from ..timeutil import utcnow
from ..transforms.macros import project_macro_dir
from . import contract as _contract
from . import cost as _cost
from . import drift as _drift
from . import pii as _pii
from .expectations import parse_expectations
from .results import CheckResult, ValidationReport, link_commit, store


def _reference_override(exp, reference: Any) -> None:
    if reference is None:
        return
    if isinstance(reference, dict) and isinstance(reference.get("commit"), int):
        exp.drift.reference, exp.drift.reference_commit = "commit", reference["commit"]
    elif reference in ("previous_window", "last_commit"):
        exp.drift.reference = reference
    else:
        raise FeatureStoreError(f"unknown drift reference {reference!r}",
                                fix="use 'previous_window', 'last_commit' or {'commit': N}")


def _dbt_test_results(project: Project, fg: FeatureGroup) -> list[CheckResult]:
    """The dbt tests on `fg`'s model from the last dbt invocation (the build that produced the candidate)."""
    path = project.target_dir / "run_results.json"
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    out = []
    if not any(r.get("unique_id") == fg.unique_id for r in data.get("results", [])):
        return []  # the last dbt invocation did not build this candidate: its test results would be stale
    for r in data.get("results", []):
        uid = r.get("unique_id", "")
        if not uid.startswith("test."):
            continue
        node = (project.manifest().nodes or {}).get(uid)
        if node is None or fg.unique_id not in (node.depends_on.nodes or []):
            continue
        status = str(r.get("status", "")).lower()
        outcome = {"pass": "pass", "fail": "fail", "error": "error", "warn": "warn", "skipped": "skipped"}.get(status,
                                                                                                              status)
        out.append(CheckResult(f"dbt:{node.name}", "dbt", outcome,
                               column=getattr(node, "column_name", None),
                               message=(r.get("message") or status or "")[:500],
                               metrics={"failures": r.get("failures")}))
    return out


def validate_candidate(project: Project, wh, fg: FeatureGroup, reference: Any = None,
                       include_dbt_tests: bool = True, persist: bool = True) -> ValidationReport:
    """Audit `fg`'s candidate on the open Warehouse `wh` (the project's target); the report is stored in its fs_meta.

    reference: override the declared drift reference ('previous_window', 'last_commit' or {'commit': N}).
    """
    candidate_id = f"{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()
    results: list[CheckResult] = []
    try:
        exp = parse_expectations(fg)
        _reference_override(exp, reference)
    except FeatureStoreError as e:
        report = ValidationReport(fg.name, candidate_id, fg.policy,
                                  [CheckResult("declaration", "contract", "error", message=str(e))])
        if persist:
            store(wh, report)
        return report

    now = project.vars.get("fs_now")
    try:
        results += _contract.verify(wh, project.dir, fg, exp, now=str(now) if now else None)
    except FeatureStoreError as e:
        results.append(CheckResult("contract", "contract", "error", message=str(e)))

    published = is_published(wh, fg)
    commit_time = None
    if exp.drift.reference == "commit" and published:
        match = [c for c in list_commits(wh, fg) if c.commit_id == exp.drift.reference_commit]
        if not match:
            results.append(CheckResult("drift", "drift", "error",
                                       message=f"drift reference commit {exp.drift.reference_commit} does not exist"))
        commit_time = match[0].commit_time if match else None
    if not (exp.drift.reference == "commit" and commit_time is None and published):
        results += _drift.feature_group_drift(wh, fg, exp, published, commit_time,
                                              macro_dir=project_macro_dir(project))

    results += _pii.scan_content(wh, fg)
    results.append(_pii.lineage_check(project.manifest(), fg))
    if include_dbt_tests:
        results += _dbt_test_results(project, fg)

    report = ValidationReport(fg.name, candidate_id, fg.policy, results)
    if persist:
        # Cost is recorded per validated candidate, i.e. per run that built the group; measuring it is
        # bookkeeping, so a failure there is a warning, never a failed candidate.
        try:
            _cost.record(wh, fg, candidate_id, _cost.measure(project, wh, fg, time.perf_counter() - started))
        except Exception as e:  # noqa: BLE001
            report.results.append(CheckResult("cost", "cost", "warn", message=f"cost not recorded: {e}"))
        store(wh, report)
    return report


def validate_feature_view(project: Project, wh, fv, persist: bool = True) -> ValidationReport:
    """Correlation limits on a feature view's relation (built by dbt): feature-label and pairwise."""
    from . import correlation as _corr

    node = project.manifest().nodes[fv.unique_id]
    if not wh.relation_exists(node.schema, node.alias):
        raise FeatureStoreError(f"feature view {fv.name} has not been built ({fv.relation})",
                                fix=f"run `dbt run --select {fv.name}` first")
    limits = ((node.config.meta or {}).get("fs") or {}).get("validation") or {}
    features, label = _corr.feature_view_features(fv.spec, _corr.view_columns(wh, node.schema, node.alias))
    results = _corr.correlation_checks(wh, fv.relation, features, label, limits)
    report = ValidationReport(fv.name, f"{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}", "strict", results)
    if persist:
        store(wh, report)
    return report


# -- the hook into `fs run` (fs_cli.pipeline) ----------------------------------------------------------------
#: Lines of errored checks start with this. An error means the gate could not look at the data (a query failed,
#: a declaration is broken, the gate crashed): no policy may publish on it, `warn` included.
ERROR_PREFIX = "ERROR "


class GateLines(tuple):
    """What `pipeline_check` returns: `(failures, warnings)` -- it unpacks as that pair -- plus `.errors`.

    failures  every check that did not pass: failed checks, then errored ones (those lines start with ERROR_PREFIX)
    warnings  checks that warned
    errors    the errored lines alone (a subset of failures): they block the publish under every policy
    refusals  failed checks of the snapshot key (NULL or duplicate keys; a subset of failures): the snapshot cannot
              publish such rows faithfully (NULL never equals NULL in its merge: every publish would re-insert them),
              so they block the publish under every policy too
    """

    errors: list[str]
    refusals: list[str]

    def __new__(cls, failures: list[str], warnings: list[str], errors: list[str],
                refusals: list[str] | None = None) -> GateLines:
        self = super().__new__(cls, (failures, warnings))
        self.errors = errors
        self.refusals = refusals or []
        return self

    @property
    def failures(self) -> list[str]:
        return self[0]

    @property
    def warnings(self) -> list[str]:
        return self[1]

    @property
    def blocking(self) -> bool:
        """Whether the candidate must not be published even under policy `warn`."""
        return bool(self.errors or self.refusals)


def is_gate_error(line: str) -> bool:
    """Whether a failure line of `pipeline_check` is an errored check (blocks every policy)."""
    return line.startswith(ERROR_PREFIX)


_PENDING: dict[tuple[str, str], str] = {}  # (project dir, feature group) -> candidate validated here, until published


def pipeline_check(project: Project, wh, fg: FeatureGroup) -> GateLines:
    """The gate as a candidate check of `fs run`: validate `fg`'s candidate on Warehouse `wh` (the target)."""
    try:
        report = validate_candidate(project, wh, fg)
    except Exception as e:  # noqa: BLE001 - an unexpected crash of the gate blocks the candidate, it never passes it
        line = f"{ERROR_PREFIX}validation gate error: {type(e).__name__}: {e}"
        return GateLines([line], [], [line])
    _PENDING[(str(project.dir), fg.name)] = report.candidate_id
    # dbt tests are stored with the report, but the pipeline already lists them from dbt's own results.
    failures = [report.summary(r) for r in report.failures if r.kind != "dbt"]
    errors = [ERROR_PREFIX + report.summary(r) for r in report.errors if r.kind != "dbt"]
    warnings = [report.summary(r) for r in report.warnings if r.kind != "dbt"]
    key_checks = {"contract:duplicate:key"} | {f"contract:missing:{k}:not_null" for k in fg.key_columns}
    refusals = [f"{report.summary(r)} (refused under every policy: the snapshot key must be unique and not NULL)"
                for r in report.failures if r.check in key_checks]
    failures = [f for f, r in zip(failures, [r for r in report.failures if r.kind != "dbt"], strict=True)
                if r.check not in key_checks] + refusals
    return GateLines(failures + errors, warnings, errors, refusals)


def link_published(project: Project, wh, feature_group: str, commit_id: int) -> None:
    """After a publish: record the commit on the results of the candidate it published."""
    cid = _PENDING.pop((str(project.dir), feature_group), None)
    if cid:
        link_commit(wh, feature_group, cid, commit_id)
