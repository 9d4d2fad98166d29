"""Connections to the offline store (the dbt target's DuckDB file)."""

from __future__ import annotations

import time
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
    con = _open(path, read_only)
    try:
        con.execute("SET TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


def _open(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    # DuckDB refuses two configurations (read-only / read-write) of one file inside a process. Threads of one
    # process may briefly hold the other configuration, so try the other mode and retry until it is released.
    deadline = time.monotonic() + 10
    modes = [read_only, not read_only] if read_only else [False]
    while True:
        for mode in modes:
            try:
                return duckdb.connect(str(path), read_only=mode)
            except duckdb.ConnectionException as e:
                if "different configuration" not in str(e):
                    raise
            except duckdb.IOException as e:
                raise FeatureStoreError(
                    f"cannot open the warehouse {path}: {e}",
                    fix="another process (a running `fs run` or a BI client with write access) holds the lock; "
                    "wait for it to finish or close it",
                ) from None
        if time.monotonic() > deadline:
            raise FeatureStoreError(
                f"cannot open the warehouse {path}: this process holds it in another mode for more than 10 s",
                fix="close the other connection to the warehouse in this process",
            )
        time.sleep(0.02)


def relation_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name],
    ).fetchall()[0]
    return bool(row and row[0])
