"""Compatibility: the declarations moved to fs_cli.declarations (model, entities, feature_groups, feature_views, load)."""

from __future__ import annotations

from .declarations.entities import load_entities
from .declarations.feature_groups import FG_KEYS, POLICIES
from .declarations.feature_groups import parse_feature_group as _parse_fg
from .declarations.feature_views import FV_KEYS, RESERVED_OUTPUTS, SELECTION_KEYS, SPINE_KEYS
from .declarations.feature_views import parse_feature_view as _parse_fv
from .declarations.load import load_catalog
from .declarations.model import IDENT, Catalog, Column, Entity, FeatureGroup, FeatureSelection, FeatureView

__all__ = [
    "FG_KEYS", "FV_KEYS", "IDENT", "POLICIES", "RESERVED_OUTPUTS", "SELECTION_KEYS", "SPINE_KEYS", "Catalog", "Column",
    "Entity", "FeatureGroup", "FeatureSelection", "FeatureView", "_parse_fg", "_parse_fv", "load_catalog",
    "load_entities",
]
