"""CPU and memory of this process and everything it started (stdlib only: imported by both venvs' scripts).

Spark runs in a JVM that pyspark starts as a child of the Python process, and that Python never waits for: the
rusage a parent reads from wait4 covers neither its CPU nor its memory. `TreeSampler` reads /proc for the
process and all its descendants every `interval` seconds: CPU seconds (user + system, cumulative, so a sample
taken at the end is exact up to processes that ended in between) and the peak of the summed resident memory.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def tree(pid: int | None = None) -> list[int]:
    """`pid` (default: this process) and all its live descendants."""
    todo, seen = [pid or os.getpid()], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += _children(p)
    return seen


def _stat(pid: int) -> tuple[float, int]:
    """(CPU seconds, resident bytes) of one process; (0, 0) when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0
    # After the command name: state is field 3, utime 14, stime 15, rss 24 (1-based, proc(5)).
    return (int(fields[11]) + int(fields[12])) / _TICKS, int(fields[21]) * _PAGE


class TreeSampler:
    """Context manager: `.cpu()` = CPU seconds of the tree since start; `.peak_rss_mib` after exit."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.peak_rss = 0
        self._last: dict[int, float] = {}
        self._base = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> float:
        total_rss = 0
        for pid in tree():
            cpu, rss = _stat(pid)
            if cpu or rss:
                self._last[pid] = max(cpu, self._last.get(pid, 0.0))
                total_rss += rss
        self.peak_rss = max(self.peak_rss, total_rss)
        return sum(self._last.values())

    def cpu(self) -> float:
        return self._sample() - self._base

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> TreeSampler:
        self._base = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def peak_rss_mib(self) -> float:
        return self.peak_rss / 2**20
