{#- Per feature view, feature, source and day: how many vectors, how many values missing, and the numeric summary
    (mean, min, max) of the logged values. -#}
{{ config(schema='monitoring') }}
select feature_view, feature, source,
       {{ dbt.date_trunc('day', 'logged_at') }} as day,
       count(*) as n_vectors,
       sum(case when value_text is null then 1 else 0 end) as n_missing,
       avg(value_number) as mean_value,
       min(value_number) as min_value,
       max(value_number) as max_value
from {{ ref('mon_feature_values') }}
group by feature_view, feature, source, {{ dbt.date_trunc('day', 'logged_at') }}
