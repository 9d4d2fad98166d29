{#- Model-independent feature functions: ratios, recency, bucketing, date parts. Arguments are SQL expressions
    (column names or literals written by the model author). Documented in macros/features/_features.yml; where DuckDB,
    Postgres and Spark differ the macro goes through adapter.dispatch (namespace feature_store). -#}

{% macro fs_features_double() -%}
    {#- the 64-bit float type of the engine: the one definition in macros/drift/ (dbt.type_float() is 32-bit on DuckDB
        and Spark) -#}
    {{ return(feature_store.fs_type_double()) }}
{%- endmacro %}

{% macro fs_ratio(numerator, denominator, default=none) -%}
{#- numerator / denominator as a double; NULL (or `default`) when the denominator is NULL or 0, never an error. -#}
(case when {{ denominator }} is null or {{ denominator }} = 0 then {{ default if default is not none else 'null' }}
    else cast({{ numerator }} as {{ feature_store.fs_features_double() }}) / {{ denominator }} end)
{%- endmacro %}

{% macro fs_seconds_since(event_ts, as_of_ts) -%}
{#- Recency: seconds (double, with fractions) from `event_ts` to `as_of_ts`; negative if the event is later. -#}
    {{ return(adapter.dispatch('fs_seconds_since', 'feature_store')(event_ts, as_of_ts)) }}
{%- endmacro %}
{% macro default__fs_seconds_since(event_ts, as_of_ts) -%}
cast(extract(epoch from ({{ as_of_ts }}) - ({{ event_ts }})) as double precision)
{%- endmacro %}
{% macro duckdb__fs_seconds_since(event_ts, as_of_ts) -%}
(epoch({{ as_of_ts }}) - epoch({{ event_ts }}))
{%- endmacro %}
{% macro spark__fs_seconds_since(event_ts, as_of_ts) -%}
(cast(unix_micros(cast({{ as_of_ts }} as timestamp)) - unix_micros(cast({{ event_ts }} as timestamp)) as double) / 1000000)
{%- endmacro %}

{% macro fs_bucketize(expression, boundaries) -%}
{#- Bucket index = number of boundaries <= value (0 .. len(boundaries)); NULL stays NULL. The same definition as the
    model-dependent `bucketize` transformation (macros/transforms/_transforms.yml). -#}
{%- if not boundaries or boundaries | sort != boundaries or boundaries | unique | list | length != boundaries | length -%}
    {{ exceptions.raise_compiler_error("fs_bucketize: boundaries must be a non-empty, strictly increasing list of numbers, got " ~ boundaries) }}
{%- endif -%}
(case when {{ expression }} is null then null
{%- for b in boundaries %} when {{ expression }} < {{ b }} then {{ loop.index0 }}{% endfor %} else {{ boundaries | length }} end)
{%- endmacro %}


{% macro fs_date_part(part, ts) -%}
{#- An integer calendar part of a timestamp. day_of_week is ISO (Monday 1 .. Sunday 7); is_weekend is 1 on
    Saturday and Sunday else 0. Parts: year quarter month day_of_month day_of_year day_of_week iso_week hour minute
    is_weekend. -#}
    {%- set known = ['year', 'quarter', 'month', 'day_of_month', 'day_of_year', 'day_of_week', 'iso_week', 'hour', 'minute', 'is_weekend'] -%}
    {%- if part not in known -%}
        {{ exceptions.raise_compiler_error("fs_date_part: unknown part '" ~ part ~ "'; use one of " ~ known | join(', ')) }}
    {%- endif -%}
    {{ return(adapter.dispatch('fs_date_part', 'feature_store')(part, ts)) }}
{%- endmacro %}
{% macro default__fs_date_part(part, ts) -%}
{#- extract() is standard on DuckDB and Postgres, but returns bigint on one and numeric on the other: cast. -#}
{%- set field = {'year': 'year', 'quarter': 'quarter', 'month': 'month', 'day_of_month': 'day', 'day_of_year': 'doy',
    'day_of_week': 'isodow', 'iso_week': 'week', 'hour': 'hour', 'minute': 'minute', 'is_weekend': 'isodow'}[part] -%}
{%- if part == 'is_weekend' -%}
(case when extract(isodow from {{ ts }}) >= 6 then 1 else 0 end)
{%- else -%}
cast(extract({{ field }} from {{ ts }}) as integer)
{%- endif -%}
{%- endmacro %}
{% macro spark__fs_date_part(part, ts) -%}
{%- set field = {'year': 'YEAR', 'quarter': 'QUARTER', 'month': 'MONTH', 'day_of_month': 'DAY', 'day_of_year': 'DOY',
    'day_of_week': 'DAYOFWEEK_ISO', 'iso_week': 'WEEK', 'hour': 'HOUR', 'minute': 'MINUTE', 'is_weekend': 'DAYOFWEEK_ISO'}[part] -%}
{%- if part == 'is_weekend' -%}
(case when extract(DAYOFWEEK_ISO from {{ ts }}) >= 6 then 1 else 0 end)
{%- else -%}
cast(extract({{ field }} from {{ ts }}) as int)
{%- endif -%}
{%- endmacro %}
