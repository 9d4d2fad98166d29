"""The online feature service: a FastAPI app over an OnlineStore. It never opens the warehouse.

Endpoints: POST /get-online-features (Feast's feature-server shape), GET /feature-views/{name}/vector,
POST /feature-views/{name}/vectors, GET /feature-views, /health, /ready, /metrics, and the OpenAPI page /docs.
Push ingestion (Feast's shapes): POST /push and POST /write-to-online-store (core: fs_cli/online/push.py).

Speed matters here (the bench holds it to >= 0.6x a bare endpoint), so handlers read the raw body and parse it
with orjson instead of a pydantic model, and the cross-cutting work (request id, API key, metrics) is one pure
ASGI wrapper rather than BaseHTTPMiddleware. The OpenAPI document still describes every body (hand-written
JSON Schema) so schemathesis can fuzz it. Store reads are sub-millisecond and run on the event loop thread:
cheaper than a thread-pool hop per request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..access import (
    KEY_FILE_ENV,
    PLAIN_KEYS_ENV,
    Denied,
    KeyFileError,
    KeyRing,
    Scope,
    check_push,
    check_read,
    check_route,
    visible,
)
from ..errors import FeatureStoreError
from ..online.push import PushService
from ..online.push_log import PUSH_DIR_ENV, PushLog
from ..online.reader import DEFAULT_MAX_BATCH, OnlineReader, RequestError
from ..online.store import OnlineStore
from ..transforms.served_vector import serving_for
from ..ui.web import include_ui
from .logs import ServedLog
from .metrics import Metrics

# Routes that never need an API key (load balancers and orchestrators probe them); /ready then answers its status
# only, without the feature group names and versions. /metrics and the API description (/docs, /openapi.json) name
# feature groups and count requests: they need the key too unless made public (create_app(public_metrics=,
# public_docs=), `fs serve --public-metrics/--public-docs`). Without API keys everything is open.
ALWAYS_OPEN = frozenset({"/health", "/ready"})
METRICS_ROUTES = frozenset({"/metrics"})
DOCS_ROUTES = frozenset({"/docs", "/openapi.json", "/docs/oauth2-redirect", "/redoc"})
PUBLIC_METRICS_ENV, PUBLIC_DOCS_ENV = "FS_PUBLIC_METRICS", "FS_PUBLIC_DOCS"
BODY_TIMEOUT_ENV = "FS_BODY_TIMEOUT"
_RID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_INT_KEY = re.compile(r"[+-]?[0-9]{1,19}")  # ASCII digits only: str.isdigit() also takes '¹', '١', '１'
_INT64 = (-(2**63), 2**63 - 1)
MAX_BODY = 4 * 2**20
DRAIN_LIMIT = 64 * 2**20  # most bytes of a rejected body read and discarded so the client gets its 413
DEFAULT_BODY_TIMEOUT = 30.0  # seconds to receive a whole request body (headers: fs_cli/server/protocol.py)
logger = logging.getLogger("fs_cli.server")

_KEY_VALUE = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
FEAST_REQUEST_SCHEMA = {
    "type": "object",
    "title": "GetOnlineFeaturesRequest",
    "required": ["entities"],
    "properties": {
        "entities": {"type": "object", "additionalProperties": {"type": "array", "items": _KEY_VALUE},
                     "description": "key column -> list of keys (all lists the same length)",
                     "example": {"customer_id": [1, 2]}},
        "features": {"type": "array", "items": {"type": "string"},
                     "description": "'feature_group:feature' refs, answered in this order",
                     "example": ["fg_customer_profile:credit_limit"]},
        "feature_service": {"type": "string", "description": "a feature view name (instead of features)"},
        "full_feature_names": {"type": "boolean", "default": False},
    },
}
VECTORS_REQUEST_SCHEMA = {
    "type": "object",
    "title": "VectorsRequest",
    "required": ["entities"],
    "properties": {"entities": {"type": "array", "items": {"type": "object", "additionalProperties": _KEY_VALUE},
                                "example": [{"customer_id": 1}, {"customer_id": 2}]},
                   "request": {"type": "array", "items": {"type": "object"},
                               "description": "request parameters (on-demand inputs), one object per entity row"},
                   "training_dataset_version": {"type": "integer",
                                                "description": "apply this TD version's fitted transformations "
                                                               "(default: the latest, if the view has any)"},
                   "transformed": {"type": "boolean", "default": True}},
}
_DF = {"type": "object", "additionalProperties": {"type": "array", "items": {}},
       "description": "columns of the rows: {column: [values]} (keys, event time, features)",
       "example": {"customer_id": [1], "profile_updated_at": ["2026-02-01T10:00:00"], "segment": ["gold"]}}
# Feast 0.67 feature_server.PushFeaturesRequest / WriteToFeatureStoreRequest (transform_on_write is accepted, unused:
# fs applies no on-write transformation).
PUSH_REQUEST_SCHEMA = {
    "type": "object", "title": "PushFeaturesRequest", "required": ["push_source_name", "df"],
    "properties": {"push_source_name": {"type": "string", "description": "a feature group or its declared push_source"},
                   "df": _DF, "to": {"type": "string", "enum": ["online", "offline", "online_and_offline"],
                                     "default": "online"},
                   "allow_registry_cache": {"type": "boolean", "default": True},
                   "transform_on_write": {"type": "boolean", "default": True}},
}
WRITE_REQUEST_SCHEMA = {
    "type": "object", "title": "WriteToFeatureStoreRequest", "required": ["feature_view_name", "df"],
    "properties": {"feature_view_name": {"type": "string", "description": "a feature group name"}, "df": _DF,
                   "allow_registry_cache": {"type": "boolean", "default": True},
                   "transform_on_write": {"type": "boolean", "default": True}},
}
_ERROR = {"description": "bad request: JSON {error, fix}",
          "content": {"application/json": {"schema": {"type": "object", "properties": {
              "error": {"type": "string"}, "fix": {"type": ["string", "null"]}}}}}}
_ERRORS = {400: _ERROR, 401: {"description": "missing or invalid API key"},
           403: {**_ERROR, "description": "the API key's scope does not allow this: JSON {error, fix}"},
           404: _ERROR, 413: _ERROR}
_FEAST_RESPONSE = {200: {"description": "Feast-shaped answer", "content": {"application/json": {"schema": {
    "type": "object", "properties": {
        "metadata": {"type": "object", "properties": {"feature_names": {"type": "array", "items": {"type": "string"}}}},
        "results": {"type": "array", "items": {"type": "object", "properties": {
            "values": {"type": "array", "items": {}},
            "statuses": {"type": "array", "items": {"type": "string", "enum": [
                "PRESENT", "NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE"]}},
            "event_timestamps": {"type": "array", "items": {"type": "string"}}}}}}}}}}}


def _json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def _error(e: FeatureStoreError, status: int | None = None) -> Response:
    return _json_response({"error": e.message, "fix": e.fix}, status or getattr(e, "status", 400))


def _route_of(path: str) -> str:
    if path.startswith("/feature-views/"):
        return "/feature-views/{name}/vectors" if path.endswith("/vectors") else "/feature-views/{name}/vector"
    return path if path in _KNOWN else "other"


_KNOWN = {"/get-online-features", "/push", "/write-to-online-store", "/feature-views", "/health", "/ready", "/metrics", "/docs", "/openapi.json"}


class _Edge:
    """Pure ASGI wrapper: request id, API key (401 without a valid one; 403 for a route outside its scope, e.g.
    /metrics or the UI; the scope of the key is put in scope["state"]["api_key"] for the handlers, which check
    what they serve with fs_cli.access), the request body (size and time limits), latency and count
    metrics, and the last line of defence for errors (every 5xx is logged with its request id). Keys are never
    logged.

    Every request that declares a body (Content-Length or Transfer-Encoding, any method, any route) is read here,
    chunk by chunk, before routing: more than `max_body` bytes answers 413 without buffering the rest (a chunked
    body is counted as it arrives, not read whole first); a body not received within `body_timeout` seconds answers
    408. Handlers then get the body already read (`request.body()` costs nothing more). Past the limit the rest of
    the body is read and discarded (up to DRAIN_LIMIT bytes, within the same deadline) before answering: a client
    that is still sending then reads the 413 instead of a connection reset."""

    def __init__(self, app: Any, keys: list[bytes], metrics: Metrics,
                 hot: Callable[[bytes, str, Scope | None], tuple[int, bytes, list[tuple[bytes, bytes]]]] | None = None,
                 open_routes: frozenset[str] = ALWAYS_OPEN, max_body: int = MAX_BODY,
                 body_timeout: float = DEFAULT_BODY_TIMEOUT, keyring: KeyRing | None = None):
        self.keyring = keyring if keyring is not None else KeyRing(keys)
        self.app, self.metrics, self.hot = app, metrics, hot
        self.open_routes, self.max_body, self.body_timeout = open_routes, max_body, body_timeout
        self._watch: _BodyDeadlines | None = None

    async def _read_body(self, headers: list[tuple[bytes, bytes]], receive: Callable
                         ) -> tuple[bytes | None, tuple[int, str, str | None] | None]:
        """(body, None), or (None, (status, error, fix)) to answer instead. Raises _ClientGone."""
        declared, expects_continue = None, False
        for k, v in headers:
            if k == b"content-length":
                declared = int(v) if v.isdigit() else None
            elif k == b"expect" and v.lower() == b"100-continue":
                expects_continue = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        if declared is not None and declared > self.max_body:
            # With Expect: 100-continue the client has not sent the body yet and never will: nothing to drain.
            if not expects_continue and declared <= DRAIN_LIMIT:
                await self._drain(receive, deadline, 0)
            return None, (413, f"request body of {declared} bytes exceeds {self.max_body} bytes", self._fix())
        chunks, size = [], 0
        deadlines = self._deadlines(loop)
        entry = deadlines.watch(deadline)
        try:
            while True:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    raise _ClientGone
                chunk = msg.get("body", b"")
                size += len(chunk)
                more = msg.get("more_body", False)
                if size > self.max_body:
                    break
                chunks.append(chunk)
                if not more:
                    return b"".join(chunks) if len(chunks) != 1 else chunks[0], None
        except asyncio.CancelledError:
            if not entry[1]:
                raise
            entry[2].uncancel()
            return None, (408, f"request body not received within {self.body_timeout:g} s",
                          "send the whole body promptly")
        finally:
            deadlines.unwatch(entry)
        if more:
            await self._drain(receive, deadline, size)
        return None, (413, f"request body exceeds {self.max_body} bytes", self._fix())

    def _fix(self) -> str:
        return f"send at most {self.max_body} bytes per request (split the batch)"

    def _deadlines(self, loop: asyncio.AbstractEventLoop) -> _BodyDeadlines:
        if self._watch is None or self._watch.loop is not loop:  # one per event loop (tests start several)
            self._watch = _BodyDeadlines(loop)
        return self._watch

    async def _drain(self, receive: Callable, deadline: float, seen: int) -> None:
        """Read and discard the rest of a rejected body (bounded in bytes and time; nothing is kept)."""
        deadlines = self._deadlines(asyncio.get_running_loop())
        entry = deadlines.watch(deadline)
        try:
            while seen <= DRAIN_LIMIT:
                msg = await receive()
                seen += len(msg.get("body", b""))
                if msg["type"] == "http.disconnect" or not msg.get("more_body", False):
                    return
        except asyncio.CancelledError:
            if not entry[1]:
                raise
            entry[2].uncancel()
        finally:
            deadlines.unwatch(entry)

    @staticmethod
    async def _answer(send: Callable, status: int, body: bytes, rid: str,
                      headers: list[tuple[bytes, bytes]] = ()) -> None:
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"x-request-id", rid.encode()), *headers]})
        await send({"type": "http.response.body", "body": body})

    def _key_scope(self, headers: list[tuple[bytes, bytes]]) -> Scope | None:
        """The scope of the request's key (None: no valid key). Raises KeyFileError (a broken key file)."""
        given = None
        for k, v in headers:
            if k == b"x-api-key":
                given = v.strip()
                break
            if k == b"authorization" and v[:7].lower() == b"bearer ":
                given = v[7:].strip()
                break
        return self.keyring.authenticate(given)

    async def _refuse(self, scope: dict, path: str, receive: Callable, send: Callable) -> bool:
        """Answer 401/403/503 when the request's key does not let it in; False when it may go on (its scope in
        scope["state"]["api_key"]; None on an open route without a valid key). Only called when keys are on."""
        state = scope["state"]
        try:
            key = self._key_scope(scope["headers"])
        except KeyFileError as e:  # fail closed: a broken key file never opens the service
            if path in self.open_routes:
                key = None
            else:
                logger.error("API key file unusable, key refused (request id %s): %s", state["request_id"], e)
                state["logged_5xx"] = True
                await _json_response({"error": "the server's API key file is unusable", "fix": "tell its operator"},
                                     503)(scope, receive, send)
                return True
        state["api_key"], state["authenticated"] = key, key is not None and (key.admin or key.metrics)
        if path in self.open_routes:
            return False
        if key is None:
            await _json_response({"error": "missing or invalid API key",
                                  "fix": "send the key in the x-api-key header or as 'Authorization: Bearer <key>'"},
                                 401, headers={"www-authenticate": "Bearer"})(scope, receive, send)
            return True
        kind = "metrics" if path in METRICS_ROUTES else "ui" if path == "/ui" or path.startswith("/ui/") else ""
        try:
            check_route(key, kind)
        except Denied as e:
            await _error(e)(scope, receive, send)
            return True
        return False

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        path = scope["path"]
        headers = scope["headers"]
        rid = None
        has_body = False
        for k, v in headers:
            if k == b"x-request-id":
                text = v.decode("latin-1")
                rid = text if _RID.match(text) else None
            elif (k == b"content-length" and v != b"0") or k == b"transfer-encoding":
                has_body = True
        rid = rid or uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        status = [500]
        started = [False]
        rid_header = (b"x-request-id", rid.encode())

        async def send_wrapper(msg: dict) -> None:
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]
                started[0] = True
                msg["headers"] = [*msg.get("headers", []), rid_header]
            await send(msg)

        try:
            if not self.keyring.enabled:  # keys off: no coroutine for the check on this path
                state["api_key"], state["authenticated"] = None, True
            elif await self._refuse(scope, path, receive, send_wrapper):
                return
            raw = b""
            if has_body:
                raw, refusal = await self._read_body(headers, receive)
                if refusal is not None:
                    code, error, fix = refusal
                    status[0] = code
                    await self._answer(send, code, orjson.dumps({"error": error, "fix": fix}), rid,
                                       [(b"connection", b"close")])  # the rest of the body may still be coming
                    return
            if self.hot is not None and path == "/get-online-features" and scope["method"] == "POST":
                # Answered right here: no routing, no Request/Response objects (the bench holds the service to
                # >= 0.6x a bare endpoint; this path is most of the traffic).
                code, body, extra = self.hot(raw, rid, state["api_key"])
                status[0] = code
                state["logged_5xx"] = code >= 500  # the hot handler's only 5xx come from _unexpected, which logs
                await self._answer(send, code, body, rid, extra)
                return
            if has_body:
                receive = _replay(raw, receive)
            await self.app(scope, receive, send_wrapper)
        except _ClientGone:
            status[0] = 499
        except Exception:
            state["logged_5xx"] = True
            logger.exception("unhandled error on %s %s (request id %s)", scope["method"], path, rid)
            if started[0]:  # the response already started: nothing more can be sent
                return
            status[0] = 500
            await self._answer(send, 500, orjson.dumps({"error": "internal error",
                                                        "fix": "report this with the request id"}), rid)
        finally:
            if status[0] >= 500 and not state.get("logged_5xx"):
                logger.error("%s %s answered %d (request id %s)", scope["method"], path, status[0], rid)
            self.metrics.observe(scope["method"], _route_of(path), status[0], time.perf_counter() - t0)


