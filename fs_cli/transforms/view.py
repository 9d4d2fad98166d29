"""Transformations and on-demand features of a feature view: declare-time validation, fitting when a training
dataset (TD) version is built, and reading / scoring through a TD version's fitted statistics (SDK).

Wiring (the other modules call these):
- catalog load:  validate_feature_view(catalog, fv)            -> clear DeclarationError at declare time
- TD build:      training.TD_BUILD_STEPS.append(fit_training_dataset)
                 -> the TD version's `statistics` = {"transformations": <fitted stats>, "on_demand": [...]}
- SDK:           read_transformed(project, fv, version, split) / transform_frame(project, df, fv, version)
- online:        fs_cli.transforms.serving (statistics published with the view into the online store)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import DeclarationError, FeatureStoreError
from .fit import column_types, fit
from .ondemand import OnDemandFeature, parse_on_demand
from .spec import TransformPlan, parse_transformations
from .sql import render_select

SPLIT_COLUMN = "split"  # fs_cli.training.SPLIT_COLUMN (not imported: training imports this module)
TRAIN = "train"


@dataclass
class ViewTransforms:
    plan: TransformPlan
    on_demand: list[OnDemandFeature]

    @property
    def empty(self) -> bool:
        return not self.plan.chains and not self.on_demand


def view_column_types(catalog: Any, fv: Any) -> dict[str, str | None]:
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


def parse_view(fv: Any, types: Mapping[str, str | None], defer_unknown: bool = False) -> ViewTransforms:
    """Validate a view's `on_demand` and `transformations` against column types; every problem in one error."""
    where = f"feature view {fv.name} ({fv.path}): config.meta.fs.feature_view"
    problems: list[FeatureStoreError] = []
    on_demand: list[OnDemandFeature] = []
    od_names = {d["name"] for d in fv.on_demand if isinstance(d, Mapping) and isinstance(d.get("name"), str)}
    base = {k: v for k, v in types.items() if k not in od_names}  # a built TD already holds the on-demand columns
    try:
        on_demand = parse_on_demand(fv.on_demand, base, base, where=f"{where}.on_demand", defer_unknown=defer_unknown)
    except DeclarationError as e:
        problems += e.problems
    all_types = dict(types)
    for decl in fv.on_demand:  # even a broken on-demand feature is a column: report transformations separately
        if isinstance(decl, Mapping) and isinstance(decl.get("name"), str):
            all_types.setdefault(decl["name"], None)
    all_types.update({o.name: o.data_type or None for o in on_demand})
    plan = TransformPlan([], [])
    try:
        plan = parse_transformations(fv.transformations, all_types, where=f"{where}.transformations",
                                     defer_unknown=defer_unknown)
    except DeclarationError as e:
        problems += e.problems
    if problems:
        raise DeclarationError(problems)
    return ViewTransforms(plan, on_demand)


def validate_feature_view(catalog: Any, fv: Any) -> ViewTransforms:
    """Declare-time check (catalog load): unknown features, functions not applicable to the declared type, bad
    arguments, on-demand expressions referencing undeclared inputs. Spine columns without a declared data_type are
    checked again with their real types when a training dataset is built."""
    return parse_view(fv, view_column_types(catalog, fv), defer_unknown=True)


def fit_training_dataset(wh: Any, relation: str, fv: Any, meta: dict[str, Any]) -> dict[str, Any] | None:
    """TD build step (fs_cli.training.TD_BUILD_STEPS): fit the view's transformations on the TRAIN split of the
    freshly built TD table `relation` in warehouse `wh` (its real column types; on-demand columns are already
    computed in it)."""
    if not fv.transformations and not fv.on_demand:
        return None
    vt = parse_view(fv, column_types(wh, relation))
    out: dict[str, Any] = {}
    if vt.on_demand:
        out["on_demand"] = [o.to_dict() for o in vt.on_demand]
    if vt.plan.chains:
        train_rows = (meta.get("row_counts") or {}).get(TRAIN, 0)
        if not train_rows:
            raise FeatureStoreError(
                f"feature view {fv.name} declares transformations, but the training dataset has no `{TRAIN}` rows "
                "to fit them on",
                fix="use a split with a train part (e.g. --split random:0.8,0.2:42) and a spine with rows")
        out["transformations"] = fit(wh, relation, vt.plan, split_column=SPLIT_COLUMN, train_value=TRAIN)
    return out


def td_statistics(td: Any) -> dict[str, Any]:
    """The fitted transformation statistics of a TD version, or a clear error if it has none."""
    stats = (td.statistics or {}).get("transformations")
    if not stats:
        raise FeatureStoreError(
            f"training dataset {td.ref} has no fitted transformations",
            fix=f"declare `transformations:` in feature view {td.feature_view} and create a new version "
                "(statistics are fitted when a version is created)")
    return stats


def read_transformed(project: Any, feature_view: str, version: int | None = None,
                     split: str | None = None) -> tuple[Any, Any]:
    """(td, Arrow table) of a TD version with its transformations applied by the SQL path, canonical row order."""
    from .. import training

    with project.warehouse(read_only=True) as wh:
        td = training.get_td(wh, feature_view, version)
        stats = td_statistics(td)
        if split is not None and split not in td.row_counts:
            raise FeatureStoreError(f"training dataset {td.ref} has no split {split!r}",
                                    fix=f"its splits: {', '.join(td.row_counts)}")
        where, params = (f"where {wh.quote(SPLIT_COLUMN)} = ?", [split]) if split is not None else ("", [])
        # number the rows in canonical order first: the transformed projection may replace an ordering column
        inner = (f"(select *, row_number() over (order by {training.td_order_by(wh, td)}) as __fs_order "
                 f"from {td.table} {where}) as __fs_td")
        sql = render_select(inner, stats, columns=[*stats["input_columns"], "__fs_order"])
        table = wh.arrow(f"select * from ({sql}) as __fs_t order by {wh.quote('__fs_order')}", params)
    return td, training.decimals_as_double(table.drop_columns(["__fs_order"]))


def transform_frame(project: Any, frame: Any, feature_view: str, version: int | None = None) -> Any:
    """Batch scoring: transform a pandas DataFrame / Arrow table of the view's columns with a TD version's fitted
    statistics (default: the latest version), through the same SQL as the training data. Returns pandas."""
    from .. import training
    from . import transform_dataframe

    return transform_dataframe(frame, td_statistics(training.info(project, feature_view, version)))
