"""Spark with Delta Lake: the project's own SparkSession, in this process, shared with dbt-spark (`session` method).

One session per process: dbt-spark's cursor calls `SparkSession.builder...getOrCreate()`, which returns the session
`fs` created first from the same `server_side_parameters` of the target (profiles.yml), so dbt and `fs` read and
write the same catalog. The Hive metastore is an embedded Derby database under `<project>/.fs/spark/`: one process
per project at a time. Tables are Delta tables (`file_format: delta`).

Delta has no multi-statement transactions: every statement commits atomically on its own (a reader sees a table
before or after it, never half of it). `transaction()` is therefore only that guarantee per statement; callers whose
steps must be all-or-nothing write them as one statement or make them idempotent.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import FeatureStoreError
from .base import Result, Warehouse

if TYPE_CHECKING:
    from ..project import Project

log = logging.getLogger(__name__)
SPARK_DIR_ENV = "FS_SPARK_DIR"
_SESSION_LOCK = threading.Lock()


def spark_dir(project_dir: Path) -> Path:
    """Where Spark keeps the project's tables, metastore and scratch files: $FS_SPARK_DIR (relative to the project)
    or `<project>/.fs/spark`, always absolute (Spark and Derby would otherwise resolve against the cwd)."""
    raw = os.environ.get(SPARK_DIR_ENV) or str(Path(".fs") / "spark")
    path = Path(raw)
    return (path if path.is_absolute() else project_dir / path).absolute()


def session(project: Project) -> Any:
    """The process's SparkSession, created on first use from the target's `server_side_parameters` (the same ones
    dbt-spark applies), with Hive support and Delta."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise FeatureStoreError(
            "the Spark target needs pyspark, dbt-spark, delta-spark and soda-sparkdf",
            fix="pip install -c constraints.txt -e '.[spark]' (and Java 17: `java -version`)",
        ) from None
    method = project.target_config().get("method")
    if method != "session":
        raise FeatureStoreError(
            f"fs reads and writes Spark through an in-process session; target {project.target!r} uses method "
            f"{method!r}",
            fix="use `method: session` with server_side_parameters pointing at the cluster (spark.master, a shared "
            "metastore and warehouse dir; README, Spark); dbt alone can still run on this target",
        )
    with _SESSION_LOCK:
        params = dict(project.target_config().get("server_side_parameters") or {})
        active = SparkSession.getActiveSession()
        if active is not None:
            if _same_warehouse(active, params):
                return active
            # Another project's session (a process that works on two projects in turn, like a test run): its
            # warehouse and metastore are that project's, and Spark fixes them per session. Start this one's.
            log.info("stopping the Spark session of %s", active.conf.get("spark.sql.warehouse.dir", "?"))
            active.stop()
        base = spark_dir(project.dir)
        for sub in ("warehouse", "derby", "tmp"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        builder = SparkSession.builder.enableHiveSupport()
        for key, value in params.items():
            builder = builder.config(str(key), str(value))
        if "spark.jars.packages" not in params:
            from delta import configure_spark_with_delta_pip

            builder = configure_spark_with_delta_pip(builder)
        try:
            spark = builder.getOrCreate()
        except Exception as e:  # noqa: BLE001 - JVM start-up failures arrive as many exception types
            raise FeatureStoreError(
                f"cannot start Spark for {project.dir}: {str(e).strip().splitlines()[0] if str(e) else e!r}",
                fix="Spark needs Java 17 (`java -version`; apt-get install openjdk-17-jre-headless) and, on first "
                "use, Maven Central to fetch Delta's jars",
            ) from None
        spark.sparkContext.setLogLevel("ERROR")
        _quiet_metastore_alter_errors(spark)
        return spark


def _quiet_metastore_alter_errors(spark: Any) -> None:
    """Silence the Hive metastore's "ERROR HiveAlterHandler: Failed to alter table" lines.

    dbt-spark rebuilds a Delta table with `create or replace table`; Delta then updates the table in the metastore,
    whose alter handler logs that ERROR (it cannot alter the non-native table's storage description) although the
    statement succeeds, and Delta's log, not the metastore, holds the table's schema and data. A real failure still
    raises in the statement. On the demo that was one alarming line per feature group rebuilt."""
    try:
        jvm = spark.sparkContext._jvm
        jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(
            "org.apache.hadoop.hive.metastore.HiveAlterHandler", jvm.org.apache.logging.log4j.Level.OFF)
    except Exception as e:  # noqa: BLE001 - a cosmetic setting: never fail a session over it
        log.debug("could not quiet HiveAlterHandler: %s", e)


def _same_warehouse(active: Any, params: dict[str, Any]) -> bool:
    """Whether the running session keeps its tables where the target's parameters say (the same project)."""
    wanted = params.get("spark.sql.warehouse.dir")
    if wanted is None:
        return True
    return _local_path(active.conf.get("spark.sql.warehouse.dir", "")) == _local_path(str(wanted))


def _local_path(uri: str) -> str:
    return os.path.normpath(uri.removeprefix("file://").removeprefix("file:")) if uri else ""


def literal(value: Any) -> str:
    """A Python value as a Spark SQL literal of its type (the driver-side binding psycopg2 does for Postgres).

    Why not `spark.sql(sql, args=[...])`: on Spark 4.1 with Delta's SQL extension, positional parameters in a
    multi-row VALUES or an INSERT with a column list are bound to the wrong columns (measured: a text value landed
    in a double column). Literals are typed here and escaped, never formatted in as text."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return f"CAST({int(value)} AS BIGINT)"
    if isinstance(value, float):
        return f"CAST('{value!r}' AS DOUBLE)"  # repr round-trips; also 'nan', 'inf'
    if isinstance(value, Decimal):
        return f"{value}BD"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return f"TIMESTAMP'{value.isoformat(sep=' ')}'"  # the session time zone is UTC
    if isinstance(value, date):
        return f"DATE'{value.isoformat()}'"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"X'{bytes(value).hex()}'"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if hasattr(value, "item"):  # numpy scalars
        return literal(value.item())
    raise FeatureStoreError(f"cannot bind a {type(value).__name__} value in Spark SQL")


def bind(sql: str, params: Sequence[Any]) -> str:
    """Replace each `?` outside quoted text, quoted identifiers and comments by the literal of its parameter."""
    values = iter(params)
    out: list[str] = []
    quote: str | None = None
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if quote:
            out.append(ch)
            if ch == "\\" and quote != "`" and i + 1 < n:
                out.append(sql[i + 1])
                i += 1
            elif ch == quote:
                quote = None
        elif ch in ("'", '"', "`"):
            quote = ch
            out.append(ch)
        elif ch == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end])
            i = end
            continue
        elif ch == "?":
            try:
                out.append(literal(next(values)))
            except StopIteration:
                raise FeatureStoreError(f"more ? placeholders than parameters in: {sql[:200]}") from None
        else:
            out.append(ch)
        i += 1
    if next(values, _END) is not _END:
        raise FeatureStoreError(f"more parameters than ? placeholders in: {sql[:200]}")
    return "".join(out)


_END = object()


def naive_utc(table: pa.Table) -> pa.Table:
    """Spark's TIMESTAMP comes out of Arrow as zoned UTC; the store's times are naive UTC (as DuckDB/Postgres give)."""
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            naive = pc.cast(table.column(i), pa.timestamp(field.type.unit, tz="UTC")).cast(
                pa.timestamp(field.type.unit))
            table = table.set_column(i, pa.field(field.name, naive.type, field.nullable), naive)
    return table


def _zoned_utc(table: pa.Table) -> pa.Table:
    """Naive Arrow timestamps -> zoned UTC before Spark reads them (it would otherwise apply the local zone)."""
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is None:
            col = table.column(i).cast(pa.timestamp("us", tz="UTC"))
            table = table.set_column(i, pa.field(field.name, col.type, field.nullable), col)
    return table


class SparkWarehouse(Warehouse):
    SQL_DIALECT = "spark"  # sqlglot's name for this SQL (fs_cli/run_inputs.py reads compiled models with it)
    engine = "spark"
    TYPES = {**Warehouse.TYPES, "text": "string", "integer": "int"}

    def __init__(self, project: Project, target: dict[str, Any]):
        self.project = project
        self.schema = str(target.get("schema") or "default")
        self.spark = session(project)

    # -- statements -------------------------------------------------------------------------------------
    def _df(self, sql: str, params: Sequence[Any]) -> Any:
        return self.spark.sql(bind(sql, params) if params else sql)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Result:
        started = time.monotonic()
        try:
            return self._execute(sql, params)
        finally:  # every statement costs a Spark job: the debug log says which ones are slow
            log.debug("%.2fs %s", time.monotonic() - started, " ".join(sql.split())[:200])

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Result:
        df = self._df(sql, params)
        if not df.columns:  # DDL: executed eagerly by spark.sql
            return Result([], [])
        table = naive_utc(df.toArrow())
        columns = table.column_names
        rows = list(zip(*(table.column(i).to_pylist() for i in range(table.num_columns)), strict=True))
        return Result(rows, columns)

    def arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        started = time.monotonic()
        try:
            return naive_utc(self._df(sql, params).toArrow())
        finally:
            log.debug("%.2fs arrow: %s", time.monotonic() - started, " ".join(sql.split())[:200])

    def query_columns(self, sql: str) -> list[str]:
        return list(self._df(f"select * from ({sql}) as fs_probe", ()).columns)  # analysed, never run

    # -- bulk data --------------------------------------------------------------------------------------
    def write_arrow(self, relation: str, table: pa.Table, mode: str = "create") -> None:
        df = self.spark.createDataFrame(_zoned_utc(table)) if table.num_rows or table.num_columns else None
        if df is None:
            raise FeatureStoreError(f"cannot write a table without columns to {relation}")
        spark_mode = {"create": "errorifexists", "replace": "overwrite", "append": "append"}[mode]
        writer = df.write.format("delta").mode(spark_mode)
        if mode == "replace":
            writer = writer.option("overwriteSchema", "true")
        writer.saveAsTable(relation)  # a multi-part name; backtick-quoted parts are parsed as SQL does

    # -- catalog ----------------------------------------------------------------------------------------
    def quote(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def tables(self, schema: str) -> list[str]:
        if not self._schema_exists(schema):
            return []
        rows = self.spark.sql(f"show tables in {self.quote(schema)}").collect()
        return sorted(r["tableName"] for r in rows if not r["isTemporary"])

    def _schema_exists(self, schema: str) -> bool:
        return bool(self.spark.catalog.databaseExists(schema))

    def relation_exists(self, schema: str, name: str) -> bool:
        return self._schema_exists(schema) and bool(self.spark.catalog.tableExists(f"{schema}.{name}"))

    def _describe(self, relation: str) -> list[tuple[str, str]]:
        df = self.spark.sql(f"select * from {relation} as fs_probe")  # analysed, never run
        return [(f.name, f.dataType.simpleString()) for f in df.schema.fields]

    def schemas(self) -> list[str]:
        return sorted(r[0] for r in self.spark.sql("show schemas").collect())

    def drop_schema(self, schema: str) -> None:
        for name in self.tables(schema):  # views first: a cascade leaves Delta folders of managed tables behind
            self.execute(f"drop table if exists {self.relation(schema, name)}")
        self.execute(f"drop schema if exists {self.quote(schema)} cascade")

    def drop_table(self, relation: str) -> None:
        self.execute(f"drop table if exists {relation}")

    def rename_table(self, schema: str, old: str, new: str) -> None:
        # The new name is schema-qualified: Spark would otherwise resolve it against the current database.
        self.execute(f"alter table {self.relation(schema, old)} rename to {self.relation(schema, new)}")

    def primary_key_clause(self, columns: Sequence[str]) -> str:
        return ""  # Spark tables have no enforced keys

    # -- transactions -----------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        # Delta commits each statement atomically and has no multi-statement transactions; Spark's metastore is
        # one process per project (Derby), so no concurrent `fs` writer can interleave. See the module docstring.
        yield

    def is_write_conflict(self, exc: BaseException) -> bool:
        text = f"{type(exc).__name__} {exc}"
        return any(s in text for s in ("ConcurrentAppendException", "ConcurrentWriteException",
                                       "TABLE_OR_VIEW_ALREADY_EXISTS", "DELTA_CONCURRENT"))

    def text_sort(self, expr: str) -> str:
        return expr  # Spark compares strings by UTF-8 bytes = code point order

    def sorted_text_agg(self, expr: str, sep: str) -> str:
        return f"array_join(array_sort(collect_list({expr})), '{sep}')"  # no ordered string_agg in Spark

    def add_column(self, relation: str, column: str, logical: str) -> None:
        self.execute(f"alter table {relation} add columns ({self.quote(column)} {self.type(logical)})")

    # -- scratch relations (validation) ------------------------------------------------------------------
    def _row_hash(self, alias: str) -> str:
        return "xxhash64(*)"  # every column of the one table in content_token's FROM

    def delete_matching(self, target: str, source: str, condition: str) -> None:
        # Delta's DELETE takes no subquery (DELTA_UNSUPPORTED_SUBQUERY); its MERGE deletes by a join, and an
        # unconditional DELETE clause accepts several source rows matching one target row.
        self.execute(f"merge into {target} as t using ({source}) as s on {condition} when matched then delete")

    def update_matching(self, target: str, source: str, condition: str, assignments: dict[str, str],
                        params: Sequence[Any] = ()) -> None:
        # Delta's UPDATE takes no FROM or subquery: its MERGE updates by a join.
        sets = ", ".join(f"t.{self.quote(c)} = {e}" for c, e in assignments.items())
        self.execute(f"merge into {target} as t using ({source}) as s on {condition} when matched then update set {sets}",
                     params)

    def unit_hash(self, exprs: Sequence[str]) -> str:
        return (f"cast(shiftright(xxhash64({', '.join(exprs)}), 11) & 9007199254740991 as double)"
                " / 9007199254740992.0")

    def temp_relation(self, name: str) -> str:
        return self.quote(name)

    def create_temp_table(self, name: str, sql: str, params: Sequence[Any] = ()) -> str:
        """A session temp view over the query, cached so that repeated reads see one evaluation."""
        df = self._df(sql, params).localCheckpoint()
        df.createOrReplaceTempView(name)
        return self.temp_relation(name)

    def regex_match(self, expr: str, pattern: str) -> str:
        return f"{expr} rlike {pattern}"

    # -- Soda v4 ------------------------------------------------------------------------------------------
    @contextmanager
    def soda_data_source(self, name: str) -> Iterator[Any]:
        from soda_core.contracts import verify_contract_locally  # noqa: F401 - imported first: plugin import cycle
        from soda_sparkdf import SparkDataFrameDataSource

        yield SparkDataFrameDataSource.from_existing_session(self.spark, name=name)

    def soda_dataset(self, data_source: str, schema: str, identifier: str) -> str:
        return f"{data_source}/{schema}/{identifier}"

    # -- life cycle -------------------------------------------------------------------------------------
    def close(self) -> None:
        # The session outlives this handle: dbt-spark and later handles in this process use it too.
        pass
