"""`fs ui`: the web UI as an app of its own (/ui/... and /health), behind the online service's API-key check.

Its own module because it wraps the UI with the server's `_Edge` (fs_cli/server/app.py), and the server in turn can
include the UI's router (fs_cli/ui/web.py `include_ui`): keeping this here keeps the import graph acyclic.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.responses import RedirectResponse, Response

from ..server.app import _Edge, keyring_from
from ..server.metrics import Metrics
from .web import PREFIX, BrowserKey, store_factory, ui_router

if TYPE_CHECKING:
    from ..sdk import FeatureStore


def create_ui_app(factory: Callable[[], FeatureStore], api_keys: list[str] | str | None = None,
                  api_keys_file: str | os.PathLike | None = None) -> FastAPI:
    """The UI alone (`fs ui`): /ui/... plus /health, behind the online service's API-key check. Keys: `api_keys`
    (default $FS_API_KEYS, full access) and the key file (default $FS_API_KEYS_FILE), whose keys need `admin`."""
    keyring = keyring_from(api_keys, api_keys_file)
    app = FastAPI(title="fs web UI", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(ui_router(factory))

    @app.get("/health")
    def health() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get("/")
    def home() -> Response:
        return RedirectResponse(f"{PREFIX}/")

    app.add_middleware(_Edge, keys=[], keyring=keyring, metrics=Metrics())
    app.add_middleware(BrowserKey)  # outermost: turns the ?key= / cookie of a browser into the header _Edge checks
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory of `fs ui`: FS_PROJECT_DIR / FS_TARGET / FS_API_KEYS / FS_API_KEYS_FILE from the environment."""
    return create_ui_app(store_factory(os.environ.get("FS_PROJECT_DIR") or None, os.environ.get("FS_TARGET") or None))
