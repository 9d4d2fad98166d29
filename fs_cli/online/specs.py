"""What the online side knows about feature groups and feature views: plain, JSON-serialisable specs.

The online store and the HTTP service never open the warehouse (DuckDB allows one writer per file and the
service must not compete with `fs run`). Everything they need is published into the online store as these
specs at materialization time. `from_feature_group` / `from_feature_view` adapt the catalog's dataclasses
(fs_cli.metadata) so that this package does not import dbt or DuckDB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import FeatureStoreError

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Declared column types -> the JSON kind a request key must have. Anything unknown is served as-is.
_INT_TYPES = ("tinyint", "smallint", "integer", "int", "bigint", "hugeint", "int2", "int4", "int8", "ubigint",
              "uinteger", "usmallint", "utinyint", "long")
_FLOAT_TYPES = ("double", "float", "real", "decimal", "numeric", "float4", "float8")
_STR_TYPES = ("varchar", "text", "string", "char", "uuid")


def type_kind(data_type: str | None) -> str:
    """'int' | 'float' | 'str' | 'bool' | 'timestamp' | 'any' for a declared SQL type."""
    t = (data_type or "").strip().lower()
    base = t.split("(")[0].strip()
    if base in _INT_TYPES:
        return "int"
    if base in _FLOAT_TYPES:
        return "float"
    if base in _STR_TYPES or base.startswith("varchar") or base.startswith("character"):
        return "str"
    if base in ("boolean", "bool"):
        return "bool"
    if base.startswith("timestamp") or base in ("date", "datetime"):
        return "timestamp"
    return "any"


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    data_type: str | None = None
    pii: bool = False  # declared `pii: true`: the service serves it only to API keys allowed personal data

    def to_dict(self) -> dict[str, Any]:
        # "pii" only when set: the spec of a group without personal data stays what it was (no full rewrite)
        return {"name": self.name, "data_type": self.data_type, **({"pii": True} if self.pii else {})}

    @property
    def kind(self) -> str:
        return type_kind(self.data_type)


@dataclass(frozen=True)
class FGSpec:
    """An online feature group: lookup keys, time columns, TTL and the features served."""

    name: str
    keys: tuple[str, ...]  # the lookup key columns (the FG's primary key = entity join keys by default)
    key_types: tuple[str | None, ...]
    event_time: str
    features: tuple[FeatureSpec, ...]
    created_time: str | None = None
    ttl_seconds: int | None = None  # None = unlimited
    entities: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for n in (self.name, *self.keys, self.event_time, *(f.name for f in self.features)):
            if not IDENT.match(n):
                raise FeatureStoreError(f"feature group spec: {n!r} is not a plain identifier",
                                        fix="use letters, digits and underscores only")
        if len(self.keys) != len(self.key_types):
            raise FeatureStoreError(f"feature group {self.name}: keys and key_types differ in length")

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def key_kinds(self) -> list[str]:
        return [type_kind(t) for t in self.key_types]

    def feature(self, name: str) -> FeatureSpec | None:
        for f in self.features:
            if f.name == name:
                return f
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "keys": list(self.keys),
            "key_types": list(self.key_types),
            "event_time": self.event_time,
            "created_time": self.created_time,
            "ttl_seconds": self.ttl_seconds,
            "entities": list(self.entities),
            "features": [f.to_dict() for f in self.features],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FGSpec:
        return cls(
            name=d["name"],
            keys=tuple(d["keys"]),
            key_types=tuple(d.get("key_types") or [None] * len(d["keys"])),
            event_time=d["event_time"],
            created_time=d.get("created_time"),
            ttl_seconds=d.get("ttl_seconds"),
            entities=tuple(d.get("entities") or ()),
            features=tuple(FeatureSpec(f["name"], f.get("data_type"), bool(f.get("pii", False))) for f in d["features"]),
        )

    @classmethod
    def from_feature_group(cls, fg: Any) -> FGSpec:
        """Adapt fs_cli.metadata.FeatureGroup (duck-typed so this module does not import the catalog)."""
        types = {c.name: c.data_type for c in fg.columns}
        ttl = fg.ttl.total_seconds() if fg.ttl is not None else None
        return cls(
            name=fg.name,
            keys=tuple(fg.primary_key),
            key_types=tuple(types.get(k) for k in fg.primary_key),
            event_time=fg.event_time,
            created_time=fg.created_time,
            ttl_seconds=int(ttl) if ttl else None,
            entities=tuple(fg.entities),
            features=tuple(FeatureSpec(c.name, c.data_type, bool(getattr(c, "pii", False))) for c in fg.features),
        )


@dataclass(frozen=True)
class FVSpec:
    """An online feature view: `fg:feature` refs served under the names the training data uses (`outputs`),
    looked up by the view's request key columns (`keys`: the spine's key columns), each mapped per feature group
    onto that group's key columns (`key_map`). Built from the resolved declaration (fs_cli.metadata), the same one
    the point-in-time join reads, so online and offline agree on names and keys."""

    name: str
    features: tuple[str, ...]
    keys: tuple[str, ...] = ()
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()  # parallel to `features`; empty (specs published before) = the feature names
    key_map: dict[str, dict[str, str]] = field(default_factory=dict)  # fg -> {fg key column: request column}

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.outputs or tuple(r.split(":", 1)[1] for r in self.features)

    def request_column(self, fg: str, fg_key: str) -> str:
        return self.key_map.get(fg, {}).get(fg_key, fg_key)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "features": list(self.features), "keys": list(self.keys),
                "description": self.description, "outputs": list(self.outputs),
                "key_map": {fg: dict(m) for fg, m in self.key_map.items()},
                **({"extra": self.extra} if self.extra else {})}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FVSpec:
        return cls(d["name"], tuple(d["features"]), tuple(d.get("keys") or ()), d.get("description", ""),
                   dict(d.get("extra") or {}), tuple(d.get("outputs") or ()),
                   {fg: dict(m) for fg, m in (d.get("key_map") or {}).items()})

    @classmethod
    def from_resolved(cls, resolved: dict[str, Any], fgs: dict[str, FGSpec], description: str = "") -> FVSpec:
        """The online twin of a resolved feature view (`FeatureView.resolved()`): the same features, output names
        (prefix applied) and spine key columns as its training data."""
        name = resolved["name"]
        refs: list[str] = []
        outputs: list[str] = []
        key_map: dict[str, dict[str, str]] = {}
        keys: list[str] = []
        for g in resolved["feature_groups"]:
            fg = g["name"]
            if fg not in fgs:
                raise FeatureStoreError(f"feature view {name}: feature group {fg!r} is not online",
                                        fix="set `online: true` on it, or drop it from the view")
            spec = fgs[fg]
            for feat in g["features"]:
                if spec.feature(feat) is None:
                    raise FeatureStoreError(f"feature view {name}: {fg} has no feature {feat!r}",
                                            fix=f"pick from {', '.join(spec.feature_names)}")
                refs.append(f"{fg}:{feat}")
                outputs.append(g["prefix"] + feat)
            mapping = {k: g["join_keys"].get(k, k) for k in spec.keys}
            key_map[fg] = mapping
            keys += [c for c in mapping.values() if c not in keys]
        if not refs:
            raise FeatureStoreError(f"feature view {name} selects no online features",
                                    fix="list features under meta.fs.feature_view.features")
        return cls(name, tuple(refs), tuple(keys), description, {}, tuple(outputs), key_map)


def parse_ref(ref: str) -> tuple[str, str]:
    """'fg:feature' -> (fg, feature); raises FeatureStoreError on anything else."""
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise FeatureStoreError(f"feature reference {ref!r} is not of the form 'feature_group:feature'",
                                fix="write features as e.g. 'fg_customer_profile:credit_limit'")
    fg, feat = ref.split(":")
    if not fg or not feat:
        raise FeatureStoreError(f"feature reference {ref!r} is not of the form 'feature_group:feature'",
                                fix="write features as e.g. 'fg_customer_profile:credit_limit'")
    return fg, feat
