"""The validation gate: Soda contracts, dbt expectation tests, drift, PII, stored results.

Entry point for the pipeline: `validate_candidate(project, con, fg, reference=None) -> ValidationReport`.
"""

from __future__ import annotations

from .gate import link_published, pipeline_check, validate_candidate
from .results import CheckResult, ValidationReport

__all__ = ["CheckResult", "ValidationReport", "link_published", "pipeline_check", "post_publish_link",
           "validate_candidate"]


def post_publish_link(project, catalog, outcomes) -> None:
    """POST_PUBLISH step of fs_cli.pipeline: record which commit published each validated candidate."""
    from ..warehouse import connect

    published = {name: o.commit.commit_id for name, o in outcomes.items() if o.published and o.commit}
    if not published:
        return
    with connect(project.warehouse_path) as con:
        for name, commit_id in published.items():
            link_published(con, name, commit_id)
