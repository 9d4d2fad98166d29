{#- Feature functions for rolling windows over daily aggregates. Warehouse-neutral SQL (date - integer works on
    DuckDB and Postgres); see macros/features/_features.yml for the arguments. -#}

{% macro fs_daily_activity_grid(daily_relation, entity_column, date_column, window_days) -%}
{#- A CTE named `grid`: one row per entity and calendar day from its first active day until `window_days` after
    its last, and never past the last day in the data. Rows with an empty window are not emitted. -#}
grid as (
    select e.{{ entity_column }}, cast(s.day as date) as day
    from (
        select {{ entity_column }}, min({{ date_column }}) as first_day, max({{ date_column }}) as last_day
        from {{ daily_relation }}
        group by {{ entity_column }}
    ) as e
    inner join (
        select cast(g.d as date) as day
        from generate_series(
            cast((select min({{ date_column }}) from {{ daily_relation }}) as timestamp),
            cast((select max({{ date_column }}) from {{ daily_relation }}) as timestamp),
            interval '1 day'
        ) as g(d)
    ) as s
        on s.day >= e.first_day
        and s.day < e.last_day + {{ window_days }}
)
{%- endmacro %}

{% macro fs_window_sum(value, date_column, day_column, days) -%}
sum(case when {{ date_column }} > {{ day_column }} - {{ days }} then {{ value }} else 0 end)
{%- endmacro %}
