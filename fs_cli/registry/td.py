"""What the registry needs from training datasets (fs_cli.training): metadata by reference, rows by split."""

from __future__ import annotations

import pandas as pd

from ..errors import FeatureStoreError
from ..training import (
    TD_SCHEMA,
    TrainingDataset,
    decimals_as_double,
    get_td,
    list_tds,
    parse_ref,
    read_rows,
    td_order,
)
from ..warehouse import META_SCHEMA, Warehouse, relation_exists

__all__ = ["TD_SCHEMA", "TrainingDataset", "column_type", "decimals_as_double", "feature_names", "list_tds",
           "load_td", "parse_td_ref", "read_td", "td_order"]


def parse_td_ref(ref: str) -> tuple[str, int]:
    """FV:VERSION (training.parse_ref, with the version required): a model records the exact version it was trained
    on, so `latest` is not accepted here."""
    try:
        fv, version = parse_ref(ref)
    except FeatureStoreError:
        fv, version = "", None
    if version is None:
        raise FeatureStoreError(
            f"training dataset reference {ref!r} is not FEATURE_VIEW:VERSION",
            fix="write e.g. `--training-dataset fv_fraud_detection:1`; see `fs training-dataset list`",
        )
    return fv, version


def load_td(wh: Warehouse, feature_view: str, version: int) -> TrainingDataset:
    if not relation_exists(wh, META_SCHEMA, "training_datasets"):
        raise FeatureStoreError("no training datasets exist in this warehouse yet",
                                fix="create one first: `fs training-dataset create FEATURE_VIEW --split ...`")
    return get_td(wh, feature_view, version)


def feature_names(td: TrainingDataset) -> list[str]:
    return [f["name"] for f in td.features]


def column_type(td: TrainingDataset, name: str) -> str | None:
    return next((c.get("type") for c in td.columns if c.get("name") == name), None)


def read_td(wh: Warehouse, td: TrainingDataset, split: str | None = None) -> pd.DataFrame:
    """The version's rows (one split or all) in its canonical order, as pandas (decimals as float64)."""
    if split is not None and not td.row_counts.get(split):
        raise FeatureStoreError(
            f"training dataset {td.ref} has no rows in split {split!r} (splits: {td.row_counts})",
            fix="validate on a training dataset with a held-out split: "
            "`fs training-dataset create FV --split random:0.8,0.2:42`",
        )
    return read_rows(wh, td, split).to_pandas()
