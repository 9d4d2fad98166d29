"""SQLite online store (the embedded default): stdlib sqlite3, WAL mode, one file next to the warehouse.

Why this layout: rows of every FG generation live in one WITHOUT ROWID table keyed (fg, gen, k), so a lookup
of N keys is one index range probe per key, and a reader joins through ``fs_pointer`` in the same statement
(or the same read transaction for several FGs): WAL gives every read transaction a snapshot, so a reader sees
the pointer and the rows of one committed state. Full writes go to a fresh ``gen`` in chunked transactions
(the write lock is released between chunks; readers are never blocked in WAL mode anyway) and the flip is one
small transaction; incremental writes are a single transaction on the current gen (SQLite's atomic commit
is exactly the "old or new, never a mix" guarantee, and costs O(changed rows)).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from ..errors import FeatureStoreError
from .specs import FVSpec
from .store import (
    FullWrite,
    OnlineStore,
    Pointer,
    ReadResult,
    SupersededError,
    data_version_of,
    schema_changed_error,
    spec_id,
    stale_error,
)

# fs_registry holds the published views (not the model registry, fs_cli/registry); the on-disk name stays so that
# existing store files keep working.
_SCHEMA = """
create table if not exists fs_pointer (
    fg text primary key, gen integer not null, version integer not null, meta blob not null);
create table if not exists fs_rows (
    fg text not null, gen integer not null, k text not null, v blob not null,
    primary key (fg, gen, k)) without rowid;
create table if not exists fs_registry (name text primary key, value blob not null);
create table if not exists fs_seq (name text primary key, n integer not null);
"""
_CHUNK = 20_000
_MAX_VARS = 900  # stay under SQLITE_MAX_VARIABLE_NUMBER on old builds
_READ_SQL: dict[int, str] = {}


def _read_sql(n: int) -> str:
    """One FG's part of the read statement; parameters: (lookup index, n keys, fg)."""
    sql = _READ_SQL.get(n)
    if sql is None:
        marks = ",".join("?" * n)
        sql = (f"select ? as i, p.gen, p.version, r.k, r.v from fs_pointer p "
               f"left join fs_rows r on r.fg = p.fg and r.gen = p.gen and r.k in ({marks}) where p.fg = ?")
        if len(_READ_SQL) < 2048:
            _READ_SQL[n] = sql
    return sql


