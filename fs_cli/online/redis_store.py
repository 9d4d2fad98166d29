"""Redis online store (scale-out): one hash per FG row set, a pointer hash, and Lua for every atomic step.

Keys (prefix P, configurable so tests and tenants are isolated):
  P:gen        HASH  fg -> "<gen>.<version>"       the current pointer (what readers follow)
  P:meta       HASH  fg -> meta JSON (schema, rows, watermark); "@views" -> feature view definitions
  P:seq        INT   generation counter
  P:d:<fg>:<g> HASH  entity key -> packed row (one row set)

Why Lua rather than MULTI/EXEC: a read must follow the pointer and fetch the rows of *that* row set in one
atomic step (otherwise a GC between the two could delete the row set under the reader); MULTI cannot use
the result of one command in the next, a script can, and it is one round trip. The flip is a
compare-and-set script (only a newer generation, carrying data at least as new as the serving version's, may
replace the pointer), so two concurrent full runs cannot publish a partial row set or older data. Incremental
updates run as one script that checks the serving version is the one the change was computed from (same spec,
data not newer), mutates its row set and writes the version, meta and views: Redis runs scripts one at a time,
so a reader sees all of the change or none of it, and the cost is O(changed rows). Rows of a new full version are written with pipelined HSETs into a row set
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

# Shared by the publish scripts: the data version ([commit_us, now_us]) the serving meta records, and the order.
_VERSION_LUA = """
local function serving_meta(meta_key, fg)
  local m = redis.call('HGET', meta_key, fg)
  if not m then return {} end
  local ok, d = pcall(cjson.decode, m)
  if ok and type(d) == 'table' then return d end
  return {}
end
local function older(c, n, meta)
  local dv = meta['data_version']
  if type(dv) ~= 'table' then return false end
  local sc, sn = tonumber(dv[1]) or 0, tonumber(dv[2]) or 0
  return c < sc or (c == sc and n < sn)
end
"""

# KEYS: gen hash, meta hash. ARGV: fg, new gen, meta json, views json or '', commit_us, now_us, rewind ('1'/'0').
# Returns {version, gen}; {-1, gen}: a newer generation serves; {-3, gen}: the serving data is newer.
_FLIP = _VERSION_LUA + """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local version = 0
if cur then
  local g, v = string.match(cur, '^(%d+)%.(%d+)$')
  if ARGV[7] ~= '1' and older(tonumber(ARGV[5]), tonumber(ARGV[6]), serving_meta(KEYS[2], ARGV[1])) then
    return {-3, tonumber(g)}
  end
  if tonumber(g) >= tonumber(ARGV[2]) then return {-1, tonumber(g)} end
  version = tonumber(v)
