"""Validation results: one row per check of a candidate, kept forever in fs_meta.validation_results."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..timeutil import utcnow
from ..warehouse import META_SCHEMA, relation_exists

RESULTS = f"{META_SCHEMA}.validation_results"
OUTCOMES = ("pass", "fail", "warn", "skipped", "error")


@dataclass
class CheckResult:
    check: str  # stable name, e.g. "contract:invalid:credit_limit:range", "drift:psi:amount"
    kind: str  # contract | drift | pii | lineage | dbt
    outcome: str  # pass | fail | warn | skipped | error
    column: str | None = None
    message: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)  # failing rows (a few)

    @property
    def failed(self) -> bool:
        """The candidate did not pass this check: it failed, or it could not be evaluated (error)."""
        return self.outcome in ("fail", "error")

    @property
    def errored(self) -> bool:
        """The check could not be evaluated (a query error, a broken declaration ...): says nothing about the data,
        so no policy may publish on it."""
        return self.outcome == "error"

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "kind": self.kind, "outcome": self.outcome, "column": self.column,
                "message": self.message, "metrics": self.metrics, "samples": self.samples}


@dataclass
class ValidationReport:
    feature_group: str
    candidate_id: str
    policy: str
    results: list[CheckResult]
    validated_at: datetime = field(default_factory=utcnow)

    @property
    def passed(self) -> bool:
        return not self.failed_checks

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [r for r in self.results if r.failed]

    @property
    def failures(self) -> list[CheckResult]:
        """Checks that ran and found bad data."""
        return [r for r in self.results if r.outcome == "fail"]

    @property
    def errors(self) -> list[CheckResult]:
        """Checks that could not run."""
        return [r for r in self.results if r.errored]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if r.outcome == "warn"]

    def summary(self, r: CheckResult) -> str:
        s = f"{r.check}: {r.message}" if r.message else r.check
        if r.samples:
            s += f" -- e.g. {json.dumps(r.samples[:3], default=str)}"
        return s

    def to_dict(self) -> dict[str, Any]:
        return {"feature_group": self.feature_group, "candidate_id": self.candidate_id, "policy": self.policy,
                "passed": self.passed, "validated_at": self.validated_at,
                "results": [r.to_dict() for r in self.results]}


COLUMNS = ("feature_group", "candidate_id", "commit_id", "policy", "check_name", "kind", "column_name", "outcome",
           "message", "metrics", "samples", "validated_at")
_INSERT_CHUNK = 50  # rows per multi-row insert: one round trip for a typical report


def ensure_table(wh) -> None:
    wh.ensure_schema(META_SCHEMA)
    text, ts = wh.type("text"), wh.type("timestamp")
    # metrics and samples are JSON documents stored as text (every engine has text; not every one has json)
    wh.execute(
        f"""create table if not exists {RESULTS} (
            feature_group {text} not null,
            candidate_id {text} not null,
            commit_id {wh.type("integer")},
            policy {text},
            check_name {text} not null,
            kind {text} not null,
            column_name {text},
            outcome {text} not null,
            message {text},
            metrics {text},
            samples {text},
            validated_at {ts} not null
        )"""
    )


def store(wh, report: ValidationReport) -> None:
    """Append the report's results to fs_meta.validation_results of the target warehouse."""
    ensure_table(wh)
    rows = [
        [report.feature_group, report.candidate_id, None, report.policy, r.check, r.kind, r.column, r.outcome,
         r.message, json.dumps(r.metrics, default=str), json.dumps(r.samples[:5], default=str), report.validated_at]
        for r in report.results
    ]
    with wh.transaction():  # a report is stored whole or not at all
        wh.insert_rows(RESULTS, COLUMNS, rows, chunk=_INSERT_CHUNK)


def link_commit(wh, feature_group: str, candidate_id: str, commit_id: int) -> None:
    """Record which commit published a validated candidate."""
    if relation_exists(wh, META_SCHEMA, "validation_results"):
        wh.execute(f"update {RESULTS} set commit_id = ? where feature_group = ? and candidate_id = ?",
                   [commit_id, feature_group, candidate_id])


def history(wh, feature_group: str, limit: int | None = None, candidate_id: str | None = None) -> list[dict[str, Any]]:
    """Stored results of a feature group, newest candidate first."""
    if not relation_exists(wh, META_SCHEMA, "validation_results"):
        return []
    sql = f"""select feature_group, candidate_id, commit_id, policy, check_name, kind, column_name, outcome, message,
                     metrics, samples, validated_at
              from {RESULTS} where feature_group = ?"""
    params: list[Any] = [feature_group]
    if candidate_id:
        sql += " and candidate_id = ?"
        params.append(candidate_id)
    if limit:  # the last `limit` candidates
        sql += f""" and candidate_id in (select candidate_id from {RESULTS} where feature_group = ?
                     group by candidate_id order by max(validated_at) desc limit {int(limit)})"""
        params.append(feature_group)
    sql += " order by validated_at desc, check_name"
    cur = wh.execute(sql, params)
    names = [d[0] for d in cur.description]
    out = []
    for row in cur.fetchall():
        d = dict(zip(names, row, strict=True))
        for k in ("metrics", "samples"):
            d[k] = json.loads(d[k]) if isinstance(d[k], str) else d[k]
        out.append(d)
    return out
