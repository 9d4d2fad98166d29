"""Model registry: immutable, hash-verified scikit-learn artifacts with provenance and validation.

SECURITY: model artifacts are pickles, and loading a pickle runs code. The registry only loads blobs whose sha256
matches the hash recorded at registration; only load model artifacts through this registry.
"""

from .artifact import model_frame
from .registry import LoadedModel, ModelRegistry, ModelVersion, parse_model_ref
from .validate import ValidationReport

__all__ = ["LoadedModel", "ModelRegistry", "ModelVersion", "ValidationReport", "model_frame", "parse_model_ref"]
