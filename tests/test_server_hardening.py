"""The service's last holes (issue 17, items 8-10): body limits on every body path (chunked or not, 413 JSON, no
buffering), strict integer keys and logged 5xx with request ids, a working --access-log, header/body read timeouts,
and /metrics + /docs protected by the API key unless made public.

In-process (the ASGI app) where the behaviour is the app's; a real `fs serve` process for what only a real server
shows (the access log, timeouts on a socket, the server's memory while a chunked body streams in)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import httpx
import orjson
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from online_support import NOW, SPEC, cleanup, make_rows, make_store
from test_server_process import READY_DEADLINE_S, datetime_utcnow, free_port, stop, wait_ready

from fs_cli.online import FVSpec, materialize
from fs_cli.server import create_app
from fs_cli.server.app import MAX_BODY

REPO = Path(__file__).resolve().parent.parent
KEY = "hardening-key"
VIEWS = {"customer_v1": FVSpec("customer_v1", ("fg_test:amount",), ("customer_id",))}
BODY_ROUTES = ["/get-online-features", "/feature-views/customer_v1/vectors", "/push", "/write-to-online-store"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hardening")
    st, url, _ = make_store("sqlite", tmp)
    materialize(st, SPEC, make_rows(20, 2, seed=3), NOW, views=VIEWS)
    yield st, url, tmp
    cleanup(st)


def app_for(store, **kw):
    st, _, tmp = store
    kw.setdefault("api_keys", KEY)
    return create_app(st, push_dir=tmp / "push", **kw)


# -- item 8: one streaming body limit on every body path --------------------------------------------------------

def _asgi_post(app, path: str, chunk: bytes, n_chunks: int, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes, int]:
    """Drive the ASGI app directly with a chunked body (no Content-Length): (status, body, peak bytes allocated)."""
    sent: list[dict] = []
    left = [n_chunks]

    async def receive() -> dict:
        if left[0] == 0:
            await asyncio.sleep(3600)  # the client waits for the answer
        left[0] -= 1
        return {"type": "http.request", "body": chunk, "more_body": left[0] > 0}

    async def send(msg: dict) -> None:
        sent.append(msg)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"test"), (b"transfer-encoding", b"chunked"), *headers],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    tracemalloc.start()
    try:
        asyncio.run(app(scope, receive, send))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, peak


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_chunked_body_over_the_limit_is_refused_without_buffering(store, path):
    """32 MiB sent chunked (no Content-Length) on every body route: 413 JSON, and the app never holds the body
    (before: the vectors and push routes read it whole first, allocating >= 32 MiB, then answered 413)."""
    app = app_for(store)
    chunk = b" " * 2**16  # the same object every time: the driver allocates nothing per chunk
    status, body, peak = _asgi_post(app, path, chunk, 512, [(b"x-api-key", KEY.encode())])
    assert status == 413, body
    assert "exceeds" in orjson.loads(body)["error"]
    assert peak < 8 * 2**20, f"{peak / 2**20:.1f} MiB allocated while refusing a 32 MiB body"


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_content_length_over_the_limit_is_413_json_on_every_route(store, path):
    with TestClient(app_for(store, max_body=1000), headers={"x-api-key": KEY}) as client:
        r = client.post(path, content=b"{" + b" " * 2000 + b"}")
        assert r.status_code == 413 and r.headers["content-type"] == "application/json"
        assert "exceeds 1000 bytes" in r.json()["error"] and r.headers["x-request-id"]
        # under the limit the same route reads the body as before (a JSON error about its content, not its size)
        small = client.post(path, content=b"[1]")
        assert small.status_code in (400, 404, 422) and "exceeds" not in small.json()["error"]


def test_a_stalled_body_answers_408_in_process(store):
    """The app's own body deadline (not the server's): a client that stops sending mid-body gets a 408 JSON answer,
    and the next request on the same app is served normally."""
    app = app_for(store, body_timeout=0.5)
    sent: list[dict] = []
    calls = [0]

    async def receive() -> dict:
        calls[0] += 1
        if calls[0] == 1:
            return {"type": "http.request", "body": b'{"entities": [', "more_body": True}
        await asyncio.sleep(3600)  # never sends the rest

    async def send(msg: dict) -> None:
        sent.append(msg)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/feature-views/customer_v1/vectors", "raw_path": b"/feature-views/customer_v1/vectors",
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
             "headers": [(b"host", b"t"), (b"x-api-key", KEY.encode()), (b"content-length", b"100")]}
    t0 = time.monotonic()
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 30))
    assert sent[0]["status"] == 408 and 0.4 < time.monotonic() - t0 < 10
    assert (b"connection", b"close") in sent[0]["headers"]
    assert "not received within 0.5 s" in orjson.loads(sent[1]["body"])["error"]
    with TestClient(app, headers={"x-api-key": KEY}) as client:
        r = client.post("/feature-views/customer_v1/vectors", json={"entities": [{"customer_id": 1}]})
        assert r.status_code == 200, r.text


def test_body_read_by_the_edge_reaches_every_handler(store):
    """The body is read once, before routing; handlers still get it whole (also when sent chunked)."""
    with TestClient(app_for(store), headers={"x-api-key": KEY}) as client:
        body = orjson.dumps({"entities": [{"customer_id": 1}, {"customer_id": 2}]})
        r = client.post("/feature-views/customer_v1/vectors", content=iter([body[:7], body[7:]]))
        assert r.status_code == 200, r.text
        assert [v["entity"] for v in r.json()["vectors"]] == [{"customer_id": 1}, {"customer_id": 2}]


# -- item 9: strict integer keys; every 5xx logged with its request id ------------------------------------------

@pytest.mark.parametrize("text", ["%C2%B9", "%D9%A1", "%EF%BC%91", "%E2%91%A0", "--1", "1.0", "%201", "1%20",
                                  "0x1", "1_0", "99999999999999999999", "9223372036854775808", "", "-"])
def test_integer_keys_are_ascii_digits_only(store, text):
    """'¹' answered 500; Arabic-Indic '١' and full-width '１' were read as customer 1."""
    with TestClient(app_for(store), headers={"x-api-key": KEY}) as client:
        r = client.get(f"/feature-views/customer_v1/vector?customer_id={text}")
        assert r.status_code == 400, r.text
        assert "must be an integer" in r.json()["error"]


def test_signed_ascii_integer_keys_are_read(store):
    with TestClient(app_for(store), headers={"x-api-key": KEY}) as client:
        plain = client.get("/feature-views/customer_v1/vector?customer_id=1").json()
        plus = client.get("/feature-views/customer_v1/vector?customer_id=%2B1").json()
        assert plus["entity"] == {"customer_id": 1} and plus["values"] == plain["values"]
        neg = client.get("/feature-views/customer_v1/vector?customer_id=-9223372036854775808")
        assert neg.status_code == 200 and neg.json()["statuses"] == {"amount": "NOT_FOUND"}


def _errors(caplog, rid: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "fs_cli.server" and r.levelno >= logging.ERROR
            and rid in r.getMessage()]


def test_every_5xx_is_logged_with_request_id_and_traceback(store, caplog, monkeypatch):
    app = app_for(store)
    reader = app.state.reader

    def boom(*a, **k):
        raise RuntimeError("kaboom in the reader")

    def outage(*a, **k):
        import sqlite3

        raise sqlite3.OperationalError("disk I/O error")

    async def unhandled() -> None:
        raise KeyError("escaped the handler")

    app.add_api_route("/boom", unhandled)
    caplog.set_level(logging.INFO, logger="fs_cli.server")
    with TestClient(app, headers={"x-api-key": KEY}) as client:
        monkeypatch.setattr(reader, "vectors_with_feast", boom)
        r = client.get("/feature-views/customer_v1/vector?customer_id=1", headers={"x-request-id": "rid-vector-1"})
        assert r.status_code == 500 and r.headers["x-request-id"] == "rid-vector-1"
        assert "RuntimeError" in r.json()["error"] and "kaboom" not in r.text  # details in the log only
        monkeypatch.setattr(reader, "get_online_features", outage)
        r = client.post("/get-online-features", json={"feature_service": "customer_v1",
                                                      "entities": {"customer_id": [1]}})
        assert r.status_code == 503
        generated = r.headers["x-request-id"]
        assert len(generated) == 32
        r = client.get("/boom", headers={"x-request-id": "rid-boom"})
        assert r.status_code == 500 and r.json()["fix"] == "report this with the request id"
    for rid, text in [("rid-vector-1", "kaboom in the reader"), (generated, "disk I/O error"),
                      ("rid-boom", "escaped the handler")]:
        logged = _errors(caplog, rid)
        assert len(logged) == 1, (rid, [r.getMessage() for r in caplog.records])
        assert logged[0].exc_info and text in str(logged[0].exc_info[1])


# -- item 10: public or protected /metrics and /docs ------------------------------------------------------------

def test_metrics_and_docs_need_the_key_unless_made_public(store, monkeypatch):
    monkeypatch.delenv("FS_PUBLIC_METRICS", raising=False)
    monkeypatch.delenv("FS_PUBLIC_DOCS", raising=False)
    h = {"x-api-key": KEY}
    with TestClient(app_for(store)) as anon:
        for path in ("/metrics", "/docs", "/openapi.json"):
            assert anon.get(path).status_code == 401, path
            assert anon.get(path, headers=h).status_code == 200, path
        ready = anon.get("/ready")  # open for probes, but names no feature group without the key
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}
        assert anon.get("/ready", headers=h).json()["versions"] == {"fg_test": 1}
        assert anon.get("/health").status_code == 200
    with TestClient(app_for(store, public_metrics=True)) as anon:
        assert "fs_http_requests_total" in anon.get("/metrics").text
        assert anon.get("/openapi.json").status_code == 401
        assert anon.get("/feature-views").status_code == 401
    monkeypatch.setenv("FS_PUBLIC_DOCS", "1")
    with TestClient(app_for(store)) as anon:
        assert anon.get("/openapi.json").status_code == 200 and anon.get("/docs").status_code == 200
        assert anon.get("/metrics").status_code == 401
    with TestClient(app_for(store, api_keys="")) as anon:  # no keys: everything open, as before
        assert anon.get("/metrics").status_code == 200 and "versions" in anon.get("/ready").json()


def test_serve_help_documents_the_switches():
    from fs_cli.commands.online import serve

    text = CliRunner().invoke(serve, ["--help"], terminal_width=200).output
    for option in ("--public-metrics", "--public-docs", "--header-timeout", "--body-timeout", "--keep-alive-timeout",
                   "--access-log", "FS_PUBLIC_METRICS", "FS_PUBLIC_DOCS"):
        assert option in text, option
    assert "need a key unless" in text


# -- a real `fs serve`: access log, timeouts, memory, large bodies ---------------------------------------------

HEADER_TIMEOUT, BODY_TIMEOUT = 1.0, 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One `fs serve` process (1 worker: the Popen pid is the server, whose memory we read)."""
    tmp = tmp_path_factory.mktemp("hardening-serve")
    st, url, _ = make_store("sqlite", tmp)
    now = datetime_utcnow()
    materialize(st, SPEC, make_rows(20, 2, seed=5, now=now, future_s=0), now, views=VIEWS)
    port = free_port()
    out = tmp / "serve.log"
    env = {**os.environ, "FS_API_KEYS": KEY}
    with open(out, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fs_cli", "serve", "--store", url, "--port", str(port), "--no-log", "--access-log",
             "--header-timeout", str(HEADER_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT)],
            cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc, output=lambda: out.read_text()[-3000:])
        yield proc, base, port, out
    finally:
        stop(proc)
        cleanup(st)


