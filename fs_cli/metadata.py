"""Feature-store nouns read from the dbt manifest: entities, feature groups, feature views.

A feature group is a dbt model under models/feature_groups/ whose YAML carries `config.meta.fs`. Everything here is
validated before anything is written: a bad declaration raises DeclarationError naming the model, the field and the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from .errors import DeclarationError, FeatureStoreError
from .timeutil import format_ttl, parse_ttl

POLICIES = ("strict", "warn")
FG_KEYS = {
    "entities", "primary_key", "event_time", "created_time", "online", "ttl", "owner", "tags", "policy",
    "description", "reference", "drift", "expectations", "contract", "freshness", "push_source",
}
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Entity:
    name: str
    join_keys: list[str]
    description: str = ""


@dataclass
class Column:
    name: str
    data_type: str | None
    description: str = ""
    pii: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class FeatureGroup:
    name: str  # the relation name: model name, or <model>_v<N> for a versioned model
    model: str
    version: str | None
    unique_id: str
    relation: str  # quoted, fully qualified relation of the candidate (the dbt model)
    schema: str
    identifier: str
    entities: list[str]
    primary_key: list[str]
    event_time: str
    created_time: str | None
    online: bool
    ttl: timedelta | None
    owner: str
    tags: list[str]
    description: str
    policy: str
    columns: list[Column]
    meta: dict[str, Any]
    path: str
    depends_on: list[str]
    snapshot_name: str
    snapshot_unique_id: str | None = None
    snapshot_relation: str | None = None
    snapshot_schema: str | None = None

    @property
    def key_columns(self) -> list[str]:
        """The snapshot's unique key: primary key + event time (+ created time)."""
        return [*self.primary_key, self.event_time, *([self.created_time] if self.created_time else [])]

    @property
    def features(self) -> list[Column]:
        reserved = set(self.key_columns)
        return [c for c in self.columns if c.name not in reserved]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise FeatureStoreError(
            f"feature group {self.name} has no column {name!r}",
            fix=f"pick one of: {', '.join(self.column_names)}",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "version": self.version,
            "relation": self.relation,
            "entities": self.entities,
            "primary_key": self.primary_key,
            "event_time": self.event_time,
            "created_time": self.created_time,
            "online": self.online,
            "ttl": format_ttl(self.ttl),
            "ttl_seconds": int(self.ttl.total_seconds()) if self.ttl else None,
            "owner": self.owner,
            "tags": self.tags,
            "description": self.description,
            "policy": self.policy,
            "snapshot": self.snapshot_relation,
            "path": self.path,
            "features": [
                {"name": c.name, "data_type": c.data_type, "description": c.description, "pii": c.pii}
                for c in self.features
            ],
        }


@dataclass
class FeatureSelection:
    """Features taken from one feature group, joined on `join_keys` ({fg column: spine column})."""

    feature_group: str
    features: list[str]
    prefix: str
    join_keys: dict[str, str]
    # Resolved from the feature group, so every consumer reads one interpretation:
    relation: str | None = None  # the published snapshot
    event_time: str = ""
    created_time: str | None = None
    ttl_seconds: int = 0  # 0 = unlimited

    def outputs(self) -> list[tuple[str, str]]:
        """(feature, output column) pairs."""
        return [(f, self.prefix + f) for f in self.features]

    def resolved(self) -> dict[str, Any]:
        return {"name": self.feature_group, "relation": self.relation, "join_keys": dict(self.join_keys),
                "event_time": self.event_time, "created_time": self.created_time, "ttl_seconds": self.ttl_seconds,
                "features": list(self.features), "prefix": self.prefix}


