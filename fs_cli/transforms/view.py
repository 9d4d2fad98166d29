"""Transformations and on-demand features of a feature view, as declared: parsing and declare-time validation
against the view's column types, and the fitted statistics of a training dataset (TD) version.

Who calls what:
- catalog load:  validate_feature_view(catalog, fv)  -> clear DeclarationError at declare time
- TD build:      fs_cli.training_transforms.fit_training_dataset (a build step the SDK passes to training.create)
- SDK:           fs_cli.training_transforms.read_transformed / transform_frame (scoring through a TD version)
- online:        fs_cli.online.td_statistics publishes the statistics; fs_cli.transforms.served_vector applies them
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import FeatureStoreError, Problems
from .ondemand import OnDemandFeature, parse_on_demand
from .spec import TransformPlan, parse_transformations

if TYPE_CHECKING:
    from ..declarations.model import Catalog, FeatureView


@dataclass
class ViewTransforms:
    plan: TransformPlan
    on_demand: list[OnDemandFeature]

    @property
    def empty(self) -> bool:
        return not self.plan.chains and not self.on_demand


def view_column_types(catalog: Catalog, fv: FeatureView) -> dict[str, str | None]:
    """name -> declared type of every column the view outputs (spine columns: None unless the spine's YAML declares
    data_type; features: their feature group's column type)."""
    types: dict[str, str | None] = {}
    spine_types: dict[str, str | None] = {}
    manifest = getattr(catalog, "manifest", None)
    if manifest is not None and getattr(fv, "spine_model", None):
        for node in manifest.nodes.values():
            if node.resource_type in ("model", "seed", "snapshot") and node.name == fv.spine_model:
                spine_types = {c.name: c.data_type for c in node.columns.values()}
                break
    for c in fv.spine_columns:
        types[c] = spine_types.get(c)
    for out, fg_name, feature in fv.feature_columns:
        fg = catalog.feature_groups.get(fg_name)
        types[out] = next((c.data_type for c in fg.columns if c.name == feature), None) if fg else None
    return types


def parse_view(fv: FeatureView, types: Mapping[str, str | None], defer_unknown: bool = False) -> ViewTransforms:
    """Validate a view's `on_demand` and `transformations` against column types; every problem in one error."""
    where = f"feature view {fv.name} ({fv.path}): config.meta.fs.feature_view"
    problems = Problems()
    on_demand: list[OnDemandFeature] = []
    od_names = {d["name"] for d in fv.on_demand if isinstance(d, Mapping) and isinstance(d.get("name"), str)}
    base = {k: v for k, v in types.items() if k not in od_names}  # a built TD already holds the on-demand columns
    with problems.collecting():
        on_demand = parse_on_demand(fv.on_demand, base, base, where=f"{where}.on_demand", defer_unknown=defer_unknown)
    all_types = dict(types)
    for decl in fv.on_demand:  # even a broken on-demand feature is a column: report transformations separately
        if isinstance(decl, Mapping) and isinstance(decl.get("name"), str):
            all_types.setdefault(decl["name"], None)
    all_types.update({o.name: o.data_type or None for o in on_demand})
    plan = TransformPlan([], [])
    with problems.collecting():
        plan = parse_transformations(fv.transformations, all_types, where=f"{where}.transformations",
                                     defer_unknown=defer_unknown)
    problems.raise_if_any()
    return ViewTransforms(plan, on_demand)


def validate_feature_view(catalog: Catalog, fv: FeatureView) -> ViewTransforms:
    """Declare-time check (catalog load): unknown features, functions not applicable to the declared type, bad
    arguments, on-demand expressions referencing undeclared inputs. Spine columns without a declared data_type are
    checked again with their real types when a training dataset is built."""
    return parse_view(fv, view_column_types(catalog, fv), defer_unknown=True)


def td_statistics(td: Any) -> dict[str, Any]:
    """The fitted transformation statistics of a TD version, or a clear error if it has none."""
    stats = (td.statistics or {}).get("transformations")
    if not stats:
        raise FeatureStoreError(
            f"training dataset {td.ref} has no fitted transformations",
            fix=f"declare `transformations:` in feature view {td.feature_view} and create a new version "
                "(statistics are fitted when a version is created)")
    return stats
