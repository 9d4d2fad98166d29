"""Cost of a feature group, recorded with every validated candidate: build time, rows, storage.

build_seconds   dbt's execution time of the model in the build that produced the candidate (run_results.json)
test_seconds    dbt's execution time of the tests on the model in that build
validation_seconds  time spent in the validation gate (contract, drift, PII)
rows            rows of the candidate
bytes_estimate  uncompressed (Arrow) size: rows x the mean row size of a sample of up to 10,000 rows; engines do
                not report the compressed bytes of one table alike, and a sample keeps this cheap on big groups
"""

from __future__ import annotations

import json
from typing import Any

from ..declarations.model import FeatureGroup
from ..project import Project
from ..timeutil import utcnow
from ..warehouse import META_SCHEMA, relation_exists

COSTS = f"{META_SCHEMA}.feature_group_costs"
SAMPLE = 10_000


def ensure_table(wh) -> None:
    wh.ensure_schema(META_SCHEMA)
    text, dbl, big, ts = wh.type("text"), wh.type("double"), wh.type("bigint"), wh.type("timestamp")
    wh.execute(
        f"""create table if not exists {COSTS} (
            feature_group {text} not null,
            candidate_id {text} not null,
            recorded_at {ts} not null,
            build_seconds {dbl},
            test_seconds {dbl},
            validation_seconds {dbl},
            rows {big},
            bytes_estimate {big}
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


def measure(project: Project, wh, fg: FeatureGroup, validation_seconds: float | None = None) -> dict[str, Any]:
    rows = int(wh.scalar(f"select count(*) from {fg.relation}") or 0)
    bytes_estimate = 0
    if rows:
        sample = wh.arrow(f"select * from {fg.relation} limit {SAMPLE}")
        bytes_estimate = int(sample.nbytes / max(sample.num_rows, 1) * rows)
    build, tests = _dbt_timings(project, fg)
    return {"build_seconds": build, "test_seconds": tests, "validation_seconds": validation_seconds,
            "rows": rows, "bytes_estimate": bytes_estimate}


def record(wh, fg: FeatureGroup, candidate_id: str, cost: dict[str, Any]) -> None:
    ensure_table(wh)
    wh.execute(f"""insert into {COSTS} (feature_group, candidate_id, recorded_at, build_seconds, test_seconds,
                   validation_seconds, rows, bytes_estimate) values (?, ?, ?, ?, ?, ?, ?, ?)""",
                [fg.name, candidate_id, utcnow(), cost["build_seconds"], cost["test_seconds"],
                 cost["validation_seconds"], cost["rows"], cost["bytes_estimate"]])


def cost_history(wh, feature_group: str, limit: int = 10) -> list[dict[str, Any]]:
    """The last `limit` recorded costs of a feature group, newest first."""
    if not relation_exists(wh, META_SCHEMA, "feature_group_costs"):
        return []
    cur = wh.execute(
        f"""select candidate_id, recorded_at, build_seconds, test_seconds, validation_seconds, rows, bytes_estimate
            from {COSTS} where feature_group = ? order by recorded_at desc limit {int(limit)}""", [feature_group])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
