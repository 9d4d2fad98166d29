"""Scikit-learn artifacts: formats and their trust, loading, inspecting, and the frame a model is fed.

Formats (by file extension):
- `.skops` (skops.io): a zip of JSON and numpy arrays, rebuilt node by node without unpickling. skops constructs
  only types it trusts by default (scikit-learn estimators, numpy/scipy arrays) plus the types named in `trusted`;
  anything else is refused before construction. This is the format to use.
- `.joblib` / `.pkl` / `.pickle`: pickles. Unpickling runs code chosen by whoever wrote the file (a `__reduce__`
  can call anything), so the registry refuses them unless registration explicitly trusts them
  (`trust_pickle=True` / `--trust-pickle`), and never opens one before that check.

Every version records what was trusted (`artifact_trust`), and loading uses exactly that: a skops artifact is loaded
with the types recorded at registration only, so a blob swapped later (even with a forged hash row) cannot bring in
a new type.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FeatureStoreError

FORMATS = {".skops": "skops", ".joblib": "joblib", ".pkl": "pickle", ".pickle": "pickle"}
PICKLE_FORMATS = frozenset({"joblib", "pickle"})

# Types skops does not trust by default but that cannot run code or read out of bounds when built from a skops file:
# a numpy.dtype is rebuilt from an empty array read with np.load(allow_pickle=False). (Tree types such as
# sklearn.tree._tree.Tree are NOT here: skops documents that crafted node indices make predict() read out of bounds.)
SAFE_EXTRA_TYPES = frozenset({"numpy.dtype"})

SAVE_HINT = "save it with skops: `import skops.io as sio; sio.dump(model, 'model.skops')`"


def artifact_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise FeatureStoreError(
            f"model artifact {path} has an unsupported extension {path.suffix!r}",
            fix=f"{SAVE_HINT} (.skops; pickles .joblib/.pkl/.pickle only with --trust-pickle)",
        )
    return fmt


def untrusted_types(data: bytes, where: str) -> list[str]:
    """The types in a skops file that skops does not trust by default (read from its schema; nothing is built)."""
    import skops.io as sio

    try:
        return list(sio.get_untrusted_types(data=data))
    except Exception as e:  # noqa: BLE001 - a file skops cannot read is not a usable artifact, whatever the cause
        raise FeatureStoreError(f"cannot read the skops artifact {where}: {type(e).__name__}: {e}",
                                fix=f"{SAVE_HINT} with the skops and scikit-learn versions of this venv") from None


def trust_for(fmt: str, data: bytes, where: str, trust_pickle: bool = False,
              trusted_types: list[str] | tuple[str, ...] | None = None) -> dict[str, Any]:
    """What registering this artifact trusts, checked BEFORE anything is loaded; raises when the caller has not
    trusted enough. Recorded with the version (`artifact_trust`) and used, unchanged, on every later load."""
    if fmt in PICKLE_FORMATS:
        if not trust_pickle:
            raise FeatureStoreError(
                f"{where} is a pickle ({fmt}); loading a pickle runs whatever code its author put in it, so the "
                "registry does not open it unless you trust it explicitly",
                fix=f"{SAVE_HINT} and register the .skops file; or, only for a file you produced yourself, pass "
                "--trust-pickle (SDK: register(..., trust_pickle=True))",
            )
        return {"format": fmt, "executes_code": True, "trust_pickle": True}
    if isinstance(trusted_types, str):  # one type name, not its characters
        trusted_types = [trusted_types]
    found = set(untrusted_types(data, where))
    refused = sorted(found - SAFE_EXTRA_TYPES - {str(t) for t in trusted_types or ()})
    if refused:
        flags = " ".join(f"--trust-type {t}" for t in refused)
        raise FeatureStoreError(
            f"{where} contains type(s) that skops does not trust by default: {', '.join(refused)}",
            fix=f"if you produced this file and trust these types, pass {flags} (SDK: register(..., "
            f"trusted_types={refused!r})); tree models (DecisionTree, RandomForest, GradientBoosting, "
            "HistGradientBoosting) need their tree type trusted",
        )
    # exactly the non-default types this file holds: a later load passes these and nothing else to skops
    return {"format": fmt, "executes_code": False, "trusted_types": sorted(found)}


def describe_trust(fmt: str, trust: dict[str, Any] | None) -> str:
    """One line for `fs model show`: the format and what loading it trusts."""
    if fmt == "skops":
        types = (trust or {}).get("trusted_types") or []
        return f"skops (no code runs on load; trusted types beyond skops' defaults: {', '.join(types) or 'none'})"
    if trust and trust.get("trust_pickle"):
        return f"{fmt} (pickle: runs code on load; trusted explicitly at registration)"
    return f"{fmt} (pickle: runs code on load; registered before trust was recorded)"


def load_bytes(data: bytes, where: str, fmt: str, trust: dict[str, Any] | None) -> Any:
    """The estimator in `data` (hash-verified bytes), loaded as registration recorded: a skops artifact with exactly
    its recorded trusted types, a pickle only if it was trusted (or registered before trust was recorded)."""
    if fmt == "skops":
        return _load_skops(data, where, list((trust or {}).get("trusted_types") or []))
    if fmt in PICKLE_FORMATS:
        if trust is not None and not trust.get("trust_pickle"):
            raise FeatureStoreError(f"{where} is a pickle that was not trusted at registration; refusing to load it",
                                    fix=f"{SAVE_HINT} and register it again")
        return _load_pickle(data, where)
    raise FeatureStoreError(f"{where} has an unknown artifact format {fmt!r}",
                            fix=f"register the model again; {SAVE_HINT}")


def _load_skops(data: bytes, where: str, trusted: list[str]) -> Any:
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        return sio.loads(data, trusted=trusted)
    except UntrustedTypesFoundException as e:
        raise FeatureStoreError(
            f"refusing to load {where}: it contains types that were not trusted when it was registered ({e})",
            fix="the artifact is not the one that was registered; restore it from backup, or register a trusted "
            "artifact again",
        ) from None
    except Exception as e:  # noqa: BLE001 - any failure here means the file is not a usable artifact
        raise FeatureStoreError(f"cannot load the skops artifact {where}: {type(e).__name__}: {e}",
                                fix=f"{SAVE_HINT} with the skops and scikit-learn versions of this venv") from None


def _load_pickle(data: bytes, where: str) -> Any:
    """Unpickle an estimator (joblib reads plain pickles too). Only for explicitly trusted, hash-verified bytes."""
    import joblib

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


@dataclass
class ArtifactFile:
    """A model file read for registration: its bytes, format, what registering it trusts, and the estimator."""

    path: Path
    fmt: str
    data: bytes
    trust: dict[str, Any]
    estimator: Any
    task: str

    @property
    def where(self) -> str:
        return f"artifact {self.path}"


def inspect_file(path: str | os.PathLike, trust_pickle: bool = False,
                 trusted_types: list[str] | None = None) -> ArtifactFile:
    """Read the artifact at `path`, check its trust BEFORE loading it, then load it and check that it is a fitted
    estimator with predict()."""
    p = Path(path)
    if not p.is_file():
        raise FeatureStoreError(f"model artifact {p} does not exist", fix=f"save the fitted model first: {SAVE_HINT}")
    fmt = artifact_format(p)
    data = p.read_bytes()
    where = f"artifact {p}"
    trust = trust_for(fmt, data, where, trust_pickle=trust_pickle, trusted_types=trusted_types)
    est = load_bytes(data, where, fmt, trust)  # only after the trust check above
    task = task_of(est, where)
    check_fitted(est, where)
    return ArtifactFile(p, fmt, data, trust, est, task)


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
