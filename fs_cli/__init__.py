"""A feature store for MLOps built as a dbt project."""

from .errors import FeatureStoreError
from .sdk import FeatureStore

__all__ = ["FeatureStore", "FeatureStoreError"]
__version__ = "0.1.0"
