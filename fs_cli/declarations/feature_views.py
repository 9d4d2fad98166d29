"""One feature view's declaration (`config.meta.fs.feature_view` of a model under models/feature_views/), parsed and
checked against the feature groups and entities: the spine, the feature selections with their join keys, the
boundary, and the columns it outputs. Every problem names the view, the field and the fix; all are returned together.
Transformations and on-demand features are kept as declared here; fs_cli.transforms checks them."""

from __future__ import annotations

from typing import Any

from ..errors import Problems
from .model import IDENT, Entity, FeatureGroup, FeatureSelection, FeatureView
from .nodes import declared_in, feature_group_name

FV_KEYS = {"spine", "features", "boundary", "transformations", "on_demand", "description", "owner", "tags",
           "monitoring"}
SPINE_KEYS = {"model", "timestamp", "entities", "label", "labels", "columns"}
SELECTION_KEYS = {"feature_group", "features", "prefix"}
RESERVED_OUTPUTS = {"split"}  # added by training datasets


def parse_feature_view(node, decl, fgs: dict[str, FeatureGroup], entities: dict[str, Entity],
                       manifest) -> tuple[FeatureView, list]:
    """Validate a feature view's declaration against the feature groups; every problem names model, field and fix.
    Returns the view (as far as it parses) and the list of its problems."""
    problems = Problems(f"feature view {node.name} ({declared_in(node)})", field_prefix="config.meta.fs.feature_view.")
    fv = FeatureView(name=node.name, unique_id=node.unique_id, relation=node.relation_name,
                     description=node.description or "", spec=decl if isinstance(decl, dict) else {},
                     path=node.original_file_path)
    if not isinstance(decl, dict):
        problems.add("is not a mapping", "declare `feature_view: {spine: {...}, features: [...]}` (see models/feature_views/)",
                     field="")
        return fv, problems.errors
    unknown = set(decl) - FV_KEYS
    if unknown:
        problems.add("is not a known field", f"known fields: {', '.join(sorted(FV_KEYS))}", field=sorted(unknown)[0])
    fv.description = str(decl.get("description") or fv.description)

    spine = decl.get("spine")
    if not isinstance(spine, dict):
        problems.add("is missing", "declare `spine: {model: <label model>, timestamp: <column>, label: <column>}`",
                     field="spine")
        spine = {}
    spine_node = _parse_spine(fv, spine, manifest, problems)
    ent_map = _spine_entities(spine, entities, problems)
    _parse_selections(fv, decl.get("features"), fgs, entities, ent_map, problems)

    boundary = decl.get("boundary", "inclusive")
    if boundary not in ("inclusive", "strict"):
        problems.add(f"is {boundary!r}", "use `inclusive` (event_time <= spine time, the default) or `strict` (<)",
                     field="boundary")
    else:
        fv.boundary = boundary
    for fieldname in ("transformations", "on_demand"):
        value = decl.get(fieldname) or []
        if not isinstance(value, list):
            problems.add("is not a list", f"write `{fieldname}: [...]` or remove it", field=fieldname)
        else:
            setattr(fv, fieldname, value)
    _check_outputs(fv, spine_node, problems)
    return fv, problems.errors


def _names(value: Any) -> list[Any]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value) if isinstance(value, list) else [value]


