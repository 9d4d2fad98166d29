"""What registering a model checks beyond its file (artifact.py): the user's metadata and metrics, and that the
estimator fits the training dataset it claims (inputs allowed by the TD's column roles, no label leakage, predicts on
its rows), from which the version's input and output schemas are derived."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FeatureStoreError
from . import artifact
from .td import TrainingDataset, column_type


def key_values(d: dict[str, Any] | None, what: str) -> dict[str, str]:
    """--meta / --tag pairs as strings (None -> "")."""
    out = {}
    for k, v in (d or {}).items():
        if not isinstance(k, str) or not k.strip():
            raise FeatureStoreError(f"{what} key {k!r} is empty", fix=f"write {what} as key=value")
        out[k.strip()] = "" if v is None else str(v)
    return out


def parse_metrics(m: dict[str, Any] | str | None) -> dict[str, float]:
    """--metrics (a dict or its JSON) as name -> finite float."""
    if m is None:
        return {}
    if isinstance(m, str):
        try:
            m = json.loads(m)
        except ValueError as e:
            raise FeatureStoreError(f"--metrics is not valid JSON: {e}",
                                    fix='write e.g. --metrics \'{"auc": 0.91, "log_loss": 0.3}\'') from None
    if not isinstance(m, dict):
        raise FeatureStoreError("metrics must be a JSON object of name -> number", fix='e.g. {"auc": 0.91}')
    out = {}
    for k, v in m.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
            raise FeatureStoreError(f"metric {k!r} is {v!r}, not a finite number", fix='e.g. {"auc": 0.91}')
        out[str(k)] = float(v)
    return out


def schemas_on_td(art: artifact.ArtifactFile, td: TrainingDataset, sample: pd.DataFrame,
                  transformed: bool) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """(input schema, output schema) of the artifact's estimator on rows of `td` (`sample`, untransformed), after
    checking that it can be used on them."""
    est, where = art.estimator, art.where
    if not td.labels:
        raise FeatureStoreError(f"training dataset {td.ref} declares no label column",
                                fix="declare the label in the feature view and create a new training dataset")
    label = td.labels[0]
    if transformed:
        from ..transforms import transform_dataframe
        from ..transforms.view import td_statistics

        sample = transform_dataframe(sample, td_statistics(td))
    roles = {c["name"]: c.get("role") for c in td.columns}
    names_in = getattr(est, "feature_names_in_", None)
    leaked = [c for c in td.labels if names_in is not None and c in [str(n) for n in names_in]]
    if leaked:
        raise FeatureStoreError(f"{where} was fitted with the label column(s) {', '.join(leaked)} as input",
                                fix="drop the label from the model's inputs (label leakage)")
    # inputs: features, request-time spine columns, and (transformed) the columns transformations produced;
    # never keys, timestamps, labels or the split
    allowed = [c for c in sample.columns if roles.get(c, "feature") not in ("key", "timestamp", "label", "split")]
    default = [c for c in allowed if roles.get(c, "feature") in ("feature", "on_demand")]
    inputs = artifact.input_columns(est, allowed, where, default=default)
    # declared TD types; a transformed column's type is what the transformation made of it
    types = {} if transformed else {c["name"]: c["type"] for c in td.columns}
    try:
        est.predict(artifact.model_frame(sample, inputs))
    except Exception as e:  # noqa: BLE001 - any failure here means the artifact does not fit the TD
        raise FeatureStoreError(
            f"{where} cannot predict on rows of training dataset {td.ref}: {type(e).__name__}: {e}",
            fix=f"train it on the training dataset's columns ({', '.join(inputs)}) as a pandas DataFrame"
            + ("" if transformed else "; if it was trained on transformed rows, register with --transformed"),
        ) from None
    input_schema = [{"name": c, "type": types.get(c) or str(sample[c].dtype)} for c in inputs]
    out_schema = artifact.output_schema(est, art.task, label, column_type(td, label))
    return input_schema, out_schema
