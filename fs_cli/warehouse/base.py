"""The warehouse layer: every read and write `fs` makes in the dbt target goes through one `Warehouse`.

SQL handed to a warehouse is the portable subset DuckDB, Postgres and Spark share, with `?` placeholders for
values (bound by the driver, never formatted in). What differs between engines is a method here: types, bulk
Arrow reads and writes, transactions, catalog look-ups, renames. Logic above this layer never asks which engine
it runs on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pyarrow costs ~0.3-1 s to import: paid by the calls that use Arrow
    import pyarrow as pa

META_SCHEMA = "fs_meta"


def values_marks(width: int, rows: int) -> str:
    """The placeholders of a multi-row VALUES list: `(?, ?), (?, ?)` for 2 columns and 2 rows."""
    return ", ".join(["(" + ", ".join(["?"] * width) + ")"] * rows)


def quote_ident(name: str) -> str:
    """Quote an identifier for DuckDB and Postgres (Spark quotes with backticks: `Warehouse.quote`)."""
    return '"' + name.replace('"', '""') + '"'


class Result:
    """What `execute` returns: the rows of a statement (empty for DDL/DML) and its column names."""

    def __init__(self, rows: list[tuple], columns: list[str]):
        self._rows = rows
        self.columns = columns

    @property
    def description(self) -> list[tuple]:
        return [(c,) for c in self.columns]

    def fetchall(self) -> list[tuple]:
        return self._rows

    def fetchone(self) -> tuple | None:
        return self._rows[0] if self._rows else None


class Warehouse(ABC):
    """One open session on the target warehouse. Use as a context manager (`with project.warehouse() as wh`)."""

    engine: str = ""
    #: sqlglot's dialect name for this engine's SQL; None: compiled SQL is not analysed (fs_cli/run_inputs.py).
    SQL_DIALECT: str | None = None
    #: Logical column types -> this engine's DDL names.
    TYPES: dict[str, str] = {
        "text": "varchar", "bigint": "bigint", "integer": "integer", "double": "double", "boolean": "boolean",
        "timestamp": "timestamp", "date": "date",
    }

    # -- statements -------------------------------------------------------------------------------------
    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Result:
        """Run one statement with `?` placeholders bound to `params`."""

    @abstractmethod
    def arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """The rows of a query as an Arrow table (engine-native where the driver has it)."""

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.execute(sql, params).fetchall()

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        return self.execute(sql, params).fetchone()

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.fetchone(sql, params)
        return None if row is None else row[0]

    def query_columns(self, sql: str) -> list[str]:
        """The output column names of a query, without running it for its rows."""
        return self.execute(f"select * from ({sql}) as fs_probe where 1 = 0").columns

    # -- bulk data --------------------------------------------------------------------------------------
    @abstractmethod
    def write_arrow(self, relation: str, table: pa.Table, mode: str = "create") -> None:
        """Write an Arrow table to `relation` (quoted, schema-qualified). mode: `create` (the table must not
        exist), `replace` or `append`."""

    # -- catalog ----------------------------------------------------------------------------------------
    def quote(self, name: str) -> str:
        return quote_ident(name)

    def relation(self, schema: str, name: str) -> str:
        return f"{self.quote(schema)}.{self.quote(name)}"

    def type(self, logical: str) -> str:
        return self.TYPES[logical]

    def tables(self, schema: str) -> list[str]:
        rows = self.fetchall(
            "select table_name from information_schema.tables where table_schema = ?", [schema])
        return sorted(r[0] for r in rows)

    def relation_exists(self, schema: str, name: str) -> bool:
        return name in self.tables(schema)

    def describe(self, relation: str) -> list[tuple[str, str]]:
        """(column, type) of a relation or query, in order."""
        return self._describe(relation)

    @abstractmethod
    def _describe(self, relation: str) -> list[tuple[str, str]]: ...

    def schemas(self) -> list[str]:
        return sorted(r[0] for r in self.fetchall("select schema_name from information_schema.schemata"))

    def drop_schema(self, schema: str) -> None:
        """Drop a schema and everything in it (the demo's fresh start; tests' clean-up)."""
        self.execute(f"drop schema if exists {self.quote(schema)} cascade")

    def ensure_schema(self, schema: str) -> None:
        self.execute(f"create schema if not exists {self.quote(schema)}")

    def drop_table(self, relation: str) -> None:
        self.execute(f"drop table if exists {relation}")

    def primary_key_clause(self, columns: Sequence[str]) -> str:
        """The PRIMARY KEY table constraint for CREATE TABLE, with its leading comma, to append after the column
        list; '' on engines without key constraints (Spark), where the key is the writer's own discipline."""
        return f",\n    primary key ({', '.join(columns)})"

    def rename_table(self, schema: str, old: str, new: str) -> None:
        self.execute(f"alter table {self.relation(schema, old)} rename to {self.quote(new)}")

    # -- transactions -----------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All statements inside commit together or not at all (engines without multi-statement transactions
        override this with their closest guarantee and say so)."""
        self.execute("begin transaction")
        try:
            yield
        except BaseException:
            self.execute("rollback")
            raise
        self.execute("commit")

    def is_write_conflict(self, exc: BaseException) -> bool:
        """Whether `exc` is a concurrent writer's conflict (write-write, duplicate key or table name) that running
        the whole transaction again may resolve, e.g. two writers allocating the same version number."""
        return False

    def text_sort(self, expr: str) -> str:
        """An ORDER BY expression that sorts the text `expr` by code point, whatever the database collation (so
        that a canonical row order is the same on every engine)."""
        return expr

    def sorted_text_agg(self, expr: str, sep: str) -> str:
        """An aggregate: the text values of `expr` in a group, sorted, joined by the literal `sep`."""
        return f"string_agg({expr}, '{sep}' order by {expr})"

    def content_token(self, relation: str) -> str:
        """A token that changes when the rows of `relation` change: its row count and an order-independent sum of
        64-bit row hashes (equal tokens mean equal content, up to a hash collision). One scan of the table."""
        return self.content_tokens([relation])[relation]

    def content_tokens(self, relations: Sequence[str]) -> dict[str, str]:
        """`content_token` of each relation, in one statement (one round trip; on Spark one job, not one per
        relation). Raises like `content_token` when one of them cannot be read."""
        if not relations:
            return {}
        h = f"sum(cast({self._row_hash('fs_content_row')} as decimal(38, 0)))"
        rows = self.fetchall(" union all ".join(
            f"select {i} as fs_i, count(*) as fs_n, {h} as fs_h from {rel} fs_content_row"
            for i, rel in enumerate(relations)))
        return {relations[int(i)]: f"{int(n)}:{total if total is None else int(total)}" for i, n, total in rows}

    def _row_hash(self, alias: str) -> str:
        """A 64-bit hash of the whole row of table alias `alias` (DuckDB: `hash` of the row struct)."""
        return f"hash({alias})"

    def insert_rows(self, relation: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                    chunk: int = 500) -> None:
        """Append `rows` (values bound) to `relation`'s `columns` (SQL, quoted by the caller): one multi-row INSERT
        per `chunk` rows (Postgres binds at most 65,535 parameters per statement)."""
        for i in range(0, len(rows), chunk):
            part = rows[i:i + chunk]
            self.execute(f"insert into {relation} ({', '.join(columns)}) values {values_marks(len(columns), len(part))}",
                         [v for row in part for v in row])

    def delete_matching(self, target: str, source: str, condition: str) -> None:
        """Delete the rows of table `target` (alias `t`) that match a row of the query `source` (alias `s`) by the
        boolean SQL `condition` over both."""
        self.execute(f"delete from {target} as t where exists (select 1 from ({source}) as s where {condition})")

    def update_matching(self, target: str, source: str, condition: str, assignments: dict[str, str],
                        params: Sequence[Any] = ()) -> None:
        """Set columns of the rows of table `target` (alias `t`) that match a row of the query `source` (alias `s`)
        by `condition`: {column: SQL expression over s and t}. At most one source row may match a target row."""
        sets = ", ".join(f"{self.quote(c)} = {e}" for c, e in assignments.items())
        self.execute(f"update {target} as t set {sets} from ({source}) as s where {condition}", params)

    def unit_hash(self, exprs: Sequence[str]) -> str:
        """A number in [0, 1) that depends only on the values of `exprs` (SQL expressions), spread uniformly: a row
        whose value is below p is in a deterministic sample of about a fraction p of the rows. The top 53 bits of a
        64-bit hash (what a double holds exactly)."""
        return f"cast(hash({', '.join(exprs)}) >> 11 as double) / 9007199254740992.0"

    def add_column(self, relation: str, column: str, logical: str) -> None:
        """Add a nullable column to a table (a migration; callers check first that it is missing)."""
        self.execute(f"alter table {relation} add column {self.quote(column)} {self.type(logical)}")

    # -- scratch relations (validation) ------------------------------------------------------------------
    def temp_relation(self, name: str) -> str:
        """How to name session-private table `name` unambiguously (never a permanent table of the same name)."""
        return self.quote(name)

    def create_temp_table(self, name: str, sql: str, params: Sequence[Any] = ()) -> str:
        """(Re)create a session-private table from a query; returns the relation to use in SQL."""
        rel = self.temp_relation(name)
        self.execute(f"drop table if exists {rel}")
        self.execute(f"create temporary table {self.quote(name)} as {sql}", params)
        return rel

    def regex_match(self, expr: str, pattern: str) -> str:
        """A predicate: text `expr` contains a match of the regular expression `pattern` (both SQL)."""
        return f"regexp_matches({expr}, {pattern})"

    # -- Soda v4 data contracts (validation gate) -----------------------------------------------------------
    @contextmanager
    def soda_data_source(self, name: str) -> Iterator[Any]:
        """Soda's own data source for this engine, named `name`, reading what this session reads; whatever it
        opened is closed on exit."""
        from ..errors import FeatureStoreError

        raise FeatureStoreError(f"Soda contracts are not wired for the {self.engine or 'this'} warehouse yet",
                                fix="install the soda-<engine> package and add Warehouse.soda_data_source for it")
        yield  # pragma: no cover

    def soda_dataset(self, data_source: str, schema: str, identifier: str) -> str:
        """The dataset qualifier a Soda contract uses for `schema.identifier` on this engine."""
        return f"{data_source}/{schema}/{identifier}"

    # -- life cycle -------------------------------------------------------------------------------------
    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
