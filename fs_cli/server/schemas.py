"""JSON Schemas of the service's request and response bodies, for its OpenAPI document (/docs).

The handlers read raw bodies with orjson for speed (fs_cli/server/app.py), so FastAPI cannot derive these from
pydantic models; they are written by hand so that schemathesis can fuzz every body.
"""

from __future__ import annotations

_KEY_VALUE = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
FEAST_REQUEST_SCHEMA = {
    "type": "object",
    "title": "GetOnlineFeaturesRequest",
    "required": ["entities"],
    "properties": {
        "entities": {"type": "object", "additionalProperties": {"type": "array", "items": _KEY_VALUE},
                     "description": "key column -> list of keys (all lists the same length)",
                     "example": {"customer_id": [1, 2]}},
        "features": {"type": "array", "items": {"type": "string"},
                     "description": "'feature_group:feature' refs, answered in this order",
                     "example": ["fg_customer_profile:credit_limit"]},
        "feature_service": {"type": "string", "description": "a feature view name (instead of features)"},
        "full_feature_names": {"type": "boolean", "default": False},
    },
}
VECTORS_REQUEST_SCHEMA = {
    "type": "object",
    "title": "VectorsRequest",
    "required": ["entities"],
    "properties": {"entities": {"type": "array", "items": {"type": "object", "additionalProperties": _KEY_VALUE},
                                "example": [{"customer_id": 1}, {"customer_id": 2}]},
                   "request": {"type": "array", "items": {"type": "object"},
                               "description": "request parameters (on-demand inputs), one object per entity row"},
                   "training_dataset_version": {"type": "integer",
                                                "description": "apply this TD version's fitted transformations "
                                                               "(default: the latest, if the view has any)"},
                   "transformed": {"type": "boolean", "default": True}},
}
_DF = {"type": "object", "additionalProperties": {"type": "array", "items": {}},
       "description": "columns of the rows: {column: [values]} (keys, event time, features)",
       "example": {"customer_id": [1], "profile_updated_at": ["2026-02-01T10:00:00"], "segment": ["gold"]}}
# Feast 0.67 feature_server.PushFeaturesRequest / WriteToFeatureStoreRequest (transform_on_write is accepted, unused:
# fs applies no on-write transformation).
PUSH_REQUEST_SCHEMA = {
    "type": "object", "title": "PushFeaturesRequest", "required": ["push_source_name", "df"],
    "properties": {"push_source_name": {"type": "string", "description": "a feature group or its declared push_source"},
                   "df": _DF, "to": {"type": "string", "enum": ["online", "offline", "online_and_offline"],
                                     "default": "online"},
                   "allow_registry_cache": {"type": "boolean", "default": True},
                   "transform_on_write": {"type": "boolean", "default": True}},
}
WRITE_REQUEST_SCHEMA = {
    "type": "object", "title": "WriteToFeatureStoreRequest", "required": ["feature_view_name", "df"],
    "properties": {"feature_view_name": {"type": "string", "description": "a feature group name"}, "df": _DF,
                   "allow_registry_cache": {"type": "boolean", "default": True},
                   "transform_on_write": {"type": "boolean", "default": True}},
}
ERROR = {"description": "bad request: JSON {error, fix}",
          "content": {"application/json": {"schema": {"type": "object", "properties": {
              "error": {"type": "string"}, "fix": {"type": ["string", "null"]}}}}}}
ERRORS = {400: ERROR, 401: {"description": "missing or invalid API key"},
           403: {**ERROR, "description": "the API key's scope does not allow this: JSON {error, fix}"},
           404: ERROR, 413: ERROR}
FEAST_RESPONSE = {200: {"description": "Feast-shaped answer", "content": {"application/json": {"schema": {
    "type": "object", "properties": {
        "metadata": {"type": "object", "properties": {"feature_names": {"type": "array", "items": {"type": "string"}}}},
        "results": {"type": "array", "items": {"type": "object", "properties": {
            "values": {"type": "array", "items": {}},
            "statuses": {"type": "array", "items": {"type": "string", "enum": [
                "PRESENT", "NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE"]}},
            "event_timestamps": {"type": "array", "items": {"type": "string"}}}}}}}}}}}