class _BodyDeadlines:
    """Body-read deadlines of the requests waiting on one event loop, checked by one coarse timer (every WATCH_S,
    only while some request waits). Per request that is a dict insert and delete: a loop timer per request
    (asyncio.timeout_at, loop.call_at) cost ~5-10 us on this path, a few % of a whole lookup.

    `watch(deadline)` -> entry [deadline, expired, task] and `unwatch(entry)` bracket the one `await receive()` of
    a body read, so an expired task is cancelled while it waits there (the check runs on the loop, i.e. only while
    the task is suspended); the caller tells that from a cancellation of its own by `entry[1]` and uncancels.
    Deadlines are kept to within WATCH_S."""

    WATCH_S = 0.25

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.waiting: dict[asyncio.Task, list] = {}  # task -> [deadline, expired, task]
        self.timer: asyncio.TimerHandle | None = None

    def watch(self, deadline: float) -> list:
        task = asyncio.current_task()
        entry = [deadline, False, task]
        self.waiting[task] = entry
        if self.timer is None:
            self.timer = self.loop.call_later(self.WATCH_S, self._check)
        return entry

    def unwatch(self, entry: list) -> None:
        self.waiting.pop(entry[2], None)

    def _check(self) -> None:
        now = self.loop.time()
        for task, entry in list(self.waiting.items()):
            if entry[0] <= now and not entry[1]:
                entry[1] = True
                task.cancel()
        self.timer = self.loop.call_later(self.WATCH_S, self._check) if self.waiting else None