class SQLiteStore(OnlineStore):
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self._local = threading.local()  # sqlite3 connections are per thread
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = self._con()
            con.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as e:
            raise FeatureStoreError(f"cannot open the SQLite online store {self.path}: {e}",
                                    fix="check the path in FS_ONLINE_STORE and that its directory is writable") from None

    # -- connections -------------------------------------------------------------------------------------
    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly what we say.
            con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            con.execute("pragma journal_mode=wal")
            con.execute("pragma synchronous=normal")  # WAL + NORMAL: durable on commit except on power loss
            con.execute("pragma busy_timeout=30000")
            # reads of a hot online store: serve pages from memory (mmap + a 64 MiB page cache per connection)
            con.execute("pragma mmap_size=268435456")
            con.execute("pragma cache_size=-65536")
            self._local.con = con
            with self._lock:
                self._all.append(con)
        return con

    def close(self) -> None:
        with self._lock:
            for c in self._all:
                try:
                    c.close()
                except sqlite3.Error:
                    pass
            self._all.clear()
        self._local = threading.local()

    def _next_gen(self) -> int:
        con = self._con()
        con.execute("begin immediate")
        try:
            con.execute("insert into fs_seq values ('gen', 1) on conflict(name) do update set n = n + 1")
            (n,) = con.execute("select n from fs_seq where name = 'gen'").fetchone()
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        return int(n)

    # -- write side --------------------------------------------------------------------------------------
    def begin_full(self, fg: str) -> FullWrite:
        return _SQLiteFullWrite(self, fg, self._next_gen())

    def apply_incremental(self, fg: str, upserts: Sequence[tuple[str, bytes]], deletes: Iterable[str],
                          meta: dict[str, Any], views: dict[str, FVSpec] | None = None, *,
                          base: tuple[int, int] | None = None) -> Pointer:
        con = self._con()
        con.execute("begin immediate")  # one write transaction: the checks, the rows, meta and views
        try:
            row = con.execute("select gen, version, meta from fs_pointer where fg = ?", (fg,)).fetchone()
            if row is None:
                raise FeatureStoreError(f"feature group {fg} has no online version to update incrementally",
                                        fix="run a full materialization first (`fs materialize --full`)")
            gen, version, serving = row[0], row[1], orjson.loads(row[2])
            meta = _with_spec_id(meta)
            _check_not_older(fg, meta, serving)
            if base is not None and (gen, version) != tuple(base):
                raise SupersededError(
                    f"feature group {fg}: another materialization published (gen {gen} v{version}) after this "
                    f"incremental update was computed from gen {base[0]} v{base[1]}; nothing was written",
                    fix="run `fs materialize` again")
            if serving.get("spec") != meta.get("spec"):
                raise SupersededError(f"feature group {fg}: the serving version has another schema than this "
                                      f"incremental update; nothing was written",
                                      fix="run `fs materialize` again (a schema change needs a full rewrite)")
            con.executemany("insert or replace into fs_rows values (?, ?, ?, ?)",
                            ((fg, gen, k, v) for k, v in upserts))
            con.executemany("delete from fs_rows where fg = ? and gen = ? and k = ?",
                            ((fg, gen, k) for k in deletes))
            (count,) = con.execute("select count(*) from fs_rows where fg = ? and gen = ?", (fg, gen)).fetchone()
            meta = {**meta, "rows": count, "published_at": time.time()}
            con.execute("update fs_pointer set version = ?, meta = ? where fg = ?",
                        (version + 1, orjson.dumps(meta), fg))
            if views is not None:
                self._put_views(con, views)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        return Pointer(fg, gen, version + 1, meta)

    @staticmethod
    def _put_views(con: sqlite3.Connection, views: dict[str, FVSpec]) -> None:
        blob = orjson.dumps({n: v.to_dict() for n, v in views.items()})
        con.execute("insert or replace into fs_registry values ('views', ?)", (blob,))

    def publish_views(self, views: dict[str, FVSpec]) -> None:
        con = self._con()
        con.execute("begin immediate")
        try:
            self._put_views(con, views)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise

    def upsert_if_newer(self, fg: str, items: Sequence[tuple[str, int, bytes]], *,
                        spec: dict[str, Any] | None = None) -> tuple[int, int]:
        con = self._con()
        con.execute("begin immediate")  # one write transaction: the whole request or none of it
        try:
            row = con.execute("select gen, meta from fs_pointer where fg = ?", (fg,)).fetchone()
            if row is None:
                raise FeatureStoreError(f"feature group {fg} is not online yet",
                                        fix="publish and materialize it once (`fs run` / `fs materialize`)")
            gen = row[0]
            if spec is not None and orjson.loads(row[1]).get("spec") != spec:
                raise schema_changed_error(fg)
            served: dict[str, int] = {}
            keys = list(dict.fromkeys(k for k, _, _ in items))
            for i in range(0, len(keys), _MAX_VARS):
                part = keys[i:i + _MAX_VARS]
                marks = ",".join("?" * len(part))
                for k, v in con.execute(f"select k, v from fs_rows where fg = ? and gen = ? and k in ({marks})",
                                        (fg, gen, *part)):
                    served[k] = orjson.loads(v)[0]
            newer = []
            for k, event_us, v in items:
                if k not in served or event_us >= served[k]:
                    served[k] = event_us
                    newer.append((fg, gen, k, v))
            con.executemany("insert or replace into fs_rows values (?, ?, ?, ?)", newer)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        return len(newer), len(items) - len(newer)

    def put_document(self, name: str, blob: bytes) -> None:
        con = self._con()
        con.execute("begin immediate")
        try:
            con.execute("insert or replace into fs_registry values (?, ?)", ("doc:" + name, blob))
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise

    def document(self, name: str) -> bytes | None:
        row = self._con().execute("select value from fs_registry where name = ?", ("doc:" + name,)).fetchone()
        return row[0] if row else None

    def drop(self, fg: str) -> None:
        con = self._con()
        con.execute("begin immediate")
        try:
            con.execute("delete from fs_pointer where fg = ?", (fg,))
            con.execute("delete from fs_rows where fg = ?", (fg,))
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise

    def gc(self, fg: str) -> int:
        """Delete row sets of `fg` older than the current one (superseded versions and crashed partial writes)."""
        con = self._con()
        row = con.execute("select gen from fs_pointer where fg = ?", (fg,)).fetchone()
        if row is None:
            return 0
        # One statement: readers are never blocked (WAL) and the row sets are no longer referenced.
        cur = con.execute("delete from fs_rows where fg = ? and gen < ?", (fg, row[0]))
        return cur.rowcount

    # -- read side ---------------------------------------------------------------------------------------
    def pointers(self) -> dict[str, Pointer]:
        rows = self._con().execute("select fg, gen, version, meta from fs_pointer").fetchall()
        return {fg: Pointer(fg, gen, version, orjson.loads(meta)) for fg, gen, version, meta in rows}

    def views(self) -> dict[str, FVSpec]:
        row = self._con().execute("select value from fs_registry where name = 'views'").fetchone()
        return {n: FVSpec.from_dict(d) for n, d in orjson.loads(row[0]).items()} if row else {}

    def _read_one(self, con: sqlite3.Connection, fg: str, keys: Sequence[str]) -> ReadResult | None:
        ptr = con.execute("select gen, version from fs_pointer where fg = ?", (fg,)).fetchone()
        if ptr is None:
            return None
        gen, version = ptr
        found: dict[str, bytes] = {}
        uniq = list(dict.fromkeys(keys))
        for i in range(0, len(uniq), _MAX_VARS):
            part = uniq[i:i + _MAX_VARS]
            if len(part) == 1:
                r = con.execute("select v from fs_rows where fg = ? and gen = ? and k = ?", (fg, gen, part[0])).fetchone()
                if r is not None:
                    found[part[0]] = r[0]
                continue
            marks = ",".join("?" * len(part))
            found.update(con.execute(
                f"select k, v from fs_rows where fg = ? and gen = ? and k in ({marks})", (fg, gen, *part)
            ).fetchall())
        return ReadResult(gen, version, [found.get(k) for k in keys])

    def read(self, lookups: Sequence[tuple[str, Sequence[str]]]) -> list[ReadResult | None]:
        con = self._con()
        if sum(len(set(keys)) for _, keys in lookups) + 2 * len(lookups) > _MAX_VARS:
            # Large batch: one read transaction (WAL pins the snapshot at its first read) over several statements.
            con.execute("begin")
            try:
                return [self._read_one(con, fg, keys) for fg, keys in lookups]
            finally:
                con.execute("commit")
        # Common case: ONE statement for every FG (a single statement always reads one snapshot), which
        # follows each FG's pointer to its row set. Unmatched keys simply produce no row.
        parts, params = [], []
        uniq = []
        for i, (fg, keys) in enumerate(lookups):
            u = list(dict.fromkeys(keys))
            uniq.append(u)
            parts.append(_read_sql(len(u)))
            params += [i, *u, fg]
        rows = con.execute(" union all ".join(parts), params).fetchall()
        found: list[dict[str, bytes]] = [{} for _ in lookups]
        ptrs: list[tuple[int, int] | None] = [None] * len(lookups)
        for i, gen, version, k, v in rows:
            ptrs[i] = (gen, version)
            if k is not None:
                found[i][k] = v
        out: list[ReadResult | None] = []
        for i, (_, keys) in enumerate(lookups):
            if ptrs[i] is None:
                out.append(None)
            else:
                f = found[i]
                out.append(ReadResult(ptrs[i][0], ptrs[i][1], [f.get(k) for k in keys]))
        return out

    def row_count(self, fg: str) -> int:
        r = self._con().execute(
            "select count(*) from fs_rows r join fs_pointer p on r.fg = p.fg and r.gen = p.gen where p.fg = ?", (fg,)
        ).fetchone()
        return int(r[0])

    def ping(self) -> bool:
        try:
            self._con().execute("select 1").fetchone()
            return True
        except sqlite3.Error:
            return False


