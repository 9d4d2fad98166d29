"""Scikit-learn artifacts: loading, inspecting, and the frame a model is fed.

SECURITY: artifacts are pickles (joblib or pickle); unpickling runs code chosen by whoever wrote the file. The
registry only unpickles (1) the file you pass to `register` yourself and (2) blobs whose sha256 matches the hash
recorded at registration. Never load a model artifact from anywhere else.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from ..errors import FeatureStoreError

FORMATS = {".joblib": "joblib", ".pkl": "pickle", ".pickle": "pickle"}


def artifact_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise FeatureStoreError(
            f"model artifact {path} has an unsupported extension {path.suffix!r}",
            fix="save a scikit-learn estimator or pipeline with joblib.dump(model, 'model.joblib') "
            "(.joblib, .pkl and .pickle are accepted)",
        )
    return fmt


def load_bytes(data: bytes, where: str) -> Any:
    """Unpickle an estimator (joblib reads plain pickles too). Only call on trusted, hash-verified bytes."""
    try:
        return joblib.load(io.BytesIO(data))
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the file is not a usable artifact
        raise FeatureStoreError(
            f"cannot load the model artifact {where}: {type(e).__name__}: {e}",
            fix="save the model with joblib.dump(model, path) using the same scikit-learn version as this venv",
        ) from None


def task_of(est: Any, where: str) -> str:
    from sklearn.base import is_classifier, is_regressor

    if not hasattr(est, "predict"):
        raise FeatureStoreError(f"{where} is a {type(est).__name__}, which has no predict()",
                                fix="register a fitted scikit-learn estimator or Pipeline")
    if is_classifier(est):
        return "classification"
    if is_regressor(est):
        return "regression"
    return "classification" if hasattr(est, "predict_proba") else "regression"


def check_fitted(est: Any, where: str) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(est)
    except NotFittedError:
        raise FeatureStoreError(f"{where} holds an unfitted {type(est).__name__}",
                                fix="call .fit(...) on the training split before saving the model") from None
    except TypeError:
        pass  # not a scikit-learn estimator proper; predict() will tell


def input_columns(est: Any, allowed: list[str], where: str, default: list[str] | None = None) -> list[str]:
    """The model's inputs: the columns it was fitted on (if it recorded them), each one of `allowed`; else
    `default` (the TD's features), which must match the number of inputs the model expects."""
    names = getattr(est, "feature_names_in_", None)
    if names is not None:
        cols = [str(c) for c in names]
        unknown = [c for c in cols if c not in allowed]
        if unknown:
            raise FeatureStoreError(
                f"{where} was fitted on column(s) {', '.join(unknown)} that the training dataset does not have "
                "as model inputs",
                fix=f"train on the training dataset's columns: {', '.join(allowed)}",
            )
        return cols
    default = list(allowed if default is None else default)
    n = getattr(est, "n_features_in_", None)
    if n is not None and n != len(default):
        raise FeatureStoreError(
            f"{where} expects {n} input columns but the training dataset has {len(default)} features",
            fix="fit the model on a pandas DataFrame of the training dataset's features so their names are recorded",
        )
    return default


def model_frame(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The frame a model sees, identical at training, validation and scoring: the input columns in order, numbers as
    float64 with NaN for NULL, everything else as object with np.nan for NULL."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise FeatureStoreError(f"input frame lacks model input column(s) {', '.join(missing)}",
                                fix=f"provide all of: {', '.join(columns)}")
    out = {}
    for c in columns:
        s = df[c]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            out[c] = pd.to_numeric(s, errors="coerce").astype("float64")
        else:
            o = s.astype(object)
            out[c] = o.where(pd.notna(o), np.nan)
    return pd.DataFrame(out, index=df.index)


def output_schema(est: Any, task: str, label: str, label_type: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"task": task, "label": label, "prediction": {"name": "prediction", "type": label_type}}
    if task == "classification":
        classes = getattr(est, "classes_", None)
        out["classes"] = [c.item() if hasattr(c, "item") else c for c in classes] if classes is not None else None
        out["probabilities"] = hasattr(est, "predict_proba")
    else:
        out["prediction"]["type"] = "double"
    return out
