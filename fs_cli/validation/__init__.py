"""The validation gate: Soda contracts, dbt expectation tests, drift, PII, stored results.

Entry points: `validate_candidate(project, wh, fg, reference=None) -> ValidationReport` on an open Warehouse of the
project's target; for `fs run`, `pipeline_check(project, wh, fg)` (a candidate check: `(failures, warnings)` plus
`.errors`, which block under every policy) and `post_publish_link(project, catalog, outcomes)`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CheckResult", "ERROR_PREFIX", "GateLines", "ValidationReport", "is_gate_error", "link_published",
           "pipeline_check", "post_publish_link", "validate_candidate"]

# Imported on first use: a read-only command that needs one submodule (`validation.cost` for `fs describe`,
# `validation.results` for `fs validations`) does not pay for the gate's imports (~0.1 s of a ~1 s command).
_LAZY = {"ERROR_PREFIX": "gate", "GateLines": "gate", "is_gate_error": "gate", "link_published": "gate",
         "pipeline_check": "gate", "validate_candidate": "gate", "CheckResult": "results",
         "ValidationReport": "results"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def post_publish_link(project, catalog, outcomes) -> None:
    """POST_PUBLISH step of fs_cli.pipeline: record which commit published each validated candidate (in the
    target warehouse's fs_meta.validation_results).

    A candidate whose snapshot changed nothing (it equals the published state: e.g. `fs run` after a plain
    `dbt build` published the same rows) validated the latest commit: its results are linked to that commit when no
    passing run covers it yet, so `fs commits` shows it validated and materialization serves it
    (fs_cli/online/withhold.py)."""
    published = {name: o.commit.commit_id for name, o in outcomes.items() if o.published and o.commit}
    unchanged = [name for name, o in outcomes.items() if o.published and o.commit is None]
    if not published and not unchanged:
        return
    from ..commits import list_commits
    from .gate import link_published

    with project.warehouse() as wh:
        for name, commit_id in published.items():
            link_published(project, wh, name, commit_id)
        for name in unchanged:
            log = list_commits(wh, catalog.feature_groups[name])
            if log and log[-1].validation != "passed":
                link_published(project, wh, name, log[-1].commit_id)
