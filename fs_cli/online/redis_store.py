"""Redis online store (scale-out): one hash per FG row set, a pointer hash, and Lua for every atomic step.

Keys (prefix P, configurable so tests and tenants are isolated):
  P:gen        HASH  fg -> "<gen>.<version>"       the current pointer (what readers follow)
  P:meta       HASH  fg -> meta JSON (schema, rows, watermark); "@views" -> feature view definitions
  P:seq        INT   generation counter
  P:d:<fg>:<g> HASH  entity key -> packed row (one row set)

Why Lua rather than MULTI/EXEC: a read must follow the pointer and fetch the rows of *that* row set in one
atomic step (otherwise a GC between the two could delete the row set under the reader); MULTI cannot use
the result of one command in the next, a script can, and it is one round trip. The flip is a
compare-and-set script (only a newer generation may replace the pointer), so two concurrent full runs
cannot publish a partial row set. Incremental updates run as one script that mutates the current row set
and bumps the version: Redis runs scripts one at a time, so a reader sees all of the change or none of it,
and the cost is O(changed rows). Rows of a new full version are written with pipelined HSETs into a row set
nobody points to yet; a crash leaves only an orphan that the next successful run deletes (UNLINK, freed
in the background). Keys built inside scripts are not declared in KEYS: fine on a single Redis, not on
Redis Cluster (not a target here).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from ..errors import FeatureStoreError
from .specs import FVSpec
from .store import FullWrite, OnlineStore, Pointer, ReadResult, SupersededError

_READ = """
local out = {}
local i = 2
local nfg = tonumber(ARGV[1])
for f = 1, nfg do
  local fg = ARGV[i]
  local n = tonumber(ARGV[i + 1])
  i = i + 2
  local gv = redis.call('HGET', KEYS[1], fg)
  if not gv then
    out[f] = false
  else
    local g = string.match(gv, '^(%d+)')
    local key = KEYS[2] .. fg .. ':' .. g
    local res = {gv}
    local j = 0
    while j < n do
      local m = math.min(n - j, 500)
      local args = {}
      for t = 1, m do args[t] = ARGV[i + j + t - 1] end
      local vals = redis.call('HMGET', key, unpack(args))
      for t = 1, m do res[#res + 1] = vals[t] end
      j = j + m
    end
    out[f] = res
  end
  i = i + n
end
return out
"""

# KEYS: gen hash, meta hash. ARGV: fg, new gen, meta json, views json or ''.
_FLIP = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local version = 0
if cur then
  local g, v = string.match(cur, '^(%d+)%.(%d+)$')
  if tonumber(g) >= tonumber(ARGV[2]) then return {-1, tonumber(g)} end
  version = tonumber(v)
end
version = version + 1
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '.' .. version)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], '@views', ARGV[4]) end
return {version, tonumber(ARGV[2])}
"""

# KEYS: gen hash, meta hash. ARGV: data key prefix, fg, expected gen, meta json, views json or '', nup, k,v..., k...
_INCR = """
local cur = redis.call('HGET', KEYS[1], ARGV[2])
if not cur then return {-2, 0, 0} end
local g, v = string.match(cur, '^(%d+)%.(%d+)$')
if g ~= ARGV[3] then return {-1, tonumber(g), 0} end
local key = ARGV[1] .. ARGV[2] .. ':' .. g
local nup = tonumber(ARGV[6])
local i = 7
for t = 1, nup do
  redis.call('HSET', key, ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('HDEL', key, ARGV[i])
  i = i + 1
end
local version = tonumber(v) + 1
redis.call('HSET', KEYS[1], ARGV[2], g .. '.' .. version)
redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[2], '@views', ARGV[5]) end
return {version, tonumber(g), redis.call('HLEN', key)}
"""

# Push ingestion. KEYS: gen hash. ARGV: data key prefix, fg, then (key, event_us, packed row) triples. Each row is
# written only if its event time is >= the served one (the packed row starts with "[<event_us>,"); one script, so a
# request is applied whole or not at all and readers never see half of it.
_UPSERT_NEWER = """
local cur = redis.call('HGET', KEYS[1], ARGV[2])
if not cur then return {-2, 0} end
local g = string.match(cur, '^(%d+)')
local key = ARGV[1] .. ARGV[2] .. ':' .. g
local written, skipped = 0, 0
local i = 3
while i <= #ARGV do
  local old = redis.call('HGET', key, ARGV[i])
  local newer = true
  if old then
    local e = tonumber(string.match(old, '^%[(%-?%d+)'))
    if e and e > tonumber(ARGV[i + 1]) then newer = false end
  end
  if newer then
    redis.call('HSET', key, ARGV[i], ARGV[i + 2])
    written = written + 1
  else
    skipped = skipped + 1
  end
  i = i + 3
end
return {written, skipped}
"""

_PIPE_CHUNK = 5_000


class RedisStore(OnlineStore):
    def __init__(self, url: str, prefix: str = "fs"):
        import redis

        self.url = url
        self.prefix = prefix
        self.k_gen = f"{prefix}:gen"
        self.k_meta = f"{prefix}:meta"
        self.k_seq = f"{prefix}:seq"
        self.k_data = f"{prefix}:d:"
        try:
            self.r = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=5)
            self.r.ping()
        except Exception as e:  # redis raises several unrelated types for a bad URL / unreachable server
            raise FeatureStoreError(f"cannot reach the Redis online store at {url}: {e}",
                                    fix="start Redis or fix FS_ONLINE_STORE (e.g. redis://127.0.0.1:6379/0)") from None
        self._read = self.r.register_script(_READ)
        self._flip = self.r.register_script(_FLIP)
        self._incr = self.r.register_script(_INCR)
        self._upsert_newer = self.r.register_script(_UPSERT_NEWER)

    def data_key(self, fg: str, gen: int | str) -> str:
        return f"{self.k_data}{fg}:{gen}"

    def close(self) -> None:
        self.r.close()

    def ping(self) -> bool:
        try:
            return bool(self.r.ping())
        except Exception:
            return False

    # -- write side --------------------------------------------------------------------------------------
    def begin_full(self, fg: str) -> FullWrite:
        return _RedisFullWrite(self, fg, int(self.r.incr(self.k_seq)))

    def _current(self, fg: str) -> tuple[int, int] | None:
        gv = self.r.hget(self.k_gen, fg)
        if gv is None:
            return None
        g, v = gv.decode().split(".")
        return int(g), int(v)

    def apply_incremental(self, fg: str, upserts: Sequence[tuple[str, bytes]], deletes: Iterable[str],
                          meta: dict[str, Any], views: dict[str, FVSpec] | None = None) -> Pointer:
        deletes = list(deletes)
        for _ in range(5):  # optimistic: retry if a full flip moved the pointer between our read and the script
            cur = self._current(fg)
            if cur is None:
                raise FeatureStoreError(f"feature group {fg} has no online version to update incrementally",
                                        fix="run a full materialization first (`fs materialize --full`)")
            gen = cur[0]
            meta_out = {**meta, "published_at": time.time()}
            args: list[Any] = [self.k_data, fg, str(gen), b"", _views_blob(views), len(upserts)]
            for k, v in upserts:
                args += [k, v]
            args += deletes
            # rows count is only known after the script; store it with a second HSET of meta below.
            args[3] = orjson.dumps(meta_out)
            version, g, rows = self._incr(keys=[self.k_gen, self.k_meta], args=args)
            if version == -2:
                raise FeatureStoreError(f"feature group {fg} was dropped during the update")
            if version == -1:
                continue
            meta_out["rows"] = int(rows)
            self.r.hset(self.k_meta, fg, orjson.dumps(meta_out))  # row count is informational only
            return Pointer(fg, int(g), int(version), meta_out)
        raise SupersededError(f"feature group {fg}: the online version kept changing during an incremental update",
                              fix="retry `fs materialize`")

    def upsert_if_newer(self, fg: str, items: Sequence[tuple[str, int, bytes]]) -> tuple[int, int]:
        args: list[Any] = [self.k_data, fg]
        for k, event_us, v in items:
            args += [k, event_us, v]
        written, skipped = self._upsert_newer(keys=[self.k_gen], args=args)
        if written == -2:
            raise FeatureStoreError(f"feature group {fg} is not online yet",
                                    fix="publish and materialize it once (`fs run` / `fs materialize`)")
        return int(written), int(skipped)

    def put_document(self, name: str, blob: bytes) -> None:
        self.r.hset(self.k_meta, "@doc:" + name, blob)

    def document(self, name: str) -> bytes | None:
        return self.r.hget(self.k_meta, "@doc:" + name)

    def publish_views(self, views: dict[str, FVSpec]) -> None:
        self.r.hset(self.k_meta, "@views", _views_blob(views))

    def drop(self, fg: str) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.hdel(self.k_gen, fg)
        pipe.hdel(self.k_meta, fg)
        pipe.execute()
        self._gc(fg, None)

    def _gc(self, fg: str, keep_from: int | None) -> int:
        """UNLINK row sets of `fg` with gen < keep_from (all of them if None)."""
        removed = 0
        for key in self.r.scan_iter(match=f"{self.k_data}{fg}:*", count=1000):
            g = key.decode().rsplit(":", 1)[1]
            if g.isdigit() and (keep_from is None or int(g) < keep_from):
                self.r.unlink(key)
                removed += 1
        return removed

    def drop_all(self) -> None:
        """Delete every key under this prefix (tests, `fs materialize --reset`)."""
        keys = list(self.r.scan_iter(match=f"{self.prefix}:*", count=1000))
        for i in range(0, len(keys), 1000):
            self.r.unlink(*keys[i:i + 1000])

    # -- read side ---------------------------------------------------------------------------------------
    def pointers(self) -> dict[str, Pointer]:
        pipe = self.r.pipeline(transaction=True)  # MULTI: gen and meta from the same instant
        pipe.hgetall(self.k_gen)
        pipe.hgetall(self.k_meta)
        gens, metas = pipe.execute()
        out = {}
        for fg, gv in gens.items():
            name = fg.decode()
            g, v = gv.decode().split(".")
            meta = orjson.loads(metas[fg]) if fg in metas else {}
            out[name] = Pointer(name, int(g), int(v), meta)
        return out

    def views(self) -> dict[str, FVSpec]:
        blob = self.r.hget(self.k_meta, "@views")
        return {n: FVSpec.from_dict(d) for n, d in orjson.loads(blob).items()} if blob else {}

    def read(self, lookups: Sequence[tuple[str, Sequence[str]]]) -> list[ReadResult | None]:
        args: list[Any] = [len(lookups)]
        for fg, keys in lookups:
            args += [fg, len(keys), *keys]
        raw = self._read(keys=[self.k_gen, self.k_data], args=args)
        out: list[ReadResult | None] = []
        for res in raw:
            if not res:
                out.append(None)
                continue
            g, v = res[0].decode().split(".")
            out.append(ReadResult(int(g), int(v), list(res[1:])))
        return out

    def row_count(self, fg: str) -> int:
        cur = self._current(fg)
        return 0 if cur is None else int(self.r.hlen(self.data_key(fg, cur[0])))


