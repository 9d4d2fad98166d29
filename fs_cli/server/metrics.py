"""Prometheus text metrics without a client library: request counts, a latency histogram, store versions."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.hist: dict[str, list[int]] = {}
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        i = bisect.bisect_left(BUCKETS, seconds)
        with self._lock:
            self.requests[(method, route, status)] += 1
            h = self.hist.get(route)
            if h is None:
                h = self.hist[route] = [0] * (len(BUCKETS) + 1)
            h[i] += 1
            self.sums[route] += seconds
            self.counts[route] += 1

    def render(self, versions: dict[str, int], extra: dict[str, float] | None = None) -> str:
        out = ["# HELP fs_http_requests_total HTTP requests by method, route and status.",
               "# TYPE fs_http_requests_total counter"]
        with self._lock:
            for (m, r, s), n in sorted(self.requests.items()):
                out.append(f'fs_http_requests_total{{method="{m}",route="{r}",status="{s}"}} {n}')
            out += ["# HELP fs_http_request_duration_seconds Request latency by route.",
                    "# TYPE fs_http_request_duration_seconds histogram"]
            for r, h in sorted(self.hist.items()):
                cum = 0
                for b, c in zip(BUCKETS, h, strict=False):
                    cum += c
                    out.append(f'fs_http_request_duration_seconds_bucket{{route="{r}",le="{b}"}} {cum}')
                cum += h[-1]
                out.append(f'fs_http_request_duration_seconds_bucket{{route="{r}",le="+Inf"}} {cum}')
                out.append(f'fs_http_request_duration_seconds_sum{{route="{r}"}} {self.sums[r]:.6f}')
                out.append(f'fs_http_request_duration_seconds_count{{route="{r}"}} {self.counts[r]}')
        out += ["# HELP fs_online_store_version Online version served per feature group.",
                "# TYPE fs_online_store_version gauge"]
        for fg, v in sorted(versions.items()):
            out.append(f'fs_online_store_version{{feature_group="{fg}"}} {v}')
        for name, value in sorted((extra or {}).items()):
            out += [f"# TYPE {name} gauge", f"{name} {value}"]
        return "\n".join(out) + "\n"
