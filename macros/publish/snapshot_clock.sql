{#-
  The snapshot clock in UTC on Postgres, whatever the session's TimeZone.

  dbt-postgres stamps dbt_valid_from / dbt_valid_to / dbt_updated_at with `now()::timestamp without time zone`, the
  wall clock of the session's TimeZone: a server or database set to e.g. America/New_York would write local times
  into the commit history. `fs` sets PGTZ=UTC for its own dbt sessions; this root-project override (dbt's dispatch
  searches the root project before the adapter for macros of the `dbt` namespace) makes plain `dbt snapshot` /
  `dbt build` write UTC too. All times in the store are naive UTC.
-#}
{% macro postgres__snapshot_get_time() -%}
    cast((now() at time zone 'utc') as timestamp without time zone)
{%- endmacro %}
