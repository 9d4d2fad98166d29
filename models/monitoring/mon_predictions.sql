{#- One row per logged prediction (batch scoring, `fs model score --spine`): model, feature view, entity keys and
    features as JSON text, the prediction and the positive-class score. -#}
-- depends_on: {{ ref('mon_log_loads') }}
{{ config(schema='monitoring') }}
select row_id, log_version, logged_at, model, model_name, model_version, feature_view, training_dataset_version,
       event_time, entity, features, prediction, prediction_value, score,
       {{ dbt.date_trunc('day', 'coalesce(event_time, logged_at)') }} as prediction_day
from {{ source('fs_inference_logs', 'predictions_log') }}
