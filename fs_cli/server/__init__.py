"""The HTTP service over the online store (FastAPI). The online core (fs_cli.online) knows nothing of HTTP."""

from .app import create_app

__all__ = ["create_app"]
