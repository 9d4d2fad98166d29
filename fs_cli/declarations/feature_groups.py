"""One feature group's declaration, parsed and checked: a dbt model's `config.meta.fs`, its columns, and the snapshot
that publishes it. Every problem names the model, the field and the fix; all of them are returned together."""

from __future__ import annotations

import difflib
from typing import Any

from ..errors import Problems
from ..timeutil import parse_ttl
from .model import Column, Entity, FeatureGroup
from .nodes import column_meta, declared_in, feature_group_name

POLICIES = ("strict", "warn")
FG_KEYS = {
    "entities", "primary_key", "event_time", "created_time", "online", "ttl", "owner", "tags", "policy",
    "description", "reference", "drift", "expectations", "contract", "freshness", "push_source",
}
# The fields the snapshot's unique key is made of (primary key + event_time + created_time).
KEY_FIELDS = ("entities", "primary_key", "event_time", "created_time")


def parse_feature_group(node, meta_fs, entities: dict[str, Entity], snapshot) -> tuple[FeatureGroup | None, list]:
    """The group declared by `node` (None when it has no `meta.fs` at all) and the list of its problems."""
    name = feature_group_name(node)
    problems = Problems(f"model {name} ({declared_in(node)})", field_prefix="config.meta.fs.")
    if not isinstance(meta_fs, dict):
        problems.add("feature group has no config.meta.fs declaration",
                     fix="add `config: {meta: {fs: {entities: [...], event_time: ..., ttl: ..., owner: ...}}}` to its YAML")
        return None, problems.errors
    unknown = set(meta_fs) - FG_KEYS
    if unknown:
        problems.add("is not a known field", f"known fields: {', '.join(sorted(FG_KEYS))}", field=sorted(unknown)[0])

    columns = _columns(node, problems)
    colnames = [c.name for c in columns]
    ents, pk = _entities_and_primary_key(meta_fs, entities, colnames, problems)
    et = meta_fs.get("event_time")
    if not et:
        problems.add("is missing", "name the timestamp column saying when each row was true, e.g. `event_time: feature_time`",
                     field="event_time")
    elif colnames and et not in colnames:
        problems.add(f"names column {et!r}, which the model does not declare",
                     _did_you_mean(et, colnames) + f"use one of {', '.join(colnames)}", field="event_time")
    ct = meta_fs.get("created_time")
    if ct and colnames and ct not in colnames:
        problems.add(f"names column {ct!r}, which the model does not declare",
                     _did_you_mean(ct, colnames) + f"use one of {', '.join(colnames)} or remove it", field="created_time")

    # The snapshot's unique_key is checked against primary key + event_time (+ created_time) only when those name
    # declared columns: a typo there is reported on its field, not copied into the snapshot key's fix.
    keys_valid = not any(problems.on_field(k) for k in KEY_FIELDS)

    ttl = None
    with problems.collecting():
        ttl = parse_ttl(meta_fs.get("ttl"), where=f"{problems.where}: config.meta.fs.ttl")
    policy = meta_fs.get("policy", "strict")
    if policy not in POLICIES:
        problems.add(f"is {policy!r}", "use `strict` (a failing candidate is not published) or `warn`", field="policy")
    online = meta_fs.get("online", False)
    if not isinstance(online, bool):
        problems.add(f"is {online!r}, not true/false", "use `online: true` or `online: false`", field="online")
    tags = meta_fs.get("tags") or []
    if isinstance(tags, str):
        tags = [tags]
    # dbt's own tags (`config: {tags: [...]}`, selectable as `dbt ls --select tag:x`) are the group's tags too.
    tags = list(dict.fromkeys([*(str(t) for t in tags), *(str(t) for t in (getattr(node, "tags", None) or []))]))

    fg = FeatureGroup(
        name=name, model=node.name, version=None if node.version is None else str(node.version),
        unique_id=node.unique_id, relation=node.relation_name, schema=node.schema, identifier=node.alias,
        entities=list(ents), primary_key=list(pk), event_time=et or "", created_time=ct, online=bool(online),
        ttl=ttl, owner=str(meta_fs.get("owner") or ""), tags=[str(t) for t in tags],
        description=meta_fs.get("description") or node.description or "", policy=policy, columns=columns,
        meta=meta_fs, path=node.original_file_path, depends_on=list(node.depends_on.nodes),
        snapshot_name=f"{name}_snapshot",
    )
    _check_snapshot(fg, node, snapshot, keys_valid, problems)
    return fg, problems.errors


def _columns(node, problems: Problems) -> list[Column]:
    """The model's documented columns; each needs a data_type (contracts, transformations and DDL read it)."""
    columns = []
    for col in node.columns.values():
        meta = column_meta(col)
        columns.append(Column(col.name, col.data_type, col.description or "", bool(meta.get("pii", False)), meta))
    if not columns:
        problems.add("no columns declared",
                     fix="list every column with name, data_type and description under `columns:` in the model's YAML")
    for c in columns:
        if not c.data_type:
            problems.add(f"column {c.name} has no data_type", fix=f"add `data_type: <type>` to column {c.name}")
    return columns


