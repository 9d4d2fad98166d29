"""Serving only what was validated: which published commits of a feature group no passing gate run covers.

Plain `dbt build` / `dbt snapshot` publishes a feature group after its `fs_expectations` dbt tests only: the Soda
contract's future-time check, the PII scan and drift never ran (README, "Validation gate"). Such a commit carries no
passing validation run (`fs commits` shows `validation: none`). Materialization asks `unvalidated_commits` before it
serves a group:

- a table group (its whole candidate is audited by `fs run`) is covered when its latest commit carries a passing run:
  that run audited every row the group serves;
- an incremental group (`fs run` audits only the new batch) is covered when no live row comes from a commit without
  one: a later batch does not re-audit rows it did not touch.

`strict` groups that are not covered are withheld (the online store keeps serving its previous version, or nothing)
unless the caller allows it explicitly; `warn` groups are served with a warning. See
`fs_cli.online.from_warehouse.materialize_project`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..commits import list_commits
from ..warehouse import Warehouse


@dataclass
class Unvalidated:
    """Commits of one feature group the online copy would serve without a passing validation run."""

    feature_group: str
    policy: str
    commits: list[int]  # commit ids (0: a publish the commit log has not logged yet)
    incremental: bool

    @property
    def names(self) -> str:
        ids = [str(c) for c in self.commits if c]
        label = ("commit " if len(ids) == 1 else "commits ") + ", ".join(ids) if ids else ""
        if 0 in self.commits:
            label = f"{label} and an unlogged publish" if label else "an unlogged publish"
        return label

    def to_dict(self) -> dict[str, Any]:
        return {"feature_group": self.feature_group, "policy": self.policy, "commits": [c for c in self.commits if c],
                "unlogged_publish": 0 in self.commits}


def _naive(t: Any) -> Any:
    if isinstance(t, datetime) and t.tzinfo is not None:
        return t.astimezone(UTC).replace(tzinfo=None)
    return t


def is_incremental_group(catalog: Any, fg: Any) -> bool:
    """Whether `fs run` publishes `fg` from new batches (a dbt incremental model whose snapshot compares one
    ingestion column; the same rule as fs_cli.pipeline._incremental_batch), not from its whole candidate."""
    nodes = getattr(getattr(catalog, "manifest", None), "nodes", None) or {}
    model, snapshot = nodes.get(fg.unique_id), nodes.get(getattr(fg, "snapshot_unique_id", None) or "")
    if model is None or snapshot is None or getattr(model.config, "materialized", None) != "incremental":
        return False
    check_cols = snapshot.config.to_dict().get("check_cols")
    return isinstance(check_cols, list) and len(check_cols) == 1


def unvalidated_commits(wh: Warehouse, catalog: Any, fg: Any) -> Unvalidated | None:
    """The commits the online copy of `fg` would serve that no passing validation run covers (see the module doc);
    None when every served row is covered. For a `warn` group only commits without any gate run count (a commit
    published under `warn` despite failing checks was audited: `fs run` reported those)."""
    commits = list_commits(wh, fg)
    covered = ("passed",) if fg.policy == "strict" else ("passed", "failed")
    latest_instant = _naive(wh.scalar(
        f"select max(dbt_valid_from) from {fg.snapshot_relation}"))
    unlogged = latest_instant is not None and (not commits or _naive(commits[-1].commit_time) < latest_instant)
    incremental = is_incremental_group(catalog, fg)
    if not incremental:
        if not unlogged and commits and commits[-1].validation in covered:
            return None
        since = max((i for i, c in enumerate(commits) if c.validation in covered), default=-1)
        ids = [c.commit_id for c in commits[since + 1:]] + ([0] if unlogged else [])
        return Unvalidated(fg.name, fg.policy, ids, incremental)
    live_from = {_naive(r[0]) for r in wh.fetchall(
        f"""select distinct dbt_valid_from from {fg.snapshot_relation}
            where dbt_valid_to is null and coalesce(dbt_is_deleted, 'False') <> 'True'""")}
    ids = [c.commit_id for c in commits if c.validation not in covered and _naive(c.commit_time) in live_from]
    if unlogged:
        ids.append(0)
    return Unvalidated(fg.name, fg.policy, ids, incremental) if ids else None