end
version = version + 1
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '.' .. version)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], '@views', ARGV[4]) end
return {version, tonumber(ARGV[2])}
"""

# KEYS: gen hash, meta hash. ARGV: data key prefix, fg, base "<gen>.<version>" or '', meta json (starting with
# '{"rows":null,'), views json or '', commit_us, now_us, spec id, nup, k,v... (nup pairs), then keys to delete.
# Everything (checks, rows, meta with the row count, views) in this one script: readers and other writers see all
# of it or none. Returns {version, gen, rows}; {-2}: not online; {-3}: the serving data is newer; {-1}: the serving
# version is not the base; {-4}: the serving version has another spec.
_INCR = _VERSION_LUA + """
local cur = redis.call('HGET', KEYS[1], ARGV[2])
if not cur then return {-2, 0, 0} end
local g, v = string.match(cur, '^(%d+)%.(%d+)$')
local serving = serving_meta(KEYS[2], ARGV[2])
if older(tonumber(ARGV[6]), tonumber(ARGV[7]), serving) then return {-3, tonumber(g), 0} end
if ARGV[3] ~= '' and ARGV[3] ~= cur then return {-1, tonumber(g), 0} end
if serving['spec_id'] ~= ARGV[8] then return {-4, tonumber(g), 0} end
local key = ARGV[1] .. ARGV[2] .. ':' .. g
local nup = tonumber(ARGV[9])
local i = 10
for t = 1, nup do
  redis.call('HSET', key, ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('HDEL', key, ARGV[i])
  i = i + 1
end
local version = tonumber(v) + 1
local rows = redis.call('HLEN', key)
local prefix = '{"rows":null,'
local meta = ARGV[4]
if string.sub(meta, 1, #prefix) == prefix then meta = '{"rows":' .. rows .. ',' .. string.sub(meta, #prefix + 1) end
redis.call('HSET', KEYS[1], ARGV[2], g .. '.' .. version)
redis.call('HSET', KEYS[2], ARGV[2], meta)
if ARGV[5] ~= '' then redis.call('HSET', KEYS[2], '@views', ARGV[5]) end
return {version, tonumber(g), rows}
"""

# Push ingestion. KEYS: gen hash, meta hash. ARGV: data key prefix, fg, spec id the rows were packed for (or ''),
# then (key, event_us, packed row) triples. Each row is written only if its event time is >= the served one (the
# packed row starts with "[<event_us>,"); one script, so a request is applied whole or not at all, readers never see
# half of it, and it is refused ({-4}) if the serving version has another spec (a version published before spec ids
# were recorded is not checked).
_UPSERT_NEWER = """
local cur = redis.call('HGET', KEYS[1], ARGV[2])
if not cur then return {-2, 0} end
if ARGV[3] ~= '' then
  local m = redis.call('HGET', KEYS[2], ARGV[2])
  local ok, d = pcall(cjson.decode, m or '{}')
  if ok and type(d) == 'table' and d['spec_id'] and d['spec_id'] ~= ARGV[3] then return {-4, 0} end
end
local g = string.match(cur, '^(%d+)')
local key = ARGV[1] .. ARGV[2] .. ':' .. g
local written, skipped = 0, 0
local i = 4
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
                          meta: dict[str, Any], views: dict[str, FVSpec] | None = None, *,
                          base: tuple[int, int] | None = None) -> Pointer:
        meta_out = {"rows": None, **{k: v for k, v in meta.items() if k != "rows"},
                    "spec_id": spec_id(meta["spec"]), "published_at": time.time()}
        mine = data_version_of(meta_out)
        args: list[Any] = [self.k_data, fg, "" if base is None else f"{base[0]}.{base[1]}", orjson.dumps(meta_out),
                           _views_blob(views), mine[0], mine[1], meta_out["spec_id"], len(upserts)]
        for k, v in upserts:
            args += [k, v]
        args += list(deletes)
        version, g, rows = self._incr(keys=[self.k_gen, self.k_meta], args=args)
        if version == -2:
            raise FeatureStoreError(f"feature group {fg} has no online version to update incrementally",
                                    fix="run a full materialization first (`fs materialize --full`)")
        if version == -3:
            raise stale_error(fg, mine, data_version_of(self.pointers().get(fg, Pointer(fg, 0, 0)).meta))
        if version == -1:
            raise SupersededError(
                f"feature group {fg}: another materialization published (gen {g}) after this incremental update "
                f"was computed from gen {base[0] if base else '?'} v{base[1] if base else '?'}; nothing was written",
                fix="run `fs materialize` again")
        if version == -4:
            raise SupersededError(f"feature group {fg}: the serving version has another schema than this "
                                  f"incremental update; nothing was written",
                                  fix="run `fs materialize` again (a schema change needs a full rewrite)")
        meta_out["rows"] = int(rows)
        return Pointer(fg, int(g), int(version), meta_out)

    def upsert_if_newer(self, fg: str, items: Sequence[tuple[str, int, bytes]], *,
                        spec: dict[str, Any] | None = None) -> tuple[int, int]:
        args: list[Any] = [self.k_data, fg, "" if spec is None else spec_id(spec)]
        for k, event_us, v in items:
            args += [k, event_us, v]
        written, skipped = self._upsert_newer(keys=[self.k_gen, self.k_meta], args=args)
        if written == -2:
            raise FeatureStoreError(f"feature group {fg} is not online yet",
                                    fix="publish and materialize it once (`fs run` / `fs materialize`)")
        if written == -4:
            raise schema_changed_error(fg)
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

    def commit(self, meta: dict[str, Any], views: dict[str, FVSpec] | None = None, *, rewind: bool = False) -> Pointer:
        s = self.store
        rows = int(s.r.hlen(self.key))
        meta = {**meta, "rows": rows, "published_at": time.time()}
        if "spec" in meta:
            meta["spec_id"] = spec_id(meta["spec"])
        mine = data_version_of(meta)
        version, cur = s._flip(keys=[s.k_gen, s.k_meta], args=[
            self.fg, self.gen, orjson.dumps(meta), _views_blob(views), mine[0], mine[1], "1" if rewind else "0"])
        if version == -3:
            self.abort()
            raise stale_error(self.fg, mine, data_version_of(s.pointers().get(self.fg, Pointer(self.fg, 0, 0)).meta))
        if version == -1:
            self.abort()
            raise SupersededError(
                f"feature group {self.fg}: a newer materialization (gen {cur}) was published meanwhile",
                fix="nothing to do: the newer version is serving")
        s._gc(self.fg, self.gen)
        return Pointer(self.fg, self.gen, int(version), meta)

    def abort(self) -> None:
        self.store.r.unlink(self.key)
