"""A training dataset's transformations: fitting them on the train split when a version is built (a build step
the SDK hands to training.create), and reading or scoring through a version's fitted statistics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from . import training
from .errors import FeatureStoreError
from .transforms import render_select, transform_dataframe
from .transforms.fit import column_types, fit
from .transforms.view import parse_view, td_statistics

if TYPE_CHECKING:
    import pandas as pd

    from .metadata import FeatureView
    from .project import Project
    from .warehouse import Warehouse

SPLIT_COLUMN = training.SPLIT_COLUMN
TRAIN = "train"  # the split transformations are fitted on


def fit_training_dataset(wh: Warehouse, relation: str, fv: FeatureView,
                         meta: dict[str, Any]) -> dict[str, Any] | None:
    """TD build step (a `training.TDBuildStep`, passed to training.create by the SDK): fit the view's
    transformations on the TRAIN split of the freshly built TD table `relation` in warehouse `wh` (its real column types; on-demand columns are already
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


def read_transformed(project: Project, feature_view: str, version: int | None = None,
                     split: str | None = None) -> tuple[training.TrainingDataset, pa.Table]:
    """(td, Arrow table) of a TD version with its transformations applied by the SQL path, canonical row order."""
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
        sql = render_select(inner, stats, columns=[*stats["input_columns"], "__fs_order"], engine=wh.engine)
        table = wh.arrow(f"select * from ({sql}) as __fs_t order by {wh.quote('__fs_order')}", params)
    return td, training.decimals_as_double(table.drop_columns(["__fs_order"]))


def transform_frame(project: Project, frame: pd.DataFrame | pa.Table, feature_view: str,
                    version: int | None = None) -> pd.DataFrame:
    """Batch scoring: transform a pandas DataFrame / Arrow table of the view's columns with a TD version's fitted
    statistics (default: the latest version), through the same SQL as the training data. Returns pandas."""
    return transform_dataframe(frame, td_statistics(training.info(project, feature_view, version)))
