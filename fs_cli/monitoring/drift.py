"""Model feature drift / training-serving skew: the vectors a model was given (served-vector logs and/or the
prediction logs of batch scoring) against the training dataset it was trained on, per feature, with the drift
macros of macros/drift/ (fs_cli/validation/drift.py renders them for the target engine).

Both engines take the same path: the logged vectors of the window are read from the JSONL files in Python and
loaded into a scratch table of the target (`Warehouse.write_arrow`, fs_meta.monitoring_current_<id>, dropped after),
so the statistics run where the training dataset lives. Results, with their time window, are appended to
fs_meta.monitoring_results.

Thresholds: `meta.fs.feature_view.monitoring` in the view's YAML, e.g. `monitoring: {psi: 0.2, ks_d: 0.3}`;
defaults (fs_cli.validation.drift.DEFAULT_THRESHOLDS): psi 0.25, ks_d 0.25, wasserstein_norm 0.5 (numeric);
jensen_shannon 0.1, cramers_v 0.25 (categorical); missing_change 0.1 (both). `min_samples` (default 30): fewer
logged vectors and the features are reported `skipped`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from ..errors import FeatureStoreError
from ..timeutil import parse_timestamp, parse_ttl, utcnow
from ..transforms.macros import project_macro_dir
from ..validation.drift import DEFAULT_THRESHOLDS, MIN_SAMPLES, column_drift, evaluate, is_numeric
from ..warehouse import META_SCHEMA
from .logs import read_predictions, read_served_vectors, vectors_table

RESULTS_TABLE = "monitoring_results"
SOURCES = ("all", "served", "predicted")
STAT_COLUMNS = ("psi", "ks_d", "wasserstein_norm", "jensen_shannon", "cramers_v", "chi_square", "missing_change")


@dataclass
class FeatureResult:
    feature: str
    kind: str
    status: str  # pass | drift | skipped
    n_ref: int
    n_cur: int
    stats: dict[str, Any]
    thresholds: dict[str, float]
    exceeded: list[str] = field(default_factory=list)


@dataclass
class MonitorReport:
    run_id: str
    checked_at: datetime
    feature_view: str
    training_dataset_version: int
    source: str
    window_start: datetime | None
    window_end: datetime
    vectors: int
    features: list[FeatureResult]

    @property
    def drifted(self) -> list[str]:
        return [f.feature for f in self.features if f.status == "drift"]

    @property
    def ok(self) -> bool:
        return not self.drifted

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["drifted"] = self.drifted
        d["ok"] = self.ok
        return d


def thresholds_of(fv: Any) -> tuple[dict[str, float], int]:
    """The view's declared thresholds over the defaults, and min_samples."""
    declared = dict((fv.spec or {}).get("monitoring") or {})
    min_samples = int(declared.pop("min_samples", MIN_SAMPLES))
    unknown = set(declared) - set(DEFAULT_THRESHOLDS)
    if unknown:
        raise FeatureStoreError(
            f"feature view {fv.name}: config.meta.fs.feature_view.monitoring.{sorted(unknown)[0]} is not a statistic",
            fix=f"known: {', '.join(sorted(DEFAULT_THRESHOLDS))}, min_samples")
    return {**DEFAULT_THRESHOLDS, **{k: float(v) for k, v in declared.items()}}, min_samples


def window_bounds(since: str | datetime | None, until: str | datetime | None, window: str | None,
                  now: str | datetime | None) -> tuple[datetime | None, datetime]:
    end = parse_timestamp(until, where="until") if until is not None else (
        parse_timestamp(now, where="now") if now is not None else utcnow())
    if since is not None:
        return parse_timestamp(since, where="since"), end
    span = parse_ttl(window, where="window") if window else None
    return (end - span if span else None), end


def logged_vectors(state_dir: Any, fv: Any, source: str, start: datetime | None, end: datetime) -> list[dict]:
    if source not in SOURCES:
        raise FeatureStoreError(f"unknown source {source!r}", fix=f"one of {', '.join(SOURCES)}")
    rows: list[dict] = []
    if source in ("all", "served"):
        rows += read_served_vectors(state_dir, fv.name, fv.key_columns, start, end)
    if source in ("all", "predicted"):
        rows += read_predictions(state_dir, feature_view=fv.name, since=start, until=end)
    return rows