def _parse_spine(fv: FeatureView, spine: dict[str, Any], manifest, problems: Problems) -> Any:
    """The spine: a model (or seed/snapshot) with a timestamp, labels and extra columns. Returns its manifest node
    (None when it is not found)."""
    unknown = set(spine) - SPINE_KEYS
    if unknown:
        problems.add("is not a known field", f"known fields: {', '.join(sorted(SPINE_KEYS))}",
                     field=f"spine.{sorted(unknown)[0]}")
    spine_node = None
    model = spine.get("model")
    if spine and not isinstance(model, str):
        problems.add("is missing", "name the model (or seed) holding one row per training example", field="spine.model")
    elif isinstance(model, str):
        candidates = [n for n in manifest.nodes.values()
                      if n.resource_type in ("model", "seed", "snapshot")
                      and model in (n.name, feature_group_name(n) if n.resource_type == "model" else n.name)]
        if not candidates:
            problems.add(f"names {model!r}, which is not a model, seed or snapshot of the project",
                         "fix the name (see `dbt ls --resource-type model`)", field="spine.model")
        else:
            spine_node = candidates[0]
            fv.spine_model, fv.spine_relation = model, spine_node.relation_name
            fv.spine_versioned = spine_node.resource_type == "snapshot"
    ts = spine.get("timestamp")
    if spine and (not isinstance(ts, str) or not IDENT.match(ts)):
        problems.add("is missing or not a column name",
                     "name the spine column holding each example's time, e.g. `timestamp: transaction_at`",
                     field="spine.timestamp")
    fv.spine_timestamp = ts if isinstance(ts, str) else ""
    labels = _names(spine.get("label")) + _names(spine.get("labels"))
    extra = _names(spine.get("columns"))
    for fieldname, cols in (("spine.label", labels), ("spine.columns", extra)):
        for c in cols:
            if not isinstance(c, str) or not IDENT.match(c):
                problems.add(f"contains {c!r}, not a column name", "list plain column names", field=fieldname)
    fv.labels = [c for c in labels if isinstance(c, str)]
    fv.spine_extra = [c for c in extra if isinstance(c, str)]
    return spine_node


def _spine_entities(spine: dict[str, Any], entities: dict[str, Entity], problems: Problems) -> dict[str, Any]:
    """`spine.entities`: entity -> the spine column holding its join key, or {join key: spine column}."""
    ent_map = spine.get("entities") or {}
    if not isinstance(ent_map, dict):
        problems.add("is not a mapping", "write `entities: {customer: customer_id}` (entity: spine column)",
                     field="spine.entities")
        return {}
    for e, m in ent_map.items():
        if e not in entities:
            problems.add("is not a declared entity",
                         f"use one of {', '.join(sorted(entities))} (dbt_project.yml vars.fs_entities)",
                         field=f"spine.entities.{e}")
        elif not (isinstance(m, str) and IDENT.match(m)) and not (
                isinstance(m, dict) and set(m) <= set(entities[e].join_keys)
                and all(isinstance(v, str) and IDENT.match(v) for v in m.values())):
            problems.add(f"is {m!r}", f"name the spine column holding {e}'s join key, e.g. `{e}: "
                         f"{entities[e].join_keys[0]}`, or map each join key: `{e}: {{{entities[e].join_keys[0]}: <column>}}`",
                         field=f"spine.entities.{e}")
    return ent_map


def _parse_selections(fv: FeatureView, sels: Any, fgs: dict[str, FeatureGroup], entities: dict[str, Entity],
                      ent_map: dict[str, Any], problems: Problems) -> None:
    """`features:`: which features of which feature groups, joined on which spine columns, under which prefix."""
    if not isinstance(sels, list) or not sels:
        problems.add("is missing or empty",
                     "list feature groups: `features: [{feature_group: <fg>, features: '*'}]` (or a list of feature names)",
                     field="features")
        return
    for i, sel in enumerate(sels):
        selection = _parse_selection(f"features[{i}]", sel, fgs, entities, ent_map, problems)
        if selection is not None:
            fv.selections.append(selection)


