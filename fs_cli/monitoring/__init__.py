"""Monitoring: inference logs as data, batch scoring on any spine, model feature drift, freshness.

Plain Python over the warehouse layer (no click, no HTTP server). The SDK (`FeatureStore.score_spine`,
`.monitor`, `.check_freshness`, `.monitor_model`) and the thin `fs` commands (fs_cli/commands/monitoring.py) call in.

Log formats (JSONL, one object per line, field `v` = format version; a line without `v` is version 1):
- served vectors  `<state>/served_vectors/served-*.jsonl`, written by fs_cli/server/logs.py:
      {"v": 1, "served_at": "...Z", "request_id": "...", "feature_view": name|null, "versions": {fg: n},
       "response": {"metadata": {"feature_names": [keys..., features...]},
                    "results": [{"values": [...one per entity row], "statuses": [...]}, ...]}}
- predictions     `<state>/predictions/predictions-*.jsonl`, written by batch scoring (logs.PredictionLog):
      {"v": 1, "logged_at": "...Z", "row_id": "<uuid>", "model": "name:version", "feature_view": fv,
       "training_dataset_version": n, "entity": {key: value}, "timestamp": "<spine time>",
       "features": {name: value}, "prediction": x, "score": p|null}
`<state>` is the project's store directory (`<project>/.fs`).
"""

from .logs import LOG_VERSION, read_predictions, read_served_vectors

__all__ = ["LOG_VERSION", "read_predictions", "read_served_vectors"]
