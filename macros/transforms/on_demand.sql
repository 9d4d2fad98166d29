{#- On-demand features offline: the declared SQL expressions as select items of the training dataset query.
    Online, fs_cli.transforms.ondemand.OnDemandEvaluator runs the same expressions in in-process DuckDB.
    fs_cli.transforms.ondemand.render_on_demand_columns renders the same text. -#}

{% macro fs_on_demand_columns(on_demand) -%}
    {%- for f in on_demand or [] -%}
    ({{ f['expr'] }}) as {{ feature_store.fs_tf_ident(f['name']) }}{% if not loop.last %},
    {% endif %}
    {%- endfor -%}
{%- endmacro %}
