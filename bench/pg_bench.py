"""Postgres plumbing shared by the point-in-time benchmarks (bench/pit.py, bench/pit_compare.py, the smoke test).

The benchmark gets a database of its own (`fs_pit_bench_<random>`, dropped at the end), the generated Parquet
files are loaded into schema `bench_data` with COPY, and results are exported back to Parquet with COPY. Every
connection runs with TimeZone=UTC (libpq reads PGTZ; we also pass it in the connection options), so naive and
tz-aware timestamps mean the same instant whatever the machine's TZ is.

The server comes from FS_BENCH_PG_HOST / FS_BENCH_PG_PORT / FS_BENCH_PG_USER (default 127.0.0.1:5432, postgres,
trust auth; a password, if any, from PGPASSWORD).
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

DATA_SCHEMA = "bench_data"
TABLES = ("spine", "fg_customer_tx", "fg_customer_profile")
# Session settings of every bench connection. synchronize_seqscans=off and no parallel workers when reading a
# result back: a heap written in order is then read in that order (a synchronized or parallel scan may start
# mid-table), which the spine-order check relies on.
UTC_OPTIONS = "-c TimeZone=UTC"
READ_BACK_OPTIONS = UTC_OPTIONS + " -c synchronize_seqscans=off -c max_parallel_workers_per_gather=0"


def server() -> dict:
    return {"host": os.environ.get("FS_BENCH_PG_HOST", "127.0.0.1"),
            "port": int(os.environ.get("FS_BENCH_PG_PORT", "5432")),
            "user": os.environ.get("FS_BENCH_PG_USER", "postgres")}


def pin_utc_env() -> None:
    """PGTZ for every libpq client this process starts (dbt-postgres, psycopg2, Feast's psycopg)."""
    os.environ["PGTZ"] = "UTC"


def connect(dbname: str = "postgres", options: str = UTC_OPTIONS):
    """A psycopg2 connection; PGOPTIONS (e.g. `-c work_mem=256MB` from pit_compare --pg-work-mem) still applies,
    as it does to every other libpq client of the benchmark."""
    import psycopg2

    options = f"{os.environ.get('PGOPTIONS', '')} {options}".strip()
    con = psycopg2.connect(connect_timeout=10, dbname=dbname, options=options, **server())
    con.autocommit = True
    return con


def create_database(prefix: str = "fs_pit_bench") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    con = connect()
    try:
        with con.cursor() as cur:
            cur.execute(f'create database "{name}"')
    finally:
        con.close()
    return name


def drop_database(name: str) -> None:
    con = connect()
    try:
        with con.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
    finally:
        con.close()


@contextmanager
def database(existing: str | None = None) -> Iterator[str]:
    """`existing`, or a fresh database dropped on the way out (also on errors and Ctrl-C)."""
    if existing:
        yield existing
        return
    name = create_database()
    try:
        yield name
    finally:
        drop_database(name)


_PG_TYPES = {pa.int64(): "bigint", pa.int32(): "integer", pa.int16(): "smallint", pa.int8(): "smallint",
             pa.float64(): "double precision", pa.timestamp("us"): "timestamp", pa.timestamp("ns"): "timestamp",
             pa.timestamp("us", tz="UTC"): "timestamptz", pa.timestamp("ns", tz="UTC"): "timestamptz"}


def load_parquet(dbname: str, data: Path) -> None:
    """The three Parquet files into DATA_SCHEMA (same column names, Postgres types), then ANALYZE."""
    con = connect(dbname)
    try:
        with con.cursor() as cur:
            cur.execute(f"drop schema if exists {DATA_SCHEMA} cascade")
            cur.execute(f"create schema {DATA_SCHEMA}")
            for t in TABLES:
                table = pq.read_table(data / f"{t}.parquet")
                cols = ", ".join(f'"{f.name}" {_PG_TYPES[f.type]}' for f in table.schema)
                cur.execute(f"create table {DATA_SCHEMA}.{t} ({cols})")
                buf = io.BytesIO()
                pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False))
                buf.seek(0)
                cur.copy_expert(f"copy {DATA_SCHEMA}.{t} from stdin with (format csv)", buf)
                cur.execute(f"analyze {DATA_SCHEMA}.{t}")
    finally:
        con.close()


