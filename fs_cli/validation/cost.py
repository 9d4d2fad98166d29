"""Cost of a feature group, recorded with every validated candidate: build time, rows, storage.

build_seconds   dbt's execution time of the model in the build that produced the candidate (run_results.json)
test_seconds    dbt's execution time of the tests on the model in that build
validation_seconds  time spent in the validation gate (contract, drift, PII)
rows            rows of the candidate
bytes_estimate  uncompressed (Arrow) size: rows x the mean row size of a sample of up to 10,000 rows; DuckDB does
                not report the compressed bytes of one table, and a sample keeps this cheap on big groups
"""

from __future__ import annotations

import json
from typing import Any

from ..metadata import FeatureGroup
from ..project import Project
from ..timeutil import utcnow
from ..warehouse import META_SCHEMA, relation_exists

COSTS = f"{META_SCHEMA}.feature_group_costs"
SAMPLE = 10_000


def ensure_table(con) -> None:
    con.execute(f"create schema if not exists {META_SCHEMA}")
    con.execute(
        f"""create table if not exists {COSTS} (
            feature_group varchar not null,
            candidate_id varchar not null,
            recorded_at timestamp not null,
            build_seconds double,
            test_seconds double,
            validation_seconds double,
            rows bigint,
            bytes_estimate bigint
        )"""
    )


def _dbt_timings(project: Project, fg: FeatureGroup) -> tuple[float | None, float | None]:
    path = project.target_dir / "run_results.json"
    if not path.is_file():
        return None, None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None, None
    build, tests = None, 0.0
    nodes = project.manifest().nodes
    for r in data.get("results", []):
        uid = r.get("unique_id", "")
        t = r.get("execution_time")
        if uid == fg.unique_id:
            build = t
        elif uid.startswith("test.") and uid in nodes and fg.unique_id in (nodes[uid].depends_on.nodes or []):
            tests += t or 0.0
    return build, (tests if build is not None else None)


def measure(project: Project, con, fg: FeatureGroup, validation_seconds: float | None = None) -> dict[str, Any]:
    rows = con.execute(f"select count(*) from {fg.relation}").fetchall()[0][0]
    bytes_estimate = 0
    if rows:
        sample = con.sql(f"select * from {fg.relation} limit {SAMPLE}").to_arrow_table()
        bytes_estimate = int(sample.nbytes / max(sample.num_rows, 1) * rows)
    build, tests = _dbt_timings(project, fg)
    return {"build_seconds": build, "test_seconds": tests, "validation_seconds": validation_seconds,
            "rows": rows, "bytes_estimate": bytes_estimate}


def record(con, fg: FeatureGroup, candidate_id: str, cost: dict[str, Any]) -> None:
    ensure_table(con)
    con.execute(f"insert into {COSTS} values (?, ?, ?, ?, ?, ?, ?, ?)",
                [fg.name, candidate_id, utcnow(), cost["build_seconds"], cost["test_seconds"],
                 cost["validation_seconds"], cost["rows"], cost["bytes_estimate"]])


def cost_history(con, feature_group: str, limit: int = 10) -> list[dict[str, Any]]:
    """The last `limit` recorded costs of a feature group, newest first."""
    if not relation_exists(con, META_SCHEMA, "feature_group_costs"):
        return []
    cur = con.execute(
        f"""select candidate_id, recorded_at, build_seconds, test_seconds, validation_seconds, rows, bytes_estimate
            from {COSTS} where feature_group = ? order by recorded_at desc limit {int(limit)}""", [feature_group])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
