"""The online feature service: a FastAPI app over an OnlineStore. It never opens the warehouse.

Endpoints: POST /get-online-features (Feast's feature-server shape), GET /feature-views/{name}/vector,
POST /feature-views/{name}/vectors, GET /feature-views, /health, /ready, /metrics, and the OpenAPI page /docs.
Push ingestion (Feast's shapes): POST /push and POST /write-to-online-store (core: fs_cli/online/push.py).

Speed matters here (the bench holds it to >= 0.6x a bare endpoint), so handlers read the raw body and parse it
with orjson instead of a pydantic model, and the cross-cutting work (request id, API key, metrics) is one pure
ASGI wrapper rather than BaseHTTPMiddleware (edge.py). The OpenAPI document still describes every body (hand-written
JSON Schema, schemas.py) so schemathesis can fuzz it. Store reads are sub-millisecond and run on the event loop thread:
cheaper than a thread-pool hop per request.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..access import (
    Scope,
    check_push,
    check_read,
    visible,
)
from ..errors import FeatureStoreError
from ..online.push import PushService
from ..online.push_log import PUSH_DIR_ENV, PushLog
from ..online.reader import DEFAULT_MAX_BATCH, OnlineReader, RequestError
from ..online.store import OnlineStore
from ..transforms.served_vector import serving_for
from ..ui.web import include_ui
from .edge import (
    ALWAYS_OPEN,
    BODY_TIMEOUT_ENV,
    DEFAULT_BODY_TIMEOUT,
    DOCS_ROUTES,
    MAX_BODY,
    METRICS_ROUTES,
    PUBLIC_DOCS_ENV,
    PUBLIC_METRICS_ENV,
    _Edge,
    keyring_from,
)
from .logs import ServedLog
from .metrics import Metrics
from .responses import error_response, json_response, logger, unexpected
from .schemas import (
    ERROR,
    ERRORS,
    FEAST_REQUEST_SCHEMA,
    FEAST_RESPONSE,
    PUSH_REQUEST_SCHEMA,
    VECTORS_REQUEST_SCHEMA,
    WRITE_REQUEST_SCHEMA,
)

_INT_KEY = re.compile(r"[+-]?[0-9]{1,19}")  # ASCII digits only: str.isdigit() also takes '¹', '١', '１'
_INT64 = (-(2**63), 2**63 - 1)


def _parse(raw: bytes) -> Any:
    if not raw.strip():
        raise RequestError("the request body is empty", fix="send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise RequestError(f"malformed JSON: {e}", fix="send a valid JSON object (Content-Type: application/json)") from None


async def _body(request: Request) -> Any:
    """The JSON body. Its size and read time were already bounded by _Edge, which read it before routing."""
    return _parse(await request.body())


def _rid(request: Request) -> str:
    return request.scope["state"]["request_id"]


def _logged(request: Request, response: Response) -> Response:
    """Mark a 5xx answer of unexpected as logged, so _Edge does not log it a second time."""
    if response.status_code >= 500:
        request.scope["state"]["logged_5xx"] = True
    return response


def _flag(value: bool | None, env: str) -> bool:
    if value is not None:
        return value
    return os.environ.get(env, "").strip().lower() in ("1", "true", "yes", "on")


def parse_int_key(text: str, column: str) -> int:
    """An integer entity key from a query string: ASCII digits with an optional sign, within 64 bits. Python's
    int() also reads '١' or '１' as 1 (and str.isdigit() passes '¹', which int() then rejects)."""
    if _INT_KEY.fullmatch(text):
        value = int(text)
        if _INT64[0] <= value <= _INT64[1]:
            return value
    raise RequestError(f"entity key {column} must be an integer (ASCII digits 0-9, optional sign, 64-bit), "
                       f"got {text!r:.60}", fix=f"e.g. ?{column}=42")


def create_app(
    store: OnlineStore,
    api_keys: list[str] | str | None = None,
    log_dir: str | os.PathLike | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
    clock: Callable[[], float] = time.time,
    log_max_bytes: int = 50 * 2**20,
    log_max_files: int = 20,
    push_dir: str | os.PathLike | None = None,
    max_body: int = MAX_BODY,
    body_timeout: float | None = None,
    public_metrics: bool | None = None,
    public_docs: bool | None = None,
    api_keys_file: str | os.PathLike | None = None,
    key_check_seconds: float = 0.5,
) -> FastAPI:
    """The service over `store`. `api_keys`: list or comma-separated text (default $FS_API_KEYS; none = open).
    `log_dir`: where served vectors are logged (default $FS_SERVED_LOG_DIR; none = not logged).
    `push_dir`: the push log (default $FS_PUSH_DIR; none = /push and /write-to-online-store answer 404).
    `max_body`: most bytes of a request body (413 beyond); `body_timeout`: seconds to receive it (408 beyond;
    default $FS_BODY_TIMEOUT or 30). `public_metrics` / `public_docs`: /metrics, /docs and /openapi.json without
    an API key (default $FS_PUBLIC_METRICS / $FS_PUBLIC_DOCS, else they need the key when keys are on).
    `api_keys_file`: scoped, hashed keys (default $FS_API_KEYS_FILE; fs_cli/access.py), read now (a bad file raises
    here) and re-read when it changes (checked every `key_check_seconds`). Keys of `api_keys` are full-access."""
    keyring = keyring_from(api_keys, api_keys_file, key_check_seconds)
    if log_dir is None:
        log_dir = os.environ.get("FS_SERVED_LOG_DIR") or None
    reader = OnlineReader(store, max_batch=max_batch, clock=clock)
    metrics = Metrics()
    served_log = ServedLog(log_dir, max_bytes=log_max_bytes, max_files=log_max_files) if log_dir else None
    if push_dir is None:
        push_dir = os.environ.get(PUSH_DIR_ENV) or None
    pusher = PushService(store, PushLog(push_dir), clock=clock) if push_dir else None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            reader.refresh()
        except Exception:  # not ready yet: /ready says so; requests retry the refresh
            pass
        if served_log is not None:
            served_log.start()
        yield
        if served_log is not None:
            served_log.close()

    app = FastAPI(
        title="fs online feature service",
        description="Latest feature values from the online store. Feast-compatible `/get-online-features`, "
                    "native feature-view vectors, health and Prometheus metrics.",
        version="1",
        lifespan=lifespan,
    )
    app.state.reader = reader
    app.state.metrics = metrics
    app.state.served_log = served_log

    def _log(request: Request, info: dict, body: bytes) -> None:
        if served_log is not None:
            served_log.submit(request.scope["state"]["request_id"], info.get("feature_view"), info["versions"], body)

    def _is_pii(fg: str, feature: str) -> bool:
        spec = reader.spec(fg)
        f = spec.feature(feature) if spec is not None else None
        return f is not None and f.pii

    def _view_refs() -> dict[str, tuple[str, ...]]:
        return {n: v.features for n, v in reader.views.items()}

    def authorize_read(key: Scope | None, view: Any = None, features: Any = None) -> None:
        """Raise Denied (403) unless the key may read the view / the 'fg:feature' references, pii included. None:
        keys are off. Malformed values are left to the reader (400)."""
        if key is None or key.admin:
            return
        refs = None
        if isinstance(view, str):
            try:
                refs = reader.view(view).features
            except RequestError:  # not published: only a key listing the name gets past (then the reader's 404)
                refs = None
        else:
            view = None
        if not (isinstance(features, list) and all(isinstance(f, str) for f in features)):
            features = None
        check_read(key, view=view, view_refs=refs, features=features, views=_view_refs, is_pii=_is_pii)

    def authorize_push(key: Scope | None, name: Any, by_source: bool) -> None:
        if key is None or key.admin:
            return
        fg = None
        if isinstance(name, str) and pusher is not None:
            try:
                fg = pusher.resolve(name, by_source).name
            except FeatureStoreError:  # unknown: a scoped key gets 403, not a list of what exists
                fg = None
        check_push(key, fg, name)

    def _versions_header(versions: dict[str, int]) -> dict[str, str]:
        return {"x-fs-versions": ",".join(f"{k}={v}" for k, v in versions.items())}

    @app.post("/get-online-features", tags=["online"], responses={**FEAST_RESPONSE, **ERRORS},
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": FEAST_REQUEST_SCHEMA}}}})
    async def get_online_features(request: Request) -> Response:
        """Feast feature-server request/response. TTL is enforced: stale values come back OUTSIDE_MAX_AGE."""
        # Normally answered by _Edge's hot path before routing; this route documents it (and serves it if the
        # edge wrapper is ever removed).
        try:
            raw = await request.body()
        except Exception as e:
            return _logged(request, unexpected(e, _rid(request)))
        status, body, headers = hot_feast(raw, _rid(request), _key(request))
        return Response(body, status_code=status, media_type="application/json",
                        headers={k.decode(): v.decode() for k, v in headers})

    def hot_feast(raw: bytes, rid: str, key: Scope | None = None) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        try:
            parsed = _parse(raw)
            if key is not None and isinstance(parsed, dict):
                authorize_read(key, parsed.get("feature_service"), parsed.get("features"))
            response, info = reader.get_online_features(parsed)
        except FeatureStoreError as e:
            return getattr(e, "status", 400), orjson.dumps({"error": e.message, "fix": e.fix}), []
        except Exception as e:
            r = unexpected(e, rid)  # logged there; _Edge logs only 5xx nobody logged
            return r.status_code, bytes(r.body), []
        body = orjson.dumps(response)
        if served_log is not None:  # logs the very bytes we answer with: no second encoding
            served_log.submit(rid, info.get("feature_view"), info["versions"], body)
        versions = ",".join(f"{k}={v}" for k, v in info["versions"].items()).encode()
        return 200, body, [(b"x-fs-versions", versions)]

    def _vectors(request: Request, name: str, rows: Any) -> dict[str, Any]:
        answer, feast, info = reader.vectors_with_feast(name, rows)
        if served_log is not None:
            _log(request, info, orjson.dumps(feast))
        return answer

    @app.get("/feature-views/{name}/vector", tags=["online"], responses=ERRORS)
    async def vector(name: str, request: Request) -> Response:
        """One feature vector: the view's entity keys as query parameters, e.g. `?customer_id=42`."""
        try:
            authorize_read(_key(request), name)
            fv = reader.view(name)
            kinds = _key_kinds(reader, fv)
            spec_keys = list(kinds)
            qp = request.query_params
            serving = serving_for(fv)  # transformations / on-demand features of the view
            extra = [k for k in qp if k not in kinds and (serving is None or k not in serving.query_params)]
            if extra:
                raise RequestError(f"unknown query parameter {extra[0][:60]!r} for feature view {fv.name}",
                                   fix=f"its entity keys: {', '.join(spec_keys)}")
            row = {}
            for k in spec_keys:
                vals = qp.getlist(k)
                if len(vals) != 1:
                    raise RequestError(f"give entity key {k} exactly once as a query parameter",
                                       fix=f"e.g. ?{k}=42")
                row[k] = parse_int_key(vals[0], k) if kinds.get(k) == "int" else vals[0]
            answer = _vectors(request, name, [row])
            if serving is not None:
                req = {p: _query_value(qp[p]) for p in serving.request_params if p in qp}
                answer = serving.apply(answer, [req], _tdv(qp.get("training_dataset_version")),
                                       qp.get("transformed", "true").lower() not in ("false", "0", "no"))
        except FeatureStoreError as e:
            return error_response(e)
        except Exception as e:
            return _logged(request, unexpected(e, _rid(request)))
        one = answer["vectors"][0]
        td = {k: answer[k] for k in ("training_dataset_version", "transformed") if k in answer}
        return json_response({"feature_view": answer["feature_view"], "versions": answer["versions"], **td, **one},
                              headers=_versions_header(answer["versions"]))

    @app.post("/feature-views/{name}/vectors", tags=["online"], responses=ERRORS,
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": VECTORS_REQUEST_SCHEMA}}}})
    async def vectors(name: str, request: Request) -> Response:
        """A batch of feature vectors for one feature view."""
        try:
            authorize_read(_key(request), name)
            body = await _body(request)
            if not isinstance(body, dict) or "entities" not in body:
                raise RequestError("the body must be an object with `entities`: a list of entity rows",
                                   fix='e.g. {"entities": [{"customer_id": 42}]}')
            rows = body["entities"]
            if isinstance(rows, list) and not rows:
                raise RequestError("empty batch: `entities` has no rows", fix="send at least one entity row")
            if isinstance(rows, list) and len(rows) > reader.max_batch:
                raise RequestError(f"batch of {len(rows)} entity rows exceeds the limit of {reader.max_batch}",
                                   fix="split the request", status=413)
            answer = _vectors(request, name, rows)
            serving = serving_for(reader.view(name))
            if serving is not None:
                transformed = body.get("transformed", True)
                if not isinstance(transformed, bool):
                    raise RequestError("`transformed` must be true or false")
                answer = serving.apply(answer, body.get("request"), _tdv(body.get("training_dataset_version")),
                                       transformed)
            elif any(k in body for k in ("request", "training_dataset_version")):
                raise RequestError(f"feature view {name} has no on-demand features or fitted transformations",
                                   fix="drop `request` / `training_dataset_version`, or create a training dataset "
                                       "of a view that declares them and run `fs materialize`")
        except FeatureStoreError as e:
            return error_response(e)
        except Exception as e:
            return _logged(request, unexpected(e, _rid(request)))
        return json_response(answer, headers=_versions_header(answer["versions"]))

    async def _push(request: Request, name_field: str) -> Response:
        if pusher is None:
            return json_response({"error": "push ingestion is off on this server: it has no push log directory",
                                   "fix": f"set {PUSH_DIR_ENV} (`fs serve` sets it to the project's .fs/push)"}, 404)
        try:
            body = await _body(request)
            if not isinstance(body, dict):
                raise RequestError("the request body must be a JSON object",
                                   fix=f'e.g. {{"{name_field}": "fg_customer_profile", "df": {{...}}}}')
            by_source = name_field == "push_source_name"
            authorize_push(_key(request), body.get(name_field), by_source)
            to = body.get("to", "online") if by_source else "online"
            # fsync + a write transaction: off the event loop, so lookups keep being answered meanwhile
            result = await run_in_threadpool(pusher.push, body.get(name_field), body.get("df"), to=to,
                                             by_source=by_source)
        except FeatureStoreError as e:
            status = getattr(e, "status", 400)
            extra = {k: getattr(e, k) for k in ("row", "column", "rule") if getattr(e, k, None) is not None}
            return json_response({"error": e.message, "fix": e.fix, **extra}, status)
        except Exception as e:
            return _logged(request, unexpected(e, _rid(request)))
        return json_response(result.to_dict())

    @app.post("/push", tags=["push"], responses={**ERRORS, 422: ERROR},
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": PUSH_REQUEST_SCHEMA}}}})
    async def push(request: Request) -> Response:
        """Feast's push: rows of a feature group (named by its name or declared `push_source`), checked against
        its declared expectations (one failing row: 422, nothing written), logged durably for the next `fs run`
        to publish, and written to the online store in one atomic step where newer than what is served."""
        return await _push(request, "push_source_name")

    @app.post("/write-to-online-store", tags=["push"], responses={**ERRORS, 422: ERROR},
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": WRITE_REQUEST_SCHEMA}}}})
    async def write_to_online_store(request: Request) -> Response:
        """Feast's write_to_online_store (what `online_store: {type: remote}` clients call): like /push with
        `to: online`, the feature group named by `feature_view_name`."""
        return await _push(request, "feature_view_name")

    @app.get("/feature-views", tags=["catalog"])
    async def feature_views(request: Request) -> Response:
        """Published feature views and online feature groups (what this service can answer)."""
        try:
            views = {n: v.to_dict() for n, v in reader.views.items()}
            fgs = {fg: {"version": p.version, "rows": p.meta.get("rows"), "materialized_now": p.meta.get("now"),
                        "spec": p.meta.get("spec")} for fg, p in reader.pointers.items()}
            key = _key(request)
            if key is not None and not key.admin:  # a scoped key sees what it may read
                shown_views, shown_groups = visible(key, _view_refs(), fgs)
                views = {n: v for n, v in views.items() if n in shown_views}
                fgs = {n: g for n, g in fgs.items() if n in shown_groups}
        except Exception as e:
            return _logged(request, unexpected(e, _rid(request)))
        return json_response({"feature_views": views, "feature_groups": fgs})

    @app.get("/health", tags=["ops"])
    async def health() -> Response:
        """Liveness: the process answers."""
        return json_response({"status": "ok"})

    @app.get("/ready", tags=["ops"])
    async def ready(request: Request) -> Response:
        """Readiness: the online store answers and holds at least one materialized feature group. Open to all;
        the served versions (feature group names) only with an API key, when keys are on."""
        try:
            reader.refresh()
            ok = reader.ready()
        except Exception as e:  # logged (a 503 like any other 5xx), once per failing probe
            logger.warning("not ready: online store error (request id %s)", _rid(request), exc_info=e)
            request.scope["state"]["logged_5xx"] = True
            ok = False
        if ok:
            if not request.scope["state"].get("authenticated", True):
                return json_response({"status": "ready"})
            return json_response({"status": "ready", "versions": reader.versions()})
        if not request.scope["state"].get("logged_5xx"):
            logger.warning("not ready: no materialized feature group yet (request id %s)", _rid(request))
            request.scope["state"]["logged_5xx"] = True
        return json_response({"status": "not ready", "fix": "check the online store and run `fs materialize`"}, 503)

    @app.get("/metrics", tags=["ops"])
    async def prometheus() -> Response:
        """Prometheus text format."""
        try:
            versions = reader.versions()
        except Exception:
            versions = {}
        extra = {}
        if served_log is not None:
            extra = {"fs_served_log_dropped_total": served_log.dropped, "fs_served_log_written_total": served_log.written}
        return Response(metrics.render(versions, extra), media_type="text/plain; version=0.0.4")

    open_routes = (ALWAYS_OPEN | (METRICS_ROUTES if _flag(public_metrics, PUBLIC_METRICS_ENV) else frozenset())
                   | (DOCS_ROUTES if _flag(public_docs, PUBLIC_DOCS_ENV) else frozenset()))
    if body_timeout is None:
        body_timeout = float(os.environ.get(BODY_TIMEOUT_ENV) or DEFAULT_BODY_TIMEOUT)
    app.add_middleware(_Edge, keys=[], keyring=keyring, metrics=metrics, hot=hot_feast, open_routes=open_routes,
                       max_body=max_body, body_timeout=body_timeout)
    include_ui(app)  # /ui only when FS_UI_PROJECT_DIR is set: the UI reads the warehouse (fs_cli/ui/web.py)
    return app


def _key(request: Request) -> Scope | None:
    """The scope of the request's API key, set by _Edge (None: keys are off)."""
    return request.scope["state"].get("api_key")


def _tdv(value: Any) -> int | None:
    """A training_dataset_version from a query string or JSON body (None: the latest)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value)
    raise RequestError(f"training_dataset_version {str(value)[:30]!r} is not a version number", fix="e.g. 3")


def _query_value(text: str) -> Any:
    """A request parameter from the query string: a JSON number / true / false / null, else the text."""
    try:
        v = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    return v if isinstance(v, int | float | bool) or v is None else text


def _key_kinds(reader: OnlineReader, fv) -> dict[str, str]:
    return reader.view_key_kinds(fv)
