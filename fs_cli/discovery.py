"""Feature discovery: list, describe and search feature groups and views, from the manifest and the warehouse."""

from __future__ import annotations

from typing import Any

from .commits import is_published, list_commits, sync_project
from .declarations.load import load_catalog
from .declarations.model import Catalog, FeatureGroup
from .project import Project
from .timeutil import format_ttl
from .warehouse import store_exists


def load(project: Project, refresh: bool = False, isolate: bool = False) -> Catalog:
    """The catalog; any invalid declaration raises, unless `isolate` (read-only commands): then invalid groups and
    views are left out, in `Catalog.broken`, and the others are served."""
    if refresh:
        return _load(project, True, isolate)
    if not project.reading_shared:  # inside reading() the project is read once, as it was when the block began
        project.forget_manifest_if_edited()
    return project.memo(("catalog", isolate), lambda: _load(project, False, isolate))


def _load(project: Project, refresh: bool, isolate: bool) -> Catalog:
    catalog = load_catalog(project.manifest(refresh=refresh), project.dir, project.vars, isolate=isolate)
    _validate_transforms(catalog, isolate)
    return catalog


def _validate_transforms(catalog: Catalog, isolate: bool = False) -> None:
    """Feature views' transformations and on-demand features fail here, at declare time."""
    from .errors import DeclarationError
    from .transforms.view import validate_feature_view

    problems = []
    for fv in list(catalog.feature_views.values()):
        if getattr(fv, "transformations", None) or getattr(fv, "on_demand", None):
            try:
                validate_feature_view(catalog, fv)
            except DeclarationError as e:
                problems += e.problems
                if isolate:
                    catalog.broken[fv.name] = e.problems
                    del catalog.feature_views[fv.name]
    if problems and not isolate:
        raise DeclarationError(problems)


def upstream_lineage(manifest, unique_id: str) -> list[dict[str, str]]:
    """Every upstream node (models, seeds, sources, snapshots), nearest first."""
    seen: list[dict[str, str]] = []
    ids: set[str] = set()
    frontier = [unique_id]
    depth = 0
    while frontier:
        depth += 1
        nxt = []
        for uid in frontier:
            node = manifest.nodes.get(uid) or manifest.sources.get(uid)
            parents = list(getattr(getattr(node, "depends_on", None), "nodes", []) or [])
            for p in parents:
                if p in ids:
                    continue
                ids.add(p)
                pnode = manifest.nodes.get(p) or manifest.sources.get(p)
                seen.append({
                    "unique_id": p,
                    "name": getattr(pnode, "name", p),
                    "type": p.split(".")[0],
                    "depth": str(depth),
                })
                nxt.append(p)
        frontier = nxt
    return seen


def _stats(project: Project, fgs: list[FeatureGroup]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {fg.name: {"latest_commit": None, "rows": None, "commits": 0} for fg in fgs}
    if not store_exists(project):
        return out
    sync_project(project, fgs)  # publishes made outside `fs run` are commits too
    with project.warehouse(read_only=True) as wh:
        for fg in fgs:
            if not is_published(wh, fg):
                continue
            commits = list_commits(wh, fg)
            if commits:
                out[fg.name] = {
                    "latest_commit": commits[-1].to_dict(),
                    "rows": commits[-1].rows,
                    "commits": len(commits),
                }
    return out


def list_feature_groups(project: Project) -> list[dict[str, Any]]:
    cat = load(project, isolate=True)
    fgs = sorted(cat.feature_groups.values(), key=lambda f: f.name)
    stats = _stats(project, fgs)
    rows = []
    for fg in fgs:
        s = stats[fg.name]
        rows.append({
            "name": fg.name,
            "kind": "feature_group",
            "entities": fg.entities,
            "event_time": fg.event_time,
            "features": len(fg.features),
            "online": fg.online,
            "ttl": format_ttl(fg.ttl),
            "owner": fg.owner,
            "tags": fg.tags,
            "policy": fg.policy,
            "commits": s["commits"],
            "latest_commit": s["latest_commit"],
            "rows": s["rows"],
            "description": fg.description,
        })
    for fv in sorted(cat.feature_views.values(), key=lambda v: v.name):
        rows.append({
            "name": fv.name,
            "kind": "feature_view",
            "entities": [],
            "features": len(fv.feature_columns),
            "description": fv.description,
        })
    for name, problems in sorted(cat.broken.items()):  # listed, not hidden: what is wrong, in one line
        rows.append({"name": name, "kind": "invalid", "entities": [], "features": None,
                     "description": f"invalid declaration: {problems[0].message} (`fs describe {name}`)"})
    return rows


def describe(project: Project, name: str) -> dict[str, Any]:
    cat = load(project, isolate=True)
    if name in cat.feature_views:
        fv = cat.feature_views[name]
        return {"kind": "feature_view", "name": fv.name, "description": fv.description, "path": fv.path,
                "spec": fv.spec, "lineage": upstream_lineage(cat.manifest, fv.unique_id)}
    fg = cat.fg(name)
    d = fg.to_dict()
    d["kind"] = "feature_group"
    d["lineage"] = upstream_lineage(cat.manifest, fg.unique_id)
    d["sources"] = [n["name"] for n in d["lineage"] if n["type"] in ("source", "seed")]
    d.update(_stats(project, [fg])[fg.name])
    if store_exists(project):
        from .validation.cost import cost_history  # validation/ imports Soda's stack

        with project.warehouse(read_only=True) as wh:
            d["commit_log"] = [c.to_dict() for c in list_commits(wh, fg)] if is_published(wh, fg) else []
            d["cost"] = cost_history(wh, fg.name, limit=5)  # per validated run (fs_cli/validation/cost.py)
    else:
        d["commit_log"] = []
        d["cost"] = []
    return d


def search(project: Project, text: str) -> list[dict[str, Any]]:
    """Case-insensitive match over names, descriptions, tags, owners and feature names/descriptions."""
    cat = load(project, isolate=True)
    q = text.lower().strip()
    hits = []
    for fg in sorted(cat.feature_groups.values(), key=lambda f: f.name):
        group_text = " ".join([fg.name, fg.description, fg.owner, " ".join(fg.tags), " ".join(fg.entities)]).lower()
        if q in group_text:
            hits.append({"kind": "feature_group", "feature_group": fg.name, "name": fg.name,
                         "data_type": None, "description": fg.description})
        for c in fg.features:
            if q in c.name.lower() or q in (c.description or "").lower():
                hits.append({"kind": "feature", "feature_group": fg.name, "name": c.name,
                             "data_type": c.data_type, "description": c.description})
    for fv in sorted(cat.feature_views.values(), key=lambda v: v.name):
        if q in fv.name.lower() or q in fv.description.lower():
            hits.append({"kind": "feature_view", "feature_group": None, "name": fv.name,
                         "data_type": None, "description": fv.description})
    return hits
