"""A feature store for MLOps built as a dbt project."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import FeatureStoreError

if TYPE_CHECKING:
    from .sdk import FeatureStore

__all__ = ["FeatureStore", "FeatureStoreError"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """`fs_cli.FeatureStore` imported on first use: `import fs_cli.cli` (every `fs` command) must not pay for the
    SDK's imports before it knows which command runs."""
    if name == "FeatureStore":
        from .sdk import FeatureStore

        return FeatureStore
    raise AttributeError(f"module 'fs_cli' has no attribute {name!r}")
