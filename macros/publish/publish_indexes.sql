{#-
  Indexes on a published snapshot, where the engine has them (Postgres; DuckDB and Spark have none to use here).

  What the publish of an incremental group reads of the snapshot, besides its batch: the current versions of the
  batch's keys (dbt's staging query, fs_snapshot_batch_versions), the same versions again to close them (the merge,
  fs_snapshot_merge_sql), and the versions opened or closed since the last logged commit (the commit log,
  fs_cli/commits.py `_new_commits`, and `max(dbt_valid_from)`). Without indexes each is a sequential scan of every
  version the group ever had, so the publish costs the history; with them, lookups of the batch's size:
    - the unique key, partial on the current versions (`dbt_valid_to is null`): the versions a batch replaces are
      found by key among the current ones, and a version leaves this index when it is closed. Not unique: a group
      published with a duplicate key under `warn` must publish (its gate reports it);
    - dbt_valid_from and dbt_valid_to: the versions opened or closed after an instant;
    - an incremental group's ingestion column (`check_cols: [ingested_at]`), over the current versions: the group's
      published watermark, max() of it, read at every run.
  Created once (`if not exists`), in the snapshot's post-hook (dbt_project.yml), so plain `dbt snapshot` creates them
  too; names are a hash of the snapshot's name (Postgres truncates identifiers at 63 bytes). Skipped under
  `dbt_valid_to_current` (current versions then carry a date, not NULL).
-#}
{% macro fs_publish_indexes() %}
    {{ return(adapter.dispatch('fs_publish_indexes', 'feature_store')()) }}
{% endmacro %}

{% macro default__fs_publish_indexes() %}{{ return('') }}{% endmacro %}

{% macro postgres__fs_publish_indexes() %}
    {%- if not execute or config.get('dbt_valid_to_current') -%}{{ return('') }}{%- endif -%}
    {%- set unique_key = config.get('unique_key') -%}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    {%- set columns = config.get('snapshot_table_column_names') or get_snapshot_table_column_names() -%}
    {%- set prefix = 'fs_' ~ local_md5(this.schema ~ '.' ~ this.identifier)[:16] -%}
    {%- set statements = [
        'create index if not exists ' ~ prefix ~ '_current_key on ' ~ this ~ ' (' ~ keys | join(', ') ~ ') where '
            ~ columns.dbt_valid_to ~ ' is null',
        'create index if not exists ' ~ prefix ~ '_valid_from on ' ~ this ~ ' (' ~ columns.dbt_valid_from ~ ')',
        'create index if not exists ' ~ prefix ~ '_valid_to on ' ~ this ~ ' (' ~ columns.dbt_valid_to ~ ')',
    ] -%}
    {%- set check_cols = config.get('check_cols') -%}
    {%- if check_cols and check_cols is not string and check_cols | length == 1 -%}
        {#- An incremental group's ingestion column: its published watermark is max() of it over the current
            versions (fs_cli/pipeline.py), read at every run; the index answers it without a scan. -#}
        {%- do statements.append('create index if not exists ' ~ prefix ~ '_watermark on ' ~ this ~ ' ('
                                 ~ adapter.quote(check_cols[0]) ~ ') where ' ~ columns.dbt_valid_to ~ ' is null') -%}
    {%- endif -%}
    {{ return(statements | join(';\n')) }}
{% endmacro %}
