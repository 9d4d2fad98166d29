"""`fs plan`: what merging this project would change in production, and what it would break.

The project's declarations (its parsed manifest, `Catalog`) are compared with a deployed manifest (`--state`, like
dbt's: a folder holding the production `manifest.json`, or the file itself). The comparison is of declarations only;
what depends on each changed item is read from the target warehouse (training datasets, registered models with their
aliases) and the online store (the feature views published there, i.e. served).

A change is *breaking* (exit 1) when it
- drops or retypes a feature that an aliased model takes as input (its `input_schema`, mapped to feature group and
  feature through the training dataset it was trained on) or that a served view serves, or removes an output column
  of a feature view (or the view) that such a model or served view uses;
- changes the key of a published feature group (entities, primary key, event time, created time) in place.

"Published" means deployed: the group, with its snapshot, is in the deployed manifest. A key change needs a new
version, and a new version is a new feature-group name: a dbt model version (`versions: [{v: 2}]` makes
`fg_x_v2`, see fs_cli/declarations/nodes.py) or a new model name. Both publish into a new snapshot next to the old one, so readers of
the old key keep working; the declarations have no `meta.fs.version` field, and a version number inside the same snapshot
could not keep the old key readable, so none is invented here. A version added next to the old one is "added"
(exit 0); removing the old one is then judged like any removal (breaking while an aliased model or served view uses
its features).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .declarations.load import load_catalog
from .declarations.model import Catalog, FeatureGroup, FeatureView
from .errors import FeatureStoreError
from .manifest_cache import ManifestView

if TYPE_CHECKING:
    from .project import Project

STATE_MANIFEST = "manifest.json"
KEY_FIELDS = ("entities", "primary_key", "event_time", "created_time")
# Declared attributes compared for a "changed" row that is not breaking by itself.
FG_FIELDS = ("online", "ttl", "policy", "owner", "tags", "description")


# -- the deployed state ---------------------------------------------------------------------------------------------
def state_manifest_path(state: str | Path | None) -> Path:
    """The deployed manifest.json named by --state (a folder holding it, or the file); exit-2 errors otherwise."""
    fix = ("pass --state DIR, a folder holding the production manifest.json (the target/manifest.json of the last "
           "deploy, e.g. downloaded as a CI artifact), or --state path/to/manifest.json")
    if state is None or not str(state).strip():
        raise FeatureStoreError("fs plan needs the deployed manifest to compare with (--state)", fix=fix)
    path = Path(state)
    if path.is_dir():
        path = path / STATE_MANIFEST
        if not path.is_file():
            raise FeatureStoreError(f"--state {state}: the folder holds no {STATE_MANIFEST}", fix=fix)
    elif not path.is_file():
        raise FeatureStoreError(f"--state {state}: no such file or folder", fix=fix)
    return path


def load_state(state: str | Path | None, project: Project) -> Catalog:
    """The feature groups and views of the deployed manifest. Entities are read from a dbt_project.yml next to the
    manifest when the state folder holds one (a checkout of production), else from this project: manifest.json does
    not record vars. The deployed key of each group is its snapshot's, which the manifest does record."""
    path = state_manifest_path(state)
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        raise FeatureStoreError(f"--state {path} is not readable JSON: {e}",
                                fix="point --state at the manifest.json dbt wrote (target/manifest.json)") from None
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), dict) or \
            "dbt_schema_version" not in (data.get("metadata") or {}):
        raise FeatureStoreError(f"--state {path} is not a dbt manifest (no metadata.dbt_schema_version / nodes)",
                                fix="point --state at the manifest.json dbt wrote (target/manifest.json)")
    entities_dir = path.parent if (path.parent / "dbt_project.yml").is_file() else project.dir
    # strict=False: the deployed project was valid under the rules of its day; plan compares what parses.
    return load_catalog(ManifestView(data), entities_dir, project.vars, strict=False)


# -- what depends on what (read from the warehouse and the online store) -------------------------------------------
@dataclass
class Downstream:
    """Training datasets, models and served views, as found now; `notes` say what could not be looked at."""

    training_datasets: list[Any] = field(default_factory=list)  # training.TrainingDataset
    models: list[Any] = field(default_factory=list)  # registry.ModelVersion (active ones)
    served_views: dict[str, Any] | None = None  # name -> online.specs.FVSpec; None: no online store
    online_store: str | None = None
    notes: list[str] = field(default_factory=list)

    def td(self, feature_view: str, version: int) -> Any | None:
        return next((t for t in self.training_datasets
                     if t.feature_view == feature_view and t.version == version), None)


