"""Provenance: model version -> training dataset -> feature view -> feature-group commits -> dbt models and sources;
and the reverse (which training datasets and models used a feature group)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..commits import COMMITS
from ..discovery import upstream_lineage
from ..warehouse import META_SCHEMA, relation_exists, store_exists
from .td import feature_names, list_tds, load_td

if TYPE_CHECKING:
    from .registry import ModelRegistry


def _commit_details(con, commits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    has_log = relation_exists(con, META_SCHEMA, "commits")
    out = []
    for c in commits:
        d = dict(c)
        if has_log and c.get("commit_id") is not None:
            rows = con.execute(f"select commit_time, inserted, updated, deleted, rows from {COMMITS} "
                               "where feature_group = ? and commit_id = ?",
                               [c["feature_group"], int(c["commit_id"])]).fetchall()
            if rows:
                t, ins, upd, dele, n = rows[0]
                d.update(commit_time=str(t), inserted=ins, updated=upd, deleted=dele, rows=n)
        out.append(d)
    return out


def model_lineage(reg: ModelRegistry, ref: str) -> dict[str, Any]:
    m = reg.info(ref)
    with reg.project.warehouse(read_only=True) as con:
        td = load_td(con, m.training_dataset, m.training_dataset_version)
        commits = _commit_details(con, m.fg_commits or td.fg_commits)
    cat = reg.fs.catalog
    fv = cat.feature_views.get(m.training_dataset)
    upstream = upstream_lineage(cat.manifest, fv.unique_id) if fv else []
    fgs = []
    for c in commits:
        fg = cat.feature_groups.get(str(c["feature_group"]))
        fgs.append({**c, "model": fg.unique_id if fg else None,
                    "upstream": [n["name"] for n in (upstream_lineage(cat.manifest, fg.unique_id) if fg else [])]})
    return {
        "model": {"name": m.name, "version": m.version, "status": m.status, "aliases": m.aliases,
                  "artifact_sha256": m.artifact_sha256, "created_at": m.created_at, "task": m.task},
        "training_dataset": {"feature_view": td.feature_view, "version": td.version, "created_at": td.created_at,
                             "as_of": td.as_of, "content_hash": td.content_hash,
                             "hash_at_registration": m.training_dataset_hash, "split": td.split,
                             "row_counts": td.row_counts, "features": feature_names(td), "labels": td.labels},
        "feature_view": {"name": m.training_dataset, "unique_id": fv.unique_id if fv else None,
                         "relation": fv.relation if fv else None, "in_project": fv is not None},
        "feature_group_commits": fgs,
        "dbt_nodes": upstream,
        "sources": sorted({n["name"] for n in upstream if n["type"] in ("source", "seed")}),
    }


def fg_impact(reg: ModelRegistry, feature_group: str) -> dict[str, Any]:
    cat = reg.fs.catalog
    fg = cat.fg(feature_group)  # validates the name
    views = sorted(v.name for v in cat.feature_views.values()
                   if any(n["unique_id"] in (fg.unique_id, fg.snapshot_unique_id)
                          for n in upstream_lineage(cat.manifest, v.unique_id)))
    tds, models = [], []
    if store_exists(reg.project):
        with reg.project.warehouse(read_only=True) as con:
            for td in list_tds(con):
                used = [c for c in td.fg_commits if c["feature_group"] == fg.name]
                if used or (not td.fg_commits and td.feature_view in views):
                    tds.append({"training_dataset": td.ref, "feature_view": td.feature_view, "version": td.version,
                                "commit_ids": [c.get("commit_id") for c in used], "created_at": td.created_at})
    td_refs = {t["training_dataset"] for t in tds}
    for m in reg.list():
        via_commits = any(c.get("feature_group") == fg.name for c in m.fg_commits)
        if via_commits or f"{m.training_dataset}:{m.training_dataset_version}" in td_refs:
            models.append({"model": m.ref, "status": m.status, "aliases": m.aliases,
                           "training_dataset": f"{m.training_dataset}:{m.training_dataset_version}",
                           "commit_ids": [c.get("commit_id") for c in m.fg_commits
                                          if c.get("feature_group") == fg.name]})
    return {"feature_group": fg.name, "feature_views": views, "training_datasets": tds, "models": models}
