"""The declarations as every other layer reads them: entities, feature groups (with their columns and snapshot),
feature views (with their resolved feature selections) and the Catalog holding them. Built and validated by
fs_cli.declarations.load.load_catalog; nothing here reads the manifest."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..errors import DeclarationError, FeatureStoreError
from ..timeutil import format_ttl

#: A plain column (or entity) name, as a declaration may use it unquoted in SQL.
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
