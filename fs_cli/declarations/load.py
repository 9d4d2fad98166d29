"""The Catalog, read from dbt's manifest: every feature group and feature view parsed and checked before anything is
written. A bad declaration raises DeclarationError naming the model, the field and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import FeatureStoreError, Problems
from .entities import load_entities
from .feature_groups import parse_feature_group
from .feature_views import parse_feature_view
from .model import Catalog, FeatureGroup, FeatureView
from .nodes import feature_group_name, is_feature_group


def load_catalog(manifest, project_dir: Path, vars: dict[str, Any] | None = None, strict: bool = True,
                 isolate: bool = False) -> Catalog:
    """Read and validate every feature group and feature view in the manifest. `strict`: any invalid declaration
    raises (before anything is written); `isolate`: an invalid one goes to `Catalog.broken` instead, and the others
    are served (read-only commands: one broken group does not hide the rest)."""
    entities = load_entities(project_dir, vars)
    problems = Problems()
    broken: dict[str, list[FeatureStoreError]] = {}
    fgs: dict[str, FeatureGroup] = {}
    fvs: dict[str, FeatureView] = {}
    fv_nodes = []
    snapshots = {n.depends_on.nodes[0]: n for n in manifest.nodes.values()
                 if n.resource_type == "snapshot" and len(n.depends_on.nodes) == 1}
    for node in manifest.nodes.values():
        if node.resource_type != "model":
            continue
        meta_fs = (node.config.meta or {}).get("fs")
        if isinstance(meta_fs, dict) and "feature_view" in meta_fs:
            fv_nodes.append(node)  # parsed below: a view refers to feature groups
            continue
        if not is_feature_group(node):
            continue
        fg, errs = parse_feature_group(node, meta_fs, entities, snapshots.get(node.unique_id))
        problems.extend(errs)
        if errs:
            broken[feature_group_name(node)] = errs
        if fg is not None:
            fgs[fg.name] = fg
    for node in fv_nodes:
        fv, errs = parse_feature_view(node, node.config.meta["fs"]["feature_view"], fgs, entities, manifest)
        problems.extend(errs)
        uses_broken = sorted({s.feature_group for s in fv.selections} & set(broken))
        if uses_broken:
            errs = [*errs, FeatureStoreError(
                f"feature view {fv.name} uses feature group(s) {', '.join(uses_broken)}, whose declaration is invalid",
                fix=f"fix {', '.join(uses_broken)} first (`fs describe {uses_broken[0]}` names the problem)")]
        if errs:
            broken[fv.name] = errs
        fvs[fv.name] = fv
    if strict and not isolate:
        problems.raise_if_any()
    if isolate:
        fgs = {n: fg for n, fg in fgs.items() if n not in broken}
        fvs = {n: fv for n, fv in fvs.items() if n not in broken}
    return Catalog(entities=entities, feature_groups=fgs, feature_views=fvs, manifest=manifest,
                   broken=broken if isolate else {})
