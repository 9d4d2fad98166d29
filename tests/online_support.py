"""Shared helpers for the online-store and server tests: real stores (SQLite file, Redis) and an oracle."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
from services import missing

from fs_cli.online.backends import open_store
from fs_cli.online.specs import FeatureSpec, FGSpec
from fs_cli.online.store import OnlineStore

REDIS_URL = "redis://127.0.0.1:6379/0"
BACKENDS = ["sqlite", "redis"]


def redis_available() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except Exception:
        return False


def make_store(kind: str, tmp_path) -> tuple[OnlineStore, str, str | None]:
    """(store, url, redis prefix) for a fresh, isolated store."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / f'online-{uuid.uuid4().hex[:6]}.sqlite'}"
        return open_store(url), url, None
    if not redis_available():
        missing("Redis", f"not reachable at {REDIS_URL}")
    prefix = f"fs_test_{uuid.uuid4().hex[:12]}"
    return open_store(REDIS_URL, prefix=prefix), REDIS_URL, prefix


def cleanup(store: OnlineStore) -> None:
    if hasattr(store, "drop_all"):
        store.drop_all()
    store.close()


SPEC = FGSpec(
    name="fg_test",
    keys=("customer_id",),
    key_types=("bigint",),
    event_time="event_time",
    created_time="created",
    ttl_seconds=3600,
    features=(FeatureSpec("amount", "double"), FeatureSpec("label", "varchar"), FeatureSpec("n", "bigint")),
)
NOW = datetime(2026, 1, 10, 12, 0, 0)


def make_rows(n_entities: int, per_entity: int, seed: int = 0, now: datetime = NOW, spread_s: int = 7200,
              tag: Any = None, future_s: int = 600) -> pa.Table:
    """Random history around `now` (some rows in the future, some older than the TTL, ties on event_time)."""
    import random

    rnd = random.Random(seed)
    ids, ev, cr, amt, lab, nn = [], [], [], [], [], []
    for e in range(n_entities):
        for _ in range(per_entity):
            t = now - timedelta(seconds=rnd.randint(-future_s, spread_s) // 60 * 60)  # minute grid -> ties happen
            ids.append(e)
            ev.append(t)
            cr.append(t + timedelta(seconds=rnd.randint(0, 3)))
            amt.append(round(rnd.uniform(0, 100), 2) if tag is None else float(tag))
            lab.append(rnd.choice(["a", "b", None, "x'; drop table fs_rows; --"]))
            nn.append(rnd.randint(-5, 5))
    return pa.table({"customer_id": pa.array(ids, pa.int64()), "event_time": ev, "created": cr,
                     "amount": amt, "label": lab, "n": pa.array(nn, pa.int64())})


def oracle_latest(spec: FGSpec, rows: pa.Table, now: datetime) -> dict[Any, dict[str, Any]]:
    """Brute force: per key, the row with max (event_time, created) among now - ttl <= event_time <= now."""
    best: dict[Any, dict[str, Any]] = {}
    lo = now - timedelta(seconds=spec.ttl_seconds) if spec.ttl_seconds else None
    for r in rows.to_pylist():
        t = r[spec.event_time]
        if t > now or (lo is not None and t < lo):
            continue
        k = r[spec.keys[0]] if len(spec.keys) == 1 else tuple(r[k] for k in spec.keys)
        rank = (t, r[spec.created_time] if spec.created_time else None)
        cur = best.get(k)
        if cur is None or rank > cur["__rank"]:
            best[k] = {**r, "__rank": rank}
    return best


def epoch(t: datetime) -> float:
    """Seconds since the epoch of a naive UTC time (the service's clock)."""
    return (t - datetime(1970, 1, 1)).total_seconds()


def published_rows(fs: Any, fg: Any) -> pa.Table:
    """The live published rows of feature group `fg` (its snapshot's current, not deleted versions)."""
    with fs.project.warehouse(read_only=True) as wh:
        cols = ", ".join(wh.quote(c) for c in fg.column_names)
        return wh.arrow(f"select {cols} from {fg.snapshot_relation} where dbt_valid_to is null "
                        f"and (dbt_is_deleted is null or dbt_is_deleted <> 'True')")


def online_answer(url: str, clock: datetime, name: str, spec: FGSpec, keys: list) -> list[dict[str, Any]]:
    """The service's `results` for every feature of `name` and `keys`, answered by the store at `url` at `clock`."""
    from fastapi.testclient import TestClient

    from fs_cli.server import create_app

    with open_store(url) as store:
        client = TestClient(create_app(store, clock=lambda: epoch(clock), log_dir=None))
        r = client.post("/get-online-features", json={
            "features": [f"{name}:{f}" for f in spec.feature_names], "entities": {spec.keys[0]: keys}})
        assert r.status_code == 200, r.text
        return r.json()["results"]