def monitor_feature_view(fs: Any, feature_view: str, training_dataset_version: int | None = None,
                         since: str | datetime | None = None, until: str | datetime | None = None,
                         window: str | None = None, now: str | datetime | None = None,
                         source: str = "all", store: bool = True) -> MonitorReport:
    from ..training import get_td

    fv = fs.catalog.fv(feature_view)
    thresholds, min_samples = thresholds_of(fv)
    start, end = window_bounds(since, until, window, now)
    rows = logged_vectors(fs.project.state_dir, fv, source, start, end)
    checked_at = parse_timestamp(now, where="now") if now is not None else utcnow()
    run_id = uuid.uuid4().hex
    with fs.project.warehouse() as wh:
        td = get_td(wh, fv.name, training_dataset_version)
        features = [(f["name"], is_numeric(f.get("type"))) for f in td.features]
        reference = (f"(select * from {td.table} where {wh.quote('split')} = 'train')"
                     if "train" in (td.row_counts or {}) else td.table)
        wh.ensure_schema(META_SCHEMA)
        current = wh.relation(META_SCHEMA, f"monitoring_current_{run_id[:12]}")
        wh.write_arrow(current, vectors_table(rows, features), mode="create")
        try:
            results = [_feature(wh, reference, current, name, numeric, thresholds, min_samples,
                                project_macro_dir(fs.project)) for name, numeric in features]
        finally:
            wh.drop_table(current)
        report = MonitorReport(run_id, checked_at, fv.name, td.version, source, start, end, len(rows), results)
        if store:
            store_results(wh, report)
    return report


def _feature(wh: Any, reference: str, current: str, name: str, numeric: bool, thresholds: dict[str, float],
             min_samples: int, macro_dir: Any) -> FeatureResult:
    stats = column_drift(wh, reference, current, name, numeric, macro_dir=macro_dir)
    fd = evaluate(name, numeric, stats, thresholds)
    n_ref, n_cur = int(stats.get("n_ref") or 0), int(stats.get("n_cur") or 0)
    if min(n_ref, n_cur) < min_samples:
        status = "skipped"
    else:
        status = "drift" if fd.drifted else "pass"
    return FeatureResult(name, fd.kind, status, n_ref, n_cur, stats, fd.thresholds,
                         fd.exceeded if status == "drift" else [])


def ensure_results_table(wh: Any) -> str:
    rel = wh.relation(META_SCHEMA, RESULTS_TABLE)
    t, ts, dbl, i = wh.type("text"), wh.type("timestamp"), wh.type("double"), wh.type("bigint")
    stats = ", ".join(f"{c} {dbl}" for c in STAT_COLUMNS)
    wh.execute(f"""create table if not exists {rel} (
        run_id {t} not null, checked_at {ts} not null, feature_view {t} not null,
        training_dataset_version {i} not null, source {t} not null, window_start {ts}, window_end {ts} not null,
        vectors {i} not null, feature {t} not null, kind {t} not null, status {t} not null,
        n_ref {i}, n_cur {i}, {stats}, exceeded {t}, thresholds {t})""")
    return rel


def store_results(wh: Any, report: MonitorReport) -> None:
    rel = ensure_results_table(wh)
    cols = ["run_id", "checked_at", "feature_view", "training_dataset_version", "source", "window_start",
            "window_end", "vectors", "feature", "kind", "status", "n_ref", "n_cur", *STAT_COLUMNS, "exceeded",
            "thresholds"]
    sql = f"insert into {rel} ({', '.join(cols)}) values ({', '.join('?' for _ in cols)})"
    with wh.transaction():
        for f in report.features:
            wh.execute(sql, [report.run_id, report.checked_at, report.feature_view, report.training_dataset_version,
                             report.source, report.window_start, report.window_end, report.vectors, f.feature,
                             f.kind, f.status, f.n_ref, f.n_cur, *(_num(f.stats.get(c)) for c in STAT_COLUMNS),
                             ",".join(f.exceeded), json.dumps(f.thresholds)])


def _num(v: Any) -> float | None:
    return None if v is None else float(v)


def history(fs: Any, feature_view: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Stored monitoring results, newest first."""
    with fs.project.warehouse(read_only=True) as wh:
        if not wh.relation_exists(META_SCHEMA, RESULTS_TABLE):
            return []
        where, params = ("where feature_view = ?", [feature_view]) if feature_view else ("", [])
        res = wh.execute(f"select * from {wh.relation(META_SCHEMA, RESULTS_TABLE)} {where} "
                         f"order by checked_at desc, feature", params)
        return [dict(zip(res.columns, r, strict=True)) for r in res.fetchall()][:limit]


