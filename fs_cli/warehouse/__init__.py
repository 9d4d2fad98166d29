"""The warehouse layer: one interface (`Warehouse`), one implementation per dbt target type.

`open_warehouse(project)` opens the project's dbt target (DuckDB file, Postgres server or Spark session), never
another one: what `fs` reads and writes is where dbt builds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import FeatureStoreError
from .base import META_SCHEMA, Result, Warehouse, quote_ident

if TYPE_CHECKING:
    from ..project import Project

__all__ = ["META_SCHEMA", "Result", "Warehouse", "open_warehouse", "quote_ident", "relation_exists",
           "SUPPORTED_TYPES", "store_exists"]

SUPPORTED_TYPES = ("duckdb", "postgres", "spark")


def open_warehouse(project: Project, read_only: bool = False) -> Warehouse:
    """A session on the project's target. Use it as a context manager."""
    target = project.target_config()
    kind = target.get("type")
    if kind == "duckdb":
        from .duckdb import DuckDBWarehouse

        return DuckDBWarehouse(project.warehouse_path, read_only=read_only)
    if kind == "postgres":
        from .postgres import PostgresWarehouse

        return PostgresWarehouse(target, read_only=read_only)
    if kind == "spark":
        from .spark import SparkWarehouse

        return SparkWarehouse(project, target)
    raise FeatureStoreError(
        f"target {project.target!r} has type {kind!r}, which fs does not support",
        fix=f"use a target of type {', '.join(SUPPORTED_TYPES)} in profiles.yml (FS_TARGET picks the target)",
    )


def store_exists(project: Project) -> bool:
    """Whether the target already holds a store to read: an embedded DuckDB file exists only after the first
    write (reads must not create it); a server is always there (its schemas may still be empty)."""
    if project.target_config().get("type") == "duckdb":
        return project.warehouse_path.exists()
    return True


def data_stamp(project: Project) -> tuple | None:
    """A fingerprint of the store's data that changes with every committed write, read without opening the store
    (the size and mtime of the embedded DuckDB file and its WAL); None when the target offers none that cheaply (a
    server): a caller caching what it read must then read again. Used by the web UI (fs_cli/ui/web.py)."""
    if project.target_config().get("type") != "duckdb":
        return None
    path = project.warehouse_path
    stamp = []
    for p in (path, path.with_name(path.name + ".wal")):
        try:
            st = p.stat()
            stamp.append((st.st_mtime_ns, st.st_size))
        except OSError:
            stamp.append(None)
    return tuple(stamp)


def relation_exists(wh: Any, schema: str, name: str) -> bool:
    if isinstance(wh, Warehouse):
        return wh.relation_exists(schema, name)
    row = wh.execute("select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                     [schema, name]).fetchall()[0]
    return bool(row and row[0])