def read_downstream(project: Project, list_models: Callable[[], list[Any]]) -> Downstream:
    """Everything `fs plan` checks changes against. Reads only (the warehouse read-only, the online store opened
    only when it exists: opening an SQLite store creates it)."""
    from .online.backends import open_store
    from .online.from_warehouse import default_store_url
    from .training import list_tds
    from .warehouse import store_exists

    down = Downstream()
    if store_exists(project):
        with project.warehouse(read_only=True) as wh:
            down.training_datasets = list_tds(wh)
        down.models = [m for m in list_models() if m.status == "active"]
    else:
        down.notes.append(f"the warehouse {project.warehouse_path} does not exist: no training datasets or models "
                          "to check (point FS_TARGET at production to check its downstream)")
    url = default_store_url(project)
    down.online_store = url
    local = _sqlite_file(url)
    if local is not None and not local.exists():
        down.notes.append(f"no online store at {url}: nothing is served yet, no served views to check")
        return down
    try:
        store = open_store(url)
        try:
            down.served_views = store.views()
        finally:
            store.close()
    except Exception as e:  # noqa: BLE001 - an unreachable store is reported, the rest of the plan still helps
        down.notes.append(f"the online store {url} could not be read ({e}): served views not checked")
    return down


def _sqlite_file(url: str) -> Path | None:
    """The file of an SQLite online-store URL, read as online.backends.open_store reads it; None for a server."""
    if "://" in url and not url.startswith("sqlite://"):
        return None
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///"):])
    return Path(url[len("sqlite://"):] if url.startswith("sqlite://") else url)


# -- the plan ------------------------------------------------------------------------------------------------------
@dataclass
class Change:
    kind: str  # feature_group | feature | feature_view
    name: str  # fg, fg.feature, fv
    change: str  # added | changed | removed
    detail: str = ""
    breaking: list[str] = field(default_factory=list)  # why this change breaks something (empty: it does not)
    training_datasets: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)  # NAME:V, with @alias for each alias
    served_views: list[str] = field(default_factory=list)
    feature_views: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Plan:
    state: str
    changes: list[Change]
    online_store: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.changes if c.breaking]

    @property
    def exit_code(self) -> int:
        return 1 if self.breaking else 0

    def counts(self) -> dict[str, int]:
        out = {k: sum(1 for c in self.changes if c.change == k) for k in ("added", "changed", "removed")}
        out["breaking"] = len(self.breaking)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "summary": self.counts(), "breaking": bool(self.breaking),
                "changes": [c.to_dict() for c in self.changes], "online_store": self.online_store,
                "notes": list(self.notes)}


def _norm_type(t: str | None) -> str:
    return " ".join((t or "").lower().split())


def _model_ref(m: Any) -> str:
    return m.ref + "".join(f" @{a}" for a in m.aliases)


