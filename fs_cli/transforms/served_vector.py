"""Applying a training dataset (TD) version's fitted transformations and on-demand features to a served feature
vector (pure: no warehouse, no store). The online service calls this; what it reads comes from the view's published
FVSpec.extra["transforms"] (fs_cli.online.td_statistics builds it at materialization):
    {"latest": N, "versions": {"N": <fitted stats of TD version N>, ...}, "on_demand": [<OnDemandFeature dicts>],
     "columns": {<online value name>: <TD column name>}}
A request then: looked-up values (renamed to TD columns) + entity keys + request parameters -> on-demand features
(in-process DuckDB, the TD's own expressions) -> apply_row with version N's statistics (default: the latest).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..errors import FeatureStoreError
from .apply_row import Transformer
from .ondemand import OnDemandEvaluator, OnDemandFeature

EXTRA_KEY = "transforms"


class ServedView(Protocol):
    """What a published feature view (fs_cli.online.specs.FVSpec) offers this module: its name, entity keys and
    the extra entries published with it."""

    @property
    def name(self) -> str: ...

    @property
    def keys(self) -> Sequence[str]: ...

    @property
    def extra(self) -> Mapping[str, Any]: ...


class RequestProblem(FeatureStoreError):
    """A bad request (HTTP 400): carries `status` like fs_cli.online.reader.RequestError."""

    status = 400


class ViewServing:
    """Per view (and per published statistics): on-demand evaluator + one compiled Transformer per TD version."""

    def __init__(self, name: str, extra: Mapping[str, Any], keys: Sequence[str]):
        self.name = name
        self.columns: dict[str, str] = dict(extra.get("columns") or {})
        self.versions: dict[int, Mapping[str, Any]] = {int(k): v for k, v in (extra.get("versions") or {}).items()}
        self.latest: int | None = extra.get("latest")
        ods = [OnDemandFeature.from_dict(d) for d in extra.get("on_demand") or []]
        self.evaluator = OnDemandEvaluator(ods) if ods else None
        self.on_demand_names = [o.name for o in ods]
        self.keys = list(keys)
        provided = set(self.columns.values()) | set(self.on_demand_names) | set(self.keys)
        self.od_request: list[str] = []
        for o in ods:
            self.od_request += [r for r in o.request if r not in self.od_request]
        self.tf_request: list[str] = []  # transformed spine columns (e.g. `amount`) come with the request
        for stats in self.versions.values():
            for c in stats["chains"]:
                if c["feature"] not in provided and c["feature"] not in self.tf_request:
                    self.tf_request.append(c["feature"])
        self.request_params = [*self.od_request, *(p for p in self.tf_request if p not in self.od_request)]
        # query parameters a GET vector request may carry besides the entity keys
        self.query_params = frozenset({"training_dataset_version", "transformed", *self.request_params})
        self._transformers: dict[int, Transformer] = {}
        self._lock = threading.Lock()

    def transformer(self, version: int | None) -> tuple[int, Transformer]:
        if not self.versions:
            raise RequestProblem(f"feature view {self.name} has no training dataset with fitted transformations",
                                 fix="create one (`fs training-dataset create`) and run `fs materialize`, or drop "
                                     "training_dataset_version")
        v = self.latest if version is None else version
        if v not in self.versions:
            raise RequestProblem(f"training dataset version {version} of {self.name} has no published statistics",
                                 fix=f"versions: {', '.join(map(str, sorted(self.versions)))}")
        t = self._transformers.get(v)
        if t is None:
            with self._lock:
                t = self._transformers.setdefault(v, Transformer(self.versions[v]))
        return v, t

    def apply(self, answer: dict[str, Any], request_rows: Sequence[Mapping[str, Any]] | None,
              version: int | None, transformed: bool = True) -> dict[str, Any]:
        """Rewrite a reader.vectors answer in place: values keyed by TD column, + on-demand, + transformed."""
        vectors = answer["vectors"]
        req = list(request_rows) if request_rows is not None else [_EMPTY] * len(vectors)
        if len(req) != len(vectors):
            raise RequestProblem(f"{len(req)} request rows for {len(vectors)} entity rows",
                                 fix="send one `request` object per entity row")
        v, transformer = self.transformer(version) if transformed else (None, None)
        needed = self.od_request if transformer is None else self.request_params
        cols = self.columns
        rename = any(k != c for k, c in cols.items())
        rows = []
        for vec, r in zip(vectors, req, strict=True):
            if r or needed:  # validate request parameters (none sent and none needed: the common case)
                self._check_request(r, needed)
            values = vec["values"]
            if rename:
                values = {cols.get(k, k): x for k, x in values.items()}
            rows.append({**vec["entity"], **r, **values})
        if self.evaluator is not None:
            for row, od in zip(rows, self.evaluator.evaluate_many(rows), strict=True):
                row.update(od)
        # entity keys and request parameters are inputs, not features (unless a transformation writes them)
        inputs = (*self.keys, *self.request_params)
        drop = inputs if transformer is None else tuple(k for k in inputs if k not in transformer.outputs)
        for vec, row in zip(vectors, rows, strict=True):
            out = transformer.apply_row(row) if transformer is not None else row
            for k in drop:
                out.pop(k, None)
            vec["values"] = out
        answer["training_dataset_version"] = v
        answer["transformed"] = transformer is not None
        return answer

    def _check_request(self, r: Any, needed: Sequence[str]) -> None:
        if not isinstance(r, Mapping):
            raise RequestProblem("every request row must be an object of parameter -> value")
        unknown = [k for k in r if k not in self.request_params]
        if unknown:
            raise RequestProblem(f"unknown request parameter {str(unknown[0])[:60]!r} for {self.name}",
                                 fix=f"its request parameters: {', '.join(self.request_params) or '(none)'}")
        missing = [p for p in needed if p not in r]
        if missing:
            raise RequestProblem(f"request parameter {missing[0]} is missing",
                                 fix=f"feature view {self.name} needs: {', '.join(self.request_params)}")



_EMPTY: Mapping[str, Any] = {}
_CACHE: dict[int, tuple[Any, ViewServing | None]] = {}  # id(spec) -> (spec, serving): the per-request fast path
_BY_CONTENT: dict[str, ViewServing] = {}  # what was published -> serving: survives the reader's spec reloads
_CACHE_LOCK = threading.Lock()


def _content_key(spec: ServedView, extra: Mapping[str, Any]) -> str:
    """Identifies the published content cheaply: statistics by fingerprint, the rest verbatim."""
    versions = {k: v.get("fingerprint") for k, v in (extra.get("versions") or {}).items()}
    return json.dumps([spec.name, list(spec.keys), extra.get("latest"), versions, extra.get("on_demand"),
                       extra.get("columns")], sort_keys=True, default=str)


def serving_for(spec: ServedView) -> ViewServing | None:
    """The ViewServing of a published FVSpec (None if it carries no transforms). The reader reloads spec objects
    every second; a reloaded spec with the same content reuses the compiled transformers and DuckDB evaluator."""
    hit = _CACHE.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    extra = (spec.extra or {}).get(EXTRA_KEY)
    serving = None
    if extra:
        key = _content_key(spec, extra)
        with _CACHE_LOCK:
            serving = _BY_CONTENT.get(key)
        if serving is None:
            serving = ViewServing(spec.name, extra, spec.keys)
    with _CACHE_LOCK:
        if len(_CACHE) > 256:
            _CACHE.clear()
        _CACHE[id(spec)] = (spec, serving)
        if serving is not None:
            if len(_BY_CONTENT) > 64:
                _BY_CONTENT.clear()
            _BY_CONTENT[key] = serving
    return serving
