"""Postgres through psycopg2: values are bound by the driver, bulk writes use COPY, every session runs in UTC."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

from ..errors import FeatureStoreError
from ..lazy import lazy
from .base import Result, Warehouse

# pyarrow is imported on first use: a command that reads no Arrow (most of them) does not pay its ~0.2 s start-up.
pa = lazy("pyarrow")
pacsv = lazy("pyarrow.csv")


@cache
def _oid_types() -> dict[int, Any]:
    """Postgres type OIDs -> Arrow types; anything else is inferred from the Python values psycopg2 returns."""
    return {
        16: pa.bool_(), 20: pa.int64(), 21: pa.int64(), 23: pa.int64(), 700: pa.float64(), 701: pa.float64(),
        25: pa.string(), 1043: pa.string(), 1042: pa.string(), 1082: pa.date32(), 1114: pa.timestamp("us"),
        1184: pa.timestamp("us", tz="UTC"), 114: pa.string(), 3802: pa.string(),
    }


def _arrow_to_pg(t: pa.DataType) -> str:
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return "bigint"
    if pa.types.is_floating(t):
        return "double precision"
    if pa.types.is_decimal(t):
        return f"numeric({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    if pa.types.is_date(t):
        return "date"
    return "text"


def translate_placeholders(sql: str) -> str:
    """`?` placeholders -> psycopg2's `%s` (and literal `%` -> `%%`), leaving quoted text alone."""
    out: list[str] = []
    quote: str | None = None
    for ch in sql:
        if quote:
            if ch == quote:
                quote = None
            out.append("%%" if ch == "%" else ch)
            continue
        if ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


#: Every session: UTC (timestamps are naive UTC everywhere), and no JIT: the planner overestimates point-in-time
#: joins (1.7M rows estimated for a 10k-row answer on the demo), so JIT compiled each training-dataset build for
#: ~9 s while the query itself runs in ~1 s (EXPLAIN ANALYZE: 9.1 of 10.5 s in JIT). fs's queries are scans and
#: joins that JIT does not speed up enough to pay for.
SESSION_OPTIONS = "-c TimeZone=UTC -c jit=off"


