"""Registry settings declared in the dbt project (dbt_project.yml `vars:`, overridable per FeatureStore(vars=...)).

    vars:
      fs_model_store: .fs/models                       # where artifact blobs live (default; env FS_MODEL_STORE wins)
      fs_model_required_meta: [owner, intended_use]    # governance: keys every registration must carry
      fs_model_thresholds:                             # validation gates per model name
        fraud_model: {auc: {min: 0.6}, "slice_gap.accuracy": {max: 0.3}}
      fs_model_slices:                                 # columns of the training dataset to slice metrics by
        fraud_model: [segment, country]
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import FeatureStoreError
from ..project import Project

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")
ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def project_vars(project: Project) -> dict[str, Any]:
    raw = yaml.safe_load((project.dir / "dbt_project.yml").read_text()) or {}
    merged = dict(raw.get("vars") or {})
    merged.update(project.vars or {})
    return merged


@dataclass
class RegistryConfig:
    store_dir: Path
    required_meta: list[str] = field(default_factory=list)
    thresholds: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    slices: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, project: Project) -> RegistryConfig:
        v = project_vars(project)
        store = os.environ.get("FS_MODEL_STORE") or v.get("fs_model_store") or ".fs/models"
        store_dir = Path(store)
        if not store_dir.is_absolute():
            store_dir = project.dir / store_dir
        req = v.get("fs_model_required_meta") or []
        if isinstance(req, str):
            req = [req]
        if not isinstance(req, list) or not all(isinstance(k, str) and k for k in req):
            raise FeatureStoreError(
                f"dbt_project.yml vars.fs_model_required_meta must be a list of key names, got {req!r}",
                fix="write e.g. `fs_model_required_meta: [owner, intended_use]`",
            )
        thresholds = v.get("fs_model_thresholds") or {}
        if not isinstance(thresholds, dict):
            raise FeatureStoreError(
                "dbt_project.yml vars.fs_model_thresholds must map model names to {metric: {min|max: value}}",
                fix="write e.g. `fs_model_thresholds: {fraud_model: {auc: {min: 0.6}}}`",
            )
        for model, spec in thresholds.items():
            _check_thresholds(str(model), spec)
        slices = v.get("fs_model_slices") or {}
        if not isinstance(slices, dict):
            raise FeatureStoreError(
                "dbt_project.yml vars.fs_model_slices must map model names to lists of column names",
                fix="write e.g. `fs_model_slices: {fraud_model: [segment]}`",
            )
        slices = {str(k): ([s] if isinstance(s, str) else list(s or [])) for k, s in slices.items()}
        return cls(store_dir=store_dir, required_meta=list(req), thresholds=thresholds, slices=slices)


def _check_thresholds(model: str, spec: Any) -> None:
    where = f"dbt_project.yml vars.fs_model_thresholds.{model}"
    if not isinstance(spec, dict):
        raise FeatureStoreError(f"{where} must map metric names to {{min: x}} / {{max: x}}",
                                fix=f"write e.g. `{model}: {{auc: {{min: 0.6}}}}`")
    for metric, bounds in spec.items():
        ok = isinstance(bounds, dict) and bounds and set(bounds) <= {"min", "max"} and all(
            isinstance(b, int | float) and not isinstance(b, bool) for b in bounds.values())
        if not ok:
            raise FeatureStoreError(f"{where}.{metric} is {bounds!r}",
                                    fix=f"write `{metric}: {{min: <number>}}` and/or `{{max: <number>}}`")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise FeatureStoreError(
            f"invalid model name {name!r}",
            fix="use letters, digits, '_', '-', '.', starting with a letter (e.g. fraud_model)",
        )
    return name


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not ALIAS.match(alias):
        raise FeatureStoreError(
            f"invalid alias {alias!r}",
            fix="an alias starts with a letter and uses letters, digits, '_' or '-' (e.g. champion, challenger)",
        )
    return alias


def check_required_meta(required: list[str], meta: dict[str, str]) -> None:
    missing = [k for k in required if not str(meta.get(k) or "").strip()]
    if missing:
        raise FeatureStoreError(
            f"this project requires model metadata {', '.join(required)}; missing: {', '.join(missing)}",
            fix="pass " + " ".join(f"--meta {k}=..." for k in missing)
            + " (SDK: meta={...}); the list is dbt_project.yml vars.fs_model_required_meta",
        )
