"""What one model version is: its registry row (`ModelVersion`), its reference syntax (`parse_model_ref`), and the
version loaded for scoring (`LoadedModel`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FeatureStoreError
from . import artifact
from .config import check_alias, check_name


def parse_model_ref(ref: str) -> tuple[str, int | None, str | None]:
    """NAME, NAME:VERSION or NAME@ALIAS -> (name, version, alias)."""
    if "@" in ref:
        name, _, alias = ref.partition("@")
        return check_name(name), None, check_alias(alias)
    name, sep, ver = ref.partition(":")
    if sep:
        if not ver.isdigit():
            raise FeatureStoreError(f"model reference {ref!r}: version {ver!r} is not a number",
                                    fix="write NAME, NAME:VERSION (e.g. fraud_model:3) or NAME@ALIAS")
        return check_name(name), int(ver), None
    return check_name(name), None, None


@dataclass
class ModelVersion:
    name: str
    version: int
    created_at: datetime
    created_by: str | None
    artifact_sha256: str
    artifact_bytes: int
    artifact_format: str
    artifact_path: str
    estimator_class: str | None
    task: str
    training_dataset: str
    training_dataset_version: int
    training_dataset_hash: str | None
    fg_commits: list[dict[str, Any]]
    input_schema: list[dict[str, str]]
    output_schema: dict[str, Any]
    metrics: dict[str, float]
    description: str | None
    tags: dict[str, str]
    meta: dict[str, str]
    input_transformed: bool = False  # the model takes the TD's transformed columns (fitted statistics applied)
    # what registration trusted (artifact.trust_for): skops' extra trusted types, or an explicit pickle trust;
    # None for versions registered before it was recorded
    artifact_trust: dict[str, Any] | None = None
    status: str = "active"
    deleted_at: datetime | None = None
    deleted_reason: str | None = None
    aliases: list[str] = field(default_factory=list)
    validation: dict[str, Any] | None = None  # the latest validation summary

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def input_columns(self) -> list[str]:
        return [c["name"] for c in self.input_schema]

    @property
    def artifact_safety(self) -> str:
        """The format and what loading it trusts, in words (`fs model show`)."""
        return artifact.describe_trust(self.artifact_format, self.artifact_trust)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoadedModel:
    """A registered model, hash-verified and unpickled. `predict` feeds it exactly its input columns."""

    info: ModelVersion
    estimator: Any
    statistics: dict[str, Any] | None = None  # the TD's fitted transformations, for a model on transformed inputs

    def frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """Rows of the feature view (or its training dataset) -> the model's input frame. A model trained on
        transformed inputs gets the TD version's transformations applied first, through the same SQL as its
        training data, so training and scoring cannot skew."""
        if self.statistics is not None:
            from ..transforms import transform_dataframe

            df = transform_dataframe(df, self.statistics)
        return artifact.model_frame(df, self.info.input_columns)

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.estimator.predict(self.frame(df)))

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        if not hasattr(self.estimator, "predict_proba"):
            raise FeatureStoreError(f"model {self.info.ref} ({type(self.estimator).__name__}) has no predict_proba",
                                    fix="use predict()")
        return np.asarray(self.estimator.predict_proba(self.frame(df)))
