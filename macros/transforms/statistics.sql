{#- The fitted transformation statistics of a training dataset version, read from the TD metadata table that
    fs_cli.training writes (fs_meta.training_datasets), for batch scoring in plain dbt:
        {{ fs_apply_transformations(ref('fv_fraud_detection'), stats=fs_td_statistics('fv_fraud_detection', 3)) }}
    version none = the latest version that has statistics. -#}

{% macro fs_td_statistics(feature_view, version=none, meta_relation='fs_meta.training_datasets') -%}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- set query -%}
        select version, statistics from {{ meta_relation }}
        where feature_view = '{{ feature_view | replace("'", "''") }}' and statistics is not null
        {%- if version is not none %} and version = {{ version | int }}{% endif %}
        order by version desc limit 1
    {%- endset -%}
    {%- set rows = run_query(query).rows -%}
    {%- if rows | length == 0 -%}
        {{ exceptions.raise_compiler_error("fs_td_statistics: no training dataset of " ~ feature_view ~ (" version " ~ version if version is not none else "") ~ " with fitted statistics; create one with `fs training-dataset create " ~ feature_view ~ "`") }}
    {%- endif -%}
    {%- set stats = rows[0][1] -%}
    {%- set stats = fromjson(stats) if stats is string else stats -%}
    {%- if not stats.get('transformations') -%}
        {{ exceptions.raise_compiler_error("fs_td_statistics: training dataset " ~ feature_view ~ ":" ~ rows[0][0] ~ " has no fitted transformations") }}
    {%- endif -%}
    {{ return(stats['transformations']) }}
{%- endmacro %}