@dataclass
class FeatureView:
    name: str
    unique_id: str
    relation: str
    description: str
    spec: dict[str, Any]  # config.meta.fs.feature_view as declared
    path: str
    # Parsed and validated declaration (see models/feature_views/_feature_views.yml for the format).
    spine_model: str = ""
    spine_relation: str | None = None
    #: The spine is a dbt snapshot: read as of the training dataset's commit time like the feature groups (a later or
    #: corrected label cannot change a reproduction); any other spine is read as it is when the dataset is built.
    spine_versioned: bool = False
    spine_timestamp: str = ""
    labels: list[str] = field(default_factory=list)
    spine_extra: list[str] = field(default_factory=list)
    selections: list[FeatureSelection] = field(default_factory=list)
    boundary: str = "inclusive"
    transformations: list[Any] = field(default_factory=list)  # their meaning: fs_cli/transforms (spec.py)
    on_demand: list[Any] = field(default_factory=list)

    @property
    def key_columns(self) -> list[str]:
        """Spine columns the feature groups join on, in declaration order."""
        out: list[str] = []
        for s in self.selections:
            out += [c for c in s.join_keys.values() if c not in out]
        return out

    @property
    def spine_columns(self) -> list[str]:
        """Spine columns the view keeps, in output order: keys, timestamp, extra columns, labels."""
        out: list[str] = []
        for c in [*self.key_columns, self.spine_timestamp, *self.spine_extra, *self.labels]:
            if c not in out:
                out.append(c)
        return out

    @property
    def feature_columns(self) -> list[tuple[str, str, str]]:
        """(output column, feature group, feature) of every joined feature, in output order."""
        return [(out, s.feature_group, f) for s in self.selections for f, out in s.outputs()]

    @property
    def output_columns(self) -> list[str]:
        od = [d["name"] for d in self.on_demand if isinstance(d, dict) and isinstance(d.get("name"), str)]
        return [*self.spine_columns, *(c for c, _, _ in self.feature_columns), *od]

    def resolved(self) -> dict[str, Any]:
        """The one interpretation of this declaration that the point-in-time macro (var fs_resolved_views), training
        datasets, online specs and the registry consume. macros/point_in_time/feature_view.sql
        (`fs_resolve_feature_view`) builds the same structure for plain dbt runs; a test asserts they are equal."""
        return {
            "name": self.name,
            "spine": {"relation": self.spine_relation, "timestamp": self.spine_timestamp,
                      "columns": self.spine_columns, "versioned": self.spine_versioned},
            "feature_groups": [s.resolved() for s in self.selections],
            "boundary": self.boundary,
            "output_columns": self.output_columns,
        }


@dataclass
class Catalog:
    entities: dict[str, Entity]
    feature_groups: dict[str, FeatureGroup]
    feature_views: dict[str, FeatureView]
    manifest: Any = None
    #: With load_catalog(isolate=True): feature groups / views whose declaration is invalid, left out of the two maps
    #: above (name -> its problems); asking for one by name raises its DeclarationError.
    broken: dict[str, list[FeatureStoreError]] = field(default_factory=dict)

    def fg(self, name: str) -> FeatureGroup:
        if name in self.feature_groups:
            return self.feature_groups[name]
        if name in self.broken:
            raise DeclarationError(self.broken[name])
        close = [n for n in self.feature_groups if name.lower() in n.lower() or n.lower() in name.lower()]
        raise FeatureStoreError(
            f"unknown feature group {name!r}",
            fix=f"did you mean {', '.join(close)}?" if close else
            f"known feature groups: {', '.join(sorted(self.feature_groups)) or '(none)'}; see `fs list`",
        )

    def fv(self, name: str) -> FeatureView:
        if name in self.feature_views:
            return self.feature_views[name]
        if name in self.broken:
            raise DeclarationError(self.broken[name])
        raise FeatureStoreError(
            f"unknown feature view {name!r}",
            fix=f"known feature views: {', '.join(sorted(self.feature_views)) or '(none)'}; see `fs list`",
        )


