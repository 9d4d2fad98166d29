"""Served-vector logging: append-only JSONL files, written off the request path, bounded on disk.

One line per answered request:
  {"v": 1, "served_at": "...Z", "request_id": "...", "feature_view": name|null, "versions": {fg: version},
   "response": <the Feast-shaped answer: metadata.feature_names (entity keys first), results[].values/statuses>}
so every served vector (its keys, values, statuses), the time and the request id are recorded; a dbt source
unnests `response.results` per entity row (DuckDB: read_json + unnest).

The request handler only enqueues the answer bytes it already serialized for the HTTP response (no extra
encoding on the request path); a daemon thread formats the envelope and appends batches to
`served-<start>-<pid>-<n>.jsonl` (one file per process, so workers never interleave). Files rotate at
`max_bytes`; the newest `max_files` files of the directory are kept. If the writer falls behind by more than
`max_queue` answers, new answers are dropped and counted (`dropped`, exported by /metrics): serving is
never slowed down by logging.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson


class ServedLog:
    def __init__(self, log_dir: str | os.PathLike, max_bytes: int = 50 * 2**20, max_files: int = 20,
                 max_queue: int = 100_000, flush_seconds: float = 0.2):
        self.dir = Path(log_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes, self.max_files, self.flush_seconds = max_bytes, max_files, flush_seconds
        # A deque, not a Queue: append is atomic and wakes nobody, so a request never hands the GIL to the writer;
        # the writer polls every `flush_seconds` and drains what has accumulated.
        self.q: collections.deque = collections.deque()
        self.max_queue = max_queue
        self.dropped = 0
        self.written = 0
        self._stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        self._n = 0
        self._fh = None
        self._size = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.start()

    def start(self) -> None:
        """(Re)start the writer thread; an app's lifespan may run several times in one process (tests)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(self._stop,), name="fs-served-log", daemon=True)
            self._thread.start()

    def submit(self, request_id: str, feature_view: str | None, versions: dict[str, int], body: bytes) -> None:
        """`body`: the Feast-shaped answer as already serialized (JSON bytes)."""
        if self._stop.is_set():
            self.start()
        if len(self.q) >= self.max_queue:
            self.dropped += 1
            return
        self.q.append((time.time(), request_id, feature_view, versions, body))

    # -- writer thread -----------------------------------------------------------------------------------
    @staticmethod
    def _line(item: tuple[float, str, str | None, dict[str, int], bytes]) -> bytes:
        ts, rid, fv, versions, body = item
        when = datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
        head = orjson.dumps({"v": 1, "served_at": when, "request_id": rid, "feature_view": fv, "versions": versions})
        return head[:-1] + b',"response":' + body + b"}\n"

    def _open(self) -> None:
        self._n += 1
        path = self.dir / f"served-{self._stamp}-{os.getpid()}-{self._n:05d}.jsonl"
        self._fh = open(path, "ab")  # noqa: SIM115 - kept open across batches, closed on rotation
        self._size = 0
        # Bound the whole directory (older runs and other workers too), oldest first; newest files are live.
        files = sorted(self.dir.glob("served-*.jsonl"), key=lambda p: (p.stat().st_mtime, p.name))
        for old in [f for f in files if f != path][:-(self.max_files - 1) or None]:
            try:
                old.unlink()
            except OSError:
                pass

    def _write(self, batch: list) -> None:
        data = b"".join(self._line(item) for item in batch)
        if not data:
            return
        if self._fh is None or self._size >= self.max_bytes:
            if self._fh is not None:
                self._fh.close()
            self._open()
        self._fh.write(data)
        self._fh.flush()
        self._size += len(data)
        self.written += len(batch)

    def _run(self, stop: threading.Event) -> None:
        while True:
            stopping = stop.wait(self.flush_seconds)
            batch = []
            while self.q and len(batch) < 10_000:
                batch.append(self.q.popleft())
            if batch:
                try:
                    self._write(batch)
                except Exception:  # a full disk must not kill serving; count the loss instead
                    self.dropped += len(batch)
            if stopping and not self.q:
                return

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._fh is not None:
            self._fh.close()
            self._fh = None
