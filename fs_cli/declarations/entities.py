"""Entities, declared in dbt_project.yml under `vars: {fs_entities: {<name>: {join_keys: [...]}}}` (the project's
vars given to dbt may add or override some)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import Problems
from .model import IDENT, Entity


def load_entities(project_dir: Path, overrides: dict[str, Any] | None = None) -> dict[str, Entity]:
    # libyaml's loader when present: the pure-Python one costs ~0.1 s per read of dbt_project.yml
    raw = yaml.load((project_dir / "dbt_project.yml").read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    decl = dict((raw.get("vars") or {}).get("fs_entities") or {})
    decl.update((overrides or {}).get("fs_entities") or {})
    entities = {}
    problems = Problems()
    for name, spec in decl.items():
        keys = (spec or {}).get("join_keys") if isinstance(spec, dict) else None
        if isinstance(keys, str):
            keys = [keys]
        if not keys or not all(isinstance(k, str) and IDENT.match(k) for k in keys):
            problems.within(f"dbt_project.yml vars.fs_entities.{name}").add(
                "join_keys missing or not column names", fix=f"declare e.g. `{name}: {{join_keys: [{name}_id]}}`")
            continue
        entities[name] = Entity(name, list(keys), (spec or {}).get("description", ""))
    problems.raise_if_any()
    return entities
