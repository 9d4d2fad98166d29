"""Declared expectations of a feature group, read from its YAML (one declaration for Soda, dbt tests and drift).

Per column, under `config.meta.fs` of the column:
    not_null: true                 # no NULLs (implied for primary-key and event-time columns)
    range: [0, null]               # inclusive bounds; null = open side
    allowed_values: [a, b, c]      # categorical domain
    categorical: true              # drift treats the column as categorical even if numeric
    drift: false | {psi: 0.3, ...} # skip drift for this feature, or override thresholds
Per feature group, under `config.meta.fs`:
    expectations: {freshness: 3d, min_rows: 1}
    drift: {enabled: true, window: 7d, reference: previous_window | last_commit | {commit: N}, thresholds: {...}}
    contract: path/to/extra.contract.yml   # default: <model>.contract.yml next to the model's SQL
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..errors import DeclarationError, FeatureStoreError
from ..metadata import FeatureGroup
from ..timeutil import parse_ttl

COLUMN_KEYS = {"not_null", "range", "allowed_values", "categorical", "drift"}
FG_EXPECTATION_KEYS = {"freshness", "min_rows"}
DRIFT_KEYS = {"enabled", "window", "reference", "thresholds"}


@dataclass
class ColumnExpectations:
    name: str
    data_type: str | None
    not_null: bool = False
    min: float | None = None
    max: float | None = None
    allowed_values: list[Any] | None = None
    categorical: bool | None = None
    drift: bool = True
    drift_thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def has_range(self) -> bool:
        return self.min is not None or self.max is not None


@dataclass
class DriftConfig:
    enabled: bool = True
    window: timedelta = timedelta(days=7)
    reference: str = "previous_window"  # previous_window | last_commit | commit
    reference_commit: int | None = None
    thresholds: dict[str, float] = field(default_factory=dict)


@dataclass
class Expectations:
    feature_group: str
    columns: dict[str, ColumnExpectations]
    freshness: timedelta | None = None
    min_rows: int = 1
    drift: DriftConfig = field(default_factory=DriftConfig)


def _fs_meta(meta: dict[str, Any]) -> dict[str, Any]:
    fs = meta.get("fs") if isinstance(meta, dict) else None
    return fs if isinstance(fs, dict) else {}


def _thresholds(value: Any, where: str, problems: list[FeatureStoreError]) -> dict[str, float]:
    from .drift import DEFAULT_THRESHOLDS

    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(FeatureStoreError(f"{where} must be a mapping", fix="e.g. `{psi: 0.3, ks_d: 0.25}`"))
        return {}
    out = {}
    for k, v in value.items():
        if k not in DEFAULT_THRESHOLDS:
            problems.append(FeatureStoreError(f"{where}.{k} is not a drift statistic",
                                              fix=f"use one of {', '.join(DEFAULT_THRESHOLDS)}"))
        elif v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            problems.append(FeatureStoreError(f"{where}.{k} = {v!r} is not a number", fix="use e.g. 0.25, or null to disable"))
        else:
            out[k] = None if v is None else float(v)
    return out


def parse_expectations(fg: FeatureGroup) -> Expectations:
    """Validate and read the expectations of `fg`; raises DeclarationError naming every problem."""
    problems: list[FeatureStoreError] = []
    where_fg = f"model {fg.name} ({fg.path})"
    cols: dict[str, ColumnExpectations] = {}
    implied_not_null = set(fg.key_columns)
    for c in fg.columns:
        spec = _fs_meta(c.meta)
        w = f"{where_fg}: column {c.name} config.meta.fs"
        for k in set(spec) - COLUMN_KEYS:
            problems.append(FeatureStoreError(f"{w}.{k} is not a known expectation",
                                              fix=f"known: {', '.join(sorted(COLUMN_KEYS))}"))
        ce = ColumnExpectations(c.name, c.data_type, not_null=bool(spec.get("not_null")) or c.name in implied_not_null)
        rng = spec.get("range")
        if rng is not None:
            if (not isinstance(rng, list | tuple) or len(rng) != 2
                    or any(v is not None and (isinstance(v, bool) or not isinstance(v, int | float)) for v in rng)):
                problems.append(FeatureStoreError(f"{w}.range = {rng!r} is not [min, max]",
                                                  fix="use two numbers or null for an open side, e.g. `range: [0, null]`"))
            else:
                ce.min, ce.max = rng
                if ce.min is not None and ce.max is not None and ce.min > ce.max:
                    problems.append(FeatureStoreError(f"{w}.range has min {ce.min} > max {ce.max}", fix="swap the bounds"))
        av = spec.get("allowed_values")
        if av is not None:
            if not isinstance(av, list) or not av:
                problems.append(FeatureStoreError(f"{w}.allowed_values must be a non-empty list",
                                                  fix="e.g. `allowed_values: [standard, gold, platinum]`"))
            else:
                ce.allowed_values = list(av)
        if "categorical" in spec:
            ce.categorical = bool(spec["categorical"])
        d = spec.get("drift", True)
        if d is False:
            ce.drift = False
        elif isinstance(d, dict):
            ce.drift_thresholds = _thresholds(d, f"{w}.drift", problems)
        elif d is not True:
            problems.append(FeatureStoreError(f"{w}.drift = {d!r}", fix="use `false` or a mapping of thresholds"))
        cols[c.name] = ce

    exp = Expectations(fg.name, cols)
    fe = fg.meta.get("expectations") or {}
    w = f"{where_fg}: config.meta.fs.expectations"
    if not isinstance(fe, dict):
        problems.append(FeatureStoreError(f"{w} must be a mapping", fix="e.g. `expectations: {freshness: 3d}`"))
        fe = {}
    for k in set(fe) - FG_EXPECTATION_KEYS:
        problems.append(FeatureStoreError(f"{w}.{k} is not known", fix=f"known: {', '.join(sorted(FG_EXPECTATION_KEYS))}"))
    try:
        exp.freshness = parse_ttl(fe.get("freshness"), where=f"{w}.freshness")
    except FeatureStoreError as e:
        problems.append(e)
    mr = fe.get("min_rows", 1)
    if isinstance(mr, bool) or not isinstance(mr, int) or mr < 0:
        problems.append(FeatureStoreError(f"{w}.min_rows = {mr!r}", fix="use a non-negative integer"))
    else:
        exp.min_rows = mr

    dspec = fg.meta.get("drift") or {}
    w = f"{where_fg}: config.meta.fs.drift"
    if dspec is False:
        dspec = {"enabled": False}
    if not isinstance(dspec, dict):
        problems.append(FeatureStoreError(f"{w} must be a mapping or false", fix="e.g. `drift: {window: 7d}`"))
        dspec = {}
    for k in set(dspec) - DRIFT_KEYS:
        problems.append(FeatureStoreError(f"{w}.{k} is not known", fix=f"known: {', '.join(sorted(DRIFT_KEYS))}"))
    dc = DriftConfig(enabled=bool(dspec.get("enabled", True)))
    try:
        dc.window = parse_ttl(dspec.get("window", "7d"), where=f"{w}.window") or timedelta(days=7)
    except FeatureStoreError as e:
        problems.append(e)
    ref = dspec.get("reference", fg.meta.get("reference", "previous_window"))
    if isinstance(ref, dict) and isinstance(ref.get("commit"), int) and not isinstance(ref.get("commit"), bool):
        dc.reference, dc.reference_commit = "commit", ref["commit"]
    elif ref in ("previous_window", "last_commit"):
        dc.reference = ref
    else:
        problems.append(FeatureStoreError(
            f"{w}.reference = {ref!r}",
            fix="use `previous_window` (published rows in the window before the detection window), "
            "`last_commit` (the feature group as published now) or `{commit: N}` (as published by commit N)"))
    dc.thresholds = _thresholds(dspec.get("thresholds"), f"{w}.thresholds", problems)
    exp.drift = dc
    if problems:
        raise DeclarationError(problems)
    return exp
