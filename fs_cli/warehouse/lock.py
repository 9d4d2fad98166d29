"""Waiting for the warehouse instead of failing: one project-level writer lock, and a bounded wait for a DuckDB file.

Writers (`fs run`, `fs materialize`, `fs training-dataset create`, `fs model register`) take `writer_lock(project)`:
an exclusive `fcntl.flock` on `<project>/.fs/write.lock`, held for the whole command. A second writer waits for it
(bounded by FS_LOCK_TIMEOUT seconds, default 60, with one line on stderr naming the holder) instead of crashing
inside dbt, which opens the DuckDB file itself between fs's own sessions. The lock is the same on every engine (a
Postgres project serializes its writers the same way). It is reentrant within a process: threads of one process
take it in turn, and a writer calling another (`fs run` materializes) does not wait for itself.

`wait_until(...)` is the bounded wait both this lock and the DuckDB file open (fs_cli/warehouse/duckdb.py) use:
FS_LOCK_TIMEOUT=0 fails at once, as before.
"""

from __future__ import annotations

import fcntl
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ..errors import FeatureStoreError

if TYPE_CHECKING:
    from ..project import Project

TIMEOUT_ENV = "FS_LOCK_TIMEOUT"
DEFAULT_TIMEOUT = 60.0
LOCK_FILE = "write.lock"
_POLL = 0.1

T = TypeVar("T")


_OVERRIDE: ContextVar[float | None] = ContextVar("fs_lock_timeout_override", default=None)


@contextmanager
def no_wait() -> Iterator[None]:
    """Opens in this block fail at once on a lock (an optional write, e.g. logging commits before a read, that is
    skipped when the warehouse is busy rather than delaying the read)."""
    token = _OVERRIDE.set(0.0)
    try:
        yield
    finally:
        _OVERRIDE.reset(token)


def lock_timeout() -> float:
    """Seconds a writer (or reader) waits for a lock another process holds: $FS_LOCK_TIMEOUT, default 60."""
    override = _OVERRIDE.get()
    if override is not None:
        return override
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        return max(0.0, float(raw)) if raw.strip() else DEFAULT_TIMEOUT
    except ValueError:
        raise FeatureStoreError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds",
                                fix=f"set {TIMEOUT_ENV} to e.g. 60 (0: fail at once when the warehouse is locked)") \
            from None


def wait_until(attempt: Callable[[], T | None], holder: Callable[[], str], timeout: float | None = None) -> T | None:
    """Call `attempt()` until it returns something other than None or `timeout` seconds passed (then None).
    Before the first wait, prints once to stderr which lock it waits for (`holder()`: e.g. "PID 12 (fs run)")."""
    got = attempt()
    if got is not None:
        return got
    timeout = lock_timeout() if timeout is None else timeout
    if timeout <= 0:
        return None
    deadline = time.monotonic() + timeout
    announce_wait(holder(), timeout)
    while time.monotonic() < deadline:
        time.sleep(_POLL)
        got = attempt()
        if got is not None:
            return got
    return None


def announce_wait(holder: str, timeout: float) -> None:
    """The one line a waiting process prints (stderr: stdout may be JSON)."""
    sys.stderr.write(f"waiting for the warehouse lock held by {holder} (up to {timeout:g} s, {TIMEOUT_ENV}) ...\n")
    sys.stderr.flush()


# -- the project-level writer lock ------------------------------------------------------------------------------
class _Held:
    """This process's hold on one lock file: a reentrant thread lock around one flock'ed descriptor."""

    def __init__(self) -> None:
        self.thread_lock = threading.RLock()
        self.depth = 0
        self.fd: int | None = None


_HELD: dict[str, _Held] = {}
_HELD_GUARD = threading.Lock()


def lock_path(project: Project) -> Path:
    return project.state_dir / LOCK_FILE


def _command() -> str:
    argv = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]]
    if argv[0] in ("__main__.py", "-m"):
        argv[0] = "fs"
    return " ".join(argv)[:120]


def _holder_of(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    pid, _, command = text.partition(" ")
    return f"PID {pid} ({command or 'unknown command'})" if pid.isdigit() else "another process"


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@contextmanager
def writer_lock(project: Project) -> Iterator[None]:
    """Hold the project's writer lock for the block (see the module doc); waits up to FS_LOCK_TIMEOUT for another
    process holding it, then fails with a FeatureStoreError naming the holder."""
    path = lock_path(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    with _HELD_GUARD:
        held = _HELD.setdefault(key, _Held())
    timeout = lock_timeout()
    if not (held.thread_lock.acquire(timeout=timeout) if timeout > 0 else held.thread_lock.acquire(blocking=False)):
        raise _locked_error(path, "another thread of this process")
    try:
        if held.depth == 0:
            held.fd = _acquire_file(path, timeout)
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
            if held.depth == 0 and held.fd is not None:
                fcntl.flock(held.fd, fcntl.LOCK_UN)
                os.close(held.fd)
                held.fd = None
    finally:
        held.thread_lock.release()


def _acquire_file(path: Path, timeout: float) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if wait_until(lambda: True if _try_flock(fd) else None, lambda: _holder_of(path), timeout) is None:
            raise _locked_error(path, _holder_of(path))
        os.ftruncate(fd, 0)  # who holds it, for the message of the next writer
        os.pwrite(fd, f"{os.getpid()} {_command()}\n".encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _locked_error(path: Path, holder: str) -> FeatureStoreError:
    pid = holder.split()[1] if holder.startswith("PID ") else None
    return FeatureStoreError(
        f"the project is being written by another process: {holder} held {path} for more than "
        f"{lock_timeout():g} s",
        fix=(f"wait for it to finish (`ps -p {pid}` shows it) and retry" if pid else "wait for it to finish and retry")
        + f", or wait longer with {TIMEOUT_ENV}=<seconds>")
