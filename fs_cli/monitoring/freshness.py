"""Freshness: is every feature group's last commit (fs_meta.commits) and its online copy recent enough?

Declared per feature group in its YAML: `meta.fs.freshness: 1d` (the same target for the last commit and the online
store) or `freshness: {commit: 1d, online: 2h}`. Read-only (no dbt, no sync of the commit log, no writes): safe
to run from cron next to a running pipeline.

Statuses per group: `fresh`, `stale` (older than the target), `never` (no commit / never materialized),
`no target` (nothing declared: reported, never failing). `fs check` exits 0 when nothing is stale or never
published, 1 otherwise (2: usage error).
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from ..errors import FeatureStoreError
from ..timeutil import parse_timestamp, parse_ttl, utcnow
from ..warehouse import META_SCHEMA


@dataclass
class Freshness:
    feature_group: str
    target: str  # commit | online
    status: str  # fresh | stale | never | no target
    last: datetime | None  # the last commit time / the commit time the online store serves
    age_seconds: float | None
    max_age_seconds: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def declared_targets(fg: Any) -> dict[str, timedelta | None]:
    """{commit: max age, online: max age (online groups only)} from the group's meta.fs.freshness."""
    raw = (fg.meta or {}).get("freshness")
    where = f"feature group {fg.name}: meta.fs.freshness"
    if isinstance(raw, dict):
        unknown = set(raw) - {"commit", "online"}
        if unknown:
            raise FeatureStoreError(f"{where}.{sorted(unknown)[0]} is not a known field",
                                    fix="use {commit: 1d, online: 2h} or one duration like 1d")
        commit, online = parse_ttl(raw.get("commit"), where=where), parse_ttl(raw.get("online"), where=where)
    else:
        commit = online = parse_ttl(raw, where=where)
    out: dict[str, timedelta | None] = {"commit": commit}
    if fg.online:
        out["online"] = online
    return out


def _last_commits(wh: Any) -> dict[str, datetime]:
    if not wh.relation_exists(META_SCHEMA, "commits"):
        return {}
    rows = wh.fetchall(f"select feature_group, max(commit_time) from {wh.relation(META_SCHEMA, 'commits')} "
                       "group by feature_group")
    return {r[0]: r[1] for r in rows}


def _online_watermarks(store_url: str | None, warehouse_path: Any) -> dict[str, datetime | None]:
    """Per online group: the commit time its online rows are as of (None: materialized without a watermark)."""
    from ..online import default_url, open_store

    url = store_url or default_url(warehouse_path)
    if url.startswith("sqlite://") or "://" not in url:  # the same path rule as fs_cli.online.backends
        from pathlib import Path

        path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else url.removeprefix("sqlite://")
        if not Path(path).exists():  # never materialized: do not create an empty store by looking
            return {}
    out: dict[str, datetime | None] = {}
    with open_store(url) as store:
        for fg, ptr in store.pointers().items():
            wm = (ptr.meta.get("watermark") or {}).get("commit_time")
            out[fg] = datetime.fromisoformat(wm) if wm else None
    return out


def _judge(fg: str, target: str, last: datetime | None, max_age: timedelta | None, now: datetime) -> Freshness:
    age = (now - last).total_seconds() if last is not None else None
    limit = max_age.total_seconds() if max_age else None
    if limit is None:
        status = "no target"
    elif last is None:
        status = "never"
    else:
        status = "stale" if age > limit else "fresh"
    return Freshness(fg, target, status, last, age, limit)


def check_freshness(fs: Any, feature_groups: list[str] | None = None, now: str | datetime | None = None,
                    store_url: str | None = None) -> list[Freshness]:
    clock = parse_timestamp(now, where="now") if now is not None else utcnow()
    catalog = fs.catalog
    fgs = [catalog.fg(n) for n in feature_groups] if feature_groups else list(catalog.feature_groups.values())
    from ..warehouse import store_exists

    last: dict[str, datetime] = {}
    if store_exists(fs.project):
        with fs.project.warehouse(read_only=True) as wh:
            last = _last_commits(wh)
    online = _online_watermarks(store_url, fs.project.warehouse_path) if any(f.online for f in fgs) else {}
    out = []
    for fg in fgs:
        targets = declared_targets(fg)
        out.append(_judge(fg.name, "commit", last.get(fg.name), targets["commit"], clock))
        if "online" in targets:
            out.append(_judge(fg.name, "online", online.get(fg.name), targets["online"], clock))
    return out


def failing(results: list[Freshness]) -> list[Freshness]:
    return [r for r in results if r.status in ("stale", "never")]


@dataclass
class FreshnessReport:
    """The freshness of each feature group and target; `ok` when none is stale or never published."""

    results: list[Freshness]

    @property
    def failing(self) -> list[Freshness]:
        return failing(self.results)

    @property
    def ok(self) -> bool:
        return not self.failing

    def __iter__(self):
        return iter(self.results)


def post_webhook(url: str, results: list[Freshness], timeout: float = 10.0) -> int:
    """POST {"ok", "failing": [...], "results": [...]} as JSON; returns the HTTP status."""
    body = {"ok": not failing(results), "failing": [r.to_dict() for r in failing(results)],
            "results": [r.to_dict() for r in results]}
    data = json.dumps(body, default=str).encode()
    req = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the user's own URL
            return resp.status
    except OSError as e:
        raise FeatureStoreError(f"webhook {url} failed: {e}", fix="check the URL (http/https) and the receiver") from None
