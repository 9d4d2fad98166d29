{#- Every logged feature value, long format (one row per vector and feature), served and batch-scored together:
    source = served | predicted. What BI charts a feature's distribution over time from. -#}
-- depends_on: {{ ref('mon_log_loads') }}
{{ config(schema='monitoring') }}
select 'served' as source, v.row_id, v.served_at as logged_at, v.feature_view, v.name as feature,
       v.value_text, v.value_number, v.status
from {{ source('fs_inference_logs', 'served_vectors_log_values') }} v
where v.kind = 'feature'
union all
select 'predicted' as source, p.row_id, p.logged_at, p.feature_view, p.name as feature,
       p.value_text, p.value_number, case when p.value_text is null then 'NULL_VALUE' else 'PRESENT' end as status
from {{ source('fs_inference_logs', 'predictions_log_values') }} p
where p.kind = 'feature'
