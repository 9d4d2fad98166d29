"""Online reads, shared by the HTTP service and the SDK: validate a request, read one snapshot, shape the answer.

Two shapes:
- Feast's feature server (`get_online_features`): `features` ("fg:feature" refs, answered in the order
  requested) or `feature_service` (= a feature view name), `entities` as column -> list of keys; the answer is
  `metadata.feature_names` + one `results[]` entry per column (entity keys first) with `values`, `statuses`
  and `event_timestamps` per entity row. Unlike Feast, TTL is enforced on read: a value older than its FG's
  TTL comes back null with status OUTSIDE_MAX_AGE.
- Native (`vectors`): one feature view, a list of entity rows; each vector is named values + the versions.

Bad input raises RequestError (a FeatureStoreError with an HTTP-ish status); it never reaches a query
unparameterized: names are checked against the published catalog, keys are type-checked and only ever
passed as bound values / Redis arguments.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from ..errors import FeatureStoreError
from .specs import FGSpec, FVSpec
from .store import OnlineStore, Pointer, encode_key

_EPOCH = datetime(1970, 1, 1)
EPOCH_TS = "1970-01-01T00:00:00Z"
DEFAULT_MAX_BATCH = 1000


class RequestError(FeatureStoreError):
    """A request the caller can fix. `status` is the HTTP status the service answers with."""

    def __init__(self, message: str, fix: str | None = None, status: int = 400):
        super().__init__(message, fix)
        self.status = status


@functools.lru_cache(maxsize=65536)
def ts_text(us: int | None) -> str:
    """Epoch microseconds -> RFC 3339 UTC text, as Feast prints protobuf Timestamps."""
    if us is None:
        return EPOCH_TS
    dt = _EPOCH + timedelta(microseconds=us)
    return dt.isoformat(timespec="seconds" if dt.microsecond == 0 else "microseconds") + "Z"


def _check_key(value: Any, kind: str, column: str) -> Any:
    """Type-check one entity key against its declared kind; returns the value to encode."""
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise RequestError(f"entity key {column} must be an integer, got {type(value).__name__} {value!r:.60}",
                           fix=f"send {column} as a JSON number, e.g. 42")
    if kind == "str":
        if isinstance(value, str):
            return value
        raise RequestError(f"entity key {column} must be a string, got {type(value).__name__} {value!r:.60}",
                           fix=f'send {column} as a JSON string, e.g. "abc"')
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RequestError(f"entity key {column} must be a string or an integer, got {type(value).__name__}")
    return value


@dataclass
class _Plan:
    """A resolved request: which FG features, in which output order, needing which key columns."""

    refs: list[tuple[str, str]]  # (fg, feature) in output order
    names: list[str]  # output names, parallel to refs
    fgs: list[str]  # distinct FGs, first-use order
    key_columns: list[str]  # every key column the FGs need, first-use order


class OnlineReader:
    """Reads from an OnlineStore with a cached catalog (FG specs, feature views) refreshed as versions change."""

    def __init__(self, store: OnlineStore, max_batch: int = DEFAULT_MAX_BATCH,
                 clock: Callable[[], float] = time.time, refresh_seconds: float = 1.0):
        self.store = store
        self.max_batch = max_batch
        self.clock = clock  # epoch seconds; injectable so tests can move time past a TTL
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._pointers: dict[str, Pointer] = {}
        self._specs: dict[tuple[str, int], FGSpec] = {}
        self._views: dict[str, FVSpec] = {}
        self._loaded = 0.0
        self._plans: dict[Any, _Plan] = {}

    # -- catalog cache -----------------------------------------------------------------------------------
    def refresh(self, force: bool = True) -> None:
        now = time.monotonic()
        if not force and now - self._loaded < self.refresh_seconds:
            return
        pointers = self.store.pointers()
        views = self.store.views()
        with self._lock:
            self._pointers = pointers
            self._views = views
            if len(self._specs) > 1000:  # long-running server, many republishes: keep the current ones
                self._specs = {k: v for k, v in self._specs.items() if k[0] in pointers and pointers[k[0]].gen == k[1]}
            for p in pointers.values():
                if (p.fg, p.gen) not in self._specs and "spec" in p.meta:
                    self._specs[(p.fg, p.gen)] = p.spec
            self._plans = {}
            self._loaded = now

    @property
    def pointers(self) -> dict[str, Pointer]:
        self.refresh(force=False)
        return self._pointers

    @property
    def views(self) -> dict[str, FVSpec]:
        self.refresh(force=False)
        return self._views

    def spec(self, fg: str, gen: int | None = None) -> FGSpec | None:
        ptr = self.pointers.get(fg)
        if ptr is None:
            return None
        if gen is None:
            gen = ptr.gen
        s = self._specs.get((fg, gen))
        if s is None:
            self.refresh()
            s = self._specs.get((fg, gen))
        return s

    def _cur_spec(self, fg: str) -> FGSpec:
        ptr = self._pointers.get(fg)
        spec = self._specs.get((fg, ptr.gen)) if ptr else None
        if spec is None:
            raise RequestError(f"feature group {fg} is not online (any more)", status=404)
        return spec

    def versions(self) -> dict[str, int]:
        return {fg: p.version for fg, p in self.pointers.items()}

    def ready(self) -> bool:
        try:
            return self.store.ping() and bool(self.pointers)
        except Exception:
            return False

    # -- planning ----------------------------------------------------------------------------------------
    def _unknown_view(self, name: str) -> RequestError:
        known = ", ".join(sorted(self._views)) or "(none published: run `fs materialize`)"
        return RequestError(f"unknown feature view {str(name)[:100]!r}", fix=f"known feature views: {known}",
                            status=404)

    def view(self, name: str) -> FVSpec:
        v = self.views.get(name)
        if v is None and time.monotonic() - self._loaded > 0.2:  # just published? look once more, rate-limited
            self.refresh()
            v = self._views.get(name)
        if v is None:
            raise self._unknown_view(name)
        return v

    def plan(self, features: Sequence[str] | None, feature_service: str | None, full_names: bool) -> _Plan:
        if features is not None and feature_service is not None:
            raise RequestError("give either `features` or `feature_service`, not both")
        if feature_service is not None:
            if not isinstance(feature_service, str):
                raise RequestError("`feature_service` must be a string (a feature view name)")
            refs_txt: Sequence[str] = self.view(feature_service).features
        elif features is not None:
            if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
                raise RequestError("`features` must be a list of 'feature_group:feature' strings")
            if not features:
                raise RequestError("`features` is empty", fix="ask for at least one 'feature_group:feature'")
            if len(features) > 1000:
                raise RequestError("too many features requested (more than 1000)", status=413)
            refs_txt = features
        else:
            raise RequestError("give `features` (a list of 'fg:feature') or `feature_service` (a feature view name)")
        cache_key = (tuple(refs_txt), full_names)
        plan = self._plans.get(cache_key)
        if plan is not None:
            return plan
        refs: list[tuple[str, str]] = []
        for r in refs_txt:
            parts = r.split(":")
            if len(parts) != 2 or not parts[0] or not parts[1]:
                raise RequestError(f"feature reference {r[:100]!r} is not of the form 'feature_group:feature'",
                                   fix="e.g. 'fg_customer_profile:credit_limit'")
            fg, feat = parts
            spec = self.spec(fg)
            if spec is None:
                known = ", ".join(sorted(self.pointers)) or "(none materialized)"
                raise RequestError(f"unknown online feature group {fg[:100]!r} in {r[:100]!r}",
                                   fix=f"online feature groups: {known}", status=404)
            if spec.feature(feat) is None:
                raise RequestError(f"feature group {fg} has no feature {feat[:100]!r}",
                                   fix=f"its features: {', '.join(spec.feature_names)}", status=404)
            refs.append((fg, feat))
        names = [f"{fg}__{feat}" if full_names else feat for fg, feat in refs]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise RequestError(f"feature name(s) {', '.join(dup)} requested twice or from two feature groups",
                               fix="set full_feature_names: true, or request each feature once")
        fgs = list(dict.fromkeys(fg for fg, _ in refs))
        keys: list[str] = []
        for fg in fgs:
            keys += [k for k in self._cur_spec(fg).keys if k not in keys]
        plan = _Plan(refs, names, fgs, keys)
        if len(self._plans) < 10_000:
            self._plans[cache_key] = plan
        return plan

    # -- reading -----------------------------------------------------------------------------------------
    def _lookup(self, plan: _Plan, columns: dict[str, list[Any]], n: int):
        """Read every FG of the plan for n entity rows; returns per-FG (spec, version, decoded rows)."""
        lookups = []
        for fg in plan.fgs:
            spec = self._cur_spec(fg)
            if len(spec.keys) == 1:
                enc = [v if isinstance(v, str) else str(v) for v in columns[spec.keys[0]]]
            else:
                enc = [encode_key(tuple(columns[k][i] for k in spec.keys)) for i in range(n)]
            lookups.append((fg, enc))
        results = self.store.read(lookups)
        out = {}
        for fg, res in zip(plan.fgs, results, strict=True):
            if res is None:  # dropped since we planned
                raise RequestError(f"feature group {fg} is no longer online", status=404)
            spec = self._specs.get((fg, res.gen))
            if spec is None:
                self.refresh()
                spec = self._specs.get((fg, res.gen))
                if spec is None:
                    raise RequestError(f"feature group {fg} is being republished; retry", status=503)
            rows = [orjson.loads(v) if v is not None else None for v in res.values]
            out[fg] = (spec, res.version, rows)
        return out

    def _columns(self, plan: _Plan, entities: Any) -> tuple[dict[str, list[Any]], int]:
        if not isinstance(entities, dict) or not entities:
            raise RequestError("`entities` must be an object of key column -> list of keys",
                               fix='e.g. "entities": {"customer_id": [1, 2]}')
        n = None
        for col in plan.key_columns:
            if col not in entities:
                raise RequestError(f"entity key {col} is missing from `entities`",
                                   fix=f"the requested features need keys: {', '.join(plan.key_columns)}")
            vals = entities[col]
            if not isinstance(vals, list):
                raise RequestError(f"entities.{col} must be a list of keys")
            if n is None:
                n = len(vals)
            elif len(vals) != n:
                raise RequestError("every entity key list must have the same length",
                                   fix=f"lengths differ: {', '.join(f'{c}={len(entities[c])}' for c in plan.key_columns if isinstance(entities.get(c), list))}")
        for col, vals in entities.items():
            if col not in plan.key_columns and not isinstance(vals, list):
                raise RequestError(f"entities.{str(col)[:60]} must be a list of keys")
        n = n or 0
        if n == 0:
            raise RequestError("empty batch: no entity keys given", fix="send at least one key")
        if n > self.max_batch:
            raise RequestError(f"batch of {n} entity rows exceeds the limit of {self.max_batch}",
                               fix="split the request (the limit is `--max-batch` / FS_MAX_BATCH)", status=413)
        kinds: dict[str, str] = {}
        for fg in plan.fgs:
            spec = self._cur_spec(fg)
            for k, kind in zip(spec.keys, spec.key_kinds, strict=True):
                kinds.setdefault(k, kind)
        cols = {}
        for col in plan.key_columns:
            kind = kinds[col]
            cols[col] = [_check_key(v, kind, col) for v in entities[col]]
        return cols, n

    def get_online_features(self, body: Any, now: float | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Feast-shaped answer for a parsed JSON body; also returns log info (names, keys, versions)."""
        if not isinstance(body, dict):
            raise RequestError("the request body must be a JSON object",
                               fix='e.g. {"features": ["fg:feature"], "entities": {"customer_id": [1]}}')
        full = body.get("full_feature_names", False)
        if not isinstance(full, bool):
            raise RequestError("`full_feature_names` must be true or false")
        plan = self.plan(body.get("features"), body.get("feature_service"), full)
        entities = body.get("entities")
        cols, n = self._columns(plan, entities)
        data = self._lookup(plan, cols, n)
        now_s = self.clock() if now is None else now
        names = list(entities.keys()) if isinstance(entities, dict) else []
        # Feast puts every requested entity column first, then the features in request order.
        key_out = [c for c in names if c in plan.key_columns] + [c for c in plan.key_columns if c not in names]
        results: list[dict[str, Any]] = []
        for c in key_out:
            results.append({"values": cols[c], "statuses": ["PRESENT"] * n, "event_timestamps": [EPOCH_TS] * n})
        # Per FG, classify each entity row once (status, timestamp text); features then only pick values.
        now_us = int(now_s * 1_000_000)
        per_fg: dict[str, tuple[dict[str, int], list, list[str], list[str]]] = {}
        for fg in plan.fgs:
            spec, _, rows = data[fg]
            ttl_us = spec.ttl_seconds * 1_000_000 if spec.ttl_seconds else None
            kinds: list[str] = []
            stamps: list[str] = []
            for row in rows:
                if row is None:
                    kinds.append("NOT_FOUND")
                    stamps.append(EPOCH_TS)
                    continue
                stamps.append(ts_text(row[0]))
                kinds.append("OUTSIDE_MAX_AGE" if ttl_us is not None and now_us - row[0] > ttl_us else "PRESENT")
            pos = {f: i + 2 for i, f in enumerate(spec.feature_names)}
            per_fg[fg] = (pos, rows, kinds, stamps)
        for fg, feat in plan.refs:
            pos_map, rows, kinds, stamps = per_fg[fg]
            pos = pos_map.get(feat)
            if pos is None:  # the FG was republished with another schema between planning and reading
                raise RequestError(f"feature {fg}:{feat} is not in the version of {fg} now online",
                                   fix=f"its features: {', '.join(pos_map)}", status=404)
            values: list[Any] = []
            statuses: list[str] = []
            for row, kind in zip(rows, kinds, strict=True):
                if kind == "PRESENT":
                    v = row[pos]
                    values.append(v)
                    statuses.append("PRESENT" if v is not None else "NULL_VALUE")
                else:
                    values.append(None)
                    statuses.append(kind)
            results.append({"values": values, "statuses": statuses, "event_timestamps": stamps})
        response = {"metadata": {"feature_names": key_out + plan.names}, "results": results}
        info = {"versions": {fg: data[fg][1] for fg in plan.fgs}, "keys": {c: cols[c] for c in plan.key_columns},
                "feature_view": body.get("feature_service"), "n": n}
        return response, info

    def vectors(self, view_name: str, rows: Any, now: float | None = None) -> dict[str, Any]:
        """Native answer: one feature view, a list of entity rows -> named values per row + versions."""
        return self.vectors_with_feast(view_name, rows, now)[0]

    def view_key_kinds(self, fv: FVSpec) -> dict[str, str]:
        """The view's request key columns (its spine's key columns) -> the JSON kind each must have."""
        kinds: dict[str, str] = {}
        for ref in fv.features:
            fg = ref.split(":", 1)[0]
            spec = self.spec(fg)
            if spec is not None:
                for k, kind in zip(spec.keys, spec.key_kinds, strict=True):
                    kinds.setdefault(fv.request_column(fg, k), kind)
        return kinds

    def vectors_with_feast(self, view_name: str, rows: Any, now: float | None = None):
        """(native answer, the Feast-shaped answer it was built from, log info).

        Entity rows are keyed by the view's request key columns (the spine's, as in training) and values are
        named like the training dataset's columns (prefix applied): one declaration, the same names both ways."""
        fv = self.view(view_name)
        if not isinstance(rows, list):
            raise RequestError("`entities` must be a list of objects, one per entity row",
                               fix='e.g. {"entities": [{"customer_id": 42}]}')
        groups = self._key_groups(fv)
        request_keys = list(fv.keys) or [c for _, m in groups for c in m.values() if c]
        request_keys = list(dict.fromkeys(request_keys))
        for r in rows:
            if not isinstance(r, dict):
                raise RequestError("every entity row must be an object of key column -> key",
                                   fix='e.g. {"customer_id": 42}')
            extra = [k for k in r if k not in request_keys]
            if extra:
                raise RequestError(f"unknown entity key {str(extra[0])[:60]!r} for feature view {fv.name}",
                                   fix=f"its keys: {', '.join(request_keys)}")
            missing = [c for c in request_keys if c not in r]
            if missing:
                raise RequestError(f"entity key {missing[0]} is missing from an entity row",
                                   fix=f"feature view {fv.name} needs keys: {', '.join(request_keys)}")
        outputs = dict(zip(fv.features, fv.output_names, strict=True))
        n = len(rows)
        values: dict[str, list[Any]] = {}
        statuses: dict[str, list[str]] = {}
        stamps: dict[str, list[str]] = {}
        versions: dict[str, int] = {}
        entity_cols: dict[str, list[Any]] = {}
        for refs, mapping in groups:  # one read per set of feature groups sharing a key mapping (usually one)
            entities = {fg_key: [r[req] for r in rows] for fg_key, req in mapping.items()}
            feast, info = self.get_online_features(
                {"features": refs, "entities": entities, "full_feature_names": True}, now=now)
            k = len(feast["metadata"]["feature_names"]) - len(refs)
            for fg_key, req in mapping.items():
                entity_cols.setdefault(req, info["keys"][fg_key])
            for ref, res in zip(refs, feast["results"][k:], strict=True):
                out = outputs[ref]
                values[out], statuses[out], stamps[out] = res["values"], res["statuses"], res["event_timestamps"]
            versions.update(info["versions"])
        names = list(dict.fromkeys(outputs[r] for r in fv.features))
        out_rows = []
        for i in range(n):
            out_rows.append({
                "entity": {c: entity_cols[c][i] for c in request_keys},
                "values": {nm: values[nm][i] for nm in names},
                "statuses": {nm: statuses[nm][i] for nm in names},
                "event_timestamps": {nm: stamps[nm][i] for nm in names},
            })
        feast_shaped = {
            "metadata": {"feature_names": [*request_keys, *names]},
            "results": [*({"values": entity_cols[c], "statuses": ["PRESENT"] * n,
                           "event_timestamps": [EPOCH_TS] * n} for c in request_keys),
                        *({"values": values[nm], "statuses": statuses[nm], "event_timestamps": stamps[nm]}
                          for nm in names)],
        }
        info = {"versions": versions, "keys": {c: entity_cols[c] for c in request_keys},
                "feature_view": fv.name, "n": n}
        return {"feature_view": fv.name, "versions": versions, "vectors": out_rows}, feast_shaped, info

    def _key_groups(self, fv: FVSpec) -> list[tuple[list[str], dict[str, str]]]:
        """The view's refs split into reads whose feature groups agree on {fg key column: request column}."""
        groups: list[tuple[list[str], dict[str, str]]] = []
        for ref in fv.features:
            fg = ref.split(":", 1)[0]
            spec = self._cur_spec(fg)
            mapping = {k: fv.request_column(fg, k) for k in spec.keys}
            for refs, m in groups:
                if all(m.get(k, v) == v for k, v in mapping.items()):
                    refs.append(ref)
                    m.update(mapping)
                    break
            else:
                groups.append(([ref], dict(mapping)))
        return groups


class _MissingType:
    pass


_Missing = _MissingType()