def _entities_and_primary_key(meta_fs: dict[str, Any], entities: dict[str, Entity], colnames: list[str],
                              problems: Problems) -> tuple[list[str], list[str]]:
    """The group's entities and primary key (default: the entities' join keys, which it must contain)."""
    ents = meta_fs.get("entities")
    if isinstance(ents, str):
        ents = [ents]
    if not ents:
        problems.add("is missing", f"name the entity, e.g. `entities: [{_example_entity(entities, colnames)}]`"
                     + ("" if entities else " after declaring it in dbt_project.yml vars.fs_entities"), field="entities")
        ents = []
    join_keys: list[str] = []
    for e in ents:
        if e not in entities:
            problems.add(f"names unknown entity {e!r}",
                         f"use one of {', '.join(sorted(entities)) or '(none)'} or declare it in dbt_project.yml "
                         "vars.fs_entities", field="entities")
        else:
            join_keys += entities[e].join_keys
    pk = meta_fs.get("primary_key", join_keys)
    if isinstance(pk, str):
        pk = [pk]
    if not pk:
        problems.add("is missing", "declare `primary_key: [<entity key column>]` or an entity with join_keys",
                     field="primary_key")
        pk = []
    for k in pk:
        if colnames and k not in colnames:
            problems.add(f"names column {k!r}, which the model does not declare",
                         _did_you_mean(str(k), colnames)
                         + f"add {k} to the model's columns or fix the name (columns: {', '.join(colnames)})",
                         field="primary_key")
    for k in join_keys:
        if k not in pk:
            problems.add(f"does not contain the entity join key {k!r}", f"add {k} to primary_key", field="primary_key")
    return ents, pk


def _check_snapshot(fg: FeatureGroup, node, snapshot, keys_valid: bool, problems: Problems) -> None:
    """The dbt snapshot publishing the group: named after it, keyed on its key columns, `check` strategy recording
    deletes. Records the snapshot's relation on `fg`."""
    if snapshot is None:
        key_hint = fg.key_columns if keys_valid else "[<primary key columns>, <event_time column>]"
        problems.add(
            "no snapshot publishes this feature group",
            fix=f"add to snapshots/feature_groups.yml: `- name: {fg.snapshot_name}` with `relation: ref('{node.name}'"
            + (f", v={node.version}" if node.version is not None else "") + ")` and config "
            f"`unique_key: {key_hint}`, `strategy: check`, `check_cols: all`, `hard_deletes: new_record`",
        )
        return
    cfg = snapshot.config.to_dict()
    uk = cfg.get("unique_key")
    uk = [uk] if isinstance(uk, str) else list(uk or [])
    if snapshot.name != fg.snapshot_name:
        problems.add(f"its snapshot is named {snapshot.name}", fix=f"rename it to {fg.snapshot_name}")
    if keys_valid and set(uk) != set(fg.key_columns):
        problems.add(f"snapshot {snapshot.name} has unique_key {uk}",
                     fix=f"set `unique_key: {fg.key_columns}` (primary key + event_time + created_time)")
    if cfg.get("strategy") != "check":
        problems.add(f"snapshot {snapshot.name} uses strategy {cfg.get('strategy')!r}",
                     fix="use `strategy: check` with `check_cols: all` (the timestamp strategy ignores backdated corrections)")
    if cfg.get("hard_deletes") != "new_record":
        problems.add(f"snapshot {snapshot.name} does not record deletes", fix="set `hard_deletes: new_record`")
    _check_cols(snapshot.name, cfg.get("check_cols"), node, fg.column_names, problems)
    fg.snapshot_unique_id = snapshot.unique_id
    fg.snapshot_relation = snapshot.relation_name
    fg.snapshot_schema = snapshot.schema


def _check_cols(snapshot: str, check_cols: Any, node: Any, columns: list[str], problems: Problems) -> None:
    """`check_cols: all` compares every column. An incremental group (a dbt `incremental` model) may instead name its
    one ingestion column (`check_cols: [ingested_at]`, README "Incremental feature groups"); a table group may not:
    it would silently miss corrections of the other columns."""
    if check_cols == "all":
        return
    cols = [check_cols] if isinstance(check_cols, str) else list(check_cols or [])
    incremental = getattr(node.config, "materialized", None) == "incremental"
    if not incremental:
        problems.add(
            f"snapshot {snapshot} compares only {cols}: corrections of the other columns would not be published",
            fix="set `check_cols: all` (or make the model a dbt `incremental` model with one ingestion column)")
    elif len(cols) != 1 or cols[0] not in columns:
        problems.add(
            f"snapshot {snapshot} has check_cols {cols}; an incremental group compares one ingestion column",
            fix=f"set `check_cols: all` or `check_cols: [<a timestamp column the model stamps>]` (columns: {', '.join(columns)})")


def _did_you_mean(name: str, columns: list[str]) -> str:
    close = difflib.get_close_matches(name, columns, n=1)
    return f"did you mean {close[0]}? " if close else ""


def _example_entity(entities: dict[str, Entity], columns: list[str]) -> str:
    """The entity a group most likely means: the first whose join keys are all columns of the model."""
    fits = [name for name, e in entities.items() if e.join_keys and set(e.join_keys) <= set(columns)]
    return (fits or list(entities) or ["customer"])[0]