def load_entities(project_dir: Path, overrides: dict[str, Any] | None = None) -> dict[str, Entity]:
    # libyaml's loader when present: the pure-Python one costs ~0.1 s per read of dbt_project.yml
    raw = yaml.load((project_dir / "dbt_project.yml").read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    decl = dict((raw.get("vars") or {}).get("fs_entities") or {})
    decl.update((overrides or {}).get("fs_entities") or {})
    entities = {}
    problems = []
    for name, spec in decl.items():
        keys = (spec or {}).get("join_keys") if isinstance(spec, dict) else None
        if isinstance(keys, str):
            keys = [keys]
        if not keys or not all(isinstance(k, str) and IDENT.match(k) for k in keys):
            problems.append(FeatureStoreError(
                f"dbt_project.yml vars.fs_entities.{name}: join_keys missing or not column names",
                fix=f"declare e.g. `{name}: {{join_keys: [{name}_id]}}`",
            ))
            continue
        entities[name] = Entity(name, list(keys), (spec or {}).get("description", ""))
    if problems:
        raise DeclarationError(problems)
    return entities


def _column_meta(col) -> dict[str, Any]:
    meta = dict(col.meta or {})
    cfg = getattr(col, "config", None)
    if cfg is not None and getattr(cfg, "meta", None):
        meta.update(cfg.meta)
    return meta


def _fg_name(node) -> str:
    return node.name if node.version is None else f"{node.name}_v{node.version}"


def _is_feature_group(node) -> bool:
    fs = (node.config.meta or {}).get("fs")
    in_dir = "feature_groups/" in node.original_file_path.replace("\\", "/")
    return node.resource_type == "model" and (in_dir or (isinstance(fs, dict) and "feature_view" not in fs))


def load_catalog(manifest, project_dir: Path, vars: dict[str, Any] | None = None, strict: bool = True,
                 isolate: bool = False) -> Catalog:
    """Read and validate every feature group and feature view in the manifest. `strict`: any invalid declaration
    raises (before anything is written); `isolate`: an invalid one goes to `Catalog.broken` instead, and the others
    are served (read-only commands: one broken group does not hide the rest)."""
    entities = load_entities(project_dir, vars)
    problems: list[FeatureStoreError] = []
    broken: dict[str, list[FeatureStoreError]] = {}
    fgs: dict[str, FeatureGroup] = {}
    fvs: dict[str, FeatureView] = {}
    fv_nodes = []
    snapshots = {n.depends_on.nodes[0]: n for n in manifest.nodes.values()
                 if n.resource_type == "snapshot" and len(n.depends_on.nodes) == 1}
    for node in manifest.nodes.values():
        if node.resource_type != "model":
            continue
        meta_fs = (node.config.meta or {}).get("fs")
        if isinstance(meta_fs, dict) and "feature_view" in meta_fs:
            fv_nodes.append(node)  # parsed below: a view refers to feature groups
            continue
        if not _is_feature_group(node):
            continue
        fg, errs = _parse_fg(node, meta_fs, entities, snapshots.get(node.unique_id))
        problems.extend(errs)
        if errs:
            broken[_fg_name(node)] = errs
        if fg is not None:
            fgs[fg.name] = fg
    for node in fv_nodes:
        fv, errs = _parse_fv(node, node.config.meta["fs"]["feature_view"], fgs, entities, manifest)
        problems.extend(errs)
        uses_broken = sorted({s.feature_group for s in fv.selections} & set(broken))
        if uses_broken:
            errs = [*errs, FeatureStoreError(
                f"feature view {fv.name} uses feature group(s) {', '.join(uses_broken)}, whose declaration is invalid",
                fix=f"fix {', '.join(uses_broken)} first (`fs describe {uses_broken[0]}` names the problem)")]
        if errs:
            broken[fv.name] = errs
        fvs[fv.name] = fv
    if problems and strict and not isolate:
        raise DeclarationError(problems)
    if isolate:
        fgs = {n: fg for n, fg in fgs.items() if n not in broken}
        fvs = {n: fv for n, fv in fvs.items() if n not in broken}
    return Catalog(entities=entities, feature_groups=fgs, feature_views=fvs, manifest=manifest,
                   broken=broken if isolate else {})


def _check_cols_errors(where: str, snapshot: str, check_cols: Any, node: Any, columns: list[str]) -> list:
    """`check_cols: all` compares every column. An incremental group (a dbt `incremental` model) may instead name its
    one ingestion column (`check_cols: [ingested_at]`, README "Incremental feature groups"); a table group may not:
    it would silently miss corrections of the other columns."""
    if check_cols == "all":
        return []
    cols = [check_cols] if isinstance(check_cols, str) else list(check_cols or [])
    incremental = getattr(node.config, "materialized", None) == "incremental"
    if not incremental:
        return [FeatureStoreError(
            f"{where}: snapshot {snapshot} compares only {cols}: corrections of the other columns would not be published",
            fix="set `check_cols: all` (or make the model a dbt `incremental` model with one ingestion column)")]
    if len(cols) != 1 or cols[0] not in columns:
        return [FeatureStoreError(
            f"{where}: snapshot {snapshot} has check_cols {cols}; an incremental group compares one ingestion column",
            fix=f"set `check_cols: all` or `check_cols: [<a timestamp column the model stamps>]` (columns: {', '.join(columns)})")]
    return []


def _did_you_mean(name: str, columns: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, columns, n=1)
    return f"did you mean {close[0]}? " if close else ""


def _example_entity(entities: dict[str, Entity], columns: list[str]) -> str:
    """The entity a group most likely means: the first whose join keys are all columns of the model."""
    fits = [name for name, e in entities.items() if e.join_keys and set(e.join_keys) <= set(columns)]
    return (fits or list(entities) or ["customer"])[0]


def _parse_fg(node, meta_fs, entities: dict[str, Entity], snapshot) -> tuple[FeatureGroup | None, list]:
    name = _fg_name(node)
    where = f"model {name} ({node.patch_path.split('://')[-1] if node.patch_path else node.original_file_path})"
    errs: list[FeatureStoreError] = []

    def bad(fieldname: str, what: str, fix: str) -> None:
        errs.append(FeatureStoreError(f"{where}: config.meta.fs.{fieldname} {what}", fix=fix))

    if not isinstance(meta_fs, dict):
        errs.append(FeatureStoreError(
            f"{where}: feature group has no config.meta.fs declaration",
            fix="add `config: {meta: {fs: {entities: [...], event_time: ..., ttl: ..., owner: ...}}}` to its YAML",
        ))
        return None, errs
    unknown = set(meta_fs) - FG_KEYS
    if unknown:
        bad(sorted(unknown)[0], "is not a known field", f"known fields: {', '.join(sorted(FG_KEYS))}")

    columns = []
    for col in node.columns.values():
        meta = _column_meta(col)
        columns.append(Column(col.name, col.data_type, col.description or "", bool(meta.get("pii", False)), meta))
    colnames = [c.name for c in columns]
    if not columns:
        errs.append(FeatureStoreError(
            f"{where}: no columns declared",
            fix="list every column with name, data_type and description under `columns:` in the model's YAML",
        ))
    for c in columns:
        if not c.data_type:
            errs.append(FeatureStoreError(
                f"{where}: column {c.name} has no data_type", fix=f"add `data_type: <type>` to column {c.name}"))

    ents = meta_fs.get("entities")
    if isinstance(ents, str):
        ents = [ents]
    if not ents:
        bad("entities", "is missing", f"name the entity, e.g. `entities: [{_example_entity(entities, colnames)}]`"
            + ("" if entities else " after declaring it in dbt_project.yml vars.fs_entities"))
        ents = []
    join_keys: list[str] = []
    for e in ents:
        if e not in entities:
            bad("entities", f"names unknown entity {e!r}",
                f"use one of {', '.join(sorted(entities)) or '(none)'} or declare it in dbt_project.yml vars.fs_entities")
        else:
            join_keys += entities[e].join_keys
    pk = meta_fs.get("primary_key", join_keys)
    if isinstance(pk, str):
        pk = [pk]
    if not pk:
        bad("primary_key", "is missing", "declare `primary_key: [<entity key column>]` or an entity with join_keys")
        pk = []
    for k in pk:
        if colnames and k not in colnames:
            bad("primary_key", f"names column {k!r}, which the model does not declare",
                _did_you_mean(str(k), colnames)
                + f"add {k} to the model's columns or fix the name (columns: {', '.join(colnames)})")
    for k in join_keys:
        if k not in pk:
            bad("primary_key", f"does not contain the entity join key {k!r}", f"add {k} to primary_key")

    et = meta_fs.get("event_time")
    if not et:
        bad("event_time", "is missing", "name the timestamp column saying when each row was true, e.g. `event_time: feature_time`")
    elif colnames and et not in colnames:
        bad("event_time", f"names column {et!r}, which the model does not declare",
            _did_you_mean(et, colnames) + f"use one of {', '.join(colnames)}")
    ct = meta_fs.get("created_time")
    if ct and colnames and ct not in colnames:
        bad("created_time", f"names column {ct!r}, which the model does not declare",
            _did_you_mean(ct, colnames) + f"use one of {', '.join(colnames)} or remove it")

    # The snapshot's unique_key is checked against primary key + event_time (+ created_time) only when those name
    # declared columns: a typo there is reported on its field, not copied into the snapshot key's fix.
    keys_valid = not any(e.message.startswith(f"{where}: config.meta.fs.{k} ")
                         for e in errs for k in ("entities", "primary_key", "event_time", "created_time"))

    ttl = None
    try:
        ttl = parse_ttl(meta_fs.get("ttl"), where=f"{where}: config.meta.fs.ttl")
    except FeatureStoreError as e:
        errs.append(e)
    policy = meta_fs.get("policy", "strict")
    if policy not in POLICIES:
        bad("policy", f"is {policy!r}", "use `strict` (a failing candidate is not published) or `warn`")
    online = meta_fs.get("online", False)
    if not isinstance(online, bool):
        bad("online", f"is {online!r}, not true/false", "use `online: true` or `online: false`")
    tags = meta_fs.get("tags") or []
    if isinstance(tags, str):
        tags = [tags]
    # dbt's own tags (`config: {tags: [...]}`, selectable as `dbt ls --select tag:x`) are the group's tags too.
    tags = list(dict.fromkeys([*(str(t) for t in tags), *(str(t) for t in (getattr(node, "tags", None) or []))]))

    snap_name = f"{name}_snapshot"
    fg = FeatureGroup(
        name=name, model=node.name, version=None if node.version is None else str(node.version),
        unique_id=node.unique_id, relation=node.relation_name, schema=node.schema, identifier=node.alias,
        entities=list(ents), primary_key=list(pk), event_time=et or "", created_time=ct, online=bool(online),
        ttl=ttl, owner=str(meta_fs.get("owner") or ""), tags=[str(t) for t in tags],
        description=meta_fs.get("description") or node.description or "", policy=policy, columns=columns,
        meta=meta_fs, path=node.original_file_path, depends_on=list(node.depends_on.nodes), snapshot_name=snap_name,
    )
    key_hint = fg.key_columns if keys_valid else "[<primary key columns>, <event_time column>]"
    if snapshot is None:
        errs.append(FeatureStoreError(
            f"{where}: no snapshot publishes this feature group",
            fix=f"add to snapshots/feature_groups.yml: `- name: {snap_name}` with `relation: ref('{node.name}'"
            + (f", v={node.version}" if node.version is not None else "") + ")` and config "
            f"`unique_key: {key_hint}`, `strategy: check`, `check_cols: all`, `hard_deletes: new_record`",
        ))
    else:
        cfg = snapshot.config.to_dict()
        uk = cfg.get("unique_key")
        uk = [uk] if isinstance(uk, str) else list(uk or [])
        if snapshot.name != snap_name:
            errs.append(FeatureStoreError(f"{where}: its snapshot is named {snapshot.name}", fix=f"rename it to {snap_name}"))
        if keys_valid and set(uk) != set(fg.key_columns):
            errs.append(FeatureStoreError(
                f"{where}: snapshot {snapshot.name} has unique_key {uk}",
                fix=f"set `unique_key: {fg.key_columns}` (primary key + event_time + created_time)"))
        if cfg.get("strategy") != "check":
            errs.append(FeatureStoreError(
                f"{where}: snapshot {snapshot.name} uses strategy {cfg.get('strategy')!r}",
                fix="use `strategy: check` with `check_cols: all` (the timestamp strategy ignores backdated corrections)"))
        if cfg.get("hard_deletes") != "new_record":
            errs.append(FeatureStoreError(
                f"{where}: snapshot {snapshot.name} does not record deletes",
                fix="set `hard_deletes: new_record`"))
        errs += _check_cols_errors(where, snapshot.name, cfg.get("check_cols"), node, fg.column_names)
        fg.snapshot_unique_id = snapshot.unique_id
        fg.snapshot_relation = snapshot.relation_name
        fg.snapshot_schema = snapshot.schema
    return fg, errs


FV_KEYS = {"spine", "features", "boundary", "transformations", "on_demand", "description", "owner", "tags",
           "monitoring"}
SPINE_KEYS = {"model", "timestamp", "entities", "label", "labels", "columns"}
SELECTION_KEYS = {"feature_group", "features", "prefix"}
RESERVED_OUTPUTS = {"split"}  # added by training datasets


def _names(value: Any) -> list[Any]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value) if isinstance(value, list) else [value]


