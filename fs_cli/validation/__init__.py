"""The validation gate: Soda contracts, dbt expectation tests, drift, PII, stored results.

Entry points: `validate_candidate(project, wh, fg, reference=None) -> ValidationReport` on an open Warehouse of the
project's target; for `fs run`, `pipeline_check(project, wh, fg)` (a candidate check: `(failures, warnings)` plus
`.errors`, which block under every policy) and `post_publish_link(project, catalog, outcomes)`.
"""

from __future__ import annotations

from .gate import ERROR_PREFIX, GateLines, is_gate_error, link_published, pipeline_check, validate_candidate
from .results import CheckResult, ValidationReport

__all__ = ["CheckResult", "ERROR_PREFIX", "GateLines", "ValidationReport", "is_gate_error", "link_published",
           "pipeline_check", "post_publish_link", "validate_candidate"]


def post_publish_link(project, catalog, outcomes) -> None:
    """POST_PUBLISH step of fs_cli.pipeline: record which commit published each validated candidate (in the
    target warehouse's fs_meta.validation_results)."""
    published = {name: o.commit.commit_id for name, o in outcomes.items() if o.published and o.commit}
    if not published:
        return
    with project.warehouse() as wh:
        for name, commit_id in published.items():
            link_published(project, wh, name, commit_id)