def _parse_selection(at: str, sel: Any, fgs: dict[str, FeatureGroup], entities: dict[str, Entity],
                     ent_map: dict[str, Any], problems: Problems) -> FeatureSelection | None:
    if not isinstance(sel, dict):
        problems.add(f"is {sel!r}", "write `{feature_group: <fg>, features: [..] or '*', prefix: <optional>}`", field=at)
        return None
    unknown = set(sel) - SELECTION_KEYS
    if unknown:
        problems.add("is not a known field", f"known fields: {', '.join(sorted(SELECTION_KEYS))}",
                     field=f"{at}.{sorted(unknown)[0]}")
    name = sel.get("feature_group")
    if name not in fgs:
        close = [n for n in fgs if str(name).lower() in n.lower() or n.lower() in str(name).lower()]
        problems.add(f"names unknown feature group {name!r}",
                     f"did you mean {', '.join(close)}?" if close else f"use one of {', '.join(sorted(fgs)) or '(none)'}",
                     field=f"{at}.feature_group")
        return None
    fg = fgs[name]
    join_keys: dict[str, str] = {}
    for e in fg.entities:
        if e not in entities:
            continue  # reported on the feature group
        m = ent_map.get(e)
        for jk in entities[e].join_keys:
            join_keys[jk] = m.get(jk, jk) if isinstance(m, dict) else m if isinstance(m, str) else jk
    if set(fg.primary_key) - set(join_keys):
        problems.add(f"{name} has primary key columns beyond its entities' join keys "
                     f"({', '.join(sorted(set(fg.primary_key) - set(join_keys)))}), so a spine row could match several rows",
                     "join a feature group whose primary key is its entity join keys (aggregate the extra key away)",
                     field=f"{at}.feature_group")
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
                problems.add(f"selects {f!r}, a key/time column of {name}, not a feature",
                             "drop it: keys and times come from the spine", field=f"{at}.features")
            else:
                problems.add(f"selects {f!r}, which feature group {name} does not have",
                             f"pick from {', '.join(names)} (or '*')", field=f"{at}.features")
    else:
        problems.add(f"is {chosen!r}", "write '*' (all features) or a list of feature names", field=f"{at}.features")
        return None
    prefix = sel.get("prefix") or ""
    if not isinstance(prefix, str) or (prefix and not IDENT.match(prefix)):
        problems.add(f"is {prefix!r}", "use letters, digits and _ (e.g. `prefix: merchant_`)", field=f"{at}.prefix")
        prefix = ""
    ttl = fg.ttl.total_seconds() if fg.ttl is not None else 0
    return FeatureSelection(name, feats, prefix, join_keys, relation=fg.snapshot_relation, event_time=fg.event_time,
                            created_time=fg.created_time, ttl_seconds=int(ttl))


def _check_outputs(fv: FeatureView, spine_node: Any, problems: Problems) -> None:
    """Spine columns exist (when the spine's YAML documents a typed schema; otherwise checked against the warehouse
    when a training dataset is built) and every output column name is unique and not reserved."""
    if spine_node is not None and fv.spine_timestamp:
        declared = {c.name: c for c in spine_node.columns.values()}
        if declared and all(c.data_type for c in declared.values()):
            model = fv.spine_model
            for c in fv.spine_columns:
                if c not in declared:
                    problems.add(f"uses column {c!r}, which spine model {model} does not have",
                                 f"use one of {', '.join(declared)} or add {c} to {model}", field="spine")
    seen: dict[str, str] = {}
    for c in fv.spine_columns:
        seen.setdefault(c.lower(), "the spine")
    for out, fg_name, _f in fv.feature_columns:
        other = seen.get(out.lower())
        if other is not None:
            problems.add(f"outputs column {out!r} from {fg_name} and from {other}",
                         f"set a distinct `prefix:` on {fg_name} (e.g. `prefix: {fg_name.removeprefix('fg_')}_`) "
                         "or drop one of them", field="features")
        seen[out.lower()] = fg_name
    for c in [*seen, *(str(d.get("name", "")).lower() for d in fv.on_demand if isinstance(d, dict))]:
        if c in RESERVED_OUTPUTS:
            problems.add(f"outputs a column named {c!r}, which training datasets reserve",
                         "rename it in the spine, or set a prefix on its feature group", field="features")