def _views_blob(views: dict[str, FVSpec] | None) -> bytes:
    return b"" if views is None else orjson.dumps({n: v.to_dict() for n, v in views.items()})


class _RedisFullWrite(FullWrite):
    def __init__(self, store: RedisStore, fg: str, gen: int):
        self.store, self.fg, self.gen = store, fg, gen
        self.key = store.data_key(fg, gen)
        self.count = 0

    def write(self, items: Sequence[tuple[str, bytes]]) -> None:
        r = self.store.r
        pipe = r.pipeline(transaction=False)
        for i in range(0, len(items), _PIPE_CHUNK):
            pipe.hset(self.key, mapping=dict(items[i:i + _PIPE_CHUNK]))
        pipe.execute()
        self.count += len(items)

    def commit(self, meta: dict[str, Any], views: dict[str, FVSpec] | None = None) -> Pointer:
        s = self.store
        rows = int(s.r.hlen(self.key))
        meta = {**meta, "rows": rows, "published_at": time.time()}
        version, cur = s._flip(keys=[s.k_gen, s.k_meta],
                               args=[self.fg, self.gen, orjson.dumps(meta), _views_blob(views)])
        if version == -1:
            self.abort()
            raise SupersededError(
                f"feature group {self.fg}: a newer materialization (gen {cur}) was published meanwhile",
                fix="nothing to do: the newer version is serving")
        s._gc(self.fg, self.gen)
        return Pointer(self.fg, self.gen, int(version), meta)

    def abort(self) -> None:
        self.store.r.unlink(self.key)
