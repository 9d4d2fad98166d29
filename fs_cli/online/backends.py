"""Which online store a URL names: the backends (SQLite, Redis) are resolved here, not in the interface module
(fs_cli.online.store stays an abstract interface the backends implement)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import FeatureStoreError
from .store import OnlineStore

DEFAULT_SQLITE_NAME = "online_store.sqlite"


def default_url(warehouse_path: str | os.PathLike | None = None) -> str:
    """$FS_ONLINE_STORE, else an SQLite file next to the warehouse (.fs/online_store.sqlite)."""
    env = os.environ.get("FS_ONLINE_STORE")
    if env:
        return env
    if warehouse_path is None:
        warehouse_path = os.environ.get("FS_DUCKDB_PATH", ".fs/feature_store.duckdb")
    return "sqlite:///" + str(Path(warehouse_path).resolve().parent / DEFAULT_SQLITE_NAME)


def open_store(url: str | None = None, *, warehouse_path: str | os.PathLike | None = None,
               prefix: str | None = None) -> OnlineStore:
    """Open the online store named by a URL: ``sqlite:///abs/path`` (or a plain path) or ``redis://host:port/db``.

    Redis key prefix: ``prefix`` argument, else $FS_ONLINE_PREFIX, else ``fs``.
    """
    url = url or default_url(warehouse_path)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .redis_store import RedisStore

        return RedisStore(url, prefix=prefix or os.environ.get("FS_ONLINE_PREFIX") or "fs")
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]  # SQLAlchemy's convention: sqlite:///rel/path, sqlite:////abs/path
    elif url.startswith("sqlite://"):
        path = url[len("sqlite://"):]
    elif "://" in url:
        raise FeatureStoreError(f"online store URL {url!r} has an unknown scheme",
                                fix="use sqlite:///path/to/file.sqlite or redis://host:6379/0 (FS_ONLINE_STORE)")
    else:
        path = url
    from .sqlite import SQLiteStore

    return SQLiteStore(path)
