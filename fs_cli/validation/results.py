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
        return self.outcome in ("fail", "error")

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


def ensure_table(con) -> None:
    con.execute(f"create schema if not exists {META_SCHEMA}")
    con.execute(
        f"""create table if not exists {RESULTS} (
            feature_group varchar not null,
            candidate_id varchar not null,
            commit_id integer,
            policy varchar,
            check_name varchar not null,
            kind varchar not null,
            column_name varchar,
            outcome varchar not null,
            message varchar,
            metrics json,
            samples json,
            validated_at timestamp not null
        )"""
    )


def store(con, report: ValidationReport) -> None:
    ensure_table(con)
    rows = [
        [report.feature_group, report.candidate_id, None, report.policy, r.check, r.kind, r.column, r.outcome,
         r.message, json.dumps(r.metrics, default=str), json.dumps(r.samples[:5], default=str), report.validated_at]
        for r in report.results
    ]
    if rows:
        con.executemany(f"insert into {RESULTS} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def link_commit(con, feature_group: str, candidate_id: str, commit_id: int) -> None:
    """Record which commit published a validated candidate."""
    if relation_exists(con, META_SCHEMA, "validation_results"):
        con.execute(f"update {RESULTS} set commit_id = ? where feature_group = ? and candidate_id = ?",
                    [commit_id, feature_group, candidate_id])


def history(con, feature_group: str, limit: int | None = None, candidate_id: str | None = None) -> list[dict[str, Any]]:
    """Stored results of a feature group, newest candidate first."""
    if not relation_exists(con, META_SCHEMA, "validation_results"):
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
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    out = []
    for row in cur.fetchall():
        d = dict(zip(names, row, strict=True))
        for k in ("metrics", "samples"):
            d[k] = json.loads(d[k]) if isinstance(d[k], str) else d[k]
        out.append(d)
    return out
