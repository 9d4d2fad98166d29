{#-
  The inference-log tables fs loads the JSONL logs into (fs_cli/monitoring/logtables.py, `fs logs sync`), created
  empty when missing so the monitoring models (models/monitoring/) build before any log was loaded. Same columns as
  fs_cli.monitoring.logtables.COLUMNS (tests/test_monitoring.py checks both agree). Used as a pre-hook; returns ''.
-#}
{% macro fs_inference_log_tables() %}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set s, t, b, d = dbt.type_string(), dbt.type_timestamp(), dbt.type_bigint(), fs_type_double() -%}{#- macros/drift/: 64-bit (dbt.type_float() is 32-bit on DuckDB) -#}
    {%- set tables = {
        'predictions_log': [('row_id', s), ('log_version', b), ('logged_at', t), ('model', s), ('model_name', s),
                            ('model_version', b), ('feature_view', s), ('training_dataset_version', b),
                            ('event_time', t), ('entity', s), ('features', s), ('prediction', s),
                            ('prediction_value', d), ('score', d), ('source_file', s)],
        'predictions_log_values': [('row_id', s), ('logged_at', t), ('feature_view', s), ('kind', s), ('name', s),
                                   ('value_text', s), ('value_number', d)],
        'served_vectors_log': [('row_id', s), ('request_id', s), ('row_index', b), ('log_version', b),
                               ('served_at', t), ('feature_view', s), ('versions', s), ('entity', s),
                               ('features', s), ('source_file', s)],
        'served_vectors_log_values': [('row_id', s), ('served_at', t), ('feature_view', s), ('kind', s),
                                      ('name', s), ('value_text', s), ('value_number', d), ('status', s)],
        'inference_log_files': [('file', s), ('kind', s), ('bytes_loaded', b), ('loaded_at', t)],
    } -%}
    {%- do run_query('create schema if not exists ' ~ adapter.quote('fs_meta')) -%}
    {%- for name, columns in tables.items() -%}
        {%- set cols = [] -%}
        {%- for c, ty in columns %}{% do cols.append(adapter.quote(c) ~ ' ' ~ ty) %}{% endfor -%}
        {%- do run_query('create table if not exists ' ~ adapter.quote('fs_meta') ~ '.' ~ adapter.quote(name)
                         ~ ' (' ~ cols | join(', ') ~ ')') -%}
    {%- endfor -%}
    {{ return('') }}
{% endmacro %}

