{#- One row per served entity vector (the online service's answers, `fs serve`): request id, row in the batch,
    the feature-group versions served, entity keys and features as JSON text. -#}
-- depends_on: {{ ref('mon_log_loads') }}
{{ config(schema='monitoring') }}
select row_id, request_id, row_index, log_version, served_at, feature_view, versions, entity, features,
       {{ dbt.date_trunc('day', 'served_at') }} as served_day
from {{ source('fs_inference_logs', 'served_vectors_log') }}
