"""Entry point for uvicorn (`fs serve`): builds the app from environment variables, one per worker process.

FS_ONLINE_STORE (store URL), FS_ONLINE_PREFIX (Redis key prefix), FS_API_KEYS (comma separated, full access),
FS_API_KEYS_FILE (scoped, hashed keys: fs_cli/access.py),
FS_SERVED_LOG_DIR (served-vector logs; empty = off), FS_MAX_BATCH, FS_PUSH_DIR (push log; empty = push off),
FS_BODY_TIMEOUT, FS_PUBLIC_METRICS, FS_PUBLIC_DOCS (read by create_app). uvicorn needs an import string to start
several workers, hence a factory reading the environment rather than arguments.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from ..online.backends import open_store
from .app import create_app


def app_from_env() -> FastAPI:
    store = open_store(os.environ.get("FS_ONLINE_STORE") or None)
    return create_app(
        store,
        api_keys=os.environ.get("FS_API_KEYS", ""),
        log_dir=os.environ.get("FS_SERVED_LOG_DIR") or None,
        max_batch=int(os.environ.get("FS_MAX_BATCH", "1000")),
        push_dir=os.environ.get("FS_PUSH_DIR") or None,
    )