def export_parquet(dbname: str, relation: str, columns: list[str], out: Path, order_by: str | None = None) -> int:
    """`relation`'s columns to Parquet, in heap order (or `order_by`), with the types of the loaded data:
    customer_id int64, timestamps naive microseconds, label int8, features float64. Returns the row count."""
    con = connect(dbname, READ_BACK_OPTIONS)
    try:
        buf = io.BytesIO()
        # Timestamps leave as naive UTC (the output contract; a tz-aware spine gives timestamptz, the session is UTC).
        cols = ", ".join(f'cast("{c}" as timestamp) as "{c}"' if column_type(c) == pa.timestamp("us") else f'"{c}"'
                         for c in columns)
        sql = f"select {cols} from {relation}" + (f" order by {order_by}" if order_by else "")
        with con.cursor() as cur:
            cur.copy_expert(f"copy ({sql}) to stdout with (format csv, header false)", buf)
    finally:
        con.close()
    buf.seek(0)
    types = {c: column_type(c) for c in columns}
    table = pacsv.read_csv(buf, read_options=pacsv.ReadOptions(column_names=columns),
                           convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False))
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    return table.num_rows


def column_type(name: str) -> pa.DataType:
    if name == "customer_id":
        return pa.int64()
    if name in ("event_timestamp", "event_time", "created"):
        return pa.timestamp("us")
    if name == "label":
        return pa.int8()
    return pa.float64()


def server_cpu_s() -> float:
    """CPU seconds used so far by this machine's Postgres server: its live processes plus what the postmaster
    collected from exited children (backends, parallel workers). Includes every other client of the server: on a
    shared server prefer DatabaseCpuClock."""
    procs: dict[int, tuple[int, int, int]] = {}  # pid -> (ppid, own ticks, reaped children's ticks)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process exited meanwhile
            continue
        if text[text.index("(") + 1:text.rindex(")")] != "postgres":
            continue
        f = text[text.rindex(")") + 2:].split()
        procs[int(stat.parent.name)] = (int(f[1]), int(f[11]) + int(f[12]), int(f[13]) + int(f[14]))
    ticks = sum(own + (reaped if ppid not in procs else 0) for ppid, own, reaped in procs.values())
    return ticks / os.sysconf("SC_CLK_TCK")


class DatabaseCpuClock:
    """CPU seconds of the Postgres processes serving one database (its backends and their parallel workers),
    sampled from /proc every 20 ms in a thread: unlike server_cpu_s(), other clients of a shared server do not
    count. A process that exits between two samples loses at most its last 20 ms. Local servers only."""

    def __init__(self, dbname: str, interval_s: float = 0.02):
        import threading

        self.dbname, self.interval_s = dbname, interval_s
        self.ticks: dict[int, int] = {}  # pid -> last seen utime + stime
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DatabaseCpuClock:
        self._sample()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()

    def read(self) -> float:
        self._sample()
        with self.lock:
            return sum(self.ticks.values()) / os.sysconf("SC_CLK_TCK")

    def _run(self) -> None:
        while not self.stop.wait(self.interval_s):
            self._sample()

    def _sample(self) -> None:
        seen: dict[int, int] = {}
        workers: dict[int, int] = {}  # parallel worker pid -> leader pid
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if not title.startswith("postgres: "):
                    continue
                stat = (proc / "stat").read_text()
            except OSError:  # exited meanwhile
                continue
            f = stat[stat.rindex(")") + 2:].split()
            pid, ticks = int(proc.name), int(f[11]) + int(f[12])
            if f" {self.dbname} " in title:
                seen[pid] = ticks
            elif "parallel worker for PID " in title:
                workers[pid] = int(title.split("parallel worker for PID ")[1].split()[0])
                seen.setdefault(-pid, ticks)  # kept only if its leader is ours
        with self.lock:
            for pid, ticks in seen.items():
                if pid > 0:
                    self.ticks[pid] = max(self.ticks.get(pid, 0), ticks)
            for wpid, leader in workers.items():
                if leader in seen or leader in self.ticks:
                    self.ticks[wpid] = max(self.ticks.get(wpid, 0), seen[-wpid])


def main() -> None:
    """`load DIR` -> a fresh database loaded with DIR's Parquet files (its name on stdout; drop it with `drop`)."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("load").add_argument("data", type=Path)
    sub.add_parser("drop").add_argument("database")
    args = ap.parse_args()
    pin_utc_env()
    if args.cmd == "load":
        name = create_database()
        try:
            load_parquet(name, args.data.resolve())
        except BaseException:
            drop_database(name)
            raise
        print(name)
    else:
        drop_database(args.database)


if __name__ == "__main__":
    main()