class _Users:
    """Who uses what: per (feature group, feature) and per (feature view, output column), the models (aliased or
    not) and served views; per feature group and view, the training datasets and models."""

    def __init__(self, down: Downstream, current: Catalog, state: Catalog):
        self.down = down
        self.by_feature: dict[tuple[str, str], dict[str, set[str]]] = {}
        self.by_output: dict[tuple[str, str], dict[str, set[str]]] = {}
        self.aliased_by_feature: dict[tuple[str, str], list[str]] = {}
        self.aliased_by_output: dict[tuple[str, str], list[str]] = {}
        for td in down.training_datasets:
            for f in td.features:
                self._add(self.by_feature, (f.get("feature_group"), f.get("feature")), "training_datasets", td.ref)
        for m in down.models:
            td = down.td(m.training_dataset, m.training_dataset_version)
            source = {f["name"]: (f.get("feature_group"), f.get("feature")) for f in (td.features if td else [])}
            if td is None:  # the TD is gone: map inputs through the view's declaration (deployed, else current)
                fv = state.feature_views.get(m.training_dataset) or current.feature_views.get(m.training_dataset)
                source = {out: (g, f) for out, g, f in (fv.feature_columns if fv else [])}
            for col in m.input_columns:
                self._add(self.by_output, (m.training_dataset, col), "models", _model_ref(m))
                if m.aliases:
                    self.aliased_by_output.setdefault((m.training_dataset, col), []).append(
                        f"model {_model_ref(m)} takes {col} from {m.training_dataset}")
                if col in source:
                    self._add(self.by_feature, source[col], "models", _model_ref(m))
                    if m.aliases:
                        self.aliased_by_feature.setdefault(source[col], []).append(
                            f"model {_model_ref(m)} uses it as input {col}")
        for name, view in (down.served_views or {}).items():
            for ref, out in zip(view.features, view.output_names, strict=False):
                fg, _, feat = ref.partition(":")
                self._add(self.by_feature, (fg, feat), "served_views", name)
                self._add(self.by_output, (name, out), "served_views", name)

    @staticmethod
    def _add(index: dict, key: tuple, what: str, who: str) -> None:
        index.setdefault(key, {}).setdefault(what, set()).add(who)

    def feature_breakers(self, fg: str, feature: str) -> list[str]:
        served = [f"served view {v} serves it" for v in sorted(self.by_feature.get((fg, feature), {})
                                                              .get("served_views", set()))]
        return [*self.aliased_by_feature.get((fg, feature), []), *served]

    def output_breakers(self, fv: str, column: str) -> list[str]:
        served = [f"served view {fv} serves it"] if (fv, column) in self.by_output and \
            "served_views" in self.by_output[(fv, column)] else []
        return [*self.aliased_by_output.get((fv, column), []), *served]

    def fill_feature(self, c: Change, fg: str, feature: str) -> None:
        uses = self.by_feature.get((fg, feature), {})
        c.training_datasets = sorted(uses.get("training_datasets", set()))
        c.models = sorted(uses.get("models", set()))
        c.served_views = sorted(uses.get("served_views", set()))

    def fill_group(self, c: Change, fg: str, views: list[str]) -> None:
        c.feature_views = views
        tds = [t for t in self.down.training_datasets
               if any(x.get("feature_group") == fg for x in t.fg_commits)
               or any(f.get("feature_group") == fg for f in t.features)]
        self._fill_from_tds(c, tds)
        c.served_views = sorted(n for n, v in (self.down.served_views or {}).items()
                                if any(r.partition(":")[0] == fg for r in v.features))

    def fill_view(self, c: Change, fv: str) -> None:
        self._fill_from_tds(c, [t for t in self.down.training_datasets if t.feature_view == fv])
        c.models = sorted(set(c.models) | {_model_ref(m) for m in self.down.models if m.training_dataset == fv})
        c.served_views = [fv] if fv in (self.down.served_views or {}) else []

    def _fill_from_tds(self, c: Change, tds: list[Any]) -> None:
        refs = {(t.feature_view, t.version) for t in tds}
        c.training_datasets = sorted(t.ref for t in tds)
        c.models = sorted(_model_ref(m) for m in self.down.models
                          if (m.training_dataset, m.training_dataset_version) in refs)


def _views_of(fg: str, *catalogs: Catalog) -> list[str]:
    return sorted({v.name for cat in catalogs for v in cat.feature_views.values()
                   if any(s.feature_group == fg for s in v.selections)})


def _key(fg: FeatureGroup) -> dict[str, Any]:
    return {k: getattr(fg, k) for k in KEY_FIELDS}


def _attrs(fg: FeatureGroup) -> dict[str, Any]:
    d = fg.to_dict()
    return {k: d[k] for k in FG_FIELDS}


def _diff_group(old: FeatureGroup, new: FeatureGroup, users: _Users, views: list[str]) -> list[Change]:
    out: list[Change] = []
    key_old, key_new = _key(old), _key(new)
    changed_key = [k for k in KEY_FIELDS if key_old[k] != key_new[k]]
    changed_attrs = [k for k, v in _attrs(old).items() if _attrs(new)[k] != v]
    if changed_key or changed_attrs:
        parts = [f"{k}: {key_old[k]} -> {key_new[k]}" for k in changed_key]
        parts += [f"{k}: {_attrs(old)[k]} -> {_attrs(new)[k]}" for k in changed_attrs]
        c = Change("feature_group", new.name, "changed", "; ".join(parts))
        users.fill_group(c, new.name, views)
        if changed_key and old.snapshot_relation:
            c.breaking.append(f"the key of published feature group {old.name} changes in place "
                              f"({', '.join(changed_key)}): publish it as a new version (a dbt model version, "
                              f"{old.model}_v2, or a new model) and keep the old one until its readers move")
        out.append(c)
    old_f = {f.name: f for f in old.features}
    new_f = {f.name: f for f in new.features}
    for name in new_f.keys() - old_f.keys():
        out.append(Change("feature", f"{new.name}.{name}", "added", f"type {new_f[name].data_type}"))
    for name in old_f.keys() - new_f.keys():
        c = Change("feature", f"{old.name}.{name}", "removed", f"type {old_f[name].data_type}")
        users.fill_feature(c, old.name, name)
        c.breaking = [f"{old.name}.{name} is dropped and {why}" for why in users.feature_breakers(old.name, name)]
        out.append(c)
    for name in old_f.keys() & new_f.keys():
        t_old, t_new = old_f[name].data_type, new_f[name].data_type
        if _norm_type(t_old) != _norm_type(t_new):
            c = Change("feature", f"{new.name}.{name}", "changed", f"type {t_old} -> {t_new}")
            users.fill_feature(c, old.name, name)
            c.breaking = [f"{old.name}.{name} is retyped ({t_old} -> {t_new}) and {why}"
                          for why in users.feature_breakers(old.name, name)]
            out.append(c)
    return out


