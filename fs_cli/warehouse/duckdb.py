"""DuckDB, the embedded default: one file, one writer process at a time."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from ..errors import FeatureStoreError
from .base import Result, Warehouse
from .lock import announce_wait, lock_timeout

if TYPE_CHECKING:
    import pyarrow as pa


class DuckDBWarehouse(Warehouse):
    SQL_DIALECT = "duckdb"  # sqlglot's name for this SQL (fs_cli/run_inputs.py reads compiled models with it)
    engine = "duckdb"

    def __init__(self, path: Path, read_only: bool = False):
        self.path = Path(path)
        if read_only and not self.path.exists():
            raise FeatureStoreError(
                f"the warehouse {self.path} does not exist yet",
                fix="run `fs run` (or `make demo`) first to build and publish the feature groups",
            )
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = _open(self.path, read_only)
        self.con.execute("SET TimeZone = 'UTC'")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Result:
        cur = self.con.execute(sql, list(params) if params else None)
        if cur.description is None:
            return Result([], [])
        return Result(cur.fetchall(), [d[0] for d in cur.description])

    def arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        return self.con.sql(sql, params=list(params) if params else None).to_arrow_table()

    def write_arrow(self, relation: str, table: pa.Table, mode: str = "create") -> None:
        name = f"fs_arrow_{id(table)}"
        self.con.register(name, table)
        try:
            if mode == "append":
                self.con.execute(f"insert into {relation} select * from {name}")
            else:
                verb = "create or replace table" if mode == "replace" else "create table"
                self.con.execute(f"{verb} {relation} as select * from {name}")
        finally:
            self.con.unregister(name)

    def is_write_conflict(self, exc: BaseException) -> bool:
        return isinstance(exc, duckdb.TransactionException | duckdb.ConstraintException | duckdb.CatalogException)

    def temp_relation(self, name: str) -> str:
        return f"temp.main.{self.quote(name)}"

    @contextmanager
    def soda_data_source(self, name: str) -> Iterator[Any]:
        # Soda runs on this very connection (DuckDB allows one writer per file); it leaves a connection it was
        # handed open.
        from soda_core.contracts import verify_contract_locally  # noqa: F401 - imported first: plugin import cycle
        from soda_duckdb import DuckDBDataSource

        yield DuckDBDataSource.from_existing_cursor(self.con, name=name)

    def _describe(self, relation: str) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self.con.execute(f"describe {relation}").fetchall()]

    def close(self) -> None:
        self.con.close()


def _open(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Connect, waiting (bounded by FS_LOCK_TIMEOUT, fs_cli/warehouse/lock.py) for a lock another process holds,
    with one line on stderr naming it; after the deadline, `lock_error`'s one clear line.

    DuckDB also refuses two configurations (read-only / read-write) of one file inside a process. Threads of one
    process may briefly hold the other configuration, so try the other mode and retry until it is released."""
    timeout = lock_timeout()
    start = time.monotonic()
    modes = [read_only, not read_only] if read_only else [False]
    announced = False
    while True:
        held_elsewhere: Exception | None = None
        for mode in modes:
            try:
                return duckdb.connect(str(path), read_only=mode)
            except duckdb.ConnectionException as e:
                if "different configuration" not in str(e):
                    raise
            except duckdb.IOException as e:
                if "lock" not in str(e).lower():
                    raise lock_error(path, e) from None
                held_elsewhere = e
        waited = time.monotonic() - start
        if held_elsewhere is not None:
            if waited >= timeout:
                raise lock_error(path, held_elsewhere) from None
            if not announced:
                announce_wait(_holder(held_elsewhere), timeout)
                announced = True
        elif waited > max(timeout, 1.0):
            raise FeatureStoreError(
                f"cannot open the warehouse {path}: this process holds it in another mode for more than {timeout:g} s",
                fix="close the other connection to the warehouse in this process",
            )
        time.sleep(0.02 if held_elsewhere is None else 0.1)


def _holder(e: Exception) -> str:
    held = re.search(r"held in (.+?) \(PID (\d+)\)", str(e))
    return f"PID {held.group(2)} ({held.group(1)})" if held else "another process"


def lock_error(path: Path, e: Exception) -> FeatureStoreError:
    """One line for a DuckDB file another process holds, naming that process when DuckDB reports it
    ("Conflicting lock is held in /usr/bin/python3 (PID 123)")."""
    held = re.search(r"held in (.+?) \(PID (\d+)\)", str(e))
    if held is None:
        return FeatureStoreError(
            f"cannot open the warehouse {path}: {str(e).splitlines()[0]}",
            fix="another process (a running `fs run` or a BI client with write access) holds the lock; "
            "wait for it to finish or close it",
        )
    program, pid = held.group(1), held.group(2)
    return FeatureStoreError(
        f"the warehouse {path} is locked by another process: PID {pid} ({program})",
        fix=f"close that process's connection to the file (a BI client, a notebook, another `fs`/`dbt` run) or wait "
        f"for it to finish (`ps -p {pid}` shows it), then retry",
    )
