"""Correlation limits on a feature view: feature-label (leakage suspicion) and pairwise (redundant features).

Pearson correlation, computed by the warehouse (`corr` aggregate: DuckDB, Postgres, Spark) in one pass over the view.
Limits come from the view's YAML, `config.meta.fs.validation: {max_label_correlation: 0.9,
max_pairwise_correlation: 0.98}`; a feature whose |corr| with the label exceeds the limit is almost certainly
computed from the label (or after it), and a pair above the pairwise limit carries the same information twice.
"""

from __future__ import annotations

from typing import Any

from ..errors import FeatureStoreError
from .drift import fetch_dicts, is_numeric
from .results import CheckResult

DEFAULTS = {"max_label_correlation": 0.9, "max_pairwise_correlation": 0.98}


def correlations(wh, relation: str, features: list[str], label: str | None) -> dict[tuple[str, str], float | None]:
    """Pearson correlation of every (feature, label) and every feature pair, in one query."""
    pairs = [(a, label) for a in features] if label else []
    pairs += [(a, b) for i, a in enumerate(features) for b in features[i + 1:]]
    if not pairs:
        return {}
    dbl = wh.type("double")
    exprs = [f"corr(cast({wh.quote(a)} as {dbl}), cast({wh.quote(b)} as {dbl})) as c{i}"
             for i, (a, b) in enumerate(pairs)]
    row = fetch_dicts(wh, f"select {', '.join(exprs)} from {relation}")[0]
    out: dict[tuple[str, str], float | None] = {}
    for i, p in enumerate(pairs):
        v = row[f"c{i}"]
        out[p] = None if v is None or v != v else float(v)
    return out


def correlation_checks(wh, relation: str, features: list[str], label: str | None,
                       limits: dict[str, Any] | None = None) -> list[CheckResult]:
    lim = {**DEFAULTS, **(limits or {})}
    for k, v in lim.items():
        if k not in DEFAULTS or isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v <= 1:
            raise FeatureStoreError(f"validation.{k} = {v!r}",
                                    fix=f"use a number in (0, 1] for one of {', '.join(DEFAULTS)}")
    corr = correlations(wh, relation, features, label)
    results = []
    if label:
        for f in features:
            c = corr.get((f, label))
            bad = c is not None and abs(c) > lim["max_label_correlation"]
            results.append(CheckResult(
                f"correlation:{f}~{label}", "correlation", "fail" if bad else ("skipped" if c is None else "pass"),
                column=f, metrics={"corr": c, "limit": lim["max_label_correlation"], "label": label},
                message=(f"|corr({f}, {label})| = {abs(c):.3f} > {lim['max_label_correlation']}: "
                         "suspected label leakage") if bad else
                ("constant or empty: no correlation" if c is None else f"corr with {label} = {c:.3f}")))
    high = [(a, b, c) for (a, b), c in corr.items()
            if b != label and c is not None and abs(c) > lim["max_pairwise_correlation"]]
    results.append(CheckResult(
        "correlation:pairwise", "correlation", "fail" if high else "pass",
        metrics={"limit": lim["max_pairwise_correlation"], "pairs_checked": sum(1 for (_, b) in corr if b != label),
                 "max_abs": max((abs(c) for (a, b), c in corr.items() if b != label and c is not None), default=None)},
        message=("redundant feature pairs: " + ", ".join(f"{a}~{b} {c:.3f}" for a, b, c in high)) if high
        else "no feature pair above the limit",
        samples=[{"a": a, "b": b, "corr": c} for a, b, c in high[:10]]))
    return results


def view_columns(wh, schema: str, name: str) -> list[tuple[str, str]]:
    return wh.describe(wh.relation(schema, name))


def feature_view_features(fv_spec: dict[str, Any], columns: list[tuple[str, str]]) -> tuple[list[str], str | None]:
    """The numeric feature columns of a feature view's relation and its (first) label."""
    spine = fv_spec.get("spine") or {}
    label = spine.get("label")
    if isinstance(label, list):
        label = label[0] if label else None
    ents = spine.get("entities") or {}
    not_features = {label, spine.get("timestamp"), *(spine.get("columns") or []),
                    *(ents.values() if isinstance(ents, dict) else ents)}
    feats = [c for c, t in columns if c not in not_features and is_numeric(t)]
    return feats, label