def _removed_group(old: FeatureGroup, users: _Users, views: list[str]) -> Change:
    c = Change("feature_group", old.name, "removed", f"{len(old.features)} features")
    users.fill_group(c, old.name, views)
    for f in old.features:
        c.breaking += [f"{old.name}.{f.name} is dropped (the group is removed) and {why}"
                       for why in users.feature_breakers(old.name, f.name)]
    return c


def _view_spec(fv: FeatureView) -> dict[str, Any]:
    return {k: v for k, v in fv.spec.items() if k not in ("description", "owner", "tags")}


def _diff_view(old: FeatureView | None, new: FeatureView | None, users: _Users) -> Change | None:
    name = (new or old).name  # type: ignore[union-attr]
    if old is None:
        return Change("feature_view", name, "added", f"{len(new.output_columns)} columns")  # type: ignore[union-attr]
    cols_old, cols_new = old.output_columns, (new.output_columns if new else [])
    dropped = [c for c in cols_old if c not in cols_new]
    if new is not None and not dropped and cols_old == cols_new and _view_spec(old) == _view_spec(new):
        return None
    if new is None:
        c = Change("feature_view", name, "removed", f"{len(cols_old)} columns")
    else:
        parts = [f"columns dropped: {', '.join(dropped)}"] if dropped else []
        added = [x for x in cols_new if x not in cols_old]
        parts += [f"columns added: {', '.join(added)}"] if added else []
        fields = sorted(k for k in set(_view_spec(old)) | set(_view_spec(new))
                        if _view_spec(old).get(k) != _view_spec(new).get(k))
        parts += [f"declaration changed: {', '.join(fields)}"] if fields else []
        c = Change("feature_view", name, "changed", "; ".join(parts))
    users.fill_view(c, name)
    for col in dropped:
        c.breaking += [f"{name} no longer outputs {col} and {why}" for why in users.output_breakers(name, col)]
    return c


def compare(current: Catalog, state: Catalog, down: Downstream, state_label: str = "") -> Plan:
    """The plan: every added, changed and removed feature group, feature and feature view of `current` relative to
    the deployed `state`, each with its downstream and, when it breaks something, why."""
    users = _Users(down, current, state)
    changes: list[Change] = []
    for name in sorted(current.feature_groups.keys() | state.feature_groups.keys()):
        old, new = state.feature_groups.get(name), current.feature_groups.get(name)
        views = _views_of(name, current, state)
        if old is None:
            changes.append(Change("feature_group", name, "added", f"{len(new.features)} features: "  # type: ignore[union-attr]
                                  + ", ".join(f.name for f in new.features), feature_views=views))  # type: ignore[union-attr]
        elif new is None:
            changes.append(_removed_group(old, users, views))
        else:
            changes += _diff_group(old, new, users, views)
    for name in sorted(current.feature_views.keys() | state.feature_views.keys()):
        c = _diff_view(state.feature_views.get(name), current.feature_views.get(name), users)
        if c is not None:
            changes.append(c)
    return Plan(state=state_label, changes=changes, online_store=down.online_store, notes=list(down.notes))


def plan(project: Project, state: str | Path | None, load_current: Callable[[], Catalog],
         list_models: Callable[[], list[Any]]) -> Plan:
    """Load the deployed manifest first (a bad --state fails before the project is parsed), then the project's
    catalog and the downstream, and compare."""
    state_catalog = load_state(state, project)
    current = load_current()
    down = read_downstream(project, list_models)
    return compare(current, state_catalog, down, state_label=str(state_manifest_path(state)))
