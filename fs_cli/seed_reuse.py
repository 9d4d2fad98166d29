"""Seeds `fs run` does not load again: a seed whose file, configuration and table are what the last load left.

`dbt build` reloads every seed on every run (truncate + insert). On DuckDB that is milliseconds; on Postgres and
Spark dbt binds every value of the CSV in Python (the demo's 1.4 MB of seeds: ~25-50 s per `fs run` on Postgres), so
a run where nothing changed paid most of its time reloading the same files. dbt's own answer is state comparison
(`--select state:modified`), which needs a saved manifest to compare with and does not notice a table that someone
changed by hand; here the comparison is explicit and includes the table:

- after a build, each seed dbt loaded is recorded in `fs_meta.seed_loads`: its unique id, relation, a fingerprint of
  its file and configuration, and a content token of the table it left (`Warehouse.content_token`: row count and an
  order-independent sum of row hashes);
- the next build excludes a seed only when its fingerprint and its table's current content token both equal the
  record. A changed CSV, changed `column_types`, a dropped, truncated or edited table, or a seed loaded by plain
  `dbt seed` from another file, all mean the seed is loaded as plain `dbt build` would.

The record lives in the warehouse, not in the project directory, so a fresh warehouse (or another target) starts
with no record and loads everything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .project import Project
from .timeutil import utcnow
from .warehouse import META_SCHEMA, Warehouse

TABLE = "seed_loads"
_LOAD_CONFIG = ("column_types", "delimiter", "quote_columns", "database", "schema", "alias", "file_format",
                "location_root", "pre-hook", "post-hook", "grants")


def _seeds(manifest: Any) -> list[Any]:
    return [n for n in (getattr(manifest, "nodes", None) or {}).values()
            if str(getattr(n, "resource_type", "")).split(".")[-1].lower() == "seed"]


def fingerprint(project_dir: Path, node: Any) -> str | None:
    """sha256 of the seed's file and the configuration dbt loads it with (column types, delimiter, quoting, where
    it goes); None when the file cannot be read (then it is always loaded)."""
    try:
        data = (project_dir / node.original_file_path).read_bytes()
    except (OSError, TypeError):
        return None
    config = node.config.to_dict() if hasattr(node.config, "to_dict") else dict(node.config or {})
    # The settings a seed load depends on (the same from dbt's node objects and from manifest.json).
    loaded_with = {k: config.get(k) for k in _LOAD_CONFIG}
    described = json.dumps({"config": loaded_with, "relation": node.relation_name, "path": node.original_file_path},
                           sort_keys=True, default=str)
    return hashlib.sha256(data + b"\0" + described.encode()).hexdigest()


def _relation(wh: Warehouse, node: Any) -> str:
    return wh.relation(node.schema, node.alias or node.name)


def _ensure_table(wh: Warehouse) -> str:
    rel = wh.relation(META_SCHEMA, TABLE)
    wh.ensure_schema(META_SCHEMA)
    text = wh.type("text")
    wh.execute(f"create table if not exists {rel} (seed {text} not null, relation {text} not null, "
               f"fingerprint {text} not null, content {text} not null, loaded_at {wh.type('timestamp')} not null)")
    return rel


def reusable(project: Project, manifest: Any) -> list[str]:
    """The seeds a build may skip: dbt selectors (`path:<file>`) of the seeds whose recorded load still holds."""
    seeds = _seeds(manifest)
    if not seeds:
        return []
    out = []
    with project.warehouse() as wh:
        if not wh.relation_exists(META_SCHEMA, TABLE):
            return []
        rel = wh.relation(META_SCHEMA, TABLE)
        recorded = {r[0]: (r[1], r[2], r[3]) for r in wh.fetchall(f"select seed, relation, fingerprint, content from {rel}")}
        for node in seeds:
            record = recorded.get(node.unique_id)
            if record is None:
                continue
            relation, fp, content = record
            if fp != fingerprint(project.dir, node) or relation != _relation(wh, node):
                continue
            if not wh.relation_exists(node.schema, node.alias or node.name):
                continue
            if wh.content_token(relation) == content:
                out.append(f"path:{node.original_file_path}")
    return out


def record(project: Project, manifest: Any, results: Iterable[Any]) -> None:
    """Record the seeds a build loaded successfully (their table as dbt left it)."""
    loaded = {r.node.unique_id for r in results
              if str(getattr(r.node, "resource_type", "")).split(".")[-1].lower() == "seed"
              and str(r.status).split(".")[-1].lower() == "success"}
    nodes = [n for n in _seeds(manifest) if n.unique_id in loaded]
    if not nodes:
        return
    with project.warehouse() as wh:
        rel = _ensure_table(wh)
        rows = []
        for node in nodes:
            fp = fingerprint(project.dir, node)
            if fp is None:
                continue
            relation = _relation(wh, node)
            rows.append((node.unique_id, relation, fp, wh.content_token(relation), utcnow()))
        with wh.transaction():
            for row in rows:
                wh.execute(f"delete from {rel} where seed = ?", (row[0],))
                wh.execute(f"insert into {rel} (seed, relation, fingerprint, content, loaded_at) values (?, ?, ?, ?, ?)",
                           row)
