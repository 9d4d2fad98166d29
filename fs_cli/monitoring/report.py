"""`fs report --html OUT`: one self-contained HTML file (inline SVG drawn here, an inline stylesheet; no script and
nothing fetched from the network at view time) with, per feature view, each feature's distribution in the training
dataset (train split) against the logged vectors (served and batch-scored), the drift statistics over time
(fs_meta.monitoring_results), and per model its metrics per window over time (fs_meta.model_monitoring).
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ..timeutil import utcnow
from ..warehouse import META_SCHEMA
from .logtables import PREDICTION_VALUES, SERVED_VALUES, sync_logs

TRAIN, SERVED = "#3b6ea5", "#e07b39"
PALETTE = ["#3b6ea5", "#e07b39", "#3a9d5d", "#b8473d", "#7f5fa8", "#8c6d4f", "#d16fb0", "#6f6f6f"]
W, H, PAD = 420, 190, 34
BINS = 20
TOP_CATEGORIES = 12
DRIFT_STAT = {"numeric": "psi", "categorical": "jensen_shannon"}

_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}h3{font-size:15px}
.grid{display:flex;flex-wrap:wrap;gap:14px}figure{margin:0;border:1px solid #e3e3e3;padding:8px;border-radius:4px}
figcaption{font-size:13px;margin-bottom:4px}.muted{color:#777;font-size:13px}.bad{color:#b8473d;font-weight:600}
svg text{font-size:10px;fill:#444}.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}"""


# -- SVG ----------------------------------------------------------------------------------------------------------
def _fmt(v: float) -> str:
    if v == 0 or not math.isfinite(v):
        return "0"
    if abs(v) >= 1000 or abs(v) < 0.01:
        return f"{v:.2g}"
    return f"{v:.3g}"


def _svg(body: list[str], label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" '
            f'aria-label="{html.escape(label)}">' + "".join(body) + "</svg>")


def _axes(y_max: float, x_labels: list[tuple[float, str]]) -> list[str]:
    out = [f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - 8}" y2="{H - PAD}" stroke="#999"/>',
           f'<line x1="{PAD}" y1="8" x2="{PAD}" y2="{H - PAD}" stroke="#999"/>',
           f'<text x="{PAD - 4}" y="12" text-anchor="end">{_fmt(y_max)}</text>',
           f'<text x="{PAD - 4}" y="{H - PAD}" text-anchor="end">0</text>']
    for x, text in x_labels:  # the axis ends' labels stay inside the picture
        anchor = "start" if x <= PAD else "end" if x >= W - 8 else "middle"
        out.append(f'<text x="{x:.1f}" y="{H - PAD + 13}" text-anchor="{anchor}">{html.escape(text)}</text>')
    return out


def histogram_svg(train: Sequence[float], served: Sequence[float], label: str) -> str:
    """Overlaid density histograms on shared bins (1st-99th percentile of both samples)."""
    import numpy as np

    both = np.asarray([*train, *served], dtype=float)
    lo, hi = (float(x) for x in np.quantile(both, [0.01, 0.99]))
    if hi <= lo:
        lo, hi = float(both.min()), float(both.max()) if both.max() > both.min() else float(both.min()) + 1

    def density(values: Sequence[float]) -> list[float]:
        v = np.asarray(values, dtype=float)
        idx = np.clip(np.floor((v - lo) / (hi - lo) * BINS), 0, BINS - 1).astype(int)
        return (np.bincount(idx, minlength=BINS) / max(1, len(v))).tolist()

    dt, ds = density(train), density(served)
    y_max = max([*dt, *ds, 1e-9])
    bw = (W - 8 - PAD) / BINS
    body = _axes(y_max, [(PAD, _fmt(lo)), (W - 8, _fmt(hi))])
    for values, color in ((dt, TRAIN), (ds, SERVED)):
        for i, v in enumerate(values):
            h = (H - PAD - 8) * v / y_max
            body.append(f'<rect x="{PAD + i * bw:.1f}" y="{H - PAD - h:.1f}" width="{bw:.1f}" height="{h:.1f}" '
                        f'fill="{color}" fill-opacity="0.5"/>')
    return _svg(body, label)


def categories_svg(train: Sequence[str], served: Sequence[str], label: str) -> str:
    """Side-by-side bars of category shares (the most frequent categories of both samples)."""
    ct, cs = Counter(train), Counter(served)
    cats = [c for c, _ in (ct + cs).most_common(TOP_CATEGORIES)]
    nt, ns = max(1, len(train)), max(1, len(served))
    y_max = max([ct[c] / nt for c in cats] + [cs[c] / ns for c in cats] + [1e-9])
    gw = (W - 8 - PAD) / max(1, len(cats))
    body = _axes(y_max, [(PAD + (i + 0.5) * gw, c[:10]) for i, c in enumerate(cats)])
    for i, c in enumerate(cats):
        for j, (share, color) in enumerate(((ct[c] / nt, TRAIN), (cs[c] / ns, SERVED))):
            h = (H - PAD - 8) * share / y_max
            body.append(f'<rect x="{PAD + i * gw + 2 + j * (gw - 4) / 2:.1f}" y="{H - PAD - h:.1f}" '
                        f'width="{(gw - 4) / 2:.1f}" height="{h:.1f}" fill="{color}"/>')
    return _svg(body, label)