def _parse_fv(node, decl, fgs: dict[str, FeatureGroup], entities: dict[str, Entity], manifest) -> tuple[FeatureView, list]:
    """Validate a feature view's declaration against the feature groups; every problem names model, field and fix."""
    where = f"feature view {node.name} ({node.patch_path.split('://')[-1] if node.patch_path else node.original_file_path})"
    errs: list[FeatureStoreError] = []
    fv = FeatureView(name=node.name, unique_id=node.unique_id, relation=node.relation_name,
                     description=node.description or "", spec=decl if isinstance(decl, dict) else {},
                     path=node.original_file_path)

    def bad(fieldname: str, what: str, fix: str) -> None:
        errs.append(FeatureStoreError(f"{where}: config.meta.fs.feature_view.{fieldname} {what}", fix=fix))

    if not isinstance(decl, dict):
        bad("", "is not a mapping", "declare `feature_view: {spine: {...}, features: [...]}` (see models/feature_views/)")
        return fv, errs
    unknown = set(decl) - FV_KEYS
    if unknown:
        bad(sorted(unknown)[0], "is not a known field", f"known fields: {', '.join(sorted(FV_KEYS))}")
    fv.description = str(decl.get("description") or fv.description)

    # The spine: a model (or seed/snapshot) with a timestamp, entity key columns and labels.
    spine = decl.get("spine")
    if not isinstance(spine, dict):
        bad("spine", "is missing", "declare `spine: {model: <label model>, timestamp: <column>, label: <column>}`")
        spine = {}
    unknown = set(spine) - SPINE_KEYS
    if unknown:
        bad(f"spine.{sorted(unknown)[0]}", "is not a known field", f"known fields: {', '.join(sorted(SPINE_KEYS))}")
    spine_node = None
    model = spine.get("model")
    if spine and not isinstance(model, str):
        bad("spine.model", "is missing", "name the model (or seed) holding one row per training example")
    elif isinstance(model, str):
        candidates = [n for n in manifest.nodes.values()
                      if n.resource_type in ("model", "seed", "snapshot")
                      and model in (n.name, _fg_name(n) if n.resource_type == "model" else n.name)]
        if not candidates:
            bad("spine.model", f"names {model!r}, which is not a model, seed or snapshot of the project",
                "fix the name (see `dbt ls --resource-type model`)")
        else:
            spine_node = candidates[0]
            fv.spine_model, fv.spine_relation = model, spine_node.relation_name
            fv.spine_versioned = spine_node.resource_type == "snapshot"
    ts = spine.get("timestamp")
    if spine and (not isinstance(ts, str) or not IDENT.match(ts)):
        bad("spine.timestamp", "is missing or not a column name",
            "name the spine column holding each example's time, e.g. `timestamp: transaction_at`")
    fv.spine_timestamp = ts if isinstance(ts, str) else ""
    labels = _names(spine.get("label")) + _names(spine.get("labels"))
    extra = _names(spine.get("columns"))
    for fieldname, cols in (("spine.label", labels), ("spine.columns", extra)):
        for c in cols:
            if not isinstance(c, str) or not IDENT.match(c):
                bad(fieldname, f"contains {c!r}, not a column name", "list plain column names")
    fv.labels = [c for c in labels if isinstance(c, str)]
    fv.spine_extra = [c for c in extra if isinstance(c, str)]
    ent_map = spine.get("entities") or {}
    if not isinstance(ent_map, dict):
        bad("spine.entities", "is not a mapping", "write `entities: {customer: customer_id}` (entity: spine column)")
        ent_map = {}
    for e, m in ent_map.items():
        if e not in entities:
            bad(f"spine.entities.{e}", "is not a declared entity",
                f"use one of {', '.join(sorted(entities))} (dbt_project.yml vars.fs_entities)")
        elif not (isinstance(m, str) and IDENT.match(m)) and not (
                isinstance(m, dict) and set(m) <= set(entities[e].join_keys)
                and all(isinstance(v, str) and IDENT.match(v) for v in m.values())):
            bad(f"spine.entities.{e}", f"is {m!r}", f"name the spine column holding {e}'s join key, e.g. `{e}: "
                f"{entities[e].join_keys[0]}`, or map each join key: `{e}: {{{entities[e].join_keys[0]}: <column>}}`")

    # Feature selections.
    sels = decl.get("features")
    if not isinstance(sels, list) or not sels:
        bad("features", "is missing or empty",
            "list feature groups: `features: [{feature_group: <fg>, features: '*'}]` (or a list of feature names)")
        sels = []
    for i, sel in enumerate(sels):
        at = f"features[{i}]"
        if not isinstance(sel, dict):
            bad(at, f"is {sel!r}", "write `{feature_group: <fg>, features: [..] or '*', prefix: <optional>}`")
            continue
        unknown = set(sel) - SELECTION_KEYS
        if unknown:
            bad(f"{at}.{sorted(unknown)[0]}", "is not a known field", f"known fields: {', '.join(sorted(SELECTION_KEYS))}")
        name = sel.get("feature_group")
        if name not in fgs:
            close = [n for n in fgs if str(name).lower() in n.lower() or n.lower() in str(name).lower()]
            bad(f"{at}.feature_group", f"names unknown feature group {name!r}",
                f"did you mean {', '.join(close)}?" if close else f"use one of {', '.join(sorted(fgs)) or '(none)'}")
            continue
        fg = fgs[name]
        join_keys: dict[str, str] = {}
        for e in fg.entities:
            if e not in entities:
                continue  # reported on the feature group
            m = ent_map.get(e)
            for jk in entities[e].join_keys:
                join_keys[jk] = m.get(jk, jk) if isinstance(m, dict) else m if isinstance(m, str) else jk
        if set(fg.primary_key) - set(join_keys):
            bad(f"{at}.feature_group", f"{name} has primary key columns beyond its entities' join keys "
                f"({', '.join(sorted(set(fg.primary_key) - set(join_keys)))}), so a spine row could match several rows",
                "join a feature group whose primary key is its entity join keys (aggregate the extra key away)")
        chosen = sel.get("features", "*")
        names = [f.name for f in fg.features]
        if chosen in ("*", None, ["*"]):
            feats = names
        elif isinstance(chosen, list) and chosen and all(isinstance(f, str) for f in chosen):
            feats = []
            for f in chosen:
                if f in names:
                    feats.append(f)
                elif f in fg.column_names:
                    bad(f"{at}.features", f"selects {f!r}, a key/time column of {name}, not a feature",
                        "drop it: keys and times come from the spine")
                else:
                    bad(f"{at}.features", f"selects {f!r}, which feature group {name} does not have",
                        f"pick from {', '.join(names)} (or '*')")
        else:
            bad(f"{at}.features", f"is {chosen!r}", "write '*' (all features) or a list of feature names")
            continue
        prefix = sel.get("prefix") or ""
        if not isinstance(prefix, str) or (prefix and not IDENT.match(prefix)):
            bad(f"{at}.prefix", f"is {prefix!r}", "use letters, digits and _ (e.g. `prefix: merchant_`)")
            prefix = ""
        ttl = fg.ttl.total_seconds() if fg.ttl is not None else 0
        fv.selections.append(FeatureSelection(name, feats, prefix, join_keys, relation=fg.snapshot_relation,
                                              event_time=fg.event_time, created_time=fg.created_time,
                                              ttl_seconds=int(ttl)))

    boundary = decl.get("boundary", "inclusive")
    if boundary not in ("inclusive", "strict"):
        bad("boundary", f"is {boundary!r}", "use `inclusive` (event_time <= spine time, the default) or `strict` (<)")
    else:
        fv.boundary = boundary
    for fieldname in ("transformations", "on_demand"):
        value = decl.get(fieldname) or []
        if not isinstance(value, list):
            bad(fieldname, "is not a list", f"write `{fieldname}: [...]` or remove it")
        else:
            setattr(fv, fieldname, value)

    # Spine columns exist (when the spine's YAML documents a typed schema; otherwise checked against the
    # warehouse when a training dataset is built) and every output column name is unique.
    if spine_node is not None and fv.spine_timestamp:
        declared = {c.name: c for c in spine_node.columns.values()}
        if declared and all(c.data_type for c in declared.values()):
            for c in fv.spine_columns:
                if c not in declared:
                    bad("spine", f"uses column {c!r}, which spine model {model} does not have",
                        f"use one of {', '.join(declared)} or add {c} to {model}")
    seen: dict[str, str] = {}
    for c in fv.spine_columns:
        seen.setdefault(c.lower(), "the spine")
    for out, fg_name, _f in fv.feature_columns:
        other = seen.get(out.lower())
        if other is not None:
            bad("features", f"outputs column {out!r} from {fg_name} and from {other}",
                f"set a distinct `prefix:` on {fg_name} (e.g. `prefix: {fg_name.removeprefix('fg_')}_`) "
                "or drop one of them")
        seen[out.lower()] = fg_name
    for c in [*seen, *(str(d.get("name", "")).lower() for d in fv.on_demand if isinstance(d, dict))]:
        if c in RESERVED_OUTPUTS:
            bad("features", f"outputs a column named {c!r}, which training datasets reserve",
                "rename it in the spine, or set a prefix on its feature group")
    return fv, errs
