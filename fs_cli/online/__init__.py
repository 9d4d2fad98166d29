"""The online half: an online store (SQLite or Redis), materialization into it, and reads from it.

Nothing here imports dbt, DuckDB files, click or HTTP frameworks; `fs_cli.server` and `fs_cli.commands.online`
wrap it.
"""

from .backends import default_url, open_store
from .materialize import MaterializeResult, latest_rows, materialize
from .reader import OnlineReader, RequestError
from .specs import FeatureSpec, FGSpec, FVSpec
from .store import OnlineStore, Pointer

__all__ = [
    "FGSpec", "FVSpec", "FeatureSpec", "MaterializeResult", "OnlineReader", "OnlineStore", "Pointer", "RequestError",
    "default_url", "latest_rows", "materialize", "open_store",
]
