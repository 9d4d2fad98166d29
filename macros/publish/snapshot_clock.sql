{#-
  The snapshot clock in UTC on Postgres, whatever the session's TimeZone.

  dbt-postgres stamps dbt_valid_from / dbt_valid_to / dbt_updated_at with `now()::timestamp without time zone`, the
  wall clock of the session's TimeZone: a server or database set to e.g. America/New_York would write local times
  into the commit history. `fs` sets PGTZ=UTC for its own dbt sessions; this root-project override (dbt's dispatch
  searches the root project before the adapter for macros of the `dbt` namespace) makes plain `dbt snapshot` /
  `dbt build` write UTC too. All times in the store are naive UTC.
-#}
{% macro postgres__snapshot_get_time() -%}
    {%- set fixed = fs_publish_time() -%}
    {%- if fixed -%}{{ fixed }}{%- else -%}cast((now() at time zone 'utc') as timestamp without time zone){%- endif -%}
{%- endmacro %}

{#-
  One commit time per `fs run`: every snapshot of the run stamps the time fs chose (fs_publish_request().time), so
  all feature groups of one run are published at one instant and an as-of at that time reads all of them. Plain
  dbt keeps each adapter's clock.
-#}
{% macro fs_publish_time() -%}
    {%- set t = fs_publish_request().get('time') -%}
    {%- if not t -%}{{ return(none) }}{%- endif -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,6})?$', t) -%}
        {%- do exceptions.raise_compiler_error('fs: publish time ' ~ t ~ ' is not a timestamp') -%}
    {%- endif -%}
    {{ return("cast('" ~ t ~ "' as timestamp)") }}
{%- endmacro %}

{% macro duckdb__snapshot_get_time() -%}
    {%- set fixed = fs_publish_time() -%}
    {%- if fixed -%}{{ fixed }}{%- else -%}{{ current_timestamp() }}::timestamp{%- endif -%}
{%- endmacro %}

{% macro spark__snapshot_get_time() -%}
    {%- set fixed = fs_publish_time() -%}
    {%- if fixed -%}{{ fixed }}{%- else -%}{{ current_timestamp() }}{%- endif -%}
{%- endmacro %}
