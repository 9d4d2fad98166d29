"""The durable push log: one JSONL file per feature group under `<project>/.fs/push/` (or $FS_PUSH_DIR).

Why files and not a warehouse table: the online service must never open the warehouse (DuckDB allows one writer
process per file, and `fs run` holds it), so the service appends here and `fs run` loads the file into the warehouse
(`fs_push.<group>`, fs_cli/push_publish.py). A push is acknowledged only after its lines are written and fsynced.

Line format: `{"id": "<request id>:<row>", "pushed_at": "<naive UTC ISO>", "row": {column: value}}`.

Concurrency: every writer (several uvicorn workers) takes an exclusive `flock` on the file, checks the file it
locked is still the one at the path (the consumer replaces it), appends one `write()` and fsyncs. The consumer
reads complete lines up to an offset, and after the commit rewrites the file without that prefix (write a temp file,
fsync, rename: atomic). A crash at any point leaves either the old file or the new one; the ids make a second
reading of the same lines harmless (the warehouse load skips ids it has).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from ..errors import FeatureStoreError
from .specs import IDENT

PUSH_DIR_ENV = "FS_PUSH_DIR"


def push_dir_for(state_dir: str | os.PathLike) -> Path:
    """$FS_PUSH_DIR, else <state dir>/push (the project's .fs/push)."""
    env = os.environ.get(PUSH_DIR_ENV)
    return Path(env) if env else Path(state_dir) / "push"


class PushLog:
    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)

    def path(self, fg: str) -> Path:
        if not IDENT.match(fg):
            raise FeatureStoreError(f"feature group name {fg!r} is not a plain identifier")
        return self.dir / f"{fg}.jsonl"

    @contextmanager
    def _locked(self, fg: str) -> Iterator[int]:
        """An fd of the current log file of `fg`, exclusively locked (re-opened if it was replaced meanwhile)."""
        path = self.path(fg)
        if not self.dir.is_dir():
            self.dir.mkdir(parents=True, exist_ok=True)
            _fsync_dir(self.dir.parent)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    same = os.fstat(fd).st_ino == os.stat(path).st_ino
                except FileNotFoundError:
                    same = False
                if same:
                    break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # the consumer replaced the file while we waited: lock the new one
        try:
            yield fd
        finally:
            os.close(fd)  # closing releases the lock

    def append(self, fg: str, records: list[dict[str, Any]]) -> None:
        """Append records durably: returns only after the bytes are on disk.

        Group commit: concurrent appends of one process to one group share a write and an fsync (the thread that
        gets the flush lock writes every request queued so far; the others find theirs done). Each request's lines
        stay contiguous and a request is acknowledged only after the fsync that covered it."""
        entry = _Entry(b"".join(orjson.dumps(r) + b"\n" for r in records))
        group = self._group(fg)
        with group.queue_lock:
            group.queue.append(entry)
        with group.flush_lock:
            if not entry.done:
                with group.queue_lock:
                    batch, group.queue = group.queue, []
                try:
                    self._write(fg, b"".join(e.data for e in batch))
                except BaseException as e:
                    for x in batch:
                        x.error, x.done = e, True
                    raise
                for x in batch:
                    x.done = True
        if entry.error is not None:
            raise entry.error

    def _group(self, fg: str) -> _Group:
        with _GROUPS_LOCK:
            return _GROUPS.setdefault((str(self.dir), fg), _Group())

    def _write(self, fg: str, data: bytes) -> None:
        with self._locked(fg) as fd:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # a writer died mid-line: end its torn line so ours parses
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)

    def read(self, fg: str) -> tuple[list[dict[str, Any]], int]:
        """Every complete record now in the log, and the byte offset they end at."""
        path = self.path(fg)
        if not path.is_file():
            return [], 0
        with self._locked(fg) as fd:
            size = os.fstat(fd).st_size
            data = os.pread(fd, size, 0) if size else b""
        end = data.rfind(b"\n") + 1  # a torn last line (crash mid-write, never acknowledged) is not a record
        out = []
        for line in data[:end].splitlines():
            if line.strip():
                try:
                    out.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    continue  # a torn line followed by later appends: it was never acknowledged either
        return out, end

    def consume(self, fg: str, upto: int) -> None:
        """Drop the first `upto` bytes (records already published); keep what was appended since."""
        path = self.path(fg)
        if upto <= 0 or not path.is_file():
            return
        with self._locked(fg) as fd:
            size = os.fstat(fd).st_size
            rest = os.pread(fd, size - upto, upto) if size > upto else b""
            tmp = path.with_suffix(".jsonl.tmp")
            with open(tmp, "wb") as f:
                f.write(rest)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)  # writers waiting on the old file's lock re-open the new one
            _fsync_dir(self.dir)

    def remove_where(self, fg: str, drop: Callable[[dict[str, Any]], bool]) -> int:
        """Rewrite the log without the records `drop` selects (`fs erase`), under the writers' lock and atomically
        (temp file, fsync, rename) like `consume`; returns how many records were dropped."""
        path = self.path(fg)
        if not path.is_file():
            return 0
        with self._locked(fg) as fd:
            size = os.fstat(fd).st_size
            data = os.pread(fd, size, 0) if size else b""
            kept, dropped = [], 0
            for line in data.splitlines(keepends=True):
                try:
                    rec = orjson.loads(line)
                except orjson.JSONDecodeError:
                    rec = None
                if isinstance(rec, dict) and drop(rec):
                    dropped += 1
                else:
                    kept.append(line)
            if not dropped:
                return 0
            tmp = path.with_suffix(".jsonl.tmp")
            with open(tmp, "wb") as f:
                f.write(b"".join(kept))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            _fsync_dir(self.dir)
        return dropped

    def groups(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return sorted(p.stem for p in self.dir.glob("*.jsonl"))


class _Entry:
    __slots__ = ("data", "done", "error")

    def __init__(self, data: bytes):
        self.data, self.done, self.error = data, False, None


class _Group:
    def __init__(self) -> None:
        self.queue_lock = threading.Lock()
        self.flush_lock = threading.Lock()
        self.queue: list[_Entry] = []


_GROUPS: dict[tuple[str, str], _Group] = {}
_GROUPS_LOCK = threading.Lock()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
