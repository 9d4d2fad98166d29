"""Declared expectations of a feature group, read from its YAML (one declaration for Soda, dbt tests and drift).

Per column, under `config.meta.fs` of the column:
    not_null: true                 # no NULLs (implied for primary-key and event-time columns)
    range: [0, null]               # inclusive bounds; null = open side
    allowed_values: [a, b, c]      # categorical domain
    categorical: true              # drift treats the column as categorical even if numeric
    drift: false | {psi: 0.3, ...} # skip drift for this feature, or override thresholds
Per feature group, under `config.meta.fs`:
    expectations: {freshness: 3d, min_rows: 1}
    drift: {enabled: true, window: 7d, reference: previous_window | last_commit | {commit: N}, thresholds: {...},
            max_reference_rows: N}      # opt-in: compare with a deterministic sample of ~N reference rows
    contract: path/to/extra.contract.yml   # default: <model>.contract.yml next to the model's SQL
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..declarations.model import Column, FeatureGroup
from ..errors import Problems
from ..timeutil import parse_ttl

COLUMN_KEYS = {"not_null", "range", "allowed_values", "categorical", "drift"}
FG_EXPECTATION_KEYS = {"freshness", "min_rows"}
# A sampled reference smaller than this would make the statistics noise (KS's 5% critical value at 1,000 rows is ~0.04
# on the reference side alone); a cap is for references of hundreds of thousands of rows.
MIN_REFERENCE_SAMPLE = 1000
DRIFT_KEYS = {"enabled", "window", "reference", "thresholds", "max_reference_rows"}


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
    max_reference_rows: int | None = None  # None: the whole reference (exact); N: a sample of ~N rows beyond N


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


def _thresholds(value: Any, problems: Problems, at: str) -> dict[str, float]:
    """Drift thresholds declared at field `at` ({statistic: number or null})."""
    from .drift import DEFAULT_THRESHOLDS

    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add("must be a mapping", fix="e.g. `{psi: 0.3, ks_d: 0.25}`", field=at)
        return {}
    out = {}
    for k, v in value.items():
        if k not in DEFAULT_THRESHOLDS:
            problems.add("is not a drift statistic", fix=f"use one of {', '.join(DEFAULT_THRESHOLDS)}", field=f"{at}.{k}")
        elif v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            problems.add(f"= {v!r} is not a number", fix="use e.g. 0.25, or null to disable", field=f"{at}.{k}")
        else:
            out[k] = None if v is None else float(v)
    return out


def parse_expectations(fg: FeatureGroup) -> Expectations:
    """Validate and read the expectations of `fg`; raises DeclarationError naming every problem."""
    problems = Problems(f"model {fg.name} ({fg.path})")
    implied_not_null = set(fg.key_columns)
    cols = {c.name: _column_expectations(c, c.name in implied_not_null,
                                         problems.within(field_prefix=f"column {c.name} config.meta.fs."))
            for c in fg.columns}
    exp = Expectations(fg.name, cols)
    group = problems.within(field_prefix="config.meta.fs.")
    _group_expectations(exp, fg.meta.get("expectations") or {}, group)
    drift = fg.meta.get("drift")  # `false` disables (not `or {}`: that turned `drift: false` into the defaults)
    exp.drift = _drift_config({} if drift is None else drift, fg.meta.get("reference", "previous_window"), group)
    problems.raise_if_any()
    return exp


def _column_expectations(c: Column, implied_not_null: bool, problems: Problems) -> ColumnExpectations:
    """A column's `config.meta.fs`: not_null, range, allowed_values, categorical, drift."""
    spec = _fs_meta(c.meta)
    for k in set(spec) - COLUMN_KEYS:
        problems.add("is not a known expectation", fix=f"known: {', '.join(sorted(COLUMN_KEYS))}", field=k)
    ce = ColumnExpectations(c.name, c.data_type, not_null=bool(spec.get("not_null")) or implied_not_null)
    rng = spec.get("range")
    if rng is not None:
        if (not isinstance(rng, list | tuple) or len(rng) != 2
                or any(v is not None and (isinstance(v, bool) or not isinstance(v, int | float)) for v in rng)):
            problems.add(f"= {rng!r} is not [min, max]",
                         fix="use two numbers or null for an open side, e.g. `range: [0, null]`", field="range")
        else:
            ce.min, ce.max = rng
            if ce.min is not None and ce.max is not None and ce.min > ce.max:
                problems.add(f"has min {ce.min} > max {ce.max}", fix="swap the bounds", field="range")
    av = spec.get("allowed_values")
    if av is not None:
        if not isinstance(av, list) or not av:
            problems.add("must be a non-empty list", fix="e.g. `allowed_values: [standard, gold, platinum]`",
                         field="allowed_values")
        else:
            ce.allowed_values = list(av)
    if "categorical" in spec:
        ce.categorical = bool(spec["categorical"])
    d = spec.get("drift", True)
    if d is False:
        ce.drift = False
    elif isinstance(d, dict):
        ce.drift_thresholds = _thresholds(d, problems, "drift")
    elif d is not True:
        problems.add(f"= {d!r}", fix="use `false` or a mapping of thresholds", field="drift")
    return ce


