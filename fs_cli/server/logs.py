"""Served-vector logging: append-only JSONL files, written off the request path, bounded on disk.

The request handler only puts (time, request id, answer) on a queue; a daemon thread expands each answer into
one line per served vector and appends batches to `served-<start>-<pid>-<n>.jsonl` under the log dir
(one file per process, so several workers never interleave). Files rotate at `max_bytes`; only the newest
`max_files` files of the directory are kept. If the writer falls behind by more than `max_queue` answers,
new answers are dropped and counted (`dropped`), which /metrics exposes: serving is never slowed by logging.
The warehouse reads these files as a dbt source (read_json over the directory).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson


class ServedLog:
    def __init__(self, log_dir: str | os.PathLike, max_bytes: int = 50 * 2**20, max_files: int = 20,
                 max_queue: int = 100_000, flush_seconds: float = 0.2):
        self.dir = Path(log_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes, self.max_files, self.flush_seconds = max_bytes, max_files, flush_seconds
        self.q: queue.Queue = queue.Queue(maxsize=max_queue)
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

    def submit(self, request_id: str, response: dict[str, Any], info: dict[str, Any]) -> None:
        if self._stop.is_set():
            self.start()
        try:
            self.q.put_nowait((time.time(), request_id, response, info))
        except queue.Full:
            self.dropped += 1

    # -- writer thread -----------------------------------------------------------------------------------
    def _lines(self, item) -> list[bytes]:
        ts, rid, response, info = item
        when = datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
        names = response["metadata"]["feature_names"]
        results = response["results"]
        nkeys = len(info["keys"])
        out = []
        for i in range(info["n"]):
            out.append(orjson.dumps({
                "served_at": when,
                "request_id": rid,
                "feature_view": info.get("feature_view"),
                "entity": {c: v[i] for c, v in info["keys"].items()},
                "values": {names[j]: results[j]["values"][i] for j in range(nkeys, len(names))},
                "statuses": {names[j]: results[j]["statuses"][i] for j in range(nkeys, len(names))},
                "versions": info["versions"],
            }) + b"\n")
        return out

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
        data = b"".join(line for item in batch for line in self._lines(item))
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
        while not (stop.is_set() and self.q.empty()):
            try:
                first = self.q.get(timeout=self.flush_seconds)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < 5000:
                try:
                    batch.append(self.q.get_nowait())
                except queue.Empty:
                    break
            try:
                self._write(batch)
            except Exception:  # a full disk must not kill serving; count the loss instead
                self.dropped += len(batch)

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._fh is not None:
            self._fh.close()
            self._fh = None