def _wait_for_text(path: Path, text: str, deadline_s: float = 30) -> str:
    deadline = time.monotonic() + deadline_s
    while True:
        content = path.read_text(errors="replace")
        if text in content or time.monotonic() > deadline:
            return content
        time.sleep(0.1)


def test_access_log_prints_each_request(server):
    _, base, _, out = server
    r = httpx.get(f"{base}/feature-views/customer_v1/vector", params={"customer_id": 1},
                  headers={"x-api-key": KEY})
    assert r.status_code == 200, r.text
    line = '"GET /feature-views/customer_v1/vector?customer_id=1 HTTP/1.1" 200'
    assert line in _wait_for_text(out, line)
    assert KEY not in out.read_text()  # keys travel in headers, never in the access log


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's peak RSS from /proc")
def test_chunked_body_does_not_grow_the_server(server):
    """48 MiB chunked to the vectors route: 413 JSON, and the server's peak RSS barely moves (before: +~100 MiB)."""
    proc, base, _, _ = server
    before = _peak_rss_mib(proc.pid)
    chunk = b" " * 2**16

    def body():
        for _ in range(48 * 16):
            yield chunk

    r = httpx.post(f"{base}/feature-views/customer_v1/vectors", content=body(), headers={"x-api-key": KEY},
                   timeout=60)
    assert r.status_code == 413 and "exceeds" in r.json()["error"]
    grown = _peak_rss_mib(proc.pid) - before
    assert grown < 24, f"peak RSS grew by {grown:.0f} MiB"


