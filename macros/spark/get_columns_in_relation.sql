{#- Fix for dbt-spark 1.11.0 (github.com/dbt-labs/dbt-adapters, dbt-spark, Apache-2.0): its spark__get_columns_in_relation
    returns the raw `describe extended` agate table, so dbt-core's snapshot helper
    get_list_of_column_names(get_columns_in_relation(target)) gets Undefined names, and with
    `hard_deletes: new_record` the deletion row copies its columns from the (NULL) source side: NULL keys and event
    time in the snapshot. The snapshot helper is the only caller of this *macro* on Spark; return real columns.
    Remove when dbt-spark fixes it. -#}
{% macro spark__get_columns_in_relation(relation) -%}
  {% do return(adapter.get_columns_in_relation(relation)) %}
{%- endmacro %}
