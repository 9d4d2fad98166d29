"""The data of every UI page: one plain function per page, `page(fs, ...) -> dict`.

Each reads only through the SDK (`FeatureStore`: its catalog, commits, validations, training datasets, model
registry, monitoring results) and, for the monitoring tables the SDK has no reader for, the warehouse layer. The
web layer (fs_cli/ui/web.py) renders the dict as HTML and serves the very same dict as the page's JSON twin, so a
program sees what a person sees. Where the CLI has the same data, the dict holds the CLI's `--json` answer
unchanged under a key named after the command (e.g. `describe` = `fs describe NAME --json`).

Names arriving from a URL are looked up in the catalog (or the registry) first: an unknown name raises `NotFound`
(HTTP 404) and never reaches SQL.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from ..errors import FeatureStoreError
from ..warehouse import META_SCHEMA, store_exists

if TYPE_CHECKING:
    from ..sdk import FeatureStore

#: Validation runs shown on a feature-group page (newest first).
VALIDATION_RUNS = 20
COST_RUNS = 50
#: fs_meta tables the monitoring work writes (fs_cli/monitoring: monitoring_results, model_monitoring, ...): their
#: names hold this word; its scratch tables (monitoring_current_*) are left out.
MONITORING_WORD = "monitoring"
MONITORING_SCRATCH = ("monitoring_current_",)
MONITORING_ROWS = 200


class NotFound(FeatureStoreError):
    """A name in the URL that the catalog (or the registry) does not know: HTTP 404."""

    status = 404


def jsonable(v: Any) -> Any:
    """Plain JSON values: times as 'YYYY-MM-DD HH:MM:SS[.ffffff]' (naive UTC, like the CLI's --json)."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.isoformat()
    if hasattr(v, "item") and not isinstance(v, str | bytes):  # numpy / decimal-like scalars
        try:
            return v.item()
        except (AttributeError, ValueError):
            pass
    if type(v).__name__ == "Decimal":
        return float(v)
    return v


# -- catalog ------------------------------------------------------------------------------------------------------
def _feature_groups_of_view(fv: Any) -> list[str]:
    return [s.feature_group for s in fv.selections]


def _upstream(catalog: Any, unique_id: str) -> list[dict[str, str]]:
    from ..discovery import upstream_lineage

    return upstream_lineage(catalog.manifest, unique_id)


def downstream_index(fs: FeatureStore, catalog: Any) -> dict[str, Any]:
    """What uses what, in one pass: views per feature group, training datasets and models per view."""
    views_of: dict[str, list[str]] = defaultdict(list)
    for fv in sorted(catalog.feature_views.values(), key=lambda v: v.name):
        for fg in _feature_groups_of_view(fv):
            if fv.name not in views_of[fg]:
                views_of[fg].append(fv.name)
    tds_of: dict[str, list[str]] = defaultdict(list)
    td_fgs: dict[str, set[str]] = {}
    for td in fs.training_datasets():
        tds_of[td.feature_view].append(td.ref)
        td_fgs[td.ref] = {str(c.get("feature_group")) for c in td.fg_commits}
    models_of_view: dict[str, list[str]] = defaultdict(list)
    models_of_fg: dict[str, list[str]] = defaultdict(list)
    for m in fs.models.list():
        if m.status != "active":
            continue
        models_of_view[m.training_dataset].append(m.ref)
        for fg in {str(c.get("feature_group")) for c in m.fg_commits} | td_fgs.get(
                f"{m.training_dataset}:{m.training_dataset_version}", set()):
            if m.ref not in models_of_fg[fg]:
                models_of_fg[fg].append(m.ref)
    tds_of_fg: dict[str, list[str]] = defaultdict(list)
    for ref, fgs in td_fgs.items():
        for fg in fgs:
            tds_of_fg[fg].append(ref)
    online = {n for n, g in catalog.feature_groups.items() if g.online}
    served = sorted(v.name for v in catalog.feature_views.values()
                    if _feature_groups_of_view(v) and set(_feature_groups_of_view(v)) <= online)
    return {"views_of": views_of, "tds_of": tds_of, "tds_of_fg": tds_of_fg, "models_of_view": models_of_view,
            "models_of_fg": models_of_fg, "served": served}


def _matches(item: dict[str, Any], hits: list[dict[str, Any]]) -> bool:
    names = {h["name"] for h in hits} | {h["feature_group"] for h in hits if h.get("feature_group")}
    return item["name"] in names


def catalog_page(fs: FeatureStore, q: str | None = None) -> dict[str, Any]:
    """Feature groups and views with owners, tags, entities, TTL, online flag, PII marks, upstream lineage (dbt
    manifest) and downstream use. `q` filters like `fs search` (names, descriptions, tags, owners, features)."""
    catalog = fs.catalog
    listing = {row["name"]: row for row in fs.list()}  # `fs list --json` rows
    down = downstream_index(fs, catalog)
    groups = []
    for name in sorted(catalog.feature_groups):
        fg = catalog.feature_groups[name]
        up = _upstream(catalog, fg.unique_id)
        groups.append({
            **listing.get(name, {"name": name}),
            "pii_features": [c.name for c in fg.features if c.pii],
            "upstream": [n["name"] for n in up if n["type"] in ("source", "seed", "model")],
            "feature_views": down["views_of"].get(name, []),
            "training_datasets": down["tds_of_fg"].get(name, []),
            "models": down["models_of_fg"].get(name, []),
            "served_views": [v for v in down["views_of"].get(name, []) if v in down["served"]],
        })
    views = []
    for name in sorted(catalog.feature_views):
        fv = catalog.feature_views[name]
        fgs = _feature_groups_of_view(fv)
        views.append({
            **listing.get(name, {"name": name}),
            "feature_groups": fgs,
            "owners": sorted({catalog.feature_groups[g].owner for g in fgs if g in catalog.feature_groups} - {""}),
            "labels": fv.labels,
            "pii_features": [out for out, g, f in fv.feature_columns if g in catalog.feature_groups
                             and any(c.name == f and c.pii for c in catalog.feature_groups[g].columns)],
            "upstream": [n["name"] for n in _upstream(catalog, fv.unique_id) if n["type"] in ("source", "seed")],
            "training_datasets": down["tds_of"].get(name, []),
            "models": down["models_of_view"].get(name, []),
            "served": name in down["served"],
        })
    hits = fs.search(q) if q and q.strip() else None  # `fs search TEXT --json`
    if hits is not None:
        groups = [g for g in groups if _matches(g, hits)]
        views = [v for v in views if _matches(v, hits)]
    return jsonable({"page": "catalog", "query": q or "", "feature_groups": groups, "feature_views": views,
                     "search": hits})


# -- feature group ------------------------------------------------------------------------------------------------
def _known_fg(fs: FeatureStore, name: str) -> None:
    if name not in fs.catalog.feature_groups:
        raise NotFound(f"unknown feature group {name[:80]!r}", fix="see the catalog at /ui/")


def validation_runs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`fs validations --json` rows grouped per run (candidate), newest first, with counts per outcome and the
    checks that did not pass (the failing expectation, its message and metrics)."""
    runs: dict[str, dict[str, Any]] = {}
    for r in rows:
        run = runs.setdefault(r["candidate_id"], {
            "candidate_id": r["candidate_id"], "commit_id": r["commit_id"], "policy": r["policy"],
            "validated_at": r["validated_at"], "counts": defaultdict(int), "not_passed": []})
        run["counts"][r["outcome"]] += 1
        if r["outcome"] not in ("pass", "skipped"):
            run["not_passed"].append({k: r.get(k) for k in ("check_name", "kind", "column_name", "outcome", "message",
                                                            "metrics", "samples")})
    out = []
    for run in runs.values():
        c = run["counts"]
        run["counts"] = dict(c)
        run["outcome"] = "fail" if c.get("fail") or c.get("error") else ("warn" if c.get("warn") else "pass")
        out.append(run)
    return sorted(out, key=lambda r: str(r["validated_at"]), reverse=True)


def drift_series(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Drift statistics per feature over runs (oldest first): {feature: {runs: [label], stats: {psi: [...]},
    thresholds: {...}}}. Empty when the group declares no drift checks."""
    per: dict[str, dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: str(r["validated_at"])):
        if r["kind"] != "drift" or not r.get("column_name") or not isinstance(r.get("metrics"), dict):
            continue
        m = r["metrics"]
        f = per.setdefault(r["column_name"], {"runs": [], "stats": defaultdict(list), "thresholds": {},
                                              "outcomes": []})
        label = f"c{r['commit_id']}" if r.get("commit_id") is not None else str(r["validated_at"])[5:16]
        f["runs"].append(label)
        f["outcomes"].append(r["outcome"])
        thresholds = m.get("thresholds") or {}
        f["thresholds"].update({k: v for k, v in thresholds.items() if isinstance(v, int | float)})
        for stat in thresholds or [k for k, v in m.items() if isinstance(v, int | float)]:
            f["stats"][stat]  # noqa: B018 - declares the series even if this run has no value
        for stat in f["stats"]:
            v = m.get(stat)
            f["stats"][stat].append(float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None)
    for f in per.values():  # a series declared late gets leading gaps
        n = len(f["runs"])
        f["stats"] = {k: [None] * (n - len(v)) + v for k, v in f["stats"].items() if any(x is not None for x in v)}
    return per


def feature_group_page(fs: FeatureStore, name: str) -> dict[str, Any]:
    """Schema, latest commit, commit log, validation runs, drift per feature over runs, cost per run, downstream."""
    _known_fg(fs, name)
    describe = fs.describe(name)  # `fs describe NAME --json`: schema, lineage, commit_log, latest_commit, cost
    rows = fs.validations(name, limit=VALIDATION_RUNS)  # `fs validations NAME --json` rows
    costs: list[dict[str, Any]] = []
    if store_exists(fs.project):
        from ..validation.cost import cost_history

        with fs.project.warehouse(read_only=True) as wh:
            costs = cost_history(wh, name, limit=COST_RUNS)
    return jsonable({
        "page": "feature_group", "name": name, "describe": describe,
        "validation_runs": validation_runs(rows), "drift": drift_series(rows),
        "cost_history": costs, "impact": fs.models.impact(name),  # `fs impact NAME --json`
        "distributions": fs.distributions(name),  # of the latest commit
    })


# -- training datasets --------------------------------------------------------------------------------------------
def _known_fv(fs: FeatureStore, name: str) -> None:
    if name not in fs.catalog.feature_views:
        raise NotFound(f"unknown feature view {name[:80]!r}", fix="see the training datasets at /ui/training-datasets")


def training_datasets_page(fs: FeatureStore, feature_view: str | None = None) -> dict[str, Any]:
    """Every training dataset version (of one view, or all): `fs training-dataset list --json`."""
    if feature_view is not None:
        _known_fv(fs, feature_view)
    tds = [td.to_dict() for td in fs.training_datasets(feature_view)]
    return jsonable({"page": "training_datasets", "feature_view": feature_view, "training_datasets": tds})


def training_dataset_page(fs: FeatureStore, feature_view: str, version: int) -> dict[str, Any]:
    """One version: `fs training-dataset show FV:V --json`, plus the models trained on it."""
    _known_fv(fs, feature_view)
    known = {td.version for td in fs.training_datasets(feature_view)}
    if version not in known:
        raise NotFound(f"feature view {feature_view} has no training dataset version {version}",
                       fix=f"versions: {', '.join(str(v) for v in sorted(known)) or '(none)'}")
    td = fs.training_dataset_info(feature_view, version).to_dict()
    models = [m.ref for m in fs.models.list() if m.training_dataset == feature_view
              and m.training_dataset_version == version]
    return jsonable({"page": "training_dataset", "training_dataset": td, "models": models})


# -- models -------------------------------------------------------------------------------------------------------
def models_page(fs: FeatureStore) -> dict[str, Any]:
    """Every model version: `fs model list --json`."""
    return jsonable({"page": "models", "models": [m.to_dict() for m in fs.models.list()]})


def model_page(fs: FeatureStore, name: str) -> dict[str, Any]:
    """A model: every version (`fs model show NAME:V --json` each), aliases and their history, validation
    reports, and the lineage of each version down to feature-group commits (`fs model lineage --json`)."""
    versions = [m for m in fs.models.list() if m.name == name]
    if not versions:
        raise NotFound(f"unknown model {name[:80]!r}", fix="see the models at /ui/models")
    reg = fs.models
    shown = []
    for m in sorted(versions, key=lambda m: m.version, reverse=True):
        shown.append({**m.to_dict(), "validations": reg.validations(m.ref), "lineage": _lineage(reg, m.ref)})
    return jsonable({"page": "model", "name": name, "versions": shown, "alias_history": reg.alias_history(name)})


def _lineage(reg: Any, ref: str) -> dict[str, Any] | None:
    try:
        return reg.lineage(ref)
    except FeatureStoreError as e:  # e.g. its training dataset was dropped: the page still shows the version
        return {"error": e.message}


# -- monitoring ---------------------------------------------------------------------------------------------------
def monitoring_tables(fs: FeatureStore) -> list[str]:
    """The fs_meta monitoring tables that exist now (none: the UI shows no monitoring page)."""
    if not store_exists(fs.project):
        return []
    with fs.project.warehouse(read_only=True) as wh:
        if META_SCHEMA not in wh.schemas():
            return []
        names = wh.tables(META_SCHEMA)
    return sorted(n for n in names if MONITORING_WORD in n and not n.startswith(MONITORING_SCRATCH))


def monitoring_page(fs: FeatureStore) -> dict[str, Any]:
    """Model feature drift (fs_meta.monitoring_results through the SDK: served / batch-scored vectors against the
    training split) per feature view and feature over runs, and the latest rows of any other monitoring table."""
    tables = monitoring_tables(fs)
    if not tables:
        raise NotFound("no monitoring results yet", fix="run `fs monitor FEATURE_VIEW` first")
    results = fs.monitoring_results(limit=10_000) if "monitoring_results" in tables else []
    series: dict[str, dict[str, Any]] = {}
    for r in sorted(results, key=lambda r: (str(r["checked_at"]), r["feature"])):
        v = series.setdefault(r["feature_view"], {"runs": [], "features": {}})
        run = str(r["checked_at"])[:16]
        if run not in v["runs"]:
            v["runs"].append(run)
        f = v["features"].setdefault(r["feature"], {"kind": r.get("kind"), "points": {}, "status": {}})
        for stat in ("psi", "ks_d", "wasserstein_norm", "jensen_shannon", "cramers_v", "missing_change"):
            if isinstance(r.get(stat), int | float):
                f["points"].setdefault(stat, {})[run] = float(r[stat])
        f["status"][run] = r.get("status")
    others = {}
    with fs.project.warehouse(read_only=True) as wh:
        for t in tables:
            if t == "monitoring_results":
                continue
            # t: a name the warehouse listed, never one from the URL
            res = wh.execute(f"select * from {wh.relation(META_SCHEMA, t)} limit {MONITORING_ROWS}")
            others[t] = {"columns": list(res.columns), "rows": [list(r) for r in res.fetchall()]}
    return jsonable({"page": "monitoring", "tables": tables, "monitoring_results": results[:MONITORING_ROWS],
                     "drift": series, "other_tables": others})
