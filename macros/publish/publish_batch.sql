{#-
  The publish of an incremental feature group reads its new batch, not its table (README "Incremental feature groups").

  An incremental group (a dbt `incremental` model, delete+insert on its key, whose snapshot compares one ingestion
  column: `check_cols: [ingested_at]`) only ever adds rows or replaces a key's row by a newer ingestion: it never
  deletes. `fs run` (fs_cli/pipeline.py) therefore audits only the rows ingested after the group's published watermark
  (max ingestion time among the snapshot's current rows) in its audited copy, and asks this snapshot to read that
  copy: fs_publish_request().batches = {model unique id: {"column": ingestion column, "after": SQL literal of the
  watermark, or null on the first publish}}.

  Why the result equals a snapshot of the whole table (the route is dbt's own snapshot, fed a smaller query):
    - dbt's staging query (snapshot_staging_table) joins the source query to the snapshot's current rows on the
      unique key: a source row with no current row is an insert, one whose check column differs closes the current
      row and inserts a new version. Rows of the table outside the batch have ingestion times <= the watermark, so
      their current versions already carry exactly those values: a full-table source would find them unchanged and
      write nothing for them either.
    - the only thing a full-table source adds is deletion detection (`hard_deletes`: keys absent from the source).
      Over a batch, absence means "not re-ingested", not "deleted", so the batch is staged with dbt's
      `hard_deletes: ignore` semantics (dbt docs, resource-configs/hard-deletes: with `ignore`, the default, rows
      no longer in the source are left as they are). On the full table of an incremental model no key ever
      disappears (delete+insert re-inserts every key it deletes), so `new_record` would record nothing either.
    - a snapshot table made with `new_record` has the `dbt_is_deleted` column: the batch's new versions get 'False'
      there, as new_record would write, so a later full-table snapshot sees them as live rows.
  Commit counts stay exact (fs counts versions per snapshot instant) and the commit time is the run's one instant.
-#}

{#- The batch request of the feature group `snapshot` publishes ({"relation", "column", "after"}), or none. -#}
{% macro fs_publish_batch(snapshot) %}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- set fg_node = fs_publish_feature_group_node(snapshot) -%}
    {%- if fg_node is none -%}{{ return(none) }}{%- endif -%}
    {%- set request = fs_publish_request() -%}
    {%- set batch = request.get('batches', {}).get(fg_node.unique_id) -%}
    {%- set audited = request.get('audited', {}).get(fg_node.unique_id) -%}
    {%- if not batch or not audited -%}{{ return(none) }}{%- endif -%}
    {%- set after = batch.get('after') -%}
    {%- if after is not none and not modules.re.match(
            "^(cast\\('[0-9]{4}-[0-9]{2}-[0-9]{2}( [0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,6})?)?' as (timestamp|date)\\)|-?[0-9]+(\\.[0-9]+)?)$",
            after) -%}
        {%- do exceptions.raise_compiler_error('fs: batch watermark ' ~ after ~ ' is not a timestamp, date or number') -%}
    {%- endif -%}
    {%- set relation = api.Relation.create(database=fg_node.database, schema=fg_node.schema, identifier=audited) -%}
    {{ return({'relation': relation, 'column': batch['column'], 'after': after}) }}
{% endmacro %}


{#- The rows of a batch: ingested after the watermark (or with no ingestion time: never older than it). -#}
{% macro fs_publish_batch_predicate(batch) %}
    {%- if batch['after'] is none -%}{{ return('1 = 1') }}{%- endif -%}
    {%- set col = adapter.quote(batch['column']) -%}
    {{ return('(' ~ col ~ ' > ' ~ batch['after'] ~ ' or ' ~ col ~ ' is null)') }}
{% endmacro %}


{#-
  Pre-hook part for an incremental group under `fs run`: the candidate's batch rows become exactly the audited batch
  (inside the snapshot's transaction, under a lock on Postgres), so the candidate holds what is published, like
  fs_publish_replace_rows does for a table group, at the cost of the batch.
-#}
{% macro fs_publish_replace_batch(candidate, batch) %}
    {%- do adapter.dispatch('fs_publish_replace_batch', 'feature_store')(candidate, batch) -%}
{% endmacro %}

{% macro default__fs_publish_replace_batch(candidate, batch) %}
    {%- do run_query('delete from ' ~ candidate ~ ' where ' ~ fs_publish_batch_predicate(batch)) -%}
    {%- do run_query('insert into ' ~ candidate ~ ' select * from ' ~ batch['relation']) -%}
{% endmacro %}

{% macro postgres__fs_publish_replace_batch(candidate, batch) %}
    {%- do run_query('lock table ' ~ candidate ~ ' in exclusive mode') -%}
    {%- do default__fs_publish_replace_batch(candidate, batch) -%}
{% endmacro %}


{#-
  dbt's snapshot staging query (the `dbt` namespace searches the root project first, as snapshot_clock.sql relies on),
  fed the audited batch instead of the whole relation when `fs run` asked for it; otherwise dbt's own, unchanged.
-#}
{% macro fs_snapshot_staging_table(strategy, source_sql, target_relation) %}
    {%- set batch = fs_publish_batch(model) -%}
    {%- if batch is none -%}
        {{ return(dbt.default__snapshot_staging_table(strategy, source_sql, target_relation)) }}
    {%- endif -%}
    {%- set ignoring = {} -%}
    {%- do ignoring.update(strategy) -%}
    {%- do ignoring.update({'hard_deletes': 'ignore', 'invalidate_hard_deletes': false}) -%}
    {%- set columns = config.get('snapshot_table_column_names') or get_snapshot_table_column_names() -%}
    {%- set existing = adapter.get_columns_in_relation(target_relation) | map(attribute='name') | map('lower') | list -%}
    {%- set staged = dbt.default__snapshot_staging_table(ignoring, 'select * from ' ~ batch['relation'],
                                                         fs_snapshot_batch_versions(target_relation, batch, strategy,
                                                                                    columns)) -%}
    {%- if columns.dbt_is_deleted | lower in existing -%}
        {{ return('select fs_batch_staged.*, ' ~ dbt.string_literal('False') ~ ' as ' ~ columns.dbt_is_deleted
                  ~ ' from (' ~ staged ~ ') fs_batch_staged') }}
    {%- endif -%}
    {{ return(staged) }}
{% endmacro %}

{#-
  What dbt's staging query reads of the snapshot ("snapshotted_data": its current rows), for a batch: only the versions
  of the batch's keys, and only the columns the staging query uses. Same result: with `hard_deletes: ignore`,
  snapshotted_data is only ever joined to the batch on the unique key with `=` (an insert is a batch row without a
  current version of its key, an update one whose check columns differ from it), so versions of other keys never
  match, and of a version it reads the key, the check columns, and dbt's own columns (the closed version's
  dbt_scd_id for dbt's own merge, dbt_valid_from for the timestamp strategy, dbt_valid_to for the current-row filter).
  Without it dbt reads every column of every current row: at 10M rows that is most of the staging time.
  The one read left here is a scan of the current rows' keys for the batch's keys (there is no index to look them up
  by). When the merge is fs's (fs_snapshot_merges_by_key: it never reads dbt_scd_id), the closed version's dbt_scd_id
  is not read either: in the staged update rows, that column holds what fs's merge finds the version by instead
  (fs_snapshot_version_locator: DuckDB's rowid, as text; elsewhere a NULL, and the merge matches the key). That text
  column (an md5 per row) was most of what the scan read: at 10M current rows, 10k-row batch, DuckDB, staging
  0.56 s -> 0.18 s CPU. Inserted rows keep the dbt_scd_id the staging query computes.
-#}
{% macro fs_snapshot_batch_versions(target_relation, batch, strategy, columns) %}
    {%- set keys = strategy.unique_key if strategy.unique_key is not string else [strategy.unique_key] -%}
    {%- set check_cols = config.get('check_cols') -%}
    {%- if check_cols is string or not check_cols -%}
        {%- set wanted = '*' -%}
    {%- else -%}
        {%- set quoted_checks = [] -%}
        {%- for col in check_cols -%}{%- do quoted_checks.append(adapter.quote(col)) -%}{%- endfor -%}
        {%- set locator = fs_snapshot_version_locator() if fs_snapshot_merges_by_key(batch) else none -%}
        {%- set scd_id = columns.dbt_scd_id if locator is none else
                         'cast(' ~ (locator or 'null') ~ ' as ' ~ dbt.type_string() ~ ') as ' ~ columns.dbt_scd_id -%}
        {%- set wanted = (keys + quoted_checks + [scd_id, columns.dbt_updated_at, columns.dbt_valid_from,
                                               columns.dbt_valid_to]) | unique | join(', ') -%}
    {%- endif -%}
    {%- set same_key = [] -%}
    {%- for key in keys -%}
        {%- do same_key.append('fs_batch_keys.' ~ key ~ ' = fs_snapshot_versions.' ~ key) -%}
    {%- endfor -%}
    {{ return('(select ' ~ wanted ~ ' from ' ~ target_relation ~ ' fs_snapshot_versions where exists (select 1 from '
              ~ batch['relation'] ~ ' fs_batch_keys where ' ~ same_key | join(' and ') ~ ')) fs_snapshot_batch') }}
{% endmacro %}

{% macro duckdb__snapshot_staging_table(strategy, source_sql, target_relation) -%}
    {{ return(fs_snapshot_staging_table(strategy, source_sql, target_relation)) }}
{%- endmacro %}

{% macro postgres__snapshot_staging_table(strategy, source_sql, target_relation) -%}
    {{ return(fs_snapshot_staging_table(strategy, source_sql, target_relation)) }}
{%- endmacro %}

{% macro spark__snapshot_staging_table(strategy, source_sql, target_relation) -%}
    {{ return(fs_snapshot_staging_table(strategy, source_sql, target_relation)) }}
{%- endmacro %}


{#-
  dbt's snapshot merge, for a batch: the versions the batch closes are found by their unique key among the current
  rows, not by dbt_scd_id. Same rows: a staged update carries the dbt_scd_id of the current version of its key
  (the staging query joined it on the key with `=`), and a published group has one current version per key (fs
  refuses NULL and duplicate keys under every policy, README "Incremental feature groups"), so that version is the
  one current row with the key. Why: matching dbt_scd_id reads and hashes that text column of every current row; the
  key columns are a fraction of it (at 10M rows, most of the merge's time). Where the engine has a row locator
  (fs_snapshot_version_locator: DuckDB's rowid), the staging query carried the located version's locator instead
  of its dbt_scd_id and the merge matches that: the same version, found without joining on the key columns.
  Otherwise (no batch, `dbt_valid_to_current`, an engine whose merge fs does not override) dbt's own merge, unchanged.
-#}
{% macro fs_snapshot_merge_sql(target, source, insert_cols, adapter_merge) %}
    {%- set batch = fs_publish_batch(model) -%}
    {%- if not fs_snapshot_merges_by_key(batch) -%}
        {{ return(adapter_merge(target, source, insert_cols)) }}
    {%- endif -%}
    {%- set columns = config.get('snapshot_table_column_names') or get_snapshot_table_column_names() -%}
    {%- set unique_key = config.get('unique_key') -%}
    {%- set keys = unique_key if unique_key is not string else [unique_key] -%}
    {%- set same_key = [] -%}
    {%- for key in keys -%}
        {%- do same_key.append('fs_staged.' ~ key ~ ' = fs_target.' ~ key) -%}
    {%- endfor -%}
    {%- set locator = fs_snapshot_version_locator() -%}
    {%- if locator -%}
        {%- set same_version = 'fs_target.' ~ locator ~ ' = ' ~ fs_snapshot_located('fs_staged.' ~ columns.dbt_scd_id) -%}
    {%- else -%}
        {%- set same_version = same_key | join(' and ') -%}
    {%- endif %}
    update {{ target }} as fs_target
    set {{ columns.dbt_valid_to }} = fs_staged.{{ columns.dbt_valid_to }}
    from {{ source }} as fs_staged
    where {{ same_version }}
      and fs_staged.dbt_change_type in ('update', 'delete')
      and fs_target.{{ columns.dbt_valid_to }} is null;

    insert into {{ target }} ({{ insert_cols | join(', ') }})
    select {% for column in insert_cols -%}
        fs_staged.{{ column }}{%- if not loop.last %}, {% endif %}
    {%- endfor %}
    from {{ source }} as fs_staged
    where fs_staged.dbt_change_type = 'insert';
{% endmacro %}

{#-
  Whether the merge of this snapshot is fs_snapshot_merge_sql (closes versions by unique key) rather than dbt's own
  (by dbt_scd_id): a batch publish, no `dbt_valid_to_current`, on an engine whose snapshot_merge_sql fs overrides
  (below: DuckDB, Postgres; elsewhere dbt's merge, which needs the closed versions' dbt_scd_id in the staging table).
-#}
{% macro fs_snapshot_merges_by_key(batch) %}
    {%- if batch is none or config.get('dbt_valid_to_current') -%}{{ return(false) }}{%- endif -%}
    {{ return(adapter.dispatch('fs_snapshot_key_merge', 'feature_store')()) }}
{% endmacro %}

{#-
  What fs's merge finds a closed version by, carried from the staging query's read of the version (as text, in the
  staged update row's dbt_scd_id): an expression over the snapshot's own row, or '' to match the unique key.
  DuckDB: its `rowid`, stable within the snapshot's transaction (staging and merge run in it; a DuckDB file has one
  writer). The merge then finds the 5k closed versions of a 10k-row batch among 10M current rows in 0.08 s CPU
  instead of 0.23 s for a join on the key columns. Postgres: the key (a unique-key index would serve it).
-#}
{% macro fs_snapshot_version_locator() %}
    {{ return(adapter.dispatch('fs_snapshot_version_locator', 'feature_store')()) }}
{% endmacro %}
{% macro default__fs_snapshot_version_locator() %}{{ return('') }}{% endmacro %}
{% macro duckdb__fs_snapshot_version_locator() %}{{ return('rowid') }}{% endmacro %}

{#- The locator back from its text in the staged row (NULL for other rows' dbt_scd_id, an md5, never an error). -#}
{% macro fs_snapshot_located(text_column) %}
    {{ return(adapter.dispatch('fs_snapshot_located', 'feature_store')(text_column)) }}
{% endmacro %}
{% macro default__fs_snapshot_located(text_column) %}{{ return(text_column) }}{% endmacro %}
{% macro duckdb__fs_snapshot_located(text_column) %}{{ return('try_cast(' ~ text_column ~ ' as bigint)') }}{% endmacro %}

{% macro default__fs_snapshot_key_merge() %}{{ return(false) }}{% endmacro %}
{% macro duckdb__fs_snapshot_key_merge() %}{{ return(true) }}{% endmacro %}
{% macro postgres__fs_snapshot_key_merge() %}{{ return(true) }}{% endmacro %}

{% macro duckdb__snapshot_merge_sql(target, source, insert_cols) -%}
    {{ return(fs_snapshot_merge_sql(target, source, insert_cols, dbt.duckdb__snapshot_merge_sql)) }}
{%- endmacro %}

{% macro postgres__snapshot_merge_sql(target, source, insert_cols) -%}
    {{ return(fs_snapshot_merge_sql(target, source, insert_cols, dbt.postgres__snapshot_merge_sql)) }}
{%- endmacro %}