def test_large_feast_request_with_content_length_gets_413_json(server):
    """A 2M-key Feast-shaped request (16 MB, Content-Length): a 413 JSON answer, not a dropped connection."""
    _, base, _, _ = server
    keys = b",".join(b"1234567" for _ in range(2_000_000))
    body = b'{"feature_service": "customer_v1", "entities": {"customer_id": [' + keys + b"]}}"
    assert len(body) > 15 * 10**6
    for path in ("/get-online-features", "/feature-views/customer_v1/vectors", "/push"):
        r = httpx.post(f"{base}{path}", content=body, headers={"x-api-key": KEY, "content-type": "application/json"},
                       timeout=60)
        assert r.status_code == 413, (path, r.text)
        assert f"exceeds {MAX_BODY} bytes" in r.json()["error"]


def _read_until_closed(sock: socket.socket, limit_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection; fails if it is still open after limit_s."""
    t0 = time.monotonic()
    sock.settimeout(limit_s)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except TimeoutError:
        pytest.fail(f"the server still held the connection after {limit_s} s (got {data!r})")
    except ConnectionResetError:  # closed with our unread bytes pending: a close, whatever it had sent is in `data`
        pass
    return data, time.monotonic() - t0


def test_server_logs_its_5xx_with_the_request_id(tmp_path):
    """The service's logger reaches the real server's stderr (it had no handler): a store with nothing materialized
    answers /ready 503, logged with the request id."""
    st, url, _ = make_store("sqlite", tmp_path)
    port = free_port()
    out = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if k != "FS_API_KEYS"}
    with open(out, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "fs_cli", "serve", "--store", url, "--port", str(port),
                                 "--no-log"], cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_DEADLINE_S
        while True:  # alive (not ready: nothing is materialized)
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.2)
        r = httpx.get(f"{base}/ready", headers={"x-request-id": "probe-503-a"})
        assert r.status_code == 503 and r.headers["x-request-id"] == "probe-503-a"
        assert "probe-503-a" in _wait_for_text(out, "probe-503-a")
    finally:
        stop(proc)
        cleanup(st)


def test_slow_headers_are_cut_off(server):
    """Headers dribbled one line at a time, an idle connection, and a keep-alive connection dribbling its second
    request: each gets a 408 and is closed within the header timeout (before: held as long as the client liked)."""
    _, _, port, _ = server
    limit = HEADER_TIMEOUT + 15
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        for _ in range(2):  # each line well inside the timeout; a third one would race the server's close
            time.sleep(HEADER_TIMEOUT / 3)
            try:
                s.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
        data, _ = _read_until_closed(s, limit)
        assert data.startswith(b"HTTP/1.1 408") and time.monotonic() - t0 < limit
    with socket.create_connection(("127.0.0.1", port)) as s:  # connects, sends nothing: closed
        data, took = _read_until_closed(s, limit)
        assert data == b""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.5)
        s.sendall(b"GET /health HTTP/1.1\r\n")  # the next request's headers never finish
        data, _ = _read_until_closed(s, limit)
        assert data.startswith(b"HTTP/1.1 200") and b"HTTP/1.1 408" in data


def test_slow_body_is_cut_off(server):
    _, _, port, _ = server
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"POST /feature-views/customer_v1/vectors HTTP/1.1\r\nHost: x\r\nx-api-key: " + KEY.encode()
                  + b"\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"entities\": [")
        data, took = _read_until_closed(s, BODY_TIMEOUT + 15)
    assert data.startswith(b"HTTP/1.1 408"), data
    assert b"not received within" in data and took >= BODY_TIMEOUT - 0.5


def test_a_normal_request_is_not_cut_off(server):
    """The deadlines bound waiting, not serving: a keep-alive client making requests is unaffected."""
    _, base, _, _ = server
    with httpx.Client(base_url=base, headers={"x-api-key": KEY}) as client:
        for _ in range(3):
            r = client.post("/feature-views/customer_v1/vectors", json={"entities": [{"customer_id": 1}]})
            assert r.status_code == 200, r.text
            time.sleep(HEADER_TIMEOUT / 2)