class PostgresWarehouse(Warehouse):
    SQL_DIALECT = "postgres"  # sqlglot's name for this SQL (fs_cli/run_inputs.py reads compiled models with it)
    engine = "postgres"
    TYPES = {**Warehouse.TYPES, "double": "double precision", "text": "text"}

    def __init__(self, credentials: dict[str, Any], read_only: bool = False):
        import psycopg2

        self.credentials = credentials
        try:
            self.con = psycopg2.connect(
                host=credentials.get("host"), port=int(credentials.get("port") or 5432),
                user=credentials.get("user"), password=credentials.get("password") or None,
                dbname=credentials.get("dbname") or credentials.get("database"),
                connect_timeout=int(credentials.get("connect_timeout") or 10),
                options=SESSION_OPTIONS,
            )
        except psycopg2.OperationalError as e:
            raise FeatureStoreError(
                f"cannot connect to Postgres at {credentials.get('host')}:{credentials.get('port')}: "
                f"{str(e).strip()}",
                fix="check the `postgres` output in profiles.yml (FS_PG_* variables) and that the server runs",
            ) from None
        self.con.autocommit = True
        if read_only:
            self.con.set_session(readonly=True, autocommit=True)
        self._in_tx = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Result:
        cur = self.con.cursor()
        try:
            cur.execute(translate_placeholders(sql), tuple(params))
            if cur.description is None:
                return Result([], [])
            return Result(cur.fetchall(), [d[0] for d in cur.description])
        finally:
            cur.close()

    def arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        cur = self.con.cursor()
        try:
            cur.execute(translate_placeholders(sql), tuple(params))
            names = [d[0] for d in cur.description]
            oids = [d[1] for d in cur.description]
            rows = cur.fetchall()
        finally:
            cur.close()
        cols = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        arrays = []
        for values, oid in zip(cols, oids, strict=True):
            t = _oid_types().get(oid)
            arrays.append(pa.array(list(values), type=t) if t is not None or values else pa.array([], pa.null()))
        return pa.Table.from_arrays(arrays, names=names)

    def write_arrow(self, relation: str, table: pa.Table, mode: str = "create") -> None:
        if mode == "replace":
            self.execute(f"drop table if exists {relation}")
        if mode in ("create", "replace"):
            cols = ", ".join(f"{self.quote(f.name)} {_arrow_to_pg(f.type)}" for f in table.schema)
            self.execute(f"create table {relation} ({cols})")
        if table.num_rows == 0:
            return
        buf = io.BytesIO()
        pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
        buf.seek(0)
        names = ", ".join(self.quote(f.name) for f in table.schema)
        cur = self.con.cursor()
        try:
            cur.copy_expert(f"copy {relation} ({names}) from stdin with (format csv)", buf)
        finally:
            cur.close()

    def _describe(self, relation: str) -> list[tuple[str, str]]:
        cur = self.con.cursor()
        try:
            cur.execute(f"select * from {relation} as fs_probe where 1 = 0")
            oids = [(d[0], d[1]) for d in cur.description]
            cur.execute("select oid, format_type(oid, null) from pg_type where oid = any(%s)",
                        ([o for _, o in oids],))
            names = dict(cur.fetchall())
        finally:
            cur.close()
        return [(n, names.get(o, "unknown")) for n, o in oids]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._in_tx:
            yield
            return
        self.con.autocommit = False
        self._in_tx = True
        try:
            yield
        except BaseException:
            self.con.rollback()
            raise
        else:
            self.con.commit()
        finally:
            self._in_tx = False
            self.con.autocommit = True

    def is_write_conflict(self, exc: BaseException) -> bool:
        # unique_violation, duplicate_table (a rename racing another), serialization_failure, deadlock_detected
        return getattr(exc, "pgcode", None) in ("23505", "42P07", "40001", "40P01")

    def text_sort(self, expr: str) -> str:
        return f'{expr} collate "C"'

    def _row_hash(self, alias: str) -> str:
        return f"hashtextextended(cast({alias} as text), 0)"  # the row's text form, hashed to a bigint

    def unit_hash(self, exprs: Sequence[str]) -> str:
        # The values' text forms, separated by a unit separator (concat_ws skips NULLs, so NULL and '' differ only by
        # position: enough for sampling), hashed to a bigint; its top 53 bits, as a non-negative number.
        text = "concat_ws(chr(31), " + ", ".join(f"cast({e} as text)" for e in exprs) + ")"
        return f"cast((hashtextextended({text}, 0) >> 11) & 9007199254740991 as double precision) / 9007199254740992.0"

    def temp_relation(self, name: str) -> str:
        return f"pg_temp.{self.quote(name)}"

    def regex_match(self, expr: str, pattern: str) -> str:
        return f"{expr} ~ {pattern}"

    @contextmanager
    def soda_data_source(self, name: str) -> Iterator[Any]:
        # soda-postgres drives psycopg 3 (this session is psycopg2), so it gets a sibling session on the same
        # database, in UTC like this one, opened here and closed on exit (Soda leaves a handed-in connection open).
        import psycopg
        from soda_core.contracts import verify_contract_locally  # noqa: F401 - imported first: plugin import cycle
        from soda_postgres.common.data_sources.postgres_data_source import PostgresDataSourceImpl
        from soda_postgres.common.data_sources.postgres_data_source_connection import (
            PostgresDataSource,
            PostgresDataSourceConnection,
        )

        c = self.credentials
        params = {"host": str(c.get("host")), "port": int(c.get("port") or 5432), "user": c.get("user"),
                  "database": self.database, "password": c.get("password") or ""}
        model = PostgresDataSource(name=name, connection=params)
        con = psycopg.connect(host=params["host"], port=params["port"], user=params["user"],
                              password=params["password"] or None, dbname=params["database"], autocommit=True,
                              connect_timeout=int(c.get("connect_timeout") or 10), options=SESSION_OPTIONS)

        class _Sibling(PostgresDataSourceConnection):  # Soda's connection class, on the session opened here
            def _create_connection(self, config: Any) -> Any:
                return con

        try:
            soda_con = _Sibling(name=name, connection_properties=model.connection_properties)
            yield PostgresDataSourceImpl(data_source_model=model, connection=soda_con)
        finally:
            con.close()

    @property
    def database(self) -> str:
        return str(self.credentials.get("dbname") or self.credentials.get("database"))

    def soda_dataset(self, data_source: str, schema: str, identifier: str) -> str:
        return f"{data_source}/{self.database}/{schema}/{identifier}"  # Postgres datasets are database/schema/table

    def close(self) -> None:
        self.con.close()