def lines_svg(series: dict[str, list[tuple[datetime, float]]], label: str,
              threshold: float | None = None) -> str:
    """One path per series over time (points marked), an optional dashed threshold line."""
    points = [p for s in series.values() for p in s if p[1] is not None and math.isfinite(p[1])]
    if not points:
        return _svg([*_axes(1.0, []), f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no data</text>'], label)
    t0, t1 = min(p[0] for p in points), max(p[0] for p in points)
    span = (t1 - t0).total_seconds() or 1.0
    y_max = max([p[1] for p in points] + ([threshold] if threshold is not None else [])) or 1.0
    y_min = min(0.0, min(p[1] for p in points))

    def xy(t: datetime, v: float) -> tuple[float, float]:
        x = PAD + (W - 8 - PAD) * ((t - t0).total_seconds() / span if t1 > t0 else 0.5)
        return x, H - PAD - (H - PAD - 8) * (v - y_min) / ((y_max - y_min) or 1.0)

    body = _axes(y_max, [(PAD, t0.strftime("%Y-%m-%d")), (W - 8, t1.strftime("%Y-%m-%d"))])
    if threshold is not None:
        _, y = xy(t0, threshold)
        body.append(f'<line x1="{PAD}" y1="{y:.1f}" x2="{W - 8}" y2="{y:.1f}" stroke="#b8473d" '
                    'stroke-dasharray="4 3"/>')
    for i, (name, pts) in enumerate(series.items()):
        pts = sorted(p for p in pts if p[1] is not None and math.isfinite(p[1]))
        if not pts:
            continue
        color = PALETTE[i % len(PALETTE)]
        coords = [xy(t, v) for t, v in pts]
        d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        body.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="1.6"><title>'
                    f'{html.escape(name)}</title></path>')
        body += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.2" fill="{color}"/>' for x, y in coords]
    return _svg(body, label)


def _legend(items: list[tuple[str, str]]) -> str:
    return '<div class="legend muted">' + "".join(
        f'<span style="background:{c}"></span>{html.escape(n)}' for n, c in items) + "</div>"


def _figure(caption: str, svg: str, note: str = "") -> str:
    return f"<figure><figcaption>{caption}</figcaption>{svg}{note}</figure>"


# -- data ---------------------------------------------------------------------------------------------------------
def _logged_values(wh: Any, feature_view: str) -> dict[str, list[tuple[str | None, float | None]]]:
    out: dict[str, list[tuple[str | None, float | None]]] = {}
    for table in (SERVED_VALUES, PREDICTION_VALUES):
        for name, text, number in wh.fetchall(
                f"select name, value_text, value_number from {wh.relation(META_SCHEMA, table)} "
                "where feature_view = ? and kind = 'feature'", [feature_view]):
            out.setdefault(name, []).append((text, number))
    return out


def _rows(wh: Any, table: str, where: str, params: list[Any]) -> list[dict[str, Any]]:
    if not wh.relation_exists(META_SCHEMA, table):
        return []
    res = wh.execute(f"select * from {wh.relation(META_SCHEMA, table)} where {where}", params)
    return [dict(zip(res.columns, r, strict=True)) for r in res.fetchall()]


def _feature_view_section(fs: Any, wh: Any, name: str) -> str:
    from ..training import get_td, read_rows
    from ..validation.drift import is_numeric

    td = get_td(wh, name, None)
    train = read_rows(wh, td, "train" if td.row_counts.get("train") else None)
    logged = _logged_values(wh, name)
    drift = _rows(wh, "monitoring_results", "feature_view = ?", [name])
    parts = [f"<h2>Feature view {html.escape(name)}</h2>",
             f'<p class="muted">training dataset v{td.version} ({train.num_rows} training rows) against '
             f"{max((len(v) for v in logged.values()), default=0)} logged vectors (served and batch-scored)</p>",
             _legend([("training dataset", TRAIN), ("served / scored", SERVED)]), '<div class="grid">']
    for f in td.features:
        feature, numeric = f["name"], is_numeric(f.get("type"))
        values = logged.get(feature, [])
        col = train.column(feature).to_pylist() if feature in train.column_names else []
        if numeric:
            t = [float(v) for v in col if v is not None]
            s = [float(n) for _, n in values if n is not None]
            svg = histogram_svg(t, s, feature) if t and s else None
        else:
            t = [str(v) for v in col if v is not None]
            s = [x for x, _ in values if x is not None]
            svg = categories_svg(t, s, feature) if t and s else None
        missing = sum(1 for x, _ in values if x is None)
        note = f'<div class="muted">missing: {missing}/{len(values)} logged</div>' if values else ""
        parts.append(_figure(html.escape(feature), svg or '<p class="muted">no logged values yet</p>', note))
    parts.append("</div>")
    if drift:
        parts += ["<h3>Drift over time</h3>",
                  '<p class="muted">per feature, PSI (numeric) or Jensen-Shannon (categorical) of each '
                  "<code>fs monitor</code> run at the end of its window; dashed: the threshold</p>",
                  '<div class="grid">']
        for kind, stat in DRIFT_STAT.items():
            rows = [r for r in drift if (r["kind"] == "numeric") == (kind == "numeric") and r.get(stat) is not None]
            series: dict[str, list[tuple[datetime, float]]] = {}
            for r in rows:
                series.setdefault(r["feature"], []).append((r["window_end"], float(r[stat])))
            flagged = sorted({r["feature"] for r in rows if r["status"] == "drift"})
            th = _threshold(rows, stat)
            legend = _legend([(n, PALETTE[i % len(PALETTE)]) for i, n in enumerate(series)])
            note = (f'<div class="bad">drifted: {html.escape(", ".join(flagged))}</div>' if flagged else "") + legend
            if series:
                parts.append(_figure(f"{stat} ({kind} features)", lines_svg(series, stat, th), note))
        parts.append("</div>")
    return "\n".join(parts)


def _threshold(rows: list[dict[str, Any]], stat: str) -> float | None:
    import json

    for r in rows:
        try:
            return float(json.loads(r.get("thresholds") or "{}").get(stat))
        except (TypeError, ValueError):
            continue
    return None


def _model_section(wh: Any, model: str) -> str:
    key = "model" if ":" in model else "model_name"
    rows = _rows(wh, "model_monitoring", f"{key} = ? and slice_column is null", [model])
    parts = [f"<h2>Model {html.escape(model)}</h2>"]
    if not rows:
        return parts[0] + '<p class="muted">no <code>fs model monitor</code> results yet</p>'
    latest: dict[tuple[Any, str], dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: r["checked_at"]):  # the newest run of each window wins
        latest[(r["window_start"], r["metric"])] = r
    metrics = sorted({m for _, m in latest if "." not in m})
    failed = sorted({str(r["window_start"]) for r in latest.values() if r["status"] == "fail"})
    parts.append('<p class="muted">metrics per window of prediction time, on predictions whose labels arrived; '
                 "dashed: the effective lower bound (max_drop from the baseline, or min)</p>")
    if failed:
        parts.append(f'<p class="bad">below thresholds in windows starting {html.escape(", ".join(failed))}</p>')
    parts.append('<div class="grid">')
    for m in metrics:
        pts = [(w, float(r["value"])) for (w, mm), r in latest.items() if mm == m and r["value"] is not None]
        lim = next((r["limit_min"] if r["limit_min"] is not None else r["limit_max"] for (_, mm), r in
                    latest.items() if mm == m and (r["limit_min"] is not None or r["limit_max"] is not None)), None)
        parts.append(_figure(html.escape(m), lines_svg({m: pts}, m, lim)))
    parts.append("</div>")
    return "\n".join(parts)


def write_report(fs: Any, out: str | Path, feature_views: Sequence[str] | None = None,
                 models: Sequence[str] | None = None) -> Path:
    from ..training import list_tds

    keys = {name: v.key_columns for name, v in fs.catalog.feature_views.items()}
    with fs.project.warehouse() as wh:
        sync_logs(wh, fs.project.state_dir, keys)
        views = list(feature_views) if feature_views else sorted({td.feature_view for td in list_tds(wh)}
                                                                   if wh.relation_exists(META_SCHEMA,
                                                                                         "training_datasets")
                                                                   else set())
        if models is None:
            models = sorted({r[0] for r in wh.fetchall(
                f"select distinct model_name from {wh.relation(META_SCHEMA, 'model_monitoring')}")}) \
                if wh.relation_exists(META_SCHEMA, "model_monitoring") else []
        sections = [_feature_view_section(fs, wh, v) for v in views] + [_model_section(wh, m) for m in models]
    page = ("<!doctype html><html><head><meta charset=\"utf-8\"><title>Feature store monitoring report</title>"
            f"<style>{_CSS}</style></head><body><h1>Feature store monitoring report</h1>"
            f'<p class="muted">project {html.escape(str(fs.project.dir))}, generated {utcnow():%Y-%m-%d %H:%M} UTC. '
            "Self-contained: charts are inline SVG.</p>"
            + ("\n".join(sections) or '<p class="muted">nothing to report yet</p>') + "</body></html>")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
