"""What the declarations read of a dbt manifest node: which models are feature groups, a group's name, the file a
problem points to, a column's meta."""

from __future__ import annotations

from typing import Any


def feature_group_name(node: Any) -> str:
    """The relation name of a group: its model's name, or <model>_v<N> for a versioned model."""
    return node.name if node.version is None else f"{node.name}_v{node.version}"


def is_feature_group(node: Any) -> bool:
    """A model under a feature_groups/ directory, or one carrying `meta.fs` that is not a feature view."""
    fs = (node.config.meta or {}).get("fs")
    in_dir = "feature_groups/" in node.original_file_path.replace("\\", "/")
    return node.resource_type == "model" and (in_dir or (isinstance(fs, dict) and "feature_view" not in fs))


def declared_in(node: Any) -> str:
    """The file a problem of the node's declaration points to: its YAML (patch) file, else its SQL file."""
    return node.patch_path.split("://")[-1] if node.patch_path else node.original_file_path


def column_meta(col: Any) -> dict[str, Any]:
    """A column's meta: `meta:` merged with `config: {meta:}` (the latter wins)."""
    meta = dict(col.meta or {})
    cfg = getattr(col, "config", None)
    if cfg is not None and getattr(cfg, "meta", None):
        meta.update(cfg.meta)
    return meta
