"""Model registry: immutable, hash-verified scikit-learn artifacts with provenance and validation.

SECURITY: artifacts are skops files (loaded without running code, with only the types trusted at registration);
pickles, whose loading runs code, are refused unless registration trusts them explicitly (see artifact.py). Every
load re-checks the blob's sha256 against the hash recorded at registration.
"""

from .artifact import model_frame
from .registry import LoadedModel, ModelRegistry, ModelVersion, parse_model_ref
from .validate import ValidationReport

__all__ = ["LoadedModel", "ModelRegistry", "ModelVersion", "ValidationReport", "model_frame", "parse_model_ref"]
