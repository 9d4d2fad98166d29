"""The service's edge: one pure ASGI wrapper for request ids, API keys and scopes, body limits, metrics, 5xx logs.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from ..access import (
    KEY_FILE_ENV,
    PLAIN_KEYS_ENV,
    Denied,
    KeyFileError,
    KeyRing,
    Scope,
    check_route,
)
from .metrics import Metrics
from .responses import error_response, json_response, logger

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


MAX_BODY = 4 * 2**20
DRAIN_LIMIT = 64 * 2**20  # most bytes of a rejected body read and discarded so the client gets its 413
DEFAULT_BODY_TIMEOUT = 30.0  # seconds to receive a whole request body (headers: fs_cli/server/protocol.py)


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
                await json_response({"error": "the server's API key file is unusable", "fix": "tell its operator"},
                                     503)(scope, receive, send)
                return True
        state["api_key"], state["authenticated"] = key, key is not None and (key.admin or key.metrics)
        if path in self.open_routes:
            return False
        if key is None:
            await json_response({"error": "missing or invalid API key",
                                  "fix": "send the key in the x-api-key header or as 'Authorization: Bearer <key>'"},
                                 401, headers={"www-authenticate": "Bearer"})(scope, receive, send)
            return True
        kind = "metrics" if path in METRICS_ROUTES else "ui" if path == "/ui" or path.startswith("/ui/") else ""
        try:
            check_route(key, kind)
        except Denied as e:
            await error_response(e)(scope, receive, send)
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
                state["logged_5xx"] = code >= 500  # the hot handler's only 5xx come from unexpected, which logs
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
