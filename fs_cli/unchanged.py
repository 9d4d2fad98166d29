"""A candidate that is exactly the published version that a passing gate run already validated: nothing to publish.

`fs run` on a schedule mostly finds nothing new. Auditing such a candidate (copy, Soda contract, drift) and snapshotting
it (dbt's comparison of every row) cost about a third of the run and can only conclude "unchanged". It is skipped
when all of these hold, and audited and published as usual otherwise:
- the group is published and its latest commit is linked to a passing validation run (`Commit.validation`), so the
  withholding of unvalidated commits (fs_cli/online/withhold.py) and the link of a plain-dbt publish to a later passing
  run still happen through the normal path;
- it declares no freshness expectation: that check's answer changes with the clock, even on the same rows, and a
  scheduled run must keep failing when data stops arriving;
- the candidate has the same columns as the snapshot (no column added or removed), the same row count, and the same
  `Warehouse.content_token` over those columns (row count and order-independent sum of 64-bit row hashes; equal
  tokens of different rows need a hash collision). Pushed rows, erased keys the pre-hook would blank, corrected values
  all change the candidate, so they are audited and published as before.
"""

from __future__ import annotations

from .commits import LIVE, Commit, is_published, list_commits
from .declarations.model import FeatureGroup
from .warehouse import Warehouse


def validated_latest_commit(wh: Warehouse, fg: FeatureGroup) -> Commit | None:
    """The latest commit of `fg` when an unchanged candidate may skip the audit: published, that commit validated by a
    passing run, and no freshness expectation (its answer changes with the clock)."""
    if (fg.meta.get("expectations") or {}).get("freshness") is not None or not is_published(wh, fg):
        return None
    commits = list_commits(wh, fg)
    return commits[-1] if commits and commits[-1].validation == "passed" else None


def unchanged_validated_commit(wh: Warehouse, fg: FeatureGroup) -> Commit | None:
    """The latest commit of `fg` if its candidate equals that published version and a passing run validated it."""
    latest = validated_latest_commit(wh, fg)
    if latest is None:
        return None
    candidate = [c for c, _ in wh.describe(fg.relation)]
    published = [c for c, _ in wh.describe(fg.snapshot_relation) if not c.lower().startswith("dbt_")]
    if sorted(candidate) != sorted(published):
        return None
    cols = ", ".join(wh.quote(c) for c in candidate)
    live = f"(select {cols} from {fg.snapshot_relation} where {LIVE})"
    if wh.content_token(f"(select {cols} from {fg.relation})") != wh.content_token(live):
        return None
    return latest