class _ClientGone(Exception):
    """The client disconnected while sending its body."""


def _replay(raw: bytes, receive: Callable) -> Callable:
    """An ASGI receive that hands the already-read body to the app once, then waits on the real one (disconnects)."""
    pending = [{"type": "http.request", "body": raw, "more_body": False}]

    async def replay() -> dict:
        if pending:
            return pending.pop()
        return await receive()

    return replay


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


def _unexpected(e: Exception, request_id: str) -> Response:
    """Store outages answer 503 (retryable); anything else is a bug, but still answers JSON. Both are logged with
    the request id and the traceback (the answer names only the exception type)."""
    mod = type(e).__module__
    if mod.startswith(("redis", "sqlite3")) or isinstance(e, ConnectionError | TimeoutError | OSError):
        logger.error("online store unavailable (request id %s)", request_id, exc_info=e)
        return _json_response({"error": f"online store unavailable: {type(e).__name__}", "fix": "retry later"}, 503)
    logger.error("internal error (request id %s)", request_id, exc_info=e)
    return _json_response({"error": f"internal error: {type(e).__name__}", "fix": "report this with the request id"},
                          500)


def _rid(request: Request) -> str:
    return request.scope["state"]["request_id"]


def _logged(request: Request, response: Response) -> Response:
    """Mark a 5xx answer of _unexpected as logged, so _Edge does not log it a second time."""
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

    @app.post("/get-online-features", tags=["online"], responses={**_FEAST_RESPONSE, **_ERRORS},
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": FEAST_REQUEST_SCHEMA}}}})
    async def get_online_features(request: Request) -> Response:
        """Feast feature-server request/response. TTL is enforced: stale values come back OUTSIDE_MAX_AGE."""
        # Normally answered by _Edge's hot path before routing; this route documents it (and serves it if the
        # edge wrapper is ever removed).
        try:
            raw = await request.body()
        except Exception as e:
            return _logged(request, _unexpected(e, _rid(request)))
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
            r = _unexpected(e, rid)  # logged there; _Edge logs only 5xx nobody logged
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

    @app.get("/feature-views/{name}/vector", tags=["online"], responses=_ERRORS)
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
            return _error(e)
        except Exception as e:
            return _logged(request, _unexpected(e, _rid(request)))
        one = answer["vectors"][0]
        td = {k: answer[k] for k in ("training_dataset_version", "transformed") if k in answer}
        return _json_response({"feature_view": answer["feature_view"], "versions": answer["versions"], **td, **one},
                              headers=_versions_header(answer["versions"]))

    @app.post("/feature-views/{name}/vectors", tags=["online"], responses=_ERRORS,
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
            return _error(e)
        except Exception as e:
            return _logged(request, _unexpected(e, _rid(request)))
        return _json_response(answer, headers=_versions_header(answer["versions"]))

    async def _push(request: Request, name_field: str) -> Response:
        if pusher is None:
            return _json_response({"error": "push ingestion is off on this server: it has no push log directory",
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
            return _json_response({"error": e.message, "fix": e.fix, **extra}, status)
        except Exception as e:
            return _logged(request, _unexpected(e, _rid(request)))
        return _json_response(result.to_dict())

    @app.post("/push", tags=["push"], responses={**_ERRORS, 422: _ERROR},
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": PUSH_REQUEST_SCHEMA}}}})
    async def push(request: Request) -> Response:
        """Feast's push: rows of a feature group (named by its name or declared `push_source`), checked against
        its declared expectations (one failing row: 422, nothing written), logged durably for the next `fs run`
        to publish, and written to the online store in one atomic step where newer than what is served."""
        return await _push(request, "push_source_name")

    @app.post("/write-to-online-store", tags=["push"], responses={**_ERRORS, 422: _ERROR},
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
            return _logged(request, _unexpected(e, _rid(request)))
        return _json_response({"feature_views": views, "feature_groups": fgs})

    @app.get("/health", tags=["ops"])
    async def health() -> Response:
        """Liveness: the process answers."""
        return _json_response({"status": "ok"})

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
                return _json_response({"status": "ready"})
            return _json_response({"status": "ready", "versions": reader.versions()})
        if not request.scope["state"].get("logged_5xx"):
            logger.warning("not ready: no materialized feature group yet (request id %s)", _rid(request))
            request.scope["state"]["logged_5xx"] = True
        return _json_response({"status": "not ready", "fix": "check the online store and run `fs materialize`"}, 503)

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


def keyring_from(api_keys: list[str] | str | None = None, api_keys_file: str | os.PathLike | None = None,
                 check_seconds: float = 0.5) -> KeyRing:
    """The keys a server accepts: `api_keys` (list or comma-separated; default $FS_API_KEYS), full access, and the
    key file `api_keys_file` (default $FS_API_KEYS_FILE; empty = none). Raises FeatureStoreError for a bad file."""
    if api_keys is None:
        api_keys = os.environ.get(PLAIN_KEYS_ENV, "")
    if isinstance(api_keys, str):
        api_keys = [k for k in (s.strip() for s in api_keys.split(",")) if k]
    if api_keys_file is None:
        api_keys_file = os.environ.get(KEY_FILE_ENV) or None
    return KeyRing(api_keys, api_keys_file or None, check_seconds=check_seconds)


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