def _group_expectations(exp: Expectations, fe: Any, problems: Problems) -> None:
    """The group's `config.meta.fs.expectations`: freshness, min_rows."""
    if not isinstance(fe, dict):
        problems.add("must be a mapping", fix="e.g. `expectations: {freshness: 3d}`", field="expectations")
        fe = {}
    for k in set(fe) - FG_EXPECTATION_KEYS:
        problems.add("is not known", fix=f"known: {', '.join(sorted(FG_EXPECTATION_KEYS))}", field=f"expectations.{k}")
    with problems.collecting():
        exp.freshness = parse_ttl(fe.get("freshness"), where=f"{problems.where}: config.meta.fs.expectations.freshness")
    mr = fe.get("min_rows", 1)
    if isinstance(mr, bool) or not isinstance(mr, int) or mr < 0:
        problems.add(f"= {mr!r}", fix="use a non-negative integer", field="expectations.min_rows")
    else:
        exp.min_rows = mr


def _drift_config(dspec: Any, default_reference: Any, problems: Problems) -> DriftConfig:
    """The group's `config.meta.fs.drift` (false: disabled): window, reference, thresholds."""
    if dspec is False:
        dspec = {"enabled": False}
    if not isinstance(dspec, dict):
        problems.add("must be a mapping or false", fix="e.g. `drift: {window: 7d}`", field="drift")
        dspec = {}
    for k in set(dspec) - DRIFT_KEYS:
        problems.add("is not known", fix=f"known: {', '.join(sorted(DRIFT_KEYS))}", field=f"drift.{k}")
    dc = DriftConfig(enabled=bool(dspec.get("enabled", True)))
    with problems.collecting():
        dc.window = parse_ttl(dspec.get("window", "7d"), where=f"{problems.where}: config.meta.fs.drift.window") \
            or timedelta(days=7)
    ref = dspec.get("reference", default_reference)
    if isinstance(ref, dict) and isinstance(ref.get("commit"), int) and not isinstance(ref.get("commit"), bool):
        dc.reference, dc.reference_commit = "commit", ref["commit"]
    elif ref in ("previous_window", "last_commit"):
        dc.reference = ref
    else:
        problems.add(
            f"= {ref!r}",
            fix="use `previous_window` (published rows in the window before the detection window), "
            "`last_commit` (the feature group as published now) or `{commit: N}` (as published by commit N)",
            field="drift.reference")
    dc.thresholds = _thresholds(dspec.get("thresholds"), problems, "drift.thresholds")
    cap = dspec.get("max_reference_rows")
    if cap is not None:
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < MIN_REFERENCE_SAMPLE:
            problems.add(f"= {cap!r}", fix=f"use a whole number of rows >= {MIN_REFERENCE_SAMPLE} (e.g. 200000), "
                         "or leave it out to compare with every reference row", field="drift.max_reference_rows")
        else:
            dc.max_reference_rows = cap
    return dc