def _with_spec_id(meta: dict[str, Any]) -> dict[str, Any]:
    return {**meta, "spec_id": spec_id(meta["spec"])} if "spec" in meta else dict(meta)


def _check_not_older(fg: str, meta: dict[str, Any], serving: dict[str, Any]) -> None:
    """Inside the publish transaction: refuse data older than the serving version's."""
    mine, theirs = data_version_of(meta), data_version_of(serving)
    if mine < theirs:
        raise stale_error(fg, mine, theirs)


class _SQLiteFullWrite(FullWrite):
    def __init__(self, store: SQLiteStore, fg: str, gen: int):
        self.store, self.fg, self.gen = store, fg, gen
        self.count = 0

    def write(self, items: Sequence[tuple[str, bytes]]) -> None:
        con = self.store._con()
        for i in range(0, len(items), _CHUNK):
            part = items[i:i + _CHUNK]
            con.execute("begin immediate")
            try:
                con.executemany("insert or replace into fs_rows values (?, ?, ?, ?)",
                                ((self.fg, self.gen, k, v) for k, v in part))
                con.execute("commit")
            except BaseException:
                con.execute("rollback")
                raise
            self.count += len(part)

    def commit(self, meta: dict[str, Any], views: dict[str, FVSpec] | None = None, *, rewind: bool = False) -> Pointer:
        con = self.store._con()
        con.execute("begin immediate")
        try:
            cur = con.execute("select gen, version, meta from fs_pointer where fg = ?", (self.fg,)).fetchone()
            meta = _with_spec_id(meta)
            if cur is not None and not rewind:
                _check_not_older(self.fg, meta, orjson.loads(cur[2]))
            if cur is not None and cur[0] >= self.gen:
                raise SupersededError(
                    f"feature group {self.fg}: a newer materialization (gen {cur[0]}) was published meanwhile",
                    fix="nothing to do: the newer version is serving")
            version = (cur[1] if cur else 0) + 1
            (count,) = con.execute("select count(*) from fs_rows where fg = ? and gen = ?", (self.fg, self.gen)).fetchone()
            meta = {**meta, "rows": count, "published_at": time.time()}
            con.execute("insert or replace into fs_pointer values (?, ?, ?, ?)",
                        (self.fg, self.gen, version, orjson.dumps(meta)))
            if views is not None:
                self.store._put_views(con, views)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        self.store.gc(self.fg)
        return Pointer(self.fg, self.gen, version, meta)

    def abort(self) -> None:
        con = self.store._con()
        con.execute("delete from fs_rows where fg = ? and gen = ?", (self.fg, self.gen))
