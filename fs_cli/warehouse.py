"""Connections to the offline store (the dbt target's DuckDB file)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from .errors import FeatureStoreError

META_SCHEMA = "fs_meta"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse. In a process where dbt already opened it read-write, reuse that configuration
    (DuckDB refuses two configurations of one file in a process)."""
    if read_only and not Path(path).exists():
        raise FeatureStoreError(
            f"the warehouse {path} does not exist yet",
            fix="run `fs run` (or `make demo`) first to build and publish the feature groups",
        )
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.ConnectionException as e:
        if "different configuration" in str(e):
            con = duckdb.connect(str(path))
        else:
            raise
    except duckdb.IOException as e:
        raise FeatureStoreError(
            f"cannot open the warehouse {path}: {e}",
            fix="another process (a running `fs run` or a BI client with write access) holds the lock; "
            "wait for it to finish or close it",
        ) from None
    try:
        con.execute("SET TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


def relation_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name],
    ).fetchall()[0]
    return bool(row and row[0])
